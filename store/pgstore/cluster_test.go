package pgstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

var ctx = context.Background()

// nodes opens one store per node on the same database and registers each.
func nodes(t *testing.T, names ...string) []*Store {
	t.Helper()
	return nodesAt(t, server.DatabaseT(t), names...)
}

// nodesAt is nodes on the database at url.
func nodesAt(t *testing.T, url string, names ...string) []*Store {
	t.Helper()
	var out []*Store
	for _, n := range names {
		s, err := Open(ctx, Config{URL: url, Node: n})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		require.NoError(t, s.RegisterNode(ctx, n, n+":1", 4))
		out = append(out, s)
	}
	return out
}

func newAction(id string, prio int32) NewAction {
	return NewAction{Record: &messages.StoredAction{
		Id:     id,
		Spec:   &messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE", Priority: prio},
		Status: &messages.ActionStatus{Token: "tok-" + id, State: messages.State_STATE_QUEUED, Priority: prio, QueuedUnixMs: 1000},
	}}
}

func claimIDs(cs []Claimed) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Record.Id
	}
	return out
}

// Sequence numbers come from the database, in submission order across
// nodes; a claim from any node takes the highest priority first, then
// the oldest, and moves ownership with a new epoch.
func TestSubmitAndClaimAcrossNodes(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a", "b")
	a, b := ns[0], ns[1]
	seqs, err := a.Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction("x1", 0), newAction("x2", 5)}, 100)
	require.NoError(t, err)
	seqs2, err := b.Submit(ctx, "fetch", "b", "b:1", []NewAction{newAction("y1", 5), newAction("y2", 0)}, 100)
	require.NoError(t, err)
	require.Less(t, seqs[0], seqs[1])
	require.Less(t, seqs[1], seqs2[0], "one sequence for every node")
	require.Less(t, seqs2[0], seqs2[1])

	got, err := b.Claim(ctx, "fetch", "b", "b:1", 3)
	require.NoError(t, err)
	require.Equal(t, []string{"x2", "y1", "x1"}, claimIDs(got), "priority, then arrival, wherever submitted")
	require.Equal(t, "a", got[0].PrevOwner)
	require.Equal(t, "a:1", got[0].PrevAddr)
	require.EqualValues(t, 2, got[0].Epoch)
	require.Equal(t, seqs[1], got[0].Record.Status.Seq)
	r, ok, err := a.Action(ctx, "fetch", "x2")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "b", r.Owner)
	require.Equal(t, messages.State_STATE_PROCESSING, r.Record.Status.State)

	more, err := a.Claim(ctx, "fetch", "a", "a:1", 5)
	require.NoError(t, err)
	require.Equal(t, []string{"y2"}, claimIDs(more))
	none, err := a.Claim(ctx, "fetch", "a", "a:1", 5)
	require.NoError(t, err)
	require.Empty(t, none)
}

// Concurrent claims from many nodes never hand one action to two of them.
func TestConcurrentClaimsAreDisjoint(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "n1", "n2", "n3")
	var subs []NewAction
	for i := 0; i < 60; i++ {
		subs = append(subs, newAction(fmt.Sprintf("a%02d", i), int32(i%3)))
	}
	_, err := ns[0].Submit(ctx, "fetch", "n1", "n1:1", subs, 1000)
	require.NoError(t, err)
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i, s := range ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := fmt.Sprintf("n%d", i+1)
			for {
				got, err := s.Claim(ctx, "fetch", node, node+":1", 2)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, c := range got {
					if prev, dup := seen[c.Record.Id]; dup {
						errs <- fmt.Errorf("%s claimed by %s and %s", c.Record.Id, prev, node)
					}
					seen[c.Record.Id] = node
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, seen, 60)
}

// Owner writes are fenced: after another node claimed the action, the
// old owner's write of it is refused (reported as fenced) and the others
// of the same group commit go through.
func TestOwnerWritesAreFencedByEpoch(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a", "b")
	a, b := ns[0], ns[1]
	_, err := a.Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction("p", 0), newAction("q", 0)}, 100)
	require.NoError(t, err)
	got, err := b.Claim(ctx, "fetch", "b", "b:1", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"p"}, claimIDs(got))

	rec := func(id string, state messages.State) *messages.StoredAction {
		r := newAction(id, 0).Record
		r.Status.State = state
		return r
	}
	fenced, err := a.WriteOwned(ctx, "fetch", "a", []OwnedWrite{
		{Epoch: 1, Record: rec("p", messages.State_STATE_CANCELLED)},
		{Epoch: 1, Record: rec("q", messages.State_STATE_CANCELLED)},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"p"}, fenced)
	r, _, err := a.Action(ctx, "fetch", "p")
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_PROCESSING, r.Record.Status.State, "the old owner's write was refused")
	r, _, err = a.Action(ctx, "fetch", "q")
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_CANCELLED, r.Record.Status.State)

	fenced, err = b.WriteOwned(ctx, "fetch", "b", []OwnedWrite{{Epoch: got[0].Epoch, Record: rec("p", messages.State_STATE_FINISHED)}})
	require.NoError(t, err)
	require.Empty(t, fenced)
}

// One running action per exclusive task in the whole cluster: a claim
// passes over an action whose task is held, and takes it once the holder
// releases it.
func TestExclusiveTasksAcrossNodes(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a", "b")
	a, b := ns[0], ns[1]
	x, y, z := newAction("x", 9), newAction("y", 5), newAction("z", 0)
	x.Exclusive, y.Exclusive = []string{"T1"}, []string{"T1", "T2"}
	_, err := a.Submit(ctx, "fetch", "a", "a:1", []NewAction{x, y, z}, 100)
	require.NoError(t, err)
	got, err := a.Claim(ctx, "fetch", "a", "a:1", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"x"}, claimIDs(got))
	other, err := b.Claim(ctx, "fetch", "b", "b:1", 5)
	require.NoError(t, err)
	require.Equal(t, []string{"z"}, claimIDs(other), "y waits for T1")
	finishReleasing(t, a, "a", got[0])
	last, err := b.Claim(ctx, "fetch", "b", "b:1", 5)
	require.NoError(t, err)
	require.Equal(t, []string{"y"}, claimIDs(last))
}

// finishReleasing ends c as Finished by its owner node, giving up the
// tasks it holds, and requires the write not to be fenced.
func finishReleasing(t *testing.T, s *Store, node string, c Claimed) {
	t.Helper()
	done := c.Record
	done.Status.State = messages.State_STATE_FINISHED
	fenced, err := s.WriteOwned(ctx, "fetch", node, []OwnedWrite{{Epoch: c.Epoch, Record: done, Release: true}})
	require.NoError(t, err)
	require.Empty(t, fenced)
}

// Taking over a dead node's actions: it is declared dead (its datastore
// and action writes are refused from then on), its running actions are
// put back by the policy and its tasks freed, and the rescuer owns them
// all at a new epoch.
func TestAdoptDeadNodesActions(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "dead", "live")
	dead, live := ns[0], ns[1]
	x, y := newAction("run", 0), newAction("wait", 0)
	x.Exclusive = []string{"T"}
	_, err := dead.Submit(ctx, "fetch", "dead", "dead:1", []NewAction{x, y}, 100)
	require.NoError(t, err)
	got, err := dead.Claim(ctx, "fetch", "dead", "dead:1", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"run"}, claimIDs(got))
	ds, err := dead.Datastore("T")
	require.NoError(t, err)
	require.NoError(t, ds.Update(func(w store.Writer) error { return w.Put([]byte("k"), []byte("before")) }))

	orphans, unowned, err := live.Orphaned(ctx, "fetch", []string{"live"}, 0)
	require.NoError(t, err)
	require.Equal(t, []string{"dead"}, orphans)
	require.False(t, unowned)
	adopted, err := live.Adopt(ctx, "fetch", "live", "live:1", orphans, 0, func(a *messages.StoredAction) {
		a.Status.State = messages.State_STATE_QUEUED
		a.Status.Restarts++
	})
	require.NoError(t, err)
	require.Len(t, adopted, 2)
	for _, r := range adopted {
		require.Equal(t, "live", r.Owner)
	}
	r, _, err := live.Action(ctx, "fetch", "run")
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_QUEUED, r.Record.Status.State)
	require.False(t, r.Record.Status.Running)
	require.EqualValues(t, 1, r.Record.Status.Restarts)
	require.EqualValues(t, 3, r.Epoch)

	err = ds.Update(func(w store.Writer) error { return w.Put([]byte("k"), []byte("zombie")) })
	require.ErrorIs(t, err, ErrFenced, "a dead node writes no datastore")
	v, err := ds.Get([]byte("k"))
	require.NoError(t, err)
	require.Equal(t, "before", string(v))
	fenced, err := dead.WriteOwned(ctx, "fetch", "dead", []OwnedWrite{{Epoch: got[0].Epoch, Record: got[0].Record}})
	require.ErrorIs(t, err, ErrFenced)
	require.Empty(t, fenced)
	_, err = dead.Claim(ctx, "fetch", "dead", "dead:1", 1)
	require.ErrorIs(t, err, ErrFenced)

	again, err := live.Claim(ctx, "fetch", "live", "live:1", 2)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"run", "wait"}, claimIDs(again), "the task was freed")
}

// A node that just joined is not an orphan for a node that has not seen
// it yet: only nodes known dead, unknown, or joined before the grace.
func TestOrphanedWaitsForGrace(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "old", "new")
	_, err := ns[1].Submit(ctx, "fetch", "new", "new:1", []NewAction{newAction("n", 0)}, 100)
	require.NoError(t, err)
	orphans, unowned, err := ns[0].Orphaned(ctx, "fetch", []string{"old"}, 3600)
	require.NoError(t, err)
	require.Empty(t, orphans)
	require.False(t, unowned)
}

// At most maxWaiting actions wait; a batch is cut where the queue is full.
func TestSubmitQueueSize(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a")
	seqs, err := ns[0].Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction("1", 0), newAction("2", 0), newAction("3", 0)}, 2)
	require.NoError(t, err)
	require.NotZero(t, seqs[0])
	require.NotZero(t, seqs[1])
	require.Zero(t, seqs[2])
	_, waiting, _, err := ns[0].Counts(ctx, "fetch")
	require.NoError(t, err)
	require.EqualValues(t, 2, waiting)
}

// List filters, sorts and pages as the in-process queue does; counts,
// the pause flag (no claims while paused) and retention.
func TestListCountsPauseRetain(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a")
	s := ns[0]
	var subs []NewAction
	for i := 0; i < 6; i++ {
		na := newAction(fmt.Sprintf("i%d", i), int32(i%2))
		na.Record.Status.QueuedUnixMs = int64(1000 + i)
		subs = append(subs, na)
	}
	_, err := s.Submit(ctx, "fetch", "a", "a:1", subs, 100)
	require.NoError(t, err)
	ids, err := s.List(ctx, "fetch", &messages.ListActions{})
	require.NoError(t, err)
	require.Equal(t, []string{"i5", "i4", "i3", "i2", "i1", "i0"}, ids, "newest first")
	ids, err = s.List(ctx, "fetch", &messages.ListActions{SortBy: messages.SortBy_SORT_BY_PRIORITY, Ascending: true, Skip: 1, MaxResults: 3})
	require.NoError(t, err)
	require.Equal(t, []string{"i2", "i4", "i1"}, ids)
	ids, err = s.List(ctx, "fetch", &messages.ListActions{HasMinPriority: true, MinPriority: 1, QueuedBeforeUnixMs: 1005})
	require.NoError(t, err)
	require.Equal(t, []string{"i3", "i1"}, ids)

	require.NoError(t, s.SetPaused(ctx, "fetch", true))
	got, err := s.Claim(ctx, "fetch", "a", "a:1", 10)
	require.NoError(t, err)
	require.Empty(t, got, "nothing starts while the queue is paused")
	require.NoError(t, s.SetPaused(ctx, "fetch", false))
	got, err = s.Claim(ctx, "fetch", "a", "a:1", 3)
	require.NoError(t, err)
	require.Len(t, got, 3)
	var ws []OwnedWrite
	for i, c := range got {
		c.Record.Status.State = messages.State_STATE_FINISHED
		c.Record.Status.EndedUnixMs = int64(2000 + i)
		ws = append(ws, OwnedWrite{Epoch: c.Epoch, Record: c.Record})
	}
	_, err = s.WriteOwned(ctx, "fetch", "a", ws)
	require.NoError(t, err)
	byState, waiting, paused, err := s.Counts(ctx, "fetch")
	require.NoError(t, err)
	require.False(t, paused)
	require.EqualValues(t, 3, byState[messages.State_STATE_FINISHED])
	require.EqualValues(t, 3, byState[messages.State_STATE_QUEUED])
	require.EqualValues(t, 3, waiting)
	ids, err = s.List(ctx, "fetch", &messages.ListActions{FinishedAfterUnixMs: 1999, SortBy: messages.SortBy_SORT_BY_FINISH_TIME, Ascending: true})
	require.NoError(t, err)
	require.Equal(t, []string{got[0].Record.Id, got[1].Record.Id, got[2].Record.Id}, ids)

	removed, err := s.Retain(ctx, "fetch", 1, 0, 100)
	require.NoError(t, err)
	require.Len(t, removed, 2)
	removed, err = s.Retain(ctx, "fetch", 10, 3000, 100)
	require.NoError(t, err)
	require.Len(t, removed, 1)
	require.Equal(t, got[2].Record.Id, removed[0].ID)
	require.Equal(t, "a", removed[0].Owner)
}

// A node leaving cleanly gives its actions back: running ones are put
// back, all are unowned, its tasks are free, and it writes nothing more.
func TestReleaseOnLeave(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "leaving", "staying")
	x := newAction("x", 0)
	x.Exclusive = []string{"T"}
	_, err := ns[0].Submit(ctx, "fetch", "leaving", "leaving:1", []NewAction{x, newAction("y", 0)}, 100)
	require.NoError(t, err)
	_, err = ns[0].Claim(ctx, "fetch", "leaving", "leaving:1", 1)
	require.NoError(t, err)
	require.NoError(t, ns[0].Release(ctx, "fetch", "leaving", func(a *messages.StoredAction) {
		a.Status.State = messages.State_STATE_QUEUED
	}))
	has, err := ns[1].HasUnowned(ctx, "fetch")
	require.NoError(t, err)
	require.True(t, has)
	orphans, unowned, err := ns[1].Orphaned(ctx, "fetch", []string{"staying"}, 0)
	require.NoError(t, err)
	require.True(t, unowned, "released actions are unowned: a scan for orphans must take them")
	require.Empty(t, orphans, "the node that left owns nothing more")
	adopted, err := ns[1].Adopt(ctx, "fetch", "staying", "staying:1", nil, 0, func(*messages.StoredAction) {})
	require.NoError(t, err)
	require.Len(t, adopted, 2)
	got, err := ns[1].Claim(ctx, "fetch", "staying", "staying:1", 2)
	require.NoError(t, err)
	require.Len(t, got, 2)
	alive, err := ns[1].NodeAlive(ctx, "leaving")
	require.NoError(t, err)
	require.False(t, alive)
}

// A take-over in batches (limit): the first declares the dead node dead
// and takes its running actions before its others; the next calls take the
// rest, each at most limit, until one takes fewer.
func TestAdoptInBatchesRunningFirst(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "dead", "live")
	dead, live := ns[0], ns[1]
	var acts []NewAction
	for i := range 5 {
		acts = append(acts, newAction(fmt.Sprintf("a%d", i), 0))
	}
	_, err := dead.Submit(ctx, "fetch", "dead", "dead:1", acts, 100)
	require.NoError(t, err)
	// The last submitted runs: by submission order it would come last.
	_, err = dead.Pool().Exec(ctx, `UPDATE connector_actions SET priority = 1 WHERE id = 'a4'`)
	require.NoError(t, err)
	got, err := dead.Claim(ctx, "fetch", "dead", "dead:1", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"a4"}, claimIDs(got))

	requeue := func(a *messages.StoredAction) { a.Status.State, a.Status.Running = messages.State_STATE_QUEUED, false }
	var taken []string
	for call := 1; ; call++ {
		rows, err := live.Adopt(ctx, "fetch", "live", "live:1", []string{"dead"}, 2, requeue)
		require.NoError(t, err)
		require.LessOrEqual(t, len(rows), 2)
		for _, r := range rows {
			taken = append(taken, r.Record.Id)
			require.Equal(t, "live", r.Owner)
			require.False(t, r.Record.Status.Running)
		}
		if call == 1 {
			require.Equal(t, "a4", rows[0].Record.Id, "the running action first")
			alive, err := live.NodeAlive(ctx, "dead")
			require.NoError(t, err)
			require.False(t, alive, "declared dead by the first batch")
		}
		if len(rows) < 2 {
			break
		}
		require.Less(t, call, 5)
	}
	require.Equal(t, []string{"a4", "a0", "a1", "a2", "a3"}, taken)
}

// A restarted database: calls fail with ErrUnavailable while it is down
// (within the call's deadline, not hanging), and everything committed is
// there when it is back.
func TestDatabaseRestart(t *testing.T) {
	// Its own server: the others share one.
	srv := startOwnServer(t)
	url, err := srv.CreateDatabase("restart")
	require.NoError(t, err)
	s, err := Open(ctx, Config{URL: url, Node: "a", Timeout: 2 * time.Second})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.RegisterNode(ctx, "a", "a:1", 1))
	_, err = s.Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction("kept", 0)}, 10)
	require.NoError(t, err)
	require.NoError(t, srv.Shutdown())
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = s.Submit(c, "fetch", "a", "a:1", []NewAction{newAction("lost", 0)}, 10)
	cancel()
	require.ErrorIs(t, err, ErrUnavailable)
	require.NoError(t, srv.StartAgain())
	r, ok, err := s.Action(ctx, "fetch", "kept")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "kept", r.Record.Id)
	_, err = s.Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction("after", 0)}, 10)
	require.NoError(t, err, "usable again once the database is back")
}

// A group commit's claim takes the records of the actions the same
// commit submitted from the group instead of reading them back: what
// the caller gets is what a later read of the row decodes (the seq and
// priority of the row), with a status of its own, and the claims of
// other nodes' actions in the same commit still read theirs. The queue's
// row exists after the first submission (later commits skip inserting
// it).
func TestCommitClaimOfItsOwnSubmissions(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a", "b")
	a, b := ns[0], ns[1]
	_, err := b.Submit(ctx, "fetch", "b", "b:1", []NewAction{newAction("theirs", 9)}, 100)
	require.NoError(t, err)
	mine := []NewAction{newAction("m1", 5), newAction("m2", 0)}
	mine[0].Record.Spec.Params = []*messages.Param{{Name: "configsection", Value: "EMPTY1"}}
	r, err := a.Commit(ctx, "fetch", "a", "a:1", Group{Submits: mine, MaxWaiting: 100, Claim: 3})
	require.NoError(t, err)
	require.Equal(t, []string{"theirs", "m1", "m2"}, claimIDs(r.Claimed))
	for i, c := range r.Claimed {
		row, ok, err := a.Action(ctx, "fetch", c.Record.Id)
		require.NoError(t, err)
		require.True(t, ok)
		require.True(t, proto.Equal(row.Record.Spec, c.Record.Spec), "claim %d: spec", i)
		require.Equal(t, row.Record.Status.Seq, c.Record.Status.Seq, "claim %d: seq", i)
		require.Equal(t, row.Record.Status.Priority, c.Record.Status.Priority, "claim %d: priority", i)
		require.Equal(t, row.Record.Status.Token, c.Record.Status.Token, "claim %d: token", i)
	}
	require.Equal(t, r.Seqs[0], r.Claimed[1].Record.Status.Seq)
	require.NotSame(t, mine[0].Record.Status, r.Claimed[1].Record.Status, "the claim's status is not the submission's")
	require.Zero(t, mine[0].Record.Status.Seq, "the submission's status is left as it was")

	// The queue's row: inserted once, there for listings of queue names.
	r, err = a.Commit(ctx, "fetch", "a", "a:1", Group{Submits: []NewAction{newAction("m3", 0)}, MaxWaiting: 100})
	require.NoError(t, err)
	require.NotZero(t, r.Seqs[0])
	var n int
	require.NoError(t, a.Pool().QueryRow(ctx, `SELECT count(*) FROM connector_queues WHERE queue = $1`, []byte("fetch")).Scan(&n))
	require.Equal(t, 1, n)
}

// TestRetainByAgeTakesAClockTime: the age limit is a time in Unix
// milliseconds (the queue passes now less FinishedActionMaxAge), beyond
// int4: PostgreSQL took the parameter for an int4 from "$3 > 0", so every
// age pass of a cluster queue failed to encode it.
func TestRetainByAgeTakesAClockTime(t *testing.T) {
	t.Parallel()
	s := nodes(t, "a")[0]
	_, err := s.Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction("old", 0)}, 100)
	require.NoError(t, err)
	got, err := s.Claim(ctx, "fetch", "a", "a:1", 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
	now := time.Now().UnixMilli()
	got[0].Record.Status.State = messages.State_STATE_FINISHED
	got[0].Record.Status.EndedUnixMs = now - time.Hour.Milliseconds()
	_, err = s.WriteOwned(ctx, "fetch", "a", []OwnedWrite{{Epoch: got[0].Epoch, Record: got[0].Record}})
	require.NoError(t, err)
	removed, err := s.Retain(ctx, "fetch", 10, now-time.Minute.Milliseconds(), 100)
	require.NoError(t, err)
	require.Len(t, removed, 1)
	require.Equal(t, got[0].Record.Id, removed[0].ID)
}

// A write fenced by its epoch gives up nothing: its Release leaves the
// tasks the action's new owner holds, and a write at the right epoch
// then frees them.
func TestFencedReleaseKeepsTheTasks(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a", "b")
	a, b := ns[0], ns[1]
	x, y := newAction("x", 5), newAction("y", 0)
	x.Exclusive, y.Exclusive = []string{"T"}, []string{"T"}
	_, err := a.Submit(ctx, "fetch", "a", "a:1", []NewAction{x, y}, 100)
	require.NoError(t, err)
	got, err := b.Claim(ctx, "fetch", "b", "b:1", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"x"}, claimIDs(got), "b holds T")
	stale := proto.CloneOf(x.Record)
	stale.Status.State = messages.State_STATE_CANCELLED
	fenced, err := a.WriteOwned(ctx, "fetch", "a", []OwnedWrite{{Epoch: 1, Record: stale, Release: true}})
	require.NoError(t, err)
	require.Equal(t, []string{"x"}, fenced)
	none, err := a.Claim(ctx, "fetch", "a", "a:1", 5)
	require.NoError(t, err)
	require.Empty(t, none, "y waits: T is still held by x on b")

	finishReleasing(t, b, "b", got[0])
	last, err := a.Claim(ctx, "fetch", "a", "a:1", 5)
	require.NoError(t, err)
	require.Equal(t, []string{"y"}, claimIDs(last))
}

// A submission's limit counts the actions waiting for a worker (Queued,
// or Paused without one), not those running, paused with a worker or
// ended, however many of those the queue holds.
func TestSubmitLimitCountsWaitingActions(t *testing.T) {
	t.Parallel()
	s := nodes(t, "a")[0]
	subs := make([]NewAction, 6)
	for i := range subs {
		subs[i] = newAction(fmt.Sprintf("w%d", i), 0)
	}
	_, err := s.Submit(ctx, "fetch", "a", "a:1", subs, 100)
	require.NoError(t, err)
	got, err := s.Claim(ctx, "fetch", "a", "a:1", 4)
	require.NoError(t, err)
	require.Len(t, got, 4)
	write := func(c Claimed, st messages.State, running bool) OwnedWrite {
		r := proto.CloneOf(c.Record)
		r.Status.State, r.Status.Running = st, running
		return OwnedWrite{Epoch: c.Epoch, Record: r}
	}
	fenced, err := s.WriteOwned(ctx, "fetch", "a", []OwnedWrite{
		write(got[0], messages.State_STATE_FINISHED, false),
		write(got[1], messages.State_STATE_PAUSED, true),  // paused, its worker still there
		write(got[2], messages.State_STATE_PAUSED, false), // paused, waiting for a worker
		// got[3] runs
	})
	require.NoError(t, err)
	require.Empty(t, fenced)
	// Waiting: the two never claimed and got[2].
	seqs, err := s.Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction("n1", 0), newAction("n2", 0), newAction("n3", 0)}, 5)
	require.NoError(t, err)
	require.NotZero(t, seqs[0])
	require.NotZero(t, seqs[1])
	require.Zero(t, seqs[2], "the queue is full at 5 waiting")
	_, waiting, _, err := s.Counts(ctx, "fetch")
	require.NoError(t, err)
	require.EqualValues(t, 5, waiting)
}
