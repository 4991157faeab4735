package queue

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/connectorhq/connector/fetch/fetchtest"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testRepo is the shared Repository double (fetchtest.Repo); the Mode
// parameter picks its behaviour.
type testRepo = fetchtest.Repo

func newTestRepo() *testRepo { return &fetchtest.Repo{Staged: stagedProgress()} }

type bundle struct {
	q    *Queue
	repo *testRepo
	sys  *actor.ActorSystem
}

func setup(t *testing.T, mutate func(*Config)) *bundle {
	t.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }),
		// protoactor's dead-letter throttle keeps a goroutine for one interval;
		// keep it short so goleak sees only real leaks.
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond))
	repo := newTestRepo()
	cfg := Config{Name: "fetch", Repository: repo, MaximumThreads: 2, TokenPort: 7000, StopTimeout: 2 * time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	q, err := Start(sys, cfg)
	require.NoError(t, err)
	b := &bundle{q: q, repo: repo, sys: sys}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		repo.ReleaseAll() // so ignorectx workers end
		_ = q.Shutdown(ctx)
		sys.Shutdown()
	})
	return b
}

func (b *bundle) submit(t *testing.T, mode string, prio int32) string {
	t.Helper()
	tok, err := b.q.Submit(context.Background(), &messages.ActionSpec{
		Action: "FETCH", FetchAction: "SYNCHRONIZE", Priority: prio, Tasks: []string{"MYTASK"},
		Params: messages.Params{{Name: "ConfigSection", Value: "MyTask"}, {Name: "Mode", Value: mode}},
	})
	require.NoError(t, err)
	return tok
}

// waitState polls until the action reaches want, or fails after a deadline.
func (b *bundle) waitState(t *testing.T, tok string, want messages.State) *messages.ActionStatus {
	t.Helper()
	var last *messages.ActionStatus
	testwait.For(t, 10*time.Second, func() bool {
		s, err := b.q.Status(context.Background(), tok)
		require.NoError(t, err)
		last = s
		return s.State == want
	}, "state %v", want)
	return last
}

func TestSubmitRunsToFinished(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tok := b.submit(t, "instant", 0)
	s := b.waitState(t, tok, messages.State_STATE_FINISHED)
	require.Equal(t, tok, s.Token)
	require.Equal(t, "SYNCHRONIZE", s.FetchAction)
	require.NotZero(t, s.QueuedUnixMs)
	require.NotZero(t, s.StartedUnixMs)
	require.GreaterOrEqual(t, s.EndedUnixMs, s.StartedUnixMs)
	require.Len(t, s.Results, 1)
	require.Equal(t, "MYTASK", s.Counts[0].Task)
	require.EqualValues(t, 1, s.Seq)
}

func TestMaximumThreadsAndPriorityOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaximumThreads = 1 })
	first := b.submit(t, "block", 0)
	b.waitState(t, first, messages.State_STATE_PROCESSING)
	// Queued behind it: priorities 1, 5, 5, 3 in that arrival order.
	low := b.submit(t, "instant", 1)
	hiA := b.submit(t, "instant", 5)
	hiB := b.submit(t, "instant", 5)
	mid := b.submit(t, "instant", 3)
	st, err := b.q.Status(context.Background(), hiA)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_QUEUED, st.State)
	b.repo.Release(first)
	b.waitState(t, low, messages.State_STATE_FINISHED)
	require.Equal(t, []string{first, hiA, hiB, mid, low}, b.repo.Started())
	require.EqualValues(t, 1, b.repo.MaxRunning())
}

func TestConcurrencyBound(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaximumThreads = 3 })
	var toks []string
	for i := 0; i < 10; i++ {
		toks = append(toks, b.submit(t, "block", 0))
	}
	testwait.For(t, 10*time.Second, func() bool { return b.repo.Running() == 3 }, "three actions running")
	qs, err := b.q.QueueStatus(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 3, qs.Processing)
	require.EqualValues(t, 7, qs.Queued)
	for _, tok := range toks {
		b.repo.Release(tok)
	}
	for _, tok := range toks {
		b.waitState(t, tok, messages.State_STATE_FINISHED)
	}
	require.EqualValues(t, 3, b.repo.MaxRunning())
	qs, err = b.q.QueueStatus(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 10, qs.Finished)
	require.Zero(t, qs.Queued+qs.Processing)
}

func TestCancel(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaximumThreads = 1 })
	running := b.submit(t, "block", 0)
	b.waitState(t, running, messages.State_STATE_PROCESSING)
	queued := b.submit(t, "instant", 0)

	r, err := b.q.Cancel(context.Background(), queued)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_CANCELLED, r.Status.State)
	require.NotZero(t, r.Status.EndedUnixMs)

	_, err = b.q.Cancel(context.Background(), running)
	require.ErrorIs(t, err, messages.ErrActionRunning)
	require.Equal(t, "the action has started", err.Error(), "the ACI codec adds the pointer to QueueAction=Stop")

	_, err = b.q.Cancel(context.Background(), queued)
	require.ErrorIs(t, err, messages.ErrActionEnded)

	b.repo.Release(running)
	b.waitState(t, running, messages.State_STATE_FINISHED)
	require.Equal(t, []string{running}, b.repo.Started(), "a cancelled action never runs")
}

func TestStopRunningKeepsPartialCounts(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tok := b.submit(t, "count", 0)
	testwait.For(t, 10*time.Second, func() bool {
		s, err := b.q.Status(context.Background(), tok)
		require.NoError(t, err)
		return s.Counts[0].Seen == 7
	}, "counts are live while Processing")

	r, err := b.q.Stop(context.Background(), tok)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_STOPPED, r.Status.State)
	require.EqualValues(t, 7, r.Status.Counts[0].Seen)
	require.EqualValues(t, 3, r.Status.Counts[0].Added)
	// The reply came after the worker exited, with the stop cause.
	require.ErrorIs(t, b.repo.Cause(tok), ErrStopRequested)
	require.Zero(t, b.repo.Running())

	_, err = b.q.Stop(context.Background(), tok)
	require.ErrorIs(t, err, messages.ErrActionEnded)
}

func TestStopQueued(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaximumThreads = 1 })
	blocker := b.submit(t, "block", 0)
	b.waitState(t, blocker, messages.State_STATE_PROCESSING)
	tok := b.submit(t, "instant", 0)
	r, err := b.q.Stop(context.Background(), tok)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_STOPPED, r.Status.State)
	require.Zero(t, r.Status.StartedUnixMs)
}

func TestStopTimeoutAnswersAnyway(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.StopTimeout = 50 * time.Millisecond })
	tok := b.submit(t, "ignorectx", 0)
	b.waitState(t, tok, messages.State_STATE_PROCESSING)
	r, err := b.q.Stop(context.Background(), tok)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_STOPPED, r.Status.State)
	require.EqualValues(t, 1, b.repo.Running(), "the stubborn worker is still running")
	qs, err := b.q.QueueStatus(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 1, qs.Stopped)
	// Its thread is held until the worker really exits.
	next := b.submit(t, "block", 0)
	next2 := b.submit(t, "block", 0)
	b.waitState(t, next, messages.State_STATE_PROCESSING)
	s, err := b.q.Status(context.Background(), next2)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_QUEUED, s.State, "MaximumThreads=2 counts the stopped worker until it exits")
	b.repo.Release(tok)
	b.waitState(t, next2, messages.State_STATE_PROCESSING)
}

func TestPanicBecomesError(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tok := b.submit(t, "panic", 0)
	s := b.waitState(t, tok, messages.State_STATE_ERROR)
	require.Equal(t, "panic: repository exploded", s.Error)
	// Never restarted, and the queue goes on.
	require.Len(t, b.repo.Started(), 1)
	next := b.submit(t, "instant", 0)
	b.waitState(t, next, messages.State_STATE_FINISHED)
}

func TestPanicInReceiveBecomesError(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaximumThreads = 1 })
	blocker := b.submit(t, "block", 0)
	b.waitState(t, blocker, messages.State_STATE_PROCESSING)
	tok := b.submit(t, "instant", 0)
	// A nil message pointer makes the handler dereference nil.
	_, err := b.q.request(context.Background(), tok, (*messages.ChangePriority)(nil))
	require.ErrorIs(t, err, messages.ErrInternal)
	s := b.waitState(t, tok, messages.State_STATE_ERROR)
	require.Contains(t, s.Error, "panic:")
	b.repo.Release(blocker)
	b.waitState(t, blocker, messages.State_STATE_FINISHED)
	require.Equal(t, []string{blocker}, b.repo.Started(), "the failed action never runs and is not restarted")
}

func TestFailingRunIsError(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tok := b.submit(t, "fail", 0)
	s := b.waitState(t, tok, messages.State_STATE_ERROR)
	require.Equal(t, "site unreachable", s.Error)
}

func TestChangePriority(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaximumThreads = 1 })
	blocker := b.submit(t, "block", 0)
	b.waitState(t, blocker, messages.State_STATE_PROCESSING)
	a := b.submit(t, "instant", 0)
	c := b.submit(t, "instant", 0)
	r, err := b.q.ChangePriority(context.Background(), c, 9)
	require.NoError(t, err)
	require.EqualValues(t, 9, r.Status.Priority)
	_, err = b.q.ChangePriority(context.Background(), blocker, 9)
	require.ErrorIs(t, err, messages.ErrNotQueued)
	b.repo.Release(blocker)
	b.waitState(t, a, messages.State_STATE_FINISHED)
	require.Equal(t, []string{blocker, c, a}, b.repo.Started())
}

func TestPauseResumeAction(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaximumThreads = 1 })
	run := b.submit(t, "block", 0)
	b.waitState(t, run, messages.State_STATE_PROCESSING)
	queued := b.submit(t, "instant", 0)
	later := b.submit(t, "instant", 0)

	r, err := b.q.PauseAction(context.Background(), run)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_PAUSED, r.Status.State)
	r, err = b.q.PauseAction(context.Background(), queued)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_PAUSED, r.Status.State)

	// A paused running action keeps its thread: nothing else starts.
	b.repo.Release(run) // the worker is parked in Checkpoint, it cannot see this yet
	s, err := b.q.Status(context.Background(), run)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_PAUSED, s.State)

	_, err = b.q.ResumeAction(context.Background(), later)
	require.ErrorIs(t, err, messages.ErrNotPaused)

	r, err = b.q.ResumeAction(context.Background(), run)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_PROCESSING, r.Status.State)
	b.waitState(t, run, messages.State_STATE_FINISHED)
	b.waitState(t, later, messages.State_STATE_FINISHED)
	s, err = b.q.Status(context.Background(), queued)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_PAUSED, s.State, "a paused queued action does not start")
	_, err = b.q.ResumeAction(context.Background(), queued)
	require.NoError(t, err)
	b.waitState(t, queued, messages.State_STATE_FINISHED)
}

func TestPauseResumeQueue(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaximumThreads = 1 })
	run := b.submit(t, "block", 0)
	b.waitState(t, run, messages.State_STATE_PROCESSING)
	qs, err := b.q.Pause(context.Background())
	require.NoError(t, err)
	require.True(t, qs.Paused)
	b.waitState(t, run, messages.State_STATE_PAUSED)
	waiting := b.submit(t, "instant", 0)
	b.repo.Release(run)
	qs, err = b.q.QueueStatus(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 1, qs.PausedActions)
	require.EqualValues(t, 1, qs.Queued)

	qs, err = b.q.Resume(context.Background())
	require.NoError(t, err)
	require.False(t, qs.Paused)
	b.waitState(t, run, messages.State_STATE_FINISHED)
	b.waitState(t, waiting, messages.State_STATE_FINISHED)
}

func TestUnknownTokens(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tok := b.submit(t, "instant", 0)
	_, id, err := messages.ParseToken(tok)
	require.NoError(t, err)
	for name, bad := range map[string]string{
		"garbled":     "%%%not base64",
		"empty":       "",
		"real IDOL":   "MTAuMi4xMDUuMzQ6MTIzNDpGRVRDSDoxNDAyOTU3MzY4",
		"other queue": messages.NewToken("127.0.0.1", 7000, "INGEST", id),
		"never issued": messages.NewToken("127.0.0.1", 7000, "FETCH",
			[16]byte{1, 2, 3, 4, 5, 6, 0x70, 8, 0x80, 10, 11, 12, 13, 14, 15, 16}),
	} {
		_, err := b.q.Status(context.Background(), bad)
		require.ErrorIs(t, err, messages.ErrUnknownToken, name)
		_, err = b.q.Stop(context.Background(), bad)
		require.ErrorIs(t, err, messages.ErrUnknownToken, name)
	}
}

func TestQueueFull(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaximumThreads = 1; c.MaximumQueueSize = 2 })
	run := b.submit(t, "block", 0)
	b.waitState(t, run, messages.State_STATE_PROCESSING)
	b.submit(t, "instant", 0)
	last := b.submit(t, "instant", 0)
	_, err := b.q.Submit(context.Background(), &messages.ActionSpec{FetchAction: "SYNCHRONIZE"})
	require.ErrorIs(t, err, messages.ErrQueueFull)
	require.Contains(t, err.Error(), "MaximumQueueSize=2")
	// Cancelling one frees room.
	_, err = b.q.Cancel(context.Background(), last)
	require.NoError(t, err)
	b.submit(t, "instant", 0)
}

func TestListFiltersAndSorts(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	now := func() time.Time { return time.UnixMilli(clock.Add(1000)) }
	b := setup(t, func(c *Config) { c.MaximumThreads = 1; c.Now = now })
	var toks []string
	for i := 0; i < 5; i++ {
		toks = append(toks, b.submit(t, "instant", int32(i)))
		b.waitState(t, toks[i], messages.State_STATE_FINISHED)
	}
	blocked := b.submit(t, "block", 7)
	b.waitState(t, blocked, messages.State_STATE_PROCESSING)
	queued := b.submit(t, "instant", 2)

	tokensOf := func(ss []*messages.ActionStatus) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.Token)
		}
		return out
	}
	all, err := b.q.List(context.Background(), &messages.ListActions{})
	require.NoError(t, err)
	require.Equal(t, []string{queued, blocked, toks[4], toks[3], toks[2], toks[1], toks[0]}, tokensOf(all), "most recent first by default")

	fin, err := b.q.List(context.Background(), &messages.ListActions{States: []messages.State{messages.State_STATE_FINISHED}, Ascending: true, MaxResults: 2})
	require.NoError(t, err)
	require.Equal(t, []string{toks[0], toks[1]}, tokensOf(fin))

	byPrio, err := b.q.List(context.Background(), &messages.ListActions{SortBy: messages.SortBy_SORT_BY_PRIORITY, HasMinPriority: true, MinPriority: 2, HasMaxPriority: true, MaxPriority: 4})
	require.NoError(t, err)
	require.Equal(t, []string{toks[4], toks[3], queued, toks[2]}, tokensOf(byPrio), "priority descending; equal priorities newest first")

	mid := time.UnixMilli(all[4].QueuedUnixMs) // toks[2]
	after, err := b.q.List(context.Background(), &messages.ListActions{QueuedAfterUnixMs: mid.UnixMilli(), Ascending: true})
	require.NoError(t, err)
	require.Equal(t, []string{toks[3], toks[4], blocked, queued}, tokensOf(after))

	finBefore, err := b.q.List(context.Background(), &messages.ListActions{FinishedBeforeUnixMs: all[4].EndedUnixMs, SortBy: messages.SortBy_SORT_BY_FINISH_TIME})
	require.NoError(t, err)
	require.Equal(t, []string{toks[1], toks[0]}, tokensOf(finBefore))

	started, err := b.q.List(context.Background(), &messages.ListActions{SortBy: messages.SortBy_SORT_BY_START_TIME, MaxResults: 1})
	require.NoError(t, err)
	require.Equal(t, []string{blocked}, tokensOf(started))
}

func TestRetentionByCount(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaximumFinishedActions = 3; c.MaximumThreads = 1 })
	var toks []string
	for i := 0; i < 6; i++ {
		toks = append(toks, b.submit(t, "instant", 0))
		b.waitState(t, toks[i], messages.State_STATE_FINISHED)
	}
	testwait.For(t, 10*time.Second, func() bool {
		_, err := b.q.Status(context.Background(), toks[2])
		return errors.Is(err, messages.ErrUnknownToken)
	}, "the oldest action evicted")
	for _, tok := range toks[:3] {
		_, err := b.q.Status(context.Background(), tok)
		require.ErrorIs(t, err, messages.ErrUnknownToken)
	}
	for _, tok := range toks[3:] {
		_, err := b.q.Status(context.Background(), tok)
		require.NoError(t, err)
	}
	qs, err := b.q.QueueStatus(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 3, qs.Finished, "counts per state follow eviction")
}

func TestRetentionByAge(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	now := func() time.Time { return time.UnixMilli(clock.Load()) }
	b := setup(t, func(c *Config) { c.FinishedActionMaxAge = time.Hour; c.Now = now })
	old := b.submit(t, "instant", 0)
	b.waitState(t, old, messages.State_STATE_FINISHED)
	clock.Add((2 * time.Hour).Milliseconds())
	fresh := b.submit(t, "instant", 0) // its ending runs retention
	b.waitState(t, fresh, messages.State_STATE_FINISHED)
	testwait.For(t, 10*time.Second, func() bool {
		_, err := b.q.Status(context.Background(), old)
		return errors.Is(err, messages.ErrUnknownToken)
	}, "the old action evicted")
	_, err := b.q.Status(context.Background(), fresh)
	require.NoError(t, err)
}

func TestDuplicateAndParameters(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaximumThreads = 1 })
	run := b.submit(t, "block", 4)
	b.waitState(t, run, messages.State_STATE_PROCESSING)

	r, err := b.q.ActionParameters(context.Background(), run)
	require.NoError(t, err)
	require.Equal(t, "MyTask", messages.Params(r.Params).Value("configsection"))

	r, err = b.q.Duplicate(context.Background(), run)
	require.NoError(t, err)
	require.NotEmpty(t, r.NewToken)
	require.NotEqual(t, run, r.NewToken)
	dup, err := b.q.Status(context.Background(), r.NewToken)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_QUEUED, dup.State)
	require.EqualValues(t, 4, dup.Priority)

	all, err := b.q.ListParams(context.Background(), 0, 0)
	require.NoError(t, err)
	require.Len(t, all, 2)

	b.repo.Release(run)
	b.waitState(t, run, messages.State_STATE_FINISHED)
	_, err = b.q.Duplicate(context.Background(), run)
	require.ErrorIs(t, err, messages.ErrActionEnded)
	_, err = b.q.ActionParameters(context.Background(), run)
	require.ErrorIs(t, err, messages.ErrActionEnded)
	b.repo.Release(r.NewToken)
	b.waitState(t, r.NewToken, messages.State_STATE_FINISHED)
}

func TestProgress(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaximumThreads = 1 })
	run := b.submit(t, "count", 0)
	queued := b.submit(t, "instant", 0)
	testwait.For(t, 10*time.Second, func() bool {
		r, err := b.q.Progress(context.Background(), run)
		require.NoError(t, err)
		return r.Progress.Stage == "crawling"
	}, "the running action to report its stage")
	r, err := b.q.Progress(context.Background(), queued)
	require.NoError(t, err)
	require.Zero(t, r.Progress.Percent)
	b.repo.Release(run)
	b.waitState(t, queued, messages.State_STATE_FINISHED)
	r, err = b.q.Progress(context.Background(), queued)
	require.NoError(t, err)
	require.EqualValues(t, 100, r.Progress.Percent)
}

func TestShutdownStopsRunningKeepsQueued(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaximumThreads = 1 })
	run := b.submit(t, "block", 0)
	b.waitState(t, run, messages.State_STATE_PROCESSING)
	b.submit(t, "instant", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, b.q.Shutdown(ctx))
	require.ErrorIs(t, b.repo.Cause(run), ErrShutdown)
	require.Zero(t, b.repo.Running())
	require.Len(t, b.repo.Started(), 1, "queued actions are not started by shutdown")
	_, err := b.q.Submit(context.Background(), &messages.ActionSpec{FetchAction: "SYNCHRONIZE"})
	require.ErrorIs(t, err, messages.ErrShuttingDown)
}

// TestConcurrentClients hammers one queue from many goroutines with every
// kind of request, under -race, and checks the books balance.
func TestConcurrentClients(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaximumThreads = 4; c.MaximumFinishedActions = 100000 })
	const clients, each = 8, 50
	var wg sync.WaitGroup
	var cancelled atomic.Int64
	toks := make(chan string, clients*each)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				mode := "instant"
				if i%5 == 0 {
					mode = "block"
				}
				tok, err := b.q.Submit(context.Background(), &messages.ActionSpec{FetchAction: "SYNCHRONIZE", Priority: int32(i % 3), Tasks: []string{"MYTASK"},
					Params: messages.Params{{Name: "Mode", Value: mode}, {Name: "N", Value: strconv.Itoa(c*each + i)}}})
				if err != nil {
					t.Error(err)
					return
				}
				toks <- tok
				switch i % 4 {
				case 1:
					if _, err := b.q.Cancel(context.Background(), tok); err == nil {
						cancelled.Add(1)
					}
				case 2:
					_, _ = b.q.Stop(context.Background(), tok)
				case 3:
					_, _ = b.q.ChangePriority(context.Background(), tok, 9)
				}
				_, _ = b.q.List(context.Background(), &messages.ListActions{MaxResults: 5})
			}
		}(c)
	}
	wg.Wait()
	close(toks)
	var all []string
	for tok := range toks {
		all = append(all, tok)
		b.repo.Release(tok)
	}
	testwait.For(t, 20*time.Second, func() bool {
		qs, err := b.q.QueueStatus(context.Background())
		require.NoError(t, err)
		return qs.Queued+qs.Processing+qs.PausedActions == 0
	}, "every action ended")
	qs, err := b.q.QueueStatus(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, clients*each, qs.Finished+qs.Cancelled+qs.Stopped+qs.Error)
	require.EqualValues(t, cancelled.Load(), qs.Cancelled)
	require.LessOrEqual(t, b.repo.MaxRunning(), int32(4))
	require.Len(t, all, clients*each)
}
