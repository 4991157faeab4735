package store

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
)

func putDeferred(t *testing.T, ds Datastore, key, value string) {
	t.Helper()
	require.NoError(t, UpdateDeferred(ds, func(w Writer) error {
		if value == "" {
			return w.Delete([]byte(key))
		}
		return w.Put([]byte(key), []byte(value))
	}))
}

func dsContents(t *testing.T, ds Datastore) map[string]string {
	t.Helper()
	out := map[string]string{}
	var last string
	require.NoError(t, ds.ForEach(func(k, v []byte) error {
		require.Greater(t, string(k), last, "in key order, once each")
		last = string(k)
		out[string(k)] = string(v)
		return nil
	}))
	n, err := ds.Len()
	require.NoError(t, err)
	require.Equal(t, len(out), n, "Len agrees with ForEach")
	return out
}

// Deferred writes are seen at once by every read (Get, ForEach, Len, the
// Writer of a later deferred update), merged with what bbolt holds, before
// and after a checkpoint folds them.
func TestDeferredWritesRead(t *testing.T) {
	t.Parallel()
	s := openJ(t, t.TempDir())
	defer s.Close()
	ds, err := s.Datastore("T")
	require.NoError(t, err)
	require.NoError(t, ds.Update(func(w Writer) error {
		for _, k := range []string{"b", "d", "f"} {
			if err := w.Put([]byte(k), []byte("bolt-"+k)); err != nil {
				return err
			}
		}
		return nil
	}))
	putDeferred(t, ds, "a", "def-a") // before every bbolt key
	putDeferred(t, ds, "d", "def-d") // replaces one
	putDeferred(t, ds, "f", "")      // deletes one
	putDeferred(t, ds, "g", "def-g") // after every bbolt key
	putDeferred(t, ds, "x", "def-x")
	putDeferred(t, ds, "x", "") // put then deleted: absent
	want := map[string]string{"a": "def-a", "b": "bolt-b", "d": "def-d", "g": "def-g"}
	require.Equal(t, want, dsContents(t, ds))
	v, err := ds.Get([]byte("d"))
	require.NoError(t, err)
	require.Equal(t, "def-d", string(v))
	v, err = ds.Get([]byte("f"))
	require.NoError(t, err)
	require.Nil(t, v)
	require.NoError(t, UpdateDeferred(ds, func(w Writer) error {
		v, err := w.Get([]byte("a"))
		require.NoError(t, err)
		require.Equal(t, "def-a", string(v), "a deferred update reads earlier deferred writes")
		return w.Put([]byte("a"), append(v, '+'))
	}))
	want["a"] = "def-a+"
	require.Equal(t, want, dsContents(t, ds))

	// Carried by a batch: journaled, still read from the overlay.
	require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec("a1", 1, messages.State_STATE_QUEUED)}}))
	require.False(t, s.hasDeferred(), "the batch carried them")
	require.Equal(t, want, dsContents(t, ds))
	// Folded into bbolt.
	require.NoError(t, s.checkpoint())
	require.False(t, s.dsDirty("T"))
	require.Equal(t, want, dsContents(t, ds))
}

// A deferred write rides the next ApplyActions: after a crash it is there
// exactly when that batch is, and one made after the batch is not.
func TestDeferredWritesRideTheNextBatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openJ(t, dir)
	ds, err := s.Datastore("T")
	require.NoError(t, err)
	putDeferred(t, ds, "meta", "1")
	require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec("a1", 1, messages.State_STATE_FINISHED)}}))
	putDeferred(t, ds, "meta", "2") // no batch after it
	putDeferred(t, ds, "other", "x")
	crash(t, s)

	s2 := openJ(t, dir)
	defer s2.Close()
	require.Equal(t, map[string]messages.State{"a1": messages.State_STATE_FINISHED}, ids(t, s2))
	ds2, err := s2.Datastore("T")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"meta": "1"}, dsContents(t, ds2),
		"the write the batch carried is on disk; the later one, never followed by a durable write, is not")
}

// Without a batch to carry them, deferred writes are journaled by the
// checkpointer (flushDeferred) and at a clean Close.
func TestDeferredWritesWithoutBatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openJ(t, dir)
	ds, err := s.Datastore("T")
	require.NoError(t, err)
	putDeferred(t, ds, "k1", "v1")
	require.NoError(t, s.flushDeferred()) // what the checkpointer's tick does
	putDeferred(t, ds, "k2", "v2")
	crash(t, s)

	s2 := openJ(t, dir)
	ds2, err := s2.Datastore("T")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"k1": "v1"}, dsContents(t, ds2))
	putDeferred(t, ds2, "k3", "v3")
	require.NoError(t, s2.Close())
	segs, err := listSegments(dir, DefaultFile)
	require.NoError(t, err)
	require.Empty(t, segs, "a clean close folds them and leaves no journal")

	s3 := openJ(t, dir)
	defer s3.Close()
	ds3, err := s3.Datastore("T")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"k1": "v1", "k3": "v3"}, dsContents(t, ds3))
}

// A direct Update or Clear after deferred writes of the same keys sees
// them, and wins over them after a crash and replay: the deferred writes
// are folded first, so a replay never writes an older value over a newer.
func TestDeferredThenDirect(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openJ(t, dir)
	ds, err := s.Datastore("T")
	require.NoError(t, err)
	putDeferred(t, ds, "k", "deferred")
	putDeferred(t, ds, "gone", "deferred")
	require.NoError(t, ds.Update(func(w Writer) error {
		v, err := w.Get([]byte("k"))
		require.NoError(t, err)
		require.Equal(t, "deferred", string(v), "a direct update reads the deferred write")
		return w.Put([]byte("k"), []byte("direct"))
	}))
	require.False(t, s.dsDirty("T"))
	putDeferred(t, ds, "k2", "after")
	require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec("a1", 1, messages.State_STATE_QUEUED)}}))
	crash(t, s)

	s2 := openJ(t, dir)
	ds2, err := s2.Datastore("T")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"k": "direct", "gone": "deferred", "k2": "after"}, dsContents(t, ds2))
	putDeferred(t, ds2, "k3", "x")
	require.NoError(t, ds2.Clear())
	require.Empty(t, dsContents(t, ds2))
	putDeferred(t, ds2, "k4", "y")
	require.NoError(t, s2.ApplyActions("fetch", []ActionMutation{{Put: rec("a2", 2, messages.State_STATE_QUEUED)}}))
	crash(t, s2)

	s3 := openJ(t, dir)
	defer s3.Close()
	ds3, err := s3.Datastore("T")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"k4": "y"}, dsContents(t, ds3))
}

// Many deferred writes of several datastores across batches and
// checkpoints: what a reopen finds is what was read before the crash.
func TestDeferredWritesAcrossCheckpoints(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openJ(t, dir)
	want := map[string]map[string]string{}
	dss := map[string]Datastore{}
	for _, task := range []string{"A", "B", "C"} {
		ds, err := s.Datastore(task)
		require.NoError(t, err)
		dss[task] = ds
		want[task] = map[string]string{}
	}
	seq := uint64(0)
	for round := 0; round < 200; round++ {
		task := []string{"A", "B", "C"}[round%3]
		key := fmt.Sprintf("k%02d", round%17)
		if round%7 == 3 {
			putDeferred(t, dss[task], key, "")
			delete(want[task], key)
		} else {
			v := fmt.Sprintf("v%d", round)
			putDeferred(t, dss[task], key, v)
			want[task][key] = v
		}
		seq++
		require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec(fmt.Sprintf("a%d", seq), seq, messages.State_STATE_QUEUED)}}))
		if round%25 == 24 {
			require.NoError(t, s.checkpoint())
		}
	}
	for task, ds := range dss {
		require.Equal(t, want[task], dsContents(t, ds), task)
	}
	crash(t, s)
	s2 := openJ(t, dir)
	defer s2.Close()
	for task := range dss {
		ds, err := s2.Datastore(task)
		require.NoError(t, err)
		require.Equal(t, want[task], dsContents(t, ds), task)
	}
}

// A frame with datastore mutations decodes to what was encoded.
func TestDeferredFrameRoundTrip(t *testing.T) {
	t.Parallel()
	muts := []journalMutation{
		{kind: kindDSPut, task: "T", key: []byte("k"), put: []byte("v")},
		{kind: kindDSPut, task: "T", key: []byte("empty"), put: []byte{}},
		{kind: kindDSDelete, task: "U", key: []byte("gone")},
	}
	for _, queue := range []string{"", "fetch"} {
		b := encodeFrame(queue, muts)
		q, got, err := decodeFrame(b[frameHeaderBytes:])
		require.NoError(t, err)
		require.Equal(t, queue, q)
		require.Len(t, got, len(muts))
		for i := range muts {
			require.Equal(t, muts[i].kind, got[i].kind)
			require.Equal(t, muts[i].task, got[i].task)
			require.Equal(t, string(muts[i].key), string(got[i].key))
			require.Equal(t, string(muts[i].put), string(got[i].put))
		}
	}
	for _, bad := range [][]byte{{}, {0}, {5, 'a'}, {1, 'T'}, {1, 'T', 9, 'k'}} {
		_, err := decodeDSMutation(kindDSPut, bad)
		require.Error(t, err, "%q", bad)
	}
}

// UpdateDeferred's callback may read another datastore (the rules for fn
// are Update's). A compaction that swaps the file meanwhile (it takes the
// store's lock for writing) must not wait for the callback while the
// callback's read waits for the compaction: UpdateDeferred holds no lock
// of the store's file while the callback runs.
func TestDeferredUpdateReadsWhileCompactionSwaps(t *testing.T) {
	t.Parallel()
	s := openJ(t, t.TempDir())
	defer s.Close()
	a, err := s.Datastore("A")
	require.NoError(t, err)
	b, err := s.Datastore("B")
	require.NoError(t, err)
	require.NoError(t, b.Update(func(w Writer) error { return w.Put([]byte("k"), []byte("v")) }))

	compacted := make(chan error, 1)
	err = UpdateDeferred(a, func(w Writer) error {
		go func() {
			_, err := s.Compact(0)
			compacted <- err
		}()
		// Until the compaction waits for the store's lock (its swap), or
		// has done without waiting.
		testwait.For(t, 10*time.Second, func() bool {
			if len(compacted) > 0 {
				return true
			}
			if s.mu.TryRLock() {
				s.mu.RUnlock()
				return false
			}
			return true
		}, "the compaction to reach its swap")
		read := make(chan error, 1)
		go func() {
			v, err := b.Get([]byte("k"))
			if err == nil && string(v) != "v" {
				err = fmt.Errorf("read %q, want v", v)
			}
			read <- err
		}()
		select {
		case err := <-read:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("a read in UpdateDeferred's callback waits for a compaction that waits for the callback")
		}
		return w.Put([]byte("x"), []byte("y"))
	})
	require.NoError(t, err)
	require.NoError(t, <-compacted)
	v, err := a.Get([]byte("x"))
	require.NoError(t, err)
	require.Equal(t, "y", string(v))
}

// dsHeld is what the deferred writes not yet folded into bbolt hold in
// memory, counted from the overlays themselves.
func dsHeld(s *boltStore) int64 {
	s.ovMu.RLock()
	defer s.ovMu.RUnlock()
	return s.dsPending.size() + s.dsActive.size() + s.dsFrozen.size()
}

// Deferred writes that no checkpoint folds (here the checkpointer does
// not run, and no batch of actions comes) stay within
// Config.MaxDeferredBytes: an UpdateDeferred that finds the bound reached
// writes and folds them first. Below the bound they stay deferred; every
// write is read back, and survives a reopen.
func TestDeferredWritesBounded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const limit = 64 << 10
	o, err := Open(Config{Dir: dir, MaxDeferredBytes: limit, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	s := o.(*boltStore)
	s.stopCheckpointer()
	ds, err := s.Datastore("T")
	require.NoError(t, err)
	value := func(i int) string { return fmt.Sprintf("%04d:%01020d", i, i) } // 1 KiB
	one := dsSize("k0000", &dsVal{v: []byte(value(0))})
	const n = 1000 // about 16 times the bound
	for i := range n {
		putDeferred(t, ds, fmt.Sprintf("k%04d", i), value(i))
		if i == 10 {
			require.True(t, s.hasDeferred(), "below the bound, writes stay deferred")
		}
		require.LessOrEqual(t, dsHeld(s), int64(limit)+one, "after write %d", i)
	}
	for _, i := range []int{0, 499, n - 1} {
		v, err := ds.Get([]byte(fmt.Sprintf("k%04d", i)))
		require.NoError(t, err)
		require.Equal(t, value(i), string(v))
	}
	require.Len(t, dsContents(t, ds), n)
	require.NoError(t, s.Close())

	o, err = Open(Config{Dir: dir})
	require.NoError(t, err)
	defer o.Close()
	ds, err = o.Datastore("T")
	require.NoError(t, err)
	got := dsContents(t, ds)
	require.Len(t, got, n)
	require.Equal(t, value(n-1), got[fmt.Sprintf("k%04d", n-1)])
}
