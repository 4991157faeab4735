package restsync

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/store"
)

// mergingDS is a datastore that merges bookkeeping (as the shared store
// of a cluster does) and refuses reads of the meta record, so that a
// NoteAction that read it would fail.
type mergingDS struct {
	store.Datastore
	merges int
}

func (d *mergingDS) Get(key []byte) ([]byte, error) {
	if string(key) == metaKey {
		return nil, errors.New("the meta record was read")
	}
	return d.Datastore.Get(key)
}

func (d *mergingDS) MergeBookkeeping(key []byte, m store.Merge) error {
	d.merges++
	return d.Datastore.Update(func(w store.Writer) error {
		old, err := w.Get(key)
		if err != nil {
			return err
		}
		return w.Put(key, m.Apply(old))
	})
}

// In a cluster NoteAction records an action without reading the task's
// meta; the record it leaves is the one a read, change and write leaves.
func TestNoteActionMergesWithoutARead(t *testing.T) {
	st, err := store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	defer func() { require.NoError(t, st.Close()) }()
	plain, err := st.Datastore("PLAIN")
	require.NoError(t, err)
	inner, err := st.Datastore("MERGED")
	require.NoError(t, err)
	merged := &mergingDS{Datastore: inner}
	at := time.UnixMilli(1000)
	now := func() time.Time { at = at.Add(time.Millisecond); return at }
	for _, action := range []string{"SYNCHRONIZE", "IDENTIFIERS"} {
		for _, ds := range []store.Datastore{plain, merged} {
			at = time.UnixMilli(1000)
			NoteAction(ds, action, now, slog.New(slog.DiscardHandler))()
		}
	}
	require.Equal(t, 2, merged.merges)
	want, err := ReadMeta(plain)
	require.NoError(t, err)
	got, err := ReadMeta(inner)
	require.NoError(t, err)
	require.Equal(t, &TaskMeta{Calls: 2, Action: "IDENTIFIERS", LastStartMs: 1001, LastFinishMs: 1002}, want)
	require.Equal(t, want, got)
}
