package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch/fetchtest"
	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/internal/testlog"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store/pgstore"
)

// unreachable fails every write the store sends while armed, as
// PostgreSQL out of reach does (ErrUnavailable), or with refused when
// set, and counts them.
type unreachable struct {
	armed   atomic.Bool
	failed  atomic.Int64
	refused atomic.Pointer[error]
}

func (u *unreachable) Write() error  { return nil }
func (u *unreachable) Synced() error { return nil }
func (u *unreachable) Commit() error {
	if !u.armed.Load() {
		return nil
	}
	u.failed.Add(1)
	if err := u.refused.Load(); err != nil {
		return *err
	}
	return fmt.Errorf("injected: connection refused: %w", pgstore.ErrUnavailable)
}

// writeFailCluster is a one-node cluster queue on a database of its own
// whose store fails every write while faults is armed; logged holds the
// queue's log.
type writeFailCluster struct {
	q       *ClusterQueue
	db      *pgstore.Store
	faults  *unreachable
	repo    *fetchtest.Repo
	logged  *testlog.Buffer
	stopped bool // the test has shut q down
}

func startWriteFailCluster(t *testing.T, level slog.Level) *writeFailCluster {
	t.Helper()
	pg := pgtest.StartT(t, pgtest.Options{})
	c := &writeFailCluster{faults: &unreachable{}, repo: &fetchtest.Repo{}, logged: &testlog.Buffer{}}
	var err error
	c.db, err = pgstore.Open(context.Background(), pgstore.Config{URL: pg.DatabaseT(t), Node: "n1", Faults: c.faults})
	require.NoError(t, err)
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond))
	mem := &soloMember{id: "n1", addr: sys.Address(), lease: 4 * time.Minute}
	c.q, err = StartCluster(sys, Config{Name: "fetch", Repository: c.repo, MaximumThreads: 2, TokenHost: "127.0.0.1", TokenPort: 7000,
		AskTimeout: 10 * time.Second, StopTimeout: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(c.logged, &slog.HandlerOptions{Level: level}))}, c.db, mem)
	require.NoError(t, err)
	t.Cleanup(func() {
		c.faults.armed.Store(false)
		c.repo.ReleaseAll()
		if !c.stopped {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			assert.NoError(t, c.q.Shutdown(ctx))
		}
		sys.Shutdown()
		assert.NoError(t, c.db.Close())
	})
	return c
}

// While the shared store fails, a node's pending changes are written again
// every second: "shared store write failed" is logged at level error once
// for the run of failures (with the cause), at debug level for each retry
// that fails in turn, and once at info level when a write succeeds again.
// It used to be logged at level error at every retry, once a second per
// queue for as long as PostgreSQL was down (or its TLS misconfigured). A
// failure of another kind within a run (a statement refused while the
// database was out of reach) is logged at level error again.
func TestClusterStoreWriteFailureIsLoggedOncePerRun(t *testing.T) {
	c := startWriteFailCluster(t, slog.LevelDebug)
	q, faults, repo, logged := c.q, c.faults, c.repo, c.logged
	ctx := context.Background()

	tok, err := q.Submit(ctx, &messages.ActionSpec{FetchAction: "SYNCHRONIZE",
		Params: messages.Params{{Name: "Mode", Value: "block"}}})
	require.NoError(t, err)
	status := func() messages.State {
		st, err := q.Status(ctx, tok)
		require.NoError(t, err)
		return st.State
	}
	testwait.For(t, 30*time.Second, func() bool { return status() == messages.State_STATE_PROCESSING }, "the action runs")

	// The store goes away; the action ends: its end cannot be written,
	// and is written again every second.
	faults.armed.Store(true)
	repo.Release(tok)
	count := func(level string) int {
		n := 0
		for _, line := range strings.Split(logged.String(), "\n") {
			if strings.Contains(line, "level="+level) && strings.Contains(line, "shared store write") {
				n++
			}
		}
		return n
	}
	failures := func() int { return count("ERROR") + count("DEBUG") }
	testwait.For(t, 30*time.Second, func() bool { return failures() >= 4 }, "the first failed write and three failed retries")
	require.Equal(t, 1, count("ERROR"), "a run of failures is logged at level error once:\n%s", logged.String())
	require.GreaterOrEqual(t, count("DEBUG"), 3, logged.String())
	first := logged.String()
	first = first[strings.Index(first, "level=ERROR"):]
	first = first[:strings.Index(first, "\n")]
	require.Contains(t, first, "the shared database is unavailable", "the cause")
	require.Equal(t, 0, count("INFO"), "no write succeeded yet")
	require.Equal(t, messages.State_STATE_FINISHED, status(), "the owner answers with its state meanwhile")

	// The store is back: the next retry succeeds, and says so once.
	faults.armed.Store(false)
	testwait.For(t, 30*time.Second, func() bool { return count("INFO") >= 1 }, "the writes resumed")
	after := failures()
	require.Equal(t, 1, count("ERROR"), logged.String())
	require.Equal(t, 1, count("INFO"), logged.String())
	require.Contains(t, logged.String(), fmt.Sprintf("failed_attempts=%d", after), "it counts the failed attempts of the run")

	// A new run of failures is logged at level error again.
	tok2, err := q.Submit(ctx, &messages.ActionSpec{FetchAction: "SYNCHRONIZE",
		Params: messages.Params{{Name: "Mode", Value: "block"}}})
	require.NoError(t, err)
	tok = tok2
	testwait.For(t, 30*time.Second, func() bool { return status() == messages.State_STATE_PROCESSING }, "the second action runs")
	faults.armed.Store(true)
	repo.Release(tok)
	testwait.For(t, 30*time.Second, func() bool { return count("ERROR") == 2 }, "the second run's first failure, at level error")

	// Within that run, a failure of another kind is news: at level error,
	// with its cause, once.
	refused := errors.New("injected: the statement was refused")
	faults.refused.Store(&refused)
	testwait.For(t, 30*time.Second, func() bool { return count("ERROR") == 3 }, "a failure of another kind, at level error")
	last := logged.String()
	last = last[strings.LastIndex(last, "level=ERROR"):]
	require.Contains(t, last[:strings.Index(last, "\n")], "the statement was refused", "the new cause")
	before := count("DEBUG")
	testwait.For(t, 30*time.Second, func() bool { return count("DEBUG") > before }, "its retries, at debug level")
	require.Equal(t, 3, count("ERROR"), logged.String())
}

// A change whose write failed is written again a second later; a node that
// stopped cleanly meanwhile handed its actions back without writing it: an
// action that had finished, its end not yet in the store, was queued again
// by the release (its row still said it ran) and run a second time by
// another node. As in process, a shutdown writes the failed changes once
// more, at once, before it hands the actions back.
func TestClusterShutdownWritesFailedChangesFirst(t *testing.T) {
	c := startWriteFailCluster(t, slog.LevelInfo)
	q, faults, repo, logged := c.q, c.faults, c.repo, c.logged
	ctx := context.Background()

	tok, id := submitRunning(t, q, messages.Params{{Name: "Mode", Value: "block"}})

	// The action finishes while the store is out of reach: its end is
	// kept for the next try, a second later.
	faults.armed.Store(true)
	repo.Release(tok)
	testwait.For(t, 30*time.Second, func() bool { return strings.Contains(logged.String(), "shared store write failed") },
		"the end's write failed")
	faults.armed.Store(false)
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, q.Shutdown(sctx))
	c.stopped = true

	row, ok, err := c.db.Action(ctx, "fetch", id.String())
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, messages.State_STATE_FINISHED, row.Record.GetStatus().GetState(),
		"the action finished before the node stopped; its end is in the store, not handed back as queued (restarts %d)", row.Record.GetStatus().GetRestarts())
}
