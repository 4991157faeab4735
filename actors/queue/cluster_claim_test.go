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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch/fetchtest"
	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store/pgstore"
)

// soloMember is the membership of a cluster of one node (no remoting: the
// node never sends to another), whose lease the test picks and whose
// departures it announces (leave).
type soloMember struct {
	id, addr string
	lease    time.Duration
	mu       sync.Mutex
	onLeft   func([]string)
}

func (s *soloMember) ID() string   { return s.id }
func (s *soloMember) Addr() string { return s.addr }
func (s *soloMember) Member(id string) (string, bool) {
	if id == s.id {
		return s.addr, true
	}
	return "", false
}
func (s *soloMember) Members() map[string]string    { return map[string]string{s.id: s.addr} }
func (s *soloMember) Evict(error)                   {}
func (s *soloMember) RequestTimeout() time.Duration { return 2 * time.Second }
func (s *soloMember) LeaseTTL() time.Duration       { return s.lease }
func (s *soloMember) OnLeft(fn func([]string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onLeft = fn
}

// leave announces that members ids left the cluster.
func (s *soloMember) leave(ids ...string) {
	s.mu.Lock()
	fn := s.onLeft
	s.mu.Unlock()
	fn(ids)
}

// commitChain posts, while armed, one more submission to the node's
// QueueManager from inside each group commit, before the commit returns:
// whenever a commit ends, a change waits to be committed. So does a node
// whose clients submit in a closed loop (the benchmark's sixteen
// submitters) or whose workers keep ending actions.
type commitChain struct {
	armed atomic.Bool
	post  func()
}

func (c *commitChain) Write() error  { return nil }
func (c *commitChain) Synced() error { return nil }
func (c *commitChain) Commit() error {
	if c.armed.Load() {
		c.post()
	}
	return nil
}

// A node that is never without a pending commit (issue 17) still takes
// over departed members' actions and still claims queued actions for its
// free threads. The next store operation used to be the pending commit
// whenever there was one, and a claim does not ride a commit while a
// take-over is due: the take-over (a member's departure, or the scan for
// orphans every lease) waited for a commit that found nothing pending,
// and so did every queued action, threads free. In the N=1 benchmark the
// sixteen closed-loop submitters fell into two groups whose submissions
// alternated, so that no commit found nothing pending: hundreds of
// actions queued with every thread free, and the 4 s window stretched to
// 6–12 s while they drained.
//
// Here the idle poll is a minute away (a lease of four minutes), so that
// nothing but the claim that follows a freed thread can run the queued
// action.
func TestClusterClaimsWhileCommitsNeverPause(t *testing.T) {
	pg := pgtest.StartT(t, pgtest.Options{})
	url := pg.DatabaseT(t)
	chain := &commitChain{}
	ctx := context.Background()
	db, err := pgstore.Open(ctx, pgstore.Config{URL: url, Node: "n1", Faults: chain})
	require.NoError(t, err)
	q, repo, mem := startSoloCluster(t, db)
	t.Cleanup(func() { chain.armed.Store(false) }) // runs before the node's shutdown

	submit := func(mode string, prio int32) string {
		t.Helper()
		tok, err := q.Submit(ctx, &messages.ActionSpec{FetchAction: "SYNCHRONIZE", Priority: prio,
			Params: messages.Params{{Name: "Mode", Value: mode}}})
		require.NoError(t, err)
		return tok
	}
	waitState := func(tok string, want messages.State) {
		t.Helper()
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			st, err := q.Status(ctx, tok)
			if assert.NoError(ct, err) {
				assert.Equal(ct, want, st.State)
			}
		}, 30*time.Second, 10*time.Millisecond)
	}

	// Both threads busy.
	busy := []string{submit("block", 0), submit("block", 0)}
	for _, tok := range busy {
		waitState(tok, messages.State_STATE_PROCESSING)
	}

	// From now on every commit leaves one behind it (a queued action of
	// priority 0: x and y, of priority 1, go before them).
	filler, err := admit(repo, nil, &messages.ActionSpec{FetchAction: "SYNCHRONIZE",
		Params: messages.Params{{Name: "Mode", Value: "instant"}}})
	require.NoError(t, err)
	chain.post = func() { q.sys.Root.RequestFuture(q.pid, &messages.SubmitAction{Spec: filler}, time.Minute) }
	chain.armed.Store(true)
	x := submit("instant", 1) // its commit starts the chain
	waitState(x, messages.State_STATE_QUEUED)

	// A member leaves (it owned nothing): a take-over is due.
	mem.leave("gone")
	y := submit("instant", 1)
	waitState(y, messages.State_STATE_QUEUED)

	// A thread frees: the node takes the departed member's actions over
	// (none), claims x and y, and runs them, while its commits go on
	// without a pause.
	repo.Release(busy[0])
	waitState(busy[0], messages.State_STATE_FINISHED)
	waitState(x, messages.State_STATE_FINISHED)
	waitState(y, messages.State_STATE_FINISHED)
	chain.armed.Store(false)
}

// startSoloCluster starts node n1 of a one-node cluster on db: two
// threads, a lease of four minutes (so that no idle poll comes within a
// test), the fetchtest repository; it is shut down, and db closed, at the
// end of the test.
func startSoloCluster(t *testing.T, db *pgstore.Store, tweak ...func(*Config)) (*ClusterQueue, *fetchtest.Repo, *soloMember) {
	t.Helper()
	return startSoloClusterLease(t, db, 4*time.Minute, tweak...)
}

// startSoloClusterLease is startSoloCluster with a lease of the test's.
func startSoloClusterLease(t *testing.T, db *pgstore.Store, lease time.Duration, tweak ...func(*Config)) (*ClusterQueue, *fetchtest.Repo, *soloMember) {
	t.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond))
	mem := &soloMember{id: "n1", addr: sys.Address(), lease: lease}
	repo := &fetchtest.Repo{}
	cfg := Config{Name: "fetch", Repository: repo, MaximumThreads: 2, TokenHost: "127.0.0.1", TokenPort: 7000,
		AskTimeout: 10 * time.Second, StopTimeout: 2 * time.Second, Logger: discard}
	for _, f := range tweak {
		f(&cfg)
	}
	q, err := StartCluster(sys, cfg, db, mem)
	require.NoError(t, err)
	t.Cleanup(func() {
		repo.ReleaseAll()
		c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		assert.NoError(t, q.Shutdown(c))
		sys.Shutdown()
		assert.NoError(t, db.Close())
	})
	return q, repo, mem
}
