// Package storetest is the conformance suite of store.Store: every
// implementation must pass Run, and RunFaults with injected failures.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... }, nil)
//	}
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// OpenFunc returns a new, empty store. The suite closes it.
type OpenFunc func(t *testing.T) store.Store

// ReopenFunc closes s and opens the same store again, as a restart would.
// Nil for stores that keep nothing (in memory).
type ReopenFunc func(t *testing.T, s store.Store) store.Store

// Record returns a StoredAction with the given id, seq and state, and a few
// fields set so that equality checks compare something.
func Record(id string, seq uint64, state messages.State) *messages.StoredAction {
	return &messages.StoredAction{
		Id: id,
		Spec: &messages.ActionSpec{
			Action: "FETCH", FetchAction: "SYNCHRONIZE", Priority: int32(seq % 7),
			Params: []*messages.Param{{Name: "TaskSections", Value: "Task" + id}},
		},
		Status: &messages.ActionStatus{
			Token: "tok-" + id, State: state, Seq: seq,
			QueuedUnixMs: 1_700_000_000_000 + int64(seq),
		},
	}
}

// Put and Del build mutations.
func Put(a *messages.StoredAction) store.ActionMutation { return store.ActionMutation{Put: a} }

// Del builds a delete mutation.
func Del(id string) store.ActionMutation { return store.ActionMutation{Delete: id} }

// Load returns every action of queue.
func Load(t testing.TB, s store.Store, queue string) []*messages.StoredAction {
	t.Helper()
	var out []*messages.StoredAction
	require.NoError(t, s.LoadActions(queue, func(a *messages.StoredAction) error {
		out = append(out, a)
		return nil
	}))
	return out
}

// RequireActions checks that queue holds exactly want, in order.
func RequireActions(t testing.TB, s store.Store, queue string, want ...*messages.StoredAction) {
	t.Helper()
	got := Load(t, s, queue)
	require.Equal(t, len(want), len(got), "number of actions in %s: got ids %v", queue, ids(got))
	for i := range want {
		require.Truef(t, proto.Equal(want[i], got[i]), "action %d of %s: want %v, got %v", i, queue, want[i], got[i])
	}
}

func ids(as []*messages.StoredAction) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Id
	}
	return out
}

// Entries returns a datastore's contents in ForEach order.
func Entries(t testing.TB, d store.Datastore) [][2]string {
	t.Helper()
	var out [][2]string
	require.NoError(t, d.ForEach(func(k, v []byte) error {
		out = append(out, [2]string{string(k), string(v)})
		return nil
	}))
	return out
}

func put(t testing.TB, d store.Datastore, kv ...string) {
	t.Helper()
	require.NoError(t, d.Update(func(w store.Writer) error {
		for i := 0; i+1 < len(kv); i += 2 {
			if err := w.Put([]byte(kv[i]), []byte(kv[i+1])); err != nil {
				return err
			}
		}
		return nil
	}))
}

func datastore(t testing.TB, s store.Store, name string) store.Datastore {
	t.Helper()
	d, err := s.Datastore(name)
	require.NoError(t, err)
	return d
}

// Run runs the conformance suite. open must return a new, empty store
// each time; reopen (optional) checks persistence across a restart.
func Run(t *testing.T, open OpenFunc, reopen ReopenFunc) {
	setup := func(t *testing.T) store.Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		RequireActions(t, s, "fetch")
		q, err := s.QueueNames()
		require.NoError(t, err)
		require.Empty(t, q)
		n, err := s.DatastoreNames()
		require.NoError(t, err)
		require.Empty(t, n)
		require.NotEmpty(t, s.Info().Engine)
		require.NoError(t, s.ApplyActions("fetch", nil), "empty batch")
		RequireActions(t, s, "fetch")
	})

	t.Run("LoadInSeqOrder", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		a, b, c, d := Record("a", 30, 1), Record("b", 10, 2), Record("c", 20, 4), Record("d", 1<<40, 1)
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Put(a), Put(b)}))
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Put(d), Put(c)}))
		RequireActions(t, s, "fetch", b, c, a, d)
		z := Record("z", 0, 1) // seq 0 is a valid seq
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Put(z)}))
		RequireActions(t, s, "fetch", z, b, c, a, d)
	})

	t.Run("ManyRecordsAcrossChunks", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		const n = 1300
		var want []*messages.StoredAction
		var batch []store.ActionMutation
		for i := n; i > 0; i-- { // submitted in reverse seq order
			a := Record(fmt.Sprintf("id-%04d", i), uint64(i)*3, messages.State_STATE_QUEUED)
			batch = append(batch, Put(a))
			if len(batch) == 256 {
				require.NoError(t, s.ApplyActions("fetch", batch))
				batch = nil
			}
		}
		require.NoError(t, s.ApplyActions("fetch", batch))
		for i := 1; i <= n; i++ {
			want = append(want, Record(fmt.Sprintf("id-%04d", i), uint64(i)*3, messages.State_STATE_QUEUED))
		}
		RequireActions(t, s, "fetch", want...)

		// fn may write while loading: each record seen exactly once.
		seen := map[string]int{}
		require.NoError(t, s.LoadActions("fetch", func(a *messages.StoredAction) error {
			seen[a.Id]++
			if a.Status.Seq%2 == 0 {
				return s.ApplyActions("other", []store.ActionMutation{Put(Record(a.Id, a.Status.Seq, 4))})
			}
			return nil
		}))
		require.Len(t, seen, n)
		for id, c := range seen {
			require.Equal(t, 1, c, id)
		}
		require.Len(t, Load(t, s, "other"), n/2)
	})

	t.Run("ReplaceAndMove", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		a, b := Record("a", 1, 1), Record("b", 2, 1)
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Put(a), Put(b)}))
		a2 := Record("a", 1, messages.State_STATE_FINISHED)
		a2.Status.Counts = []*messages.DocumentCount{{Task: "T", Added: 3}}
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Put(a2)}))
		RequireActions(t, s, "fetch", a2, b)
		a3 := Record("a", 5, messages.State_STATE_QUEUED) // seq changes: moves
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Put(a3)}))
		RequireActions(t, s, "fetch", b, a3)
		// The old seq is free again.
		c := Record("c", 1, 1)
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Put(c)}))
		RequireActions(t, s, "fetch", c, b, a3)
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		a, b, c := Record("a", 1, 1), Record("b", 2, 1), Record("c", 3, 1)
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Put(a), Put(b), Put(c)}))
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Del("b"), Del("missing"), Del("b")}))
		RequireActions(t, s, "fetch", a, c)
		require.NoError(t, s.ApplyActions("nosuchqueue", []store.ActionMutation{Del("a")}), "delete in an unknown queue")
		RequireActions(t, s, "fetch", a, c)
		// b's seq can be reused, b's id too.
		b2 := Record("b", 9, 4)
		d := Record("d", 2, 1)
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Put(b2), Put(d)}))
		RequireActions(t, s, "fetch", a, d, c, b2)
	})

	t.Run("SameIDTwiceInABatch", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		a1, a2 := Record("a", 1, 1), Record("a", 7, 4)
		b := Record("b", 3, 1)
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Put(a1), Put(b), Put(a2)}))
		RequireActions(t, s, "fetch", b, a2)
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Put(Record("c", 4, 1)), Del("c"), Del("b"), Put(b)}))
		RequireActions(t, s, "fetch", b, a2)
	})

	t.Run("InvalidBatchAppliesNothing", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		a := Record("a", 1, 1)
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Put(a)}))
		bad := map[string][]store.ActionMutation{
			"both":          {Put(Record("x", 5, 1)), {Put: Record("y", 6, 1), Delete: "a"}},
			"neither":       {Put(Record("x", 5, 1)), {}},
			"empty id":      {Put(Record("x", 5, 1)), Put(Record("", 6, 1))},
			"seq taken":     {Put(Record("x", 5, 1)), Del("a"), Put(Record("y", 1, 1))},
			"seq taken old": {Put(Record("x", 5, 1)), Put(Record("y", 1, 1))},
			"seq in batch":  {Put(Record("x", 5, 1)), Put(Record("y", 5, 1))},
		}
		for name, batch := range bad {
			err := s.ApplyActions("fetch", batch)
			if name == "seq taken" {
				// a was deleted first in the same batch: its seq is free.
				require.NoError(t, err, name)
				RequireActions(t, s, "fetch", Record("y", 1, 1), Record("x", 5, 1))
				require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Del("x"), Del("y"), Put(a)}))
				continue
			}
			require.ErrorIs(t, err, store.ErrInvalid, name)
			RequireActions(t, s, "fetch", a)
		}
		require.ErrorIs(t, s.ApplyActions("", []store.ActionMutation{Put(a)}), store.ErrInvalid)
		err := s.LoadActions("", func(*messages.StoredAction) error { return nil })
		require.ErrorIs(t, err, store.ErrInvalid)
	})

	t.Run("QueuesAreIsolated", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		a, b := Record("a", 1, 1), Record("a", 1, 4)
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Put(a)}))
		require.NoError(t, s.ApplyActions("FETCH", []store.ActionMutation{Put(b)}))
		RequireActions(t, s, "fetch", a)
		RequireActions(t, s, "FETCH", b)
		require.NoError(t, s.ApplyActions("FETCH", []store.ActionMutation{Del("a")}))
		RequireActions(t, s, "fetch", a)
		RequireActions(t, s, "FETCH")
		q, err := s.QueueNames()
		require.NoError(t, err)
		require.Equal(t, []string{"FETCH", "fetch"}, q)
	})

	t.Run("NoAliasing", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		a := Record("a", 1, 1)
		want := proto.Clone(a).(*messages.StoredAction)
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Put(a)}))
		a.Status.State = messages.State_STATE_ERROR
		a.Spec.Params[0].Value = "changed"
		RequireActions(t, s, "fetch", want)
		got := Load(t, s, "fetch")
		got[0].Status.Seq = 99
		got[0].Spec.Params[0].Value = "changed"
		RequireActions(t, s, "fetch", want)
	})

	t.Run("LoadCallbackError", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Put(Record("a", 1, 1)), Put(Record("b", 2, 1))}))
		stop := errors.New("stop here")
		calls := 0
		err := s.LoadActions("fetch", func(*messages.StoredAction) error { calls++; return stop })
		require.ErrorIs(t, err, stop)
		require.Equal(t, 1, calls)
	})

	t.Run("DatastoreBasics", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		d := datastore(t, s, "MYTASK")
		v, err := d.Get([]byte("absent"))
		require.NoError(t, err)
		require.Nil(t, v)
		n, err := d.Len()
		require.NoError(t, err)
		require.Zero(t, n)

		put(t, d, "k1", "v1", "k2", "", "k1", "v1b")
		v, err = d.Get([]byte("k1"))
		require.NoError(t, err)
		require.Equal(t, "v1b", string(v))
		v[0] = 'X' // the slice is the caller's
		v, err = d.Get([]byte("k1"))
		require.NoError(t, err)
		require.Equal(t, "v1b", string(v))
		v, err = d.Get([]byte("k2"))
		require.NoError(t, err)
		require.NotNil(t, v, "an empty value is present, not absent")
		require.Empty(t, v)
		n, err = d.Len()
		require.NoError(t, err)
		require.Equal(t, 2, n)

		// The store copies what it is given.
		key, val := []byte("k3"), []byte("v3")
		require.NoError(t, d.Update(func(w store.Writer) error { return w.Put(key, val) }))
		key[0], val[0] = 'X', 'X'
		v, err = d.Get([]byte("k3"))
		require.NoError(t, err)
		require.Equal(t, "v3", string(v))

		require.NoError(t, d.Update(func(w store.Writer) error {
			if err := w.Delete([]byte("k3")); err != nil {
				return err
			}
			return w.Delete([]byte("never-there"))
		}))
		n, err = d.Len()
		require.NoError(t, err)
		require.Equal(t, 2, n)
		require.Equal(t, [][2]string{{"k1", "v1b"}, {"k2", ""}}, Entries(t, d))

		names, err := s.DatastoreNames()
		require.NoError(t, err)
		require.Equal(t, []string{"MYTASK"}, names)
		again := datastore(t, s, "MYTASK")
		require.Equal(t, [][2]string{{"k1", "v1b"}, {"k2", ""}}, Entries(t, again))
	})

	t.Run("DatastoreGetMany", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		d := datastore(t, s, "MYTASK")
		put(t, d, "k1", "v1", "k2", "", "k3", "v3")
		// Deferred writes (still in memory, for a store that defers)
		// over written ones.
		require.NoError(t, store.UpdateDeferred(d, func(w store.Writer) error {
			if err := w.Put([]byte("k3"), []byte("v3b")); err != nil {
				return err
			}
			if err := w.Put([]byte("k4"), []byte("v4")); err != nil {
				return err
			}
			return w.Delete([]byte("k1"))
		}))
		keys := [][]byte{[]byte("k1"), []byte("k2"), []byte("k3"), []byte("absent"), []byte("k4"), []byte("k3")}
		got, err := store.GetMany(d, keys)
		require.NoError(t, err)
		require.Len(t, got, len(keys))
		for i, k := range keys {
			want, err := d.Get(k)
			require.NoError(t, err)
			require.Equal(t, want, got[i], "key %s: as Get", k)
		}
		require.Nil(t, got[0])
		require.NotNil(t, got[1], "an empty value is present, not absent")
		require.Equal(t, "v3b", string(got[2]))
		got[2][0] = 'X' // the slices are the caller's
		require.Equal(t, "v3b", string(got[5]))
		v, err := d.Get([]byte("k3"))
		require.NoError(t, err)
		require.Equal(t, "v3b", string(v))
		got, err = store.GetMany(d, nil)
		require.NoError(t, err)
		require.Empty(t, got)
		_, err = store.GetMany(d, [][]byte{[]byte("k1"), nil})
		require.ErrorIs(t, err, store.ErrInvalid, "an empty key, as Get")
	})

	t.Run("DatastoreUpdateIsAtomic", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		d := datastore(t, s, "t")
		put(t, d, "a", "1")
		boom := errors.New("boom")
		err := d.Update(func(w store.Writer) error {
			require.NoError(t, w.Put([]byte("a"), []byte("2")))
			require.NoError(t, w.Put([]byte("b"), []byte("2")))
			require.NoError(t, w.Delete([]byte("a")))
			v, err := w.Get([]byte("a"))
			require.NoError(t, err)
			require.Nil(t, v, "the writer sees its own delete")
			require.NoError(t, w.Put([]byte("a"), []byte("3")))
			v, err = w.Get([]byte("a"))
			require.NoError(t, err)
			require.Equal(t, "3", string(v), "the writer sees its own put")
			return boom
		})
		require.ErrorIs(t, err, boom)
		require.Equal(t, [][2]string{{"a", "1"}}, Entries(t, d))
		n, err := d.Len()
		require.NoError(t, err)
		require.Equal(t, 1, n)

		// A panic in fn propagates and applies nothing.
		require.Panics(t, func() {
			_ = d.Update(func(w store.Writer) error {
				_ = w.Put([]byte("p"), []byte("p"))
				panic("caller bug")
			})
		})
		require.Equal(t, [][2]string{{"a", "1"}}, Entries(t, d))
		put(t, d, "c", "1") // still usable
		require.Equal(t, [][2]string{{"a", "1"}, {"c", "1"}}, Entries(t, d))

		// A writer kept past its Update is refused.
		var kept store.Writer
		require.NoError(t, d.Update(func(w store.Writer) error { kept = w; return nil }))
		require.ErrorIs(t, kept.Put([]byte("late"), []byte("x")), store.ErrInvalid)
		v, err := d.Get([]byte("late"))
		require.NoError(t, err)
		require.Nil(t, v)
	})

	t.Run("DatastoreInvalidInput", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		_, err := s.Datastore("")
		require.ErrorIs(t, err, store.ErrInvalid)
		d := datastore(t, s, "t")
		_, err = d.Get(nil)
		require.ErrorIs(t, err, store.ErrInvalid)
		_, err = d.Get(make([]byte, store.MaxKeySize+1))
		require.ErrorIs(t, err, store.ErrInvalid)
		err = d.Update(func(w store.Writer) error { return w.Put(nil, []byte("v")) })
		require.ErrorIs(t, err, store.ErrInvalid)
		err = d.Update(func(w store.Writer) error {
			_ = w.Put([]byte("ok"), []byte("v"))
			return w.Put(make([]byte, store.MaxKeySize+1), []byte("v"))
		})
		require.ErrorIs(t, err, store.ErrInvalid)
		require.Empty(t, Entries(t, d))
		// The longest key works.
		long := bytes.Repeat([]byte{'k'}, store.MaxKeySize)
		require.NoError(t, d.Update(func(w store.Writer) error { return w.Put(long, []byte("v")) }))
		v, err := d.Get(long)
		require.NoError(t, err)
		require.Equal(t, "v", string(v))
	})

	t.Run("DatastoreKeyOrder", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		d := datastore(t, s, "t")
		keys := []string{"b", "a\x00", "\xff", "a", "B", "http://x/2", "http://x/10", "\x00"}
		kv := make([]string, 0, 2*len(keys))
		for _, k := range keys {
			kv = append(kv, k, "v"+k)
		}
		put(t, d, kv...)
		slices.Sort(keys) // byte order
		got := Entries(t, d)
		require.Len(t, got, len(keys))
		for i, k := range keys {
			require.Equal(t, [2]string{k, "v" + k}, got[i])
		}
		stop := errors.New("stop")
		calls := 0
		require.ErrorIs(t, d.ForEach(func(k, v []byte) error { calls++; return stop }), stop)
		require.Equal(t, 1, calls)
	})

	t.Run("DatastoreForEachPrefix", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		d, other := datastore(t, s, "t"), datastore(t, s, "u")
		put(t, d, "a", "1", "b:", "2", "b:x", "3", "b:\xff", "4", "b;", "5", "c", "6", "b\xff", "7")
		put(t, other, "b:o", "other")
		under := func(prefix string) [][2]string {
			t.Helper()
			var out [][2]string
			require.NoError(t, store.ForEachPrefix(d, []byte(prefix), func(k, v []byte) error {
				out = append(out, [2]string{string(k), string(v)})
				return nil
			}))
			return out
		}
		require.Equal(t, [][2]string{{"b:", "2"}, {"b:x", "3"}, {"b:\xff", "4"}}, under("b:"))
		require.Equal(t, [][2]string{{"b\xff", "7"}}, under("b\xff"))
		require.Len(t, under(""), 7)
		require.Empty(t, under("z"))
		// A listing after a write shows it, whatever the store caches.
		require.NoError(t, d.Update(func(w store.Writer) error {
			if err := w.Delete([]byte("b:x")); err != nil {
				return err
			}
			return w.Put([]byte("b:a"), []byte("8"))
		}))
		require.Equal(t, [][2]string{{"b:", "2"}, {"b:a", "8"}, {"b:\xff", "4"}}, under("b:"))
		require.NoError(t, store.UpdateBookkeeping(d, func(w store.Writer) error { return w.Put([]byte("b:b"), []byte("9")) }))
		require.Equal(t, [][2]string{{"b:", "2"}, {"b:a", "8"}, {"b:b", "9"}, {"b:\xff", "4"}}, under("b:"))
		require.NoError(t, d.Clear())
		require.Empty(t, under("b:"))
		stop := errors.New("stop")
		put(t, d, "b:1", "1", "b:2", "2")
		calls := 0
		require.ErrorIs(t, store.ForEachPrefix(d, []byte("b:"), func(k, v []byte) error { calls++; return stop }), stop)
		require.Equal(t, 1, calls)

		// More keys under the prefix than one read takes (the bbolt
		// store reads 512 at a time), between keys before and after it,
		// some of them deferred writes.
		var kv []string
		for i := range 1500 {
			kv = append(kv, fmt.Sprintf("m:%04d", i), "v")
		}
		put(t, d, append(kv, "m", "before", "m;", "after", "n", "after")...)
		require.NoError(t, store.UpdateDeferred(d, func(w store.Writer) error {
			if err := w.Delete([]byte("m:0700")); err != nil {
				return err
			}
			return w.Put([]byte("m:0700a"), []byte("deferred"))
		}))
		var got []string
		require.NoError(t, store.ForEachPrefix(d, []byte("m:"), func(k, v []byte) error {
			got = append(got, string(k))
			return nil
		}))
		require.Len(t, got, 1500)
		require.True(t, slices.IsSorted(got))
		require.Equal(t, "m:0000", got[0])
		require.Equal(t, "m:1499", got[1499])
		require.Contains(t, got, "m:0700a")
		require.NotContains(t, got, "m:0700")
	})

	t.Run("DatastoreForEachManyAndWrite", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		d := datastore(t, s, "t")
		const n = 1500
		require.NoError(t, d.Update(func(w store.Writer) error {
			for i := 0; i < n; i++ {
				if err := w.Put(fmt.Appendf(nil, "url-%05d", i), fmt.Appendf(nil, "%d", i)); err != nil {
					return err
				}
			}
			return nil
		}))
		i := 0
		require.NoError(t, d.ForEach(func(k, v []byte) error {
			if bytes.HasPrefix(k, []byte("zz-")) {
				return nil // written during the walk: may or may not be seen
			}
			require.Equal(t, fmt.Sprintf("url-%05d", i), string(k))
			require.Equal(t, fmt.Sprint(i), string(v))
			i++
			if i%100 == 0 { // writing during the walk is allowed
				return d.Update(func(w store.Writer) error { return w.Put(fmt.Appendf(nil, "zz-%d", i), nil) })
			}
			return nil
		}))
		require.Equal(t, n, i)
		l, err := d.Len()
		require.NoError(t, err)
		require.Equal(t, n+n/100, l)
	})

	t.Run("DatastoreClear", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		d, other := datastore(t, s, "t"), datastore(t, s, "u")
		put(t, d, "a", "1", "b", "2")
		put(t, other, "a", "other")
		require.NoError(t, d.Clear())
		require.Empty(t, Entries(t, d))
		n, err := d.Len()
		require.NoError(t, err)
		require.Zero(t, n)
		v, err := d.Get([]byte("a"))
		require.NoError(t, err)
		require.Nil(t, v)
		require.Equal(t, [][2]string{{"a", "other"}}, Entries(t, other))
		names, err := s.DatastoreNames()
		require.NoError(t, err)
		require.Equal(t, []string{"t", "u"}, names, "a cleared datastore remains")
		put(t, d, "c", "3")
		require.Equal(t, [][2]string{{"c", "3"}}, Entries(t, d))
		n, err = d.Len()
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.NoError(t, d.Clear())
		require.NoError(t, d.Clear(), "clearing an empty datastore")
	})

	t.Run("ManyDatastoresIsolated", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		const n = 120
		for i := 0; i < n; i++ {
			put(t, datastore(t, s, fmt.Sprintf("task%03d", i)), "shared-key", fmt.Sprint(i), fmt.Sprintf("own-%d", i), "x")
		}
		names, err := s.DatastoreNames()
		require.NoError(t, err)
		require.Len(t, names, n)
		require.True(t, slices.IsSorted(names))
		for i := 0; i < n; i++ {
			d := datastore(t, s, fmt.Sprintf("task%03d", i))
			v, err := d.Get([]byte("shared-key"))
			require.NoError(t, err)
			require.Equal(t, fmt.Sprint(i), string(v))
			l, err := d.Len()
			require.NoError(t, err)
			require.Equal(t, 2, l)
		}
		// Task names are exact: no case folding.
		d := datastore(t, s, "TASK000")
		require.Empty(t, Entries(t, d))
	})

	t.Run("LargeValues", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		d := datastore(t, s, "t")
		big := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16) // 4 MiB
		big[12345] = 'Z'
		require.NoError(t, d.Update(func(w store.Writer) error { return w.Put([]byte("big"), big) }))
		v, err := d.Get([]byte("big"))
		require.NoError(t, err)
		require.True(t, bytes.Equal(big, v))

		a := Record("a", 1, 1)
		for i := 0; i < 2000; i++ {
			a.Status.Results = append(a.Status.Results, &messages.Element{Name: "identifier", Text: fmt.Sprintf("http://example.com/page/%06d", i)})
		}
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Put(a)}))
		RequireActions(t, s, "fetch", a)
	})

	t.Run("Closed", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		d := datastore(t, s, "t")
		put(t, d, "a", "1")
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Put(Record("a", 1, 1))}))
		require.NoError(t, s.Close())
		require.NoError(t, s.Close(), "second Close")
		noop := func(*messages.StoredAction) error { return nil }
		require.ErrorIs(t, s.LoadActions("fetch", noop), store.ErrClosed)
		require.ErrorIs(t, s.ApplyActions("fetch", []store.ActionMutation{Del("a")}), store.ErrClosed)
		require.ErrorIs(t, s.ApplyActions("fetch", nil), store.ErrClosed)
		_, err := s.QueueNames()
		require.ErrorIs(t, err, store.ErrClosed)
		_, err = s.Datastore("t")
		require.ErrorIs(t, err, store.ErrClosed)
		_, err = s.DatastoreNames()
		require.ErrorIs(t, err, store.ErrClosed)
		_, err = d.Get([]byte("a"))
		require.ErrorIs(t, err, store.ErrClosed)
		require.ErrorIs(t, d.Update(func(store.Writer) error { return nil }), store.ErrClosed)
		require.ErrorIs(t, d.ForEach(func(k, v []byte) error { return nil }), store.ErrClosed)
		_, err = d.Len()
		require.ErrorIs(t, err, store.ErrClosed)
		require.ErrorIs(t, d.Clear(), store.ErrClosed)
		require.NotEmpty(t, s.Info().Engine)
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		var wg sync.WaitGroup
		const tasks, updates = 4, 40
		errs := make(chan error, tasks+2)
		for i := 0; i < tasks; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, err := s.Datastore(fmt.Sprintf("t%d", i))
				if err != nil {
					errs <- err
					return
				}
				for j := 0; j < updates; j++ {
					if err := d.Update(func(w store.Writer) error {
						return w.Put(fmt.Appendf(nil, "k%03d", j), []byte("v"))
					}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Add(2)
		go func() { // the single action writer
			defer wg.Done()
			for j := 0; j < updates; j++ {
				if err := s.ApplyActions("fetch", []store.ActionMutation{Put(Record(fmt.Sprint(j), uint64(j), 1))}); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() { // a reader
			defer wg.Done()
			for j := 0; j < updates; j++ {
				last := int64(-1)
				if err := s.LoadActions("fetch", func(a *messages.StoredAction) error {
					if int64(a.Status.Seq) <= last {
						return fmt.Errorf("out of order: %d after %d", a.Status.Seq, last)
					}
					last = int64(a.Status.Seq)
					return nil
				}); err != nil {
					errs <- err
					return
				}
			}
		}()
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Len(t, Load(t, s, "fetch"), updates)
		for i := 0; i < tasks; i++ {
			n, err := datastore(t, s, fmt.Sprintf("t%d", i)).Len()
			require.NoError(t, err)
			require.Equal(t, updates, n)
		}
	})

	t.Run("Reopen", func(t *testing.T) {
		t.Parallel()
		if reopen == nil {
			t.Skip("this store keeps nothing across a restart")
		}
		s := open(t)
		a, b := Record("a", 2, 1), Record("b", 1, 4)
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Put(a), Put(b), Put(Record("c", 3, 1))}))
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Del("c")}))
		require.NoError(t, s.ApplyActions("other", []store.ActionMutation{Put(a)}))
		put(t, datastore(t, s, "t1"), "k", "v", "k2", "v2")
		put(t, datastore(t, s, "t2"), "k", "w")
		require.NoError(t, datastore(t, s, "t2").Clear())
		datastore(t, s, "t3")

		s = reopen(t, s)
		t.Cleanup(func() { _ = s.Close() })
		RequireActions(t, s, "fetch", b, a)
		RequireActions(t, s, "other", a)
		q, err := s.QueueNames()
		require.NoError(t, err)
		require.Equal(t, []string{"fetch", "other"}, q)
		names, err := s.DatastoreNames()
		require.NoError(t, err)
		require.Equal(t, []string{"t1", "t2", "t3"}, names)
		d := datastore(t, s, "t1")
		require.Equal(t, [][2]string{{"k", "v"}, {"k2", "v2"}}, Entries(t, d))
		n, err := d.Len()
		require.NoError(t, err)
		require.Equal(t, 2, n)
		require.Empty(t, Entries(t, datastore(t, s, "t2")))
		// And it is writable.
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Put(Record("c", 3, 1))}))
		RequireActions(t, s, "fetch", b, a, Record("c", 3, 1))
	})
}
