package httpfetch

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/pgstore"
)

// In a cluster, two nodes write one task's meta: a Synchronize starting on
// node A numbers its run with a durable Update, while an Identifiers
// ending on node B records itself deferred (in B's overlay, committed with
// B's next group commit). B's deferred write read the meta before A's run
// started and commits after it: the run number must survive that, or the
// next run reuses it and its deletion pass takes the records of the
// earlier run of that number for records it reached.
func TestRunNumberSurvivesAnotherNodesDeferredMeta(t *testing.T) {
	srv := pgtest.StartT(t, pgtest.Options{Dir: t.TempDir()})
	url := srv.DatabaseT(t)
	open := func() *pgstore.Store {
		// A long DeferInterval: B's deferred write is committed when the
		// test says (Close), as a group commit would, not by the timer.
		s, err := pgstore.Open(context.Background(), pgstore.Config{URL: url, DeferInterval: time.Hour})
		require.NoError(t, err)
		return s
	}
	nodeA, nodeB := open(), open()
	defer func() { require.NoError(t, nodeA.Close()) }()
	dsOf := func(s store.Store) store.Datastore {
		ds, err := s.Datastore("SITE")
		require.NoError(t, err)
		return ds
	}
	dsA, dsB := dsOf(nodeA), dsOf(nodeB)
	r := &Repository{now: time.Now, log: quietLogger()}

	run := func(ds store.Datastore) uint64 {
		t.Helper()
		m, end, err := r.begin(ds, fetch.ActionSynchronize, true)
		require.NoError(t, err)
		end()
		return m.Runs
	}
	require.Equal(t, uint64(1), run(dsA))

	// B: an Identifiers runs and ends; its record waits in B's overlay.
	_, end, err := r.begin(dsB, fetch.ActionIdentifiers, false)
	require.NoError(t, err)
	end()
	// A: a Synchronize starts meanwhile: run 2, on disk before it crawls.
	require.Equal(t, uint64(2), run(dsA))
	// B's group commit carries its deferred record.
	require.NoError(t, nodeB.Close())

	// The next run, on a node that holds no deferred write of the task
	// (A's overlay would still hide B's write from A), is run 3.
	nodeC := open()
	defer func() { require.NoError(t, nodeC.Close()) }()
	dsC := dsOf(nodeC)
	require.Equal(t, uint64(3), run(dsC), "a run number was reused")
	m, err := readMeta(dsC)
	require.NoError(t, err)
	// B's call was merged into the record as it was when B committed
	// (store.MergeBookkeeper), not written back as B had read it: every
	// node's calls count (A's two runs, B's Identifiers, C's run).
	require.Equal(t, uint64(4), m.Calls, "calls of every node")
	require.Equal(t, fetch.ActionSynchronize, m.Action)
}

// metaChange's merge (a cluster's store applies it as it commits) makes
// the same record as its apply (a local store's read, change, write), so
// its names are taskMeta's JSON names.
func TestMetaChangeMergeIsApply(t *testing.T) {
	old := &taskMeta{Runs: 5, Calls: 9, Action: "SYNCHRONIZE", LastStartMs: 100, LastFinishMs: 200}
	for _, c := range []metaChange{
		{calls: 1, action: fetch.ActionIdentifiers, startMs: 300, finishMs: 301},
		{finishMs: 400},
		{},
	} {
		b, err := json.Marshal(old)
		require.NoError(t, err)
		var merged taskMeta
		require.NoError(t, json.Unmarshal(c.merge().Apply(b), &merged))
		want := *old
		c.apply(&want)
		require.Equal(t, want, merged, "%+v", c)
	}
}

// A datastore written before the run number had a key of its own keeps
// its run numbers: the next run follows the one in the old combined
// record, and a stale copy there never lowers the one under runKey.
func TestRunNumberFromTheOldMetaRecord(t *testing.T) {
	st, err := store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	defer func() { require.NoError(t, st.Close()) }()
	ds, err := st.Datastore("SITE")
	require.NoError(t, err)
	require.NoError(t, ds.Update(func(w store.Writer) error {
		return w.Put([]byte(metaKey), []byte(`{"runs":7,"calls":9,"action":"SYNCHRONIZE"}`))
	}))
	r := &Repository{now: time.Now, log: quietLogger()}
	m, end, err := r.begin(ds, fetch.ActionSynchronize, true)
	require.NoError(t, err)
	end()
	require.Equal(t, uint64(8), m.Runs)
	require.Equal(t, uint64(10), m.Calls)
	v, err := ds.Get([]byte(runKey))
	require.NoError(t, err)
	require.JSONEq(t, `{"runs":8}`, string(v))

	// A deferred write that read the record before run 8 writes it back.
	require.NoError(t, ds.Update(func(w store.Writer) error {
		return w.Put([]byte(metaKey), []byte(`{"runs":7,"calls":10}`))
	}))
	m, end, err = r.begin(ds, fetch.ActionSynchronize, true)
	require.NoError(t, err)
	end()
	require.Equal(t, uint64(9), m.Runs)
}

// In a cluster the Identifiers listing (forEachRecord) is served from the
// node's cache (store.ForEachPrefix) while no node has written the task's
// pages: an action's end (its merge into the meta record, which is not a
// page) keeps it, a page another node crawled is in the listing of the
// next action the node is given (its claim reads the task's version).
func TestIdentifiersListingAcrossNodes(t *testing.T) {
	srv := pgtest.StartT(t, pgtest.Options{Dir: t.TempDir()})
	url := srv.DatabaseT(t)
	ctx := context.Background()
	open := func(node string) (*pgstore.Store, store.Datastore) {
		s, err := pgstore.Open(ctx, pgstore.Config{URL: url, Node: node})
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		require.NoError(t, s.RegisterNode(ctx, node, node+":1", 4))
		ds, err := s.Datastore("SITE")
		require.NoError(t, err)
		return s, ds
	}
	nodeA, dsA := open("a")
	_, dsB := open("b")
	r := &Repository{now: time.Now, log: quietLogger()}
	list := func(ds store.Datastore) []string {
		t.Helper()
		var out []string
		require.NoError(t, forEachRecord(ds, func(u string, rec *record) error {
			out = append(out, u+" "+rec.Title)
			return nil
		}))
		return out
	}
	crawl := func(ds store.Datastore, u, title string) {
		t.Helper()
		require.NoError(t, ds.Update(func(w store.Writer) error {
			return w.Put(urlKey(u), encodeRecord(&record{Title: title, Run: 1}))
		}))
	}
	// a's node is given an action (a claim, with a group commit).
	given := func(id string) {
		t.Helper()
		sub := pgstore.NewAction{Record: &messages.StoredAction{Id: id, Spec: &messages.ActionSpec{Action: "FETCH", FetchAction: fetch.ActionIdentifiers},
			Status: &messages.ActionStatus{Token: id, State: messages.State_STATE_QUEUED}}}
		res, err := nodeA.Commit(ctx, "fetch", "a", "a:1", pgstore.Group{Submits: []pgstore.NewAction{sub}, MaxWaiting: 100, Claim: 1})
		require.NoError(t, err)
		require.Len(t, res.Claimed, 1)
	}
	identifiers := func() []string { // as the action: its listing, then its end
		t.Helper()
		_, end, err := r.begin(dsA, fetch.ActionIdentifiers, false)
		require.NoError(t, err)
		defer end()
		return list(dsA)
	}

	crawl(dsB, "http://x/1", "one")
	given("i1")
	require.Equal(t, []string{"http://x/1 one"}, identifiers())
	given("i2") // commits i1's end (a merge)
	require.Equal(t, []string{"http://x/1 one"}, identifiers())
	crawl(dsB, "http://x/2", "two")
	crawl(dsB, "http://x/1", "one again")
	given("i3")
	require.Equal(t, []string{"http://x/1 one again", "http://x/2 two"}, identifiers())
	require.NoError(t, dsB.Update(func(w store.Writer) error { return w.Delete(urlKey("http://x/1")) }))
	given("i4")
	require.Equal(t, []string{"http://x/2 two"}, identifiers())
	given("i5")
	m, err := readMeta(dsA)
	require.NoError(t, err)
	require.Equal(t, uint64(4), m.Calls, "every action's end recorded")
}
