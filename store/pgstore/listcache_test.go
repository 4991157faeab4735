package pgstore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// listing returns ds's keys under prefix (store.ForEachPrefix) as k=v.
func listing(t *testing.T, ds store.Datastore, prefix string) string {
	t.Helper()
	var out []string
	require.NoError(t, store.ForEachPrefix(ds, []byte(prefix), func(k, v []byte) error {
		out = append(out, string(k)+"="+string(v))
		return nil
	}))
	return strings.Join(out, " ")
}

// listCounts returns the listings s served from its cache and read.
func (s *Store) listCounts() (hits, fills uint64) {
	s.lc.mu.Lock()
	defer s.lc.mu.Unlock()
	return s.lc.hits, s.lc.fills
}

// listEntries returns the number of listings s holds.
func (s *Store) listEntries() int {
	s.lc.mu.Lock()
	defer s.lc.mu.Unlock()
	return len(s.lc.entries)
}

// handOut submits an action on s and claims it there (Claim), or with a
// group commit (Commit) when commit is set: what gives a node an action
// to run.
func handOut(t *testing.T, s *Store, node, id string, commit bool) {
	t.Helper()
	if commit {
		r, err := s.Commit(ctx, "fetch", node, node+":1", Group{Submits: []NewAction{newAction(id, 0)}, MaxWaiting: 100, Claim: 1})
		require.NoError(t, err)
		require.Len(t, r.Claimed, 1)
		return
	}
	_, err := s.Submit(ctx, "fetch", node, node+":1", []NewAction{newAction(id, 0)}, 100)
	require.NoError(t, err)
	got, err := s.Claim(ctx, "fetch", node, node+":1", 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
}

// A node serves a listing from its cache until it is given an action
// (claim, group commit with a claim), which reads the versions of the
// cached tasks: a write by another node made before the action was
// submitted is then seen; a merge (every action's end) does not cost the
// cache its entry.
func TestListCacheInvalidatedAcrossNodes(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a", "b")
	a, b := ns[0], ns[1]
	da, db := dsOf(t, a, "T"), dsOf(t, b, "T")
	other := dsOf(t, a, "U")
	require.NoError(t, db.Update(put("u:1", "one")))

	require.Equal(t, "u:1=one", listing(t, da, "u:"))
	require.Equal(t, "", listing(t, other, "u:"))
	require.Equal(t, "u:1=one", listing(t, da, "u:"))
	hits, fills := a.listCounts()
	require.Equal(t, [2]uint64{1, 2}, [2]uint64{hits, fills}, "the second listing of T from the cache")

	require.NoError(t, db.Update(put("u:2", "two")))
	require.Equal(t, "u:1=one", listing(t, da, "u:"), "no action given to a since: its cache is not checked (the listing is one a's actions may see)")
	handOut(t, a, "a", "x1", false)
	require.Equal(t, "u:1=one u:2=two", listing(t, da, "u:"), "the claim found T's newer version")
	require.Equal(t, "", listing(t, other, "u:"))
	hits, fills = a.listCounts()
	require.Equal(t, [2]uint64{3, 3}, [2]uint64{hits, fills}, "only T read again")

	// The group commit's claim reads the versions as well.
	require.NoError(t, db.Update(func(w store.Writer) error { return w.Delete([]byte("u:1")) }))
	handOut(t, a, "a", "x2", true)
	require.Equal(t, "u:2=two", listing(t, da, "u:"))

	// Merges (bookkeeping, outside the listed prefix) leave the version
	// alone: b's merges, committed, and a's claim keep a's entry; a's
	// reads of the merged record see them.
	merge(t, db, "m:task", call("B1", 1))
	require.NoError(t, b.flushDeferred())
	merge(t, da, "m:task", call("A1", 2))
	handOut(t, a, "a", "x3", true) // carries a's merge too
	_, before := a.listCounts()
	require.Equal(t, "u:2=two", listing(t, da, "u:"))
	_, after := a.listCounts()
	require.Equal(t, before, after, "served from the cache")
	require.JSONEq(t, `{"calls":2,"action":"A1","last":2}`, getS(t, da, "m:task"))

	// A deferred put by b (bookkeeping under the prefix) and a Clear.
	require.NoError(t, db.(store.Bookkeeper).UpdateBookkeeping(put("u:3", "three")))
	require.NoError(t, b.flushDeferred())
	handOut(t, a, "a", "x4", false)
	require.Equal(t, "u:2=two u:3=three", listing(t, da, "u:"))
	require.NoError(t, db.Clear())
	handOut(t, a, "a", "x5", true)
	require.Equal(t, "", listing(t, da, "u:"))

	// A claim that gives nothing keeps what is current.
	_, before = a.listCounts()
	got, err := a.Claim(ctx, "fetch", "a", "a:1", 1)
	require.NoError(t, err)
	require.Empty(t, got)
	require.Equal(t, "", listing(t, da, "u:"))
	_, after = a.listCounts()
	require.Equal(t, before, after)
}

// A node's own writes are in its next listing at once, without a claim:
// direct writes, deferred ones waiting (the overlay) and committed.
func TestListCacheOwnWrites(t *testing.T) {
	t.Parallel()
	a := nodes(t, "a")[0]
	da := dsOf(t, a, "T")
	require.Equal(t, "", listing(t, da, "u:"))
	require.NoError(t, da.Update(put("u:1", "one")))
	require.Equal(t, "u:1=one", listing(t, da, "u:"))
	require.NoError(t, da.(store.Bookkeeper).UpdateBookkeeping(put("u:0", "zero")))
	require.NoError(t, da.(store.Bookkeeper).UpdateBookkeeping(func(w store.Writer) error { return w.Delete([]byte("u:1")) }))
	_, before := a.listCounts()
	require.Equal(t, "u:0=zero", listing(t, da, "u:"), "the overlay over the cached listing")
	_, after := a.listCounts()
	require.Equal(t, before, after)
	require.NoError(t, a.flushDeferred())
	require.Equal(t, "u:0=zero", listing(t, da, "u:"))
	_, after = a.listCounts()
	require.Equal(t, before+1, after, "committed deferred writes dropped the entry")
	require.NoError(t, da.Clear())
	require.Equal(t, "", listing(t, da, "u:"))
	require.NoError(t, da.Update(put("v:1", "other prefix")))
	require.Equal(t, "", listing(t, da, "u:"))
	require.Equal(t, "v:1=other prefix", listing(t, da, "v:"))
}

// Keys under a listed prefix cannot be merged (a merge does not raise the
// version another node's cache checks).
func TestListCacheRefusesMergesUnderAListedPrefix(t *testing.T) {
	t.Parallel()
	a := nodes(t, "a")[0]
	da := dsOf(t, a, "T")
	merge(t, da, "w:1", call("A", 1)) // before any listing of w:
	require.ErrorIs(t, store.ForEachPrefix(da, []byte("w:"), func(k, v []byte) error { return nil }), store.ErrInvalid)
	require.Equal(t, "", listing(t, da, "u:"))
	err := da.(store.MergeBookkeeper).MergeBookkeeping([]byte("u:1"), call("A", 1))
	require.ErrorIs(t, err, store.ErrInvalid)
	merge(t, da, "m:task", call("A", 1))
}

// A take-over gives actions without reading the versions: no entry is
// served until a claim checks it or a new fill replaces it. A fill is
// valid for the hand-outs done before it started; one in flight while
// this process wrote is not kept.
func TestListCacheTakeOverAndFillsInFlight(t *testing.T) {
	t.Parallel()
	a := nodes(t, "a")[0]
	da := dsOf(t, a, "T")
	require.Equal(t, "", listing(t, da, "u:"))
	require.Equal(t, "", listing(t, da, "u:"))
	hits, fills := a.listCounts()
	require.Equal(t, [2]uint64{1, 1}, [2]uint64{hits, fills})
	_, err := a.Adopt(ctx, "fetch", "a", "a:1", nil, 0, func(*messages.StoredAction) {})
	require.NoError(t, err)
	require.Equal(t, "", listing(t, da, "u:"))
	hits, fills = a.listCounts()
	require.Equal(t, [2]uint64{1, 2}, [2]uint64{hits, fills}, "read again after the take-over")
	_, err = a.Reown(ctx, "fetch", "a", "a:1", []string{"none"}, []int64{1}, func(*messages.StoredAction) {})
	require.NoError(t, err)
	got, err := a.Claim(ctx, "fetch", "a", "a:1", 1) // gives nothing, checks T
	require.NoError(t, err)
	require.Empty(t, got)
	require.Equal(t, "", listing(t, da, "u:"))
	hits, fills = a.listCounts()
	require.Equal(t, [2]uint64{2, 2}, [2]uint64{hits, fills}, "served once a claim checked it")

	c := &a.lc
	valid := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		e := c.entries[listKey{"T", "u:"}]
		return e != nil && e.valid >= c.done
	}
	f := c.begin()
	c.apply(nil, true) // a claim gave actions while the fill was in flight
	c.keep(f, "T", []byte("u:"), 0, nil)
	require.Equal(t, 1, a.listEntries())
	require.False(t, valid(), "not valid for the claim done meanwhile")
	chk := c.check()
	chk.now = map[string]int64{"T": 0}
	c.apply(chk, true)
	require.True(t, valid(), "checked by the next claim: valid for it too")
	chk = c.check()
	c.apply(nil, true) // another claim completes first
	chk.now = map[string]int64{"T": 0}
	c.apply(chk, true)
	require.False(t, valid(), "checked before the other claim was done")
	chk = c.check()
	chk.now = map[string]int64{"T": 1}
	c.apply(chk, false)
	require.Zero(t, a.listEntries(), "T is newer")

	f = c.begin()
	c.invalidate("other")
	c.keep(f, "T", []byte("u:"), 0, nil)
	require.Zero(t, a.listEntries(), "a write meanwhile")
	f = c.begin()
	c.keep(f, "T", []byte("u:"), 0, nil)
	require.True(t, valid())
}

// The cache's memory is bounded: a listing of more than listMaxKeys keys
// or a quarter of the bytes is not kept, and the entries stay within
// Config.ListCacheBytes.
func TestListCacheBounded(t *testing.T) {
	t.Parallel()
	url := server.DatabaseT(t)
	a, err := Open(ctx, Config{URL: url, Node: "a", ListCacheBytes: 64 << 10})
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	require.NoError(t, a.RegisterNode(ctx, "a", "a:1", 4))

	big := dsOf(t, a, "BIG")
	require.NoError(t, big.Update(func(w store.Writer) error {
		for i := 0; i <= listMaxKeys; i++ {
			if err := w.Put(fmt.Appendf(nil, "u:%05d", i), []byte("v")); err != nil {
				return err
			}
		}
		return nil
	}))
	n := 0
	require.NoError(t, store.ForEachPrefix(big, []byte("u:"), func(k, v []byte) error {
		require.Equal(t, fmt.Sprintf("u:%05d", n), string(k))
		n++
		return nil
	}))
	require.Equal(t, listMaxKeys+1, n)
	require.Zero(t, a.listEntries(), "too many keys")

	wide := dsOf(t, a, "WIDE")
	require.NoError(t, wide.Update(put("u:1", strings.Repeat("x", 20<<10))))
	require.Len(t, listing(t, wide, "u:"), 4+20<<10)
	require.Zero(t, a.listEntries(), "over a quarter of the bytes")

	for i := range 40 {
		ds := dsOf(t, a, fmt.Sprintf("T%02d", i))
		require.NoError(t, ds.Update(put("u:1", strings.Repeat("y", 4<<10))))
		require.Equal(t, "u:1="+strings.Repeat("y", 4<<10), listing(t, ds, "u:"))
		a.lc.mu.Lock()
		size := a.lc.size
		a.lc.mu.Unlock()
		require.LessOrEqual(t, size, 64<<10)
	}
	require.Greater(t, a.listEntries(), 0)
	require.Less(t, a.listEntries(), 40)

	// Outside a cluster there is no cache.
	s, err := Open(ctx, Config{URL: url})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	require.Equal(t, "u:1="+strings.Repeat("y", 4<<10), listing(t, dsOf(t, s, "T00"), "u:"))
	require.Zero(t, s.listEntries())
}

// Under -race: listings, writes of both nodes and claims at once; once
// they are done, a claim makes every listing current.
func TestListCacheConcurrent(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a", "b")
	a, b := ns[0], ns[1]
	const tasks, rounds = 3, 30
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i, s := range ns {
		wg.Add(2)
		go func() { // writes
			defer wg.Done()
			for r := range rounds {
				ds, err := s.Datastore(fmt.Sprintf("T%d", r%tasks))
				if err == nil {
					err = ds.Update(put(fmt.Sprintf("u:%d-%d", i, r), "v"))
				}
				if err == nil && r%3 == 0 {
					err = ds.(store.Bookkeeper).UpdateBookkeeping(put(fmt.Sprintf("u:%d-%d-d", i, r), "d"))
				}
				if err == nil && r%2 == 0 {
					err = ds.(store.MergeBookkeeper).MergeBookkeeping([]byte("m:task"), call("X", int64(r)))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() { // listings and claims
			defer wg.Done()
			node := []string{"a", "b"}[i]
			for r := range rounds {
				ds, err := s.Datastore(fmt.Sprintf("T%d", r%tasks))
				if err == nil {
					err = ds.(store.PrefixLister).ForEachPrefix([]byte("u:"), func(k, v []byte) error { return nil })
				}
				if err == nil && r%4 == 0 {
					_, err = s.Commit(context.Background(), "fetch", node, node+":1",
						Group{Submits: []NewAction{newAction(fmt.Sprintf("%s-%d", node, r), 0)}, MaxWaiting: 1000, Claim: 1})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, a.flushDeferred())
	require.NoError(t, b.flushDeferred())
	want := map[int]int{0: 40, 1: 20, 2: 20} // per task: both nodes' direct and deferred puts
	for i, s := range ns {
		node := []string{"a", "b"}[i]
		handOut(t, s, node, "final-"+node, false)
		for i := range tasks {
			ds := dsOf(t, s, fmt.Sprintf("T%d", i))
			var all []string
			require.NoError(t, ds.ForEach(func(k, v []byte) error {
				if strings.HasPrefix(string(k), "u:") {
					all = append(all, string(k)+"="+string(v))
				}
				return nil
			}))
			require.Len(t, all, want[i], "every write of both nodes")
			require.Equal(t, strings.Join(all, " "), listing(t, ds, "u:"))
		}
	}
}

// A database of layout version 1 (no datastore versions) is upgraded on
// open, its contents kept; one of a newer layout is refused.
func TestSchemaUpgradeFromVersion1(t *testing.T) {
	t.Parallel()
	url := server.DatabaseT(t)
	s, err := Open(ctx, Config{URL: url})
	require.NoError(t, err)
	require.NoError(t, dsOf(t, s, "T").Update(put("u:1", "one")))
	_, err = s.Pool().Exec(ctx, `ALTER TABLE connector_datastores DROP COLUMN version`)
	require.NoError(t, err)
	_, err = s.Pool().Exec(ctx, `UPDATE connector_schema SET version = 1`)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s, err = Open(ctx, Config{URL: url, Node: "a"})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.RegisterNode(ctx, "a", "a:1", 4))
	var layout int
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT version FROM connector_schema`).Scan(&layout))
	require.Equal(t, schemaVersion, layout)
	ds := dsOf(t, s, "T")
	require.Equal(t, "u:1=one", listing(t, ds, "u:"))
	require.NoError(t, ds.Update(put("u:2", "two")))
	var v int64
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT version FROM connector_datastores WHERE task = 'T'`).Scan(&v))
	require.EqualValues(t, 1, v, "a write raises the version")
	require.Equal(t, "u:1=one u:2=two", listing(t, ds, "u:"))

	_, err = s.Pool().Exec(ctx, `UPDATE connector_schema SET version = $1`, schemaVersion+1)
	require.NoError(t, err)
	_, err = Open(ctx, Config{URL: url})
	require.ErrorIs(t, err, store.ErrVersion)
}

// A node of an older layout's build that is running when a newer node
// upgrades the tables does not read the layout again: it would go on
// writing as its build does (layout 1: datastores without raising their
// versions, so the newer nodes' listings would miss its writes). The
// upgrade declares every node registered before it dead: its writes and
// claims are fenced from then on, and its actions are taken over.
func TestSchemaUpgradeFencesNodesOfTheOlderLayout(t *testing.T) {
	t.Parallel()
	url := server.DatabaseT(t)
	old, err := Open(ctx, Config{URL: url, Node: "old"})
	require.NoError(t, err)
	defer old.Close()
	require.NoError(t, old.RegisterNode(ctx, "old", "old:1", 4))
	_, err = old.Submit(ctx, "fetch", "old", "old:1", []NewAction{newAction("x", 0), newAction("y", 0)}, 100)
	require.NoError(t, err)
	got, err := old.Claim(ctx, "fetch", "old", "old:1", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"x"}, claimIDs(got))
	require.NoError(t, dsOf(t, old, "T").Update(put("u:1", "one")))
	// The tables as a layout-1 build made them.
	_, err = old.Pool().Exec(ctx, `ALTER TABLE connector_datastores DROP COLUMN version`)
	require.NoError(t, err)
	_, err = old.Pool().Exec(ctx, `UPDATE connector_schema SET version = 1`)
	require.NoError(t, err)

	// A node of this build upgrades them while old runs.
	ns := nodesAt(t, url, "new")
	n := ns[0]

	err = dsOf(t, old, "T").Update(put("u:2", "two"))
	require.ErrorIs(t, err, ErrFenced, "old's datastore write after the upgrade")
	done := got[0].Record
	done.Status.State = messages.State_STATE_FINISHED
	_, err = old.WriteOwned(ctx, "fetch", "old", []OwnedWrite{{Epoch: got[0].Epoch, Record: done, Release: true}})
	require.ErrorIs(t, err, ErrFenced, "old's group commit after the upgrade")
	_, err = old.Claim(ctx, "fetch", "old", "old:1", 1)
	require.ErrorIs(t, err, ErrFenced, "old's claim after the upgrade")

	ds := dsOf(t, n, "T")
	require.Equal(t, "u:1=one", listing(t, ds, "u:"), "nothing of old's after the upgrade")
	require.NoError(t, ds.Update(put("u:3", "three")))
	orphans, _, err := n.Orphaned(ctx, "fetch", []string{"old", "new"}, 0)
	require.NoError(t, err)
	require.Empty(t, orphans, "old is still a member until it stops")
	orphans, _, err = n.Orphaned(ctx, "fetch", []string{"new"}, 0)
	require.NoError(t, err)
	require.Equal(t, []string{"old"}, orphans, "old's actions, once it has left")
	adopted, err := n.Adopt(ctx, "fetch", "new", "new:1", orphans, 0, func(a *messages.StoredAction) {
		a.Status.Running, a.Status.State = false, messages.State_STATE_QUEUED
	})
	require.NoError(t, err)
	require.Len(t, adopted, 2)
}

// A database set up by an earlier build, without the index of waiting
// actions and the owner's write function (pgcpu19), gets both when a node
// of this build opens it; its actions are kept and the owner's writes,
// fencing and releases work on it.
func TestOpenAddsWaitingIndexAndWriteFunction(t *testing.T) {
	t.Parallel()
	url := server.DatabaseT(t)
	s, err := Open(ctx, Config{URL: url, Node: "a"})
	require.NoError(t, err)
	require.NoError(t, s.RegisterNode(ctx, "a", "a:1", 4))
	x := newAction("x", 0)
	x.Exclusive = []string{"T"}
	_, err = s.Submit(ctx, "fetch", "a", "a:1", []NewAction{x, newAction("y", 0)}, 100)
	require.NoError(t, err)
	_, err = s.Pool().Exec(ctx, `DROP INDEX connector_actions_waiting`)
	require.NoError(t, err)
	_, err = s.Pool().Exec(ctx, `DROP FUNCTION connector_write_owned`)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s, err = Open(ctx, Config{URL: url, Node: "a"})
	require.NoError(t, err)
	defer s.Close()
	var def string
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT indexdef FROM pg_indexes WHERE indexname = 'connector_actions_waiting'`).Scan(&def))
	require.Contains(t, def, "WHERE ((state = ANY")
	var fn int
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_proc WHERE proname = 'connector_write_owned'`).Scan(&fn))
	require.Equal(t, 1, fn)

	got, err := s.Claim(ctx, "fetch", "a", "a:1", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"x"}, claimIDs(got))
	done := got[0].Record
	done.Status.State = messages.State_STATE_FINISHED
	fenced, err := s.WriteOwned(ctx, "fetch", "a", []OwnedWrite{{Epoch: got[0].Epoch, Record: done, Release: true}, {Epoch: 7, Record: newAction("y", 0).Record}})
	require.NoError(t, err)
	require.Equal(t, []string{"y"}, fenced)
	r, _, err := s.Action(ctx, "fetch", "x")
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_FINISHED, r.Record.Status.State)
	var held int
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM connector_task_holds`).Scan(&held))
	require.Zero(t, held, "x's release freed T")
	seqs, err := s.Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction("z1", 0), newAction("z2", 0)}, 2)
	require.NoError(t, err)
	require.NotZero(t, seqs[0], "y and z1 wait")
	require.Zero(t, seqs[1])
}

// newerUpgrade does to the tables at url what a node of a newer build
// (layout schemaVersion+1) does as it opens them: it raises the layout
// and declares every node registered before it dead (migrate).
func newerUpgrade(t *testing.T, s *Store) {
	t.Helper()
	_, err := s.Pool().Exec(ctx, `UPDATE connector_schema SET version = $1`, schemaVersion+1)
	require.NoError(t, err)
	_, err = s.Pool().Exec(ctx, `UPDATE connector_nodes SET dead = true WHERE NOT dead`)
	require.NoError(t, err)
}

// A node that opened the tables just before a node of a newer build
// upgraded them, and checks its key and registers just after, is not
// among the nodes the upgrade declared dead: it registered alive, and went
// on claiming and writing as its build does, over the upgraded tables.
// Its key check and its registration read the layout (after the upgrade's
// commit, or the upgrade waits for theirs and then declares it dead): it
// is refused (store.ErrVersion) and never becomes a live member.
func TestNodeOpenedBeforeAnUpgradeIsRefusedWhenItRegistersAfter(t *testing.T) {
	t.Parallel()
	url := server.DatabaseT(t)
	late, err := Open(ctx, Config{URL: url, Node: "late"})
	require.NoError(t, err)
	defer late.Close()
	ns := nodesAt(t, url, "first")
	_, err = ns[0].Submit(ctx, "fetch", "first", "first:1", []NewAction{newAction("x", 0)}, 100)
	require.NoError(t, err)

	newerUpgrade(t, ns[0])

	_, err = late.CheckKey(ctx, "late", "late:1", "key", nil)
	require.ErrorIs(t, err, store.ErrVersion, "the key check after the upgrade")
	err = late.RegisterNode(ctx, "late", "late:1", 4)
	require.ErrorIs(t, err, store.ErrVersion, "the registration after the upgrade")
	_, err = late.Claim(ctx, "fetch", "late", "late:1", 1)
	require.ErrorIs(t, err, ErrFenced, "a claim of the node refused")
	var n int
	require.NoError(t, late.Pool().QueryRow(ctx, `SELECT count(*) FROM connector_nodes WHERE id = 'late' AND NOT dead`).Scan(&n))
	require.Zero(t, n, "the refused node is not a live member")

	// An upgrade under way (not committed yet: it has raised the layout
	// and declared the nodes it sees dead) when a node checks its key:
	// the check waits for it, then refuses. (It committed at once, alive,
	// a node the upgrade had not seen.)
	url = server.DatabaseT(t)
	late2, err := Open(ctx, Config{URL: url, Node: "late2"})
	require.NoError(t, err)
	defer late2.Close()
	up, err := late2.Pool().Begin(ctx)
	require.NoError(t, err)
	defer up.Rollback(ctx)
	_, err = up.Exec(ctx, `UPDATE connector_schema SET version = $1`, schemaVersion+1)
	require.NoError(t, err)
	_, err = up.Exec(ctx, `UPDATE connector_nodes SET dead = true WHERE NOT dead`)
	require.NoError(t, err)
	checked := make(chan error, 1)
	go func() {
		_, err := late2.CheckKey(ctx, "late2", "late2:1", "key", nil)
		checked <- err
	}()
	testwait.For(t, 20*time.Second, func() bool {
		var on bool
		require.NoError(t, late2.Pool().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock')
			OR EXISTS (SELECT 1 FROM connector_nodes WHERE id = 'late2')`).Scan(&on))
		return on
	}, "late2's key check waiting for the upgrade, or done")
	require.NoError(t, up.Commit(ctx))
	err = testwait.Recv(t, checked, 20*time.Second, "late2's key check")
	require.ErrorIs(t, err, store.ErrVersion, "the key check that came during the upgrade")
	require.NoError(t, late2.Pool().QueryRow(ctx, `SELECT count(*) FROM connector_nodes WHERE id = 'late2' AND NOT dead`).Scan(&n))
	require.Zero(t, n, "the refused node is not a live member")
}
