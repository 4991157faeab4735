package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/storetest"
)

// TestValidateBounds checks the journal's validation where it answers
// from the queue's bounds (the highest id and seq it holds) instead of
// looking: an id above every id held may still take a seq that is held,
// in the active overlay, in bbolt after a checkpoint, or in bbolt after a
// reopen (bounds read back from the file), and is refused then; an id
// below the bounds is looked up as before; a seq freed by a delete or a
// move can be taken again.
func TestValidateBounds(t *testing.T) {
	t.Parallel()
	const queued = messages.State_STATE_QUEUED
	rec, put, del := storetest.Record, storetest.Put, storetest.Del
	dir := t.TempDir()
	s, err := store.Open(store.Config{Dir: dir, CheckpointInterval: time.Hour})
	require.NoError(t, err)
	defer func() { _ = s.Close() }()
	apply := func(muts ...store.ActionMutation) error { return s.ApplyActions("fetch", muts) }
	refused := func(muts ...store.ActionMutation) {
		t.Helper()
		require.ErrorIs(t, apply(muts...), store.ErrInvalid)
	}

	require.NoError(t, apply(put(rec("m", 1, queued)), put(rec("p", 3, queued))))
	refused(put(rec("z1", 3, queued)))                            // above the ids, seq held in the overlay
	refused(put(rec("z1", 4, queued)), put(rec("z2", 4, queued))) // both above the bounds, same seq in the batch
	require.NoError(t, apply(put(rec("c", 9, queued))))           // below the ids, above the seqs
	require.NoError(t, store.Checkpoint(s))
	refused(put(rec("z1", 9, queued)))                             // seq held in bbolt
	refused(put(rec("a", 1, queued)))                              // id below, seq held in bbolt
	require.NoError(t, apply(del("p"), put(rec("z1", 3, queued)))) // freed in the same batch
	require.NoError(t, apply(put(rec("m", 12, queued))))           // m moves: seq 1 is free
	require.NoError(t, apply(put(rec("z2", 1, queued))))
	refused(put(rec("z3", 12, queued)))
	storetest.RequireActions(t, s, "fetch", rec("z2", 1, queued), rec("z1", 3, queued), rec("c", 9, queued), rec("m", 12, queued))

	// After a reopen the bounds come from the file.
	require.NoError(t, s.Close())
	s, err = store.Open(store.Config{Dir: dir, CheckpointInterval: time.Hour})
	require.NoError(t, err)
	refused(put(rec("zz", 12, queued)))
	refused(put(rec("b", 3, queued)))
	require.NoError(t, apply(put(rec("zz", 13, queued)), put(rec("zzz", 14, queued))))
	refused(put(rec("zzzz", 14, queued)))
	require.NoError(t, apply(del("zz"), put(rec("b", 2, queued))))
	require.NoError(t, apply(put(rec("zzzz", 13, queued)))) // zz's seq, freed
	storetest.RequireActions(t, s, "fetch", rec("z2", 1, queued), rec("b", 2, queued), rec("z1", 3, queued), rec("c", 9, queued),
		rec("m", 12, queued), rec("zzzz", 13, queued), rec("zzz", 14, queued))
}
