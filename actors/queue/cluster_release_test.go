package queue

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/fetch/fetchtest"
	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/pgstore"
)

// exclFetchRepo is fetchtest's repository whose SYNCHRONIZE holds its
// tasks exclusively, as the HTTP connector's does.
type exclFetchRepo struct{ *fetchtest.Repo }

func (exclFetchRepo) Exclusive(fa string) bool { return fa == "SYNCHRONIZE" }

// A node that stops cleanly hands its running actions back, queued again
// for the other nodes. One that held its tasks exclusively (a
// Synchronize) was handed back Stopped: its worker's exit freed its tasks
// with a write of the record as the shutdown had left it in memory
// (Stopped), and the release, which queues again only the rows that say
// they run, left it so. Nobody asked for that Stop.
func TestClusterShutdownHandsBackAnExclusiveActionQueued(t *testing.T) {
	repo := &fetchtest.Repo{}
	q, db := startBareNode(t, exclFetchRepo{repo}, nil)
	ctx := context.Background()

	_, id := submitRunning(t, q, messages.Params{{Name: "Mode", Value: "block"}, {Name: "TaskSections", Value: "MYTASK"}})

	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, q.Shutdown(sctx))
	repo.ReleaseAll()

	row, ok, err := db.Action(ctx, "fetch", id.String())
	require.NoError(t, err)
	require.True(t, ok)
	st := row.Record.GetStatus()
	require.Equal(t, messages.State_STATE_QUEUED, st.GetState(), "handed back queued for the other nodes, not ended")
	require.False(t, st.GetRunning())
	require.EqualValues(t, 1, st.GetRestarts())
	require.Zero(t, st.GetStartedUnixMs(), "it waits again: no start until one starts it (the row's too)")
	require.Empty(t, row.Owner, "nobody owns it: the others take it")
}

// heldCommit holds the store's next commit, while armed, until released:
// entered is closed when one waits.
type heldCommit struct {
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (h *heldCommit) Write() error  { return nil }
func (h *heldCommit) Synced() error { return nil }
func (h *heldCommit) Commit() error {
	if h.armed.Load() {
		h.once.Do(func() { close(h.entered) })
		<-h.release
	}
	return nil
}

// A claim in flight when the node begins to stop (it rode the commit of a
// submission) started the actions it took on a node that was leaving:
// nobody told their workers to stop, so the shutdown waited for them to
// end (a crawl: until its deadline), and the node left without handing
// its actions back. A claim that comes back once the node is stopping
// starts nothing: the release hands its actions back queued.
func TestClusterClaimDuringShutdownStartsNothing(t *testing.T) {
	held := &heldCommit{entered: make(chan struct{}), release: make(chan struct{})}
	repo := &fetchtest.Repo{}
	t.Cleanup(repo.ReleaseAll)
	q, db := startBareNode(t, repo, held)
	sys := q.sys
	ctx := context.Background()

	// The submission's commit, with the claim that rides it, is held.
	held.armed.Store(true)
	type submitted struct {
		tok string
		err error
	}
	got := make(chan submitted, 1)
	go func() {
		tok, err := q.Submit(ctx, &messages.ActionSpec{FetchAction: "SYNCHRONIZE",
			Params: messages.Params{{Name: "Mode", Value: "block"}}})
		got <- submitted{tok, err}
	}()
	select {
	case <-held.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the submission's commit did not start")
	}

	// The node begins to stop (a reply after it says the QueueManager
	// has handled it), then the commit and its claim come back.
	stopped := sys.Root.RequestFuture(q.pid, &beginShutdown{}, 15*time.Second)
	_, err := q.ThreadStatus(ctx)
	require.NoError(t, err)
	held.armed.Store(false)
	close(held.release)
	s := <-got
	require.NoError(t, s.err)
	_, id, err := messages.ParseToken(s.tok)
	require.NoError(t, err)

	_, err = stopped.Result()
	require.NoError(t, err, "the shutdown waited for a worker nobody stopped")
	require.NoError(t, sys.Root.StopFuture(q.pid).Wait())
	row, ok, err := db.Action(ctx, "fetch", id.String())
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, messages.State_STATE_QUEUED, row.Record.GetStatus().GetState(), "handed back queued")
	require.False(t, row.Record.GetStatus().GetRunning())
	require.Empty(t, row.Owner, "nobody owns it: the others take it")
}

// A change asked of this node's own task actor waits without a timeout
// for its answer, which comes once the change is in the shared store. A
// node whose QueueManager stopped with that commit in flight (its
// shutdown ran out of time while PostgreSQL did not answer) dropped the
// answer: the request waited for ever. As in process, it ends once the
// QueueManager has stopped.
func TestClusterChangeEndsWhenTheQueueStopsBeforeItsCommit(t *testing.T) {
	held := &heldCommit{entered: make(chan struct{}), release: make(chan struct{})}
	repo := &fetchtest.Repo{}
	t.Cleanup(repo.ReleaseAll)
	q, _ := startBareNode(t, repo, held)
	sys := q.sys
	ctx := context.Background()

	// A queued action (the queue is paused: nothing claims it).
	_, err := q.Pause(ctx)
	require.NoError(t, err)
	tok, err := q.Submit(ctx, &messages.ActionSpec{FetchAction: "SYNCHRONIZE",
		Params: messages.Params{{Name: "Mode", Value: "block"}}})
	require.NoError(t, err)

	// Its Cancel's commit is held.
	held.armed.Store(true)
	cancelled := make(chan error, 1)
	go func() {
		_, err := q.Cancel(ctx, tok)
		cancelled <- err
	}()
	select {
	case <-held.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the Cancel's commit did not start")
	}

	// The QueueManager stops meanwhile (a shutdown out of time stops it
	// so); it waits for the commit in flight, which then comes back.
	stopped := make(chan error, 1)
	go func() { stopped <- sys.Root.StopFuture(q.pid).Wait() }()
	testwait.For(t, 30*time.Second, func() bool {
		_, err := sys.Root.RequestFuture(q.pid, &messages.ThreadStatusRequest{}, 100*time.Millisecond).Result()
		return err != nil
	}, "the QueueManager is stopping")
	held.armed.Store(false)
	close(held.release)
	require.NoError(t, <-stopped)

	select {
	case err := <-cancelled:
		require.ErrorIs(t, err, messages.ErrShuttingDown)
	case <-time.After(20 * time.Second):
		t.Fatal("the Cancel still waits, its QueueManager stopped")
	}
}

// startBareNode starts node n1 of a one-node cluster on a database of its
// own (faults, when given, injected into its store), as startSoloCluster
// does, but leaves its shutdown to the test: its actor system and store
// are closed when the test ends.
func startBareNode(t *testing.T, repo fetch.Repository, faults store.FaultInjector) (*ClusterQueue, *pgstore.Store) {
	t.Helper()
	pg := pgtest.StartT(t, pgtest.Options{})
	db, err := pgstore.Open(context.Background(), pgstore.Config{URL: pg.DatabaseT(t), Node: "n1", Faults: faults})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond))
	t.Cleanup(sys.Shutdown)
	mem := &soloMember{id: "n1", addr: sys.Address(), lease: 4 * time.Minute}
	q, err := StartCluster(sys, Config{Name: "fetch", Repository: repo, MaximumThreads: 2, TokenHost: "127.0.0.1", TokenPort: 7000,
		AskTimeout: 10 * time.Second, StopTimeout: 2 * time.Second, Logger: discard}, db, mem)
	require.NoError(t, err)
	return q, db
}
