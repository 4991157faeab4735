package queue

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// gatedStore reports the size of every ApplyActions call on calls and
// holds it until the test sends on gate.
type gatedStore struct {
	store.Store
	calls chan int
	gate  chan struct{}
}

func (g *gatedStore) ApplyActions(queue string, batch []store.ActionMutation) error {
	g.calls <- len(batch)
	<-g.gate
	return g.Store.ApplyActions(queue, batch)
}

// gatedQueue is a paused durable queue whose group commits the test lets
// through one by one.
type gatedQueue struct {
	b    *bundle
	st   *gatedStore
	toks chan string
	errs chan error
}

func startGated(t *testing.T, mutate func(*Config)) *gatedQueue {
	t.Helper()
	inner, err := store.Open(store.Config{Dir: t.TempDir()})
	require.NoError(t, err)
	st := &gatedStore{Store: inner, calls: make(chan int, 16), gate: make(chan struct{})}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond))
	repo := newTestRepo()
	cfg := Config{Name: "fetch", Repository: repo, MaximumThreads: 1, TokenPort: 7000, Store: st}
	mutate(&cfg)
	q, err := Start(sys, cfg)
	require.NoError(t, err)
	_, err = q.Pause(context.Background()) // the pause flag is no ApplyActions call
	require.NoError(t, err)
	g := &gatedQueue{b: &bundle{q: q, repo: repo, sys: sys}, st: st, toks: make(chan string, 64), errs: make(chan error, 64)}
	t.Cleanup(func() {
		close(st.gate) // let any commit through
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Shutdown(ctx)
		sys.Shutdown()
		_ = inner.Close()
	})
	return g
}

// submit sends n submissions from n goroutines (n clients).
func (g *gatedQueue) submit(n int) {
	for range n {
		go func() {
			tok, err := g.b.q.Submit(context.Background(), &messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE",
				Tasks: []string{"MYTASK"}, Params: messages.Params{{Name: "ConfigSection", Value: "MyTask"}, {Name: "Mode", Value: "ok"}}})
			if err != nil {
				g.errs <- err
				return
			}
			g.toks <- tok
		}()
	}
}

// waitPending waits until n submissions wait in the QueueManager's pending
// batch.
func (g *gatedQueue) waitPending(t *testing.T, n int) {
	t.Helper()
	testwait.For(t, 10*time.Second, func() bool {
		got := 0
		g.b.inspectManager(t, func(m *manager) {
			if m.pending != nil {
				got = len(m.pending.submits)
			}
		})
		return got == n
	}, "%d submissions pending", n)
}

// nextCommit waits for the next ApplyActions call and returns its size.
func (g *gatedQueue) nextCommit(t *testing.T) int {
	t.Helper()
	select {
	case n := <-g.st.calls:
		return n
	case err := <-g.errs:
		t.Fatalf("a submission failed: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no group commit within 10 s")
	}
	return 0
}

func (g *gatedQueue) tokens(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-g.toks:
		case err := <-g.errs:
			t.Fatalf("a submission failed: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("a submission got no reply within 10 s")
		}
	}
}

// heldBatch brings the queue to a commit that waits for more: commits of
// 1 and 9 submissions (10 acknowledged by the last two commits, CommitSiblings
// 5), then 3 submissions arrive while the disk is busy; once it is free they
// wait, since they are fewer than half of those 10. It checks that they wait
// (so the CommitDelay must outlast a loaded machine's pauses: see
// gatherBatch for a short one).
func (g *gatedQueue) heldBatch(t *testing.T) {
	t.Helper()
	g.gatherBatch(t)
	// The commit of 9 is answered; the 3 are held (not sent to the store).
	g.b.inspectManager(t, func(m *manager) {
		require.True(t, m.holding, "the batch of 3 waits for more submissions")
		require.False(t, m.inflight)
	})
	select {
	case n := <-g.st.calls:
		t.Fatalf("a commit of %d was written instead of waiting for more", n)
	default:
	}
}

// gatherBatch is heldBatch without its checks that the 3 still wait: with a
// short CommitDelay they may already have gone on a loaded machine.
func (g *gatedQueue) gatherBatch(t *testing.T) {
	t.Helper()
	g.submit(1)
	require.Equal(t, 1, g.nextCommit(t))
	g.submit(9)
	g.waitPending(t, 9) // they gather while the first commit is under way
	g.st.gate <- struct{}{}
	require.Equal(t, 9, g.nextCommit(t), "a commit after a lone one does not wait")
	g.tokens(t, 1)
	g.submit(3)
	g.waitPending(t, 3)
	g.st.gate <- struct{}{}
	g.tokens(t, 9)
}

// TestCommitDelayGathersSubmissions: while other clients are submitting, a
// group commit waits for more submissions (as PostgreSQL's commit_delay)
// and is written as soon as it holds half as many as the last two commits
// acknowledged, without waiting for CommitDelay to pass.
func TestCommitDelayGathersSubmissions(t *testing.T) {
	t.Parallel()
	g := startGated(t, func(c *Config) { c.CommitDelay = time.Hour })
	g.heldBatch(t)
	g.submit(2)
	require.Equal(t, 5, g.nextCommit(t), "the held 3 go with the 2 that made them half of 10")
	g.st.gate <- struct{}{}
	g.tokens(t, 5)
}

// TestCommitDelayEnds: a held commit is written once CommitDelay has passed,
// even if no other submission comes.
func TestCommitDelayEnds(t *testing.T) {
	t.Parallel()
	g := startGated(t, func(c *Config) { c.CommitDelay = 20 * time.Millisecond })
	g.gatherBatch(t) // 20 ms may pass before a check that the 3 wait could run
	// With no other submission, only the delay's end sends the 3 (that they
	// wait first is TestCommitDelayGathersSubmissions's and heldBatch's part).
	require.Equal(t, 3, g.nextCommit(t), "the held batch goes when its delay has passed")
	g.st.gate <- struct{}{}
	g.tokens(t, 3)
}

// TestCommitDelayNotForALoneClient: a client that submits alone never
// waits (with a CommitDelay of an hour, one wait would time its submission
// out).
func TestCommitDelayNotForALoneClient(t *testing.T) {
	t.Parallel()
	g := startGated(t, func(c *Config) { c.CommitDelay = time.Hour; c.AskTimeout = 10 * time.Second })
	for i := range 20 {
		g.submit(1)
		require.Equal(t, 1, g.nextCommit(t), "submission %d", i)
		g.st.gate <- struct{}{}
		g.tokens(t, 1)
	}
}

// TestCommitDelayShutdownWritesHeld: a shutdown does not wait for a held
// commit's delay: the held submissions are written and acknowledged.
func TestCommitDelayShutdownWritesHeld(t *testing.T) {
	t.Parallel()
	g := startGated(t, func(c *Config) { c.CommitDelay = time.Hour })
	g.heldBatch(t)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- g.b.q.Shutdown(ctx)
	}()
	require.Equal(t, 3, g.nextCommit(t), "the shutdown writes the held batch")
	g.st.gate <- struct{}{}
	g.tokens(t, 3)
	require.NoError(t, <-done)
}
