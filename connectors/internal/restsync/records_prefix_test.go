package restsync

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/store"
)

// countingDS counts the keys a datastore's listings read.
type countingDS struct {
	store.Datastore
	read int
}

func (d *countingDS) ForEach(fn func(k, v []byte) error) error {
	return d.Datastore.ForEach(func(k, v []byte) error { d.read++; return fn(k, v) })
}

func (d *countingDS) ForEachPrefix(prefix []byte, fn func(k, v []byte) error) error {
	return store.ForEachPrefix(d.Datastore, prefix, func(k, v []byte) error { d.read++; return fn(k, v) })
}

// TestEachRecordReadsOnlyItsPrefix: EachRecord read every key of the task's
// datastore to find those under its prefix (ForEach), where the embedded
// store and a cluster's shared store list a prefix (store.PrefixLister).
// The Webex connector lists one space's records so (a space read in full
// by a whole listing, a space removed): each cost a walk of every record
// of the task, about 0.35 s for 100,000 messages' records in the embedded
// store where the space's own 100 take about 1 ms (see the commit), so a
// run that read or removed a few hundred such spaces spent minutes there.
func TestEachRecordReadsOnlyItsPrefix(t *testing.T) {
	st, err := store.Open(store.Config{Driver: store.DriverBolt, Dir: filepath.Join(t.TempDir(), "store")})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	bolt, err := st.Datastore("T")
	require.NoError(t, err)
	require.NoError(t, bolt.Update(func(w store.Writer) error {
		for room := range 10 {
			for m := range 20 {
				key := fmt.Sprintf("msg\x00room%d\x00m%02d", room, m)
				v, _ := json.Marshal(&Record{Version: "1", Ref: key})
				if err := w.Put(RecordKey(key), v); err != nil {
					return err
				}
			}
		}
		return w.Put([]byte("c:cursor"), []byte("x"))
	}))
	ds := &countingDS{Datastore: bolt}
	var keys []string
	require.NoError(t, EachRecord(ds, "msg\x00room3\x00", func(key string, r *Record) error {
		require.Equal(t, key, r.Ref)
		keys = append(keys, key)
		return nil
	}))
	require.Len(t, keys, 20)
	require.Equal(t, "msg\x00room3\x00m00", keys[0])
	require.Equal(t, 20, ds.read, "only the records under the prefix are read")
}
