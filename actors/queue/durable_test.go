package queue

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// durable is a queue on a bbolt store in a test folder that can be
// "crashed" (abandoned without a clean shutdown) and reopened.
type durable struct {
	dir    string
	st     store.Store
	sys    *actor.ActorSystem
	q      *Queue
	repo   *testRepo
	mutate func(*Config)
}

func openDurable(t *testing.T, dir string, faults store.FaultInjector, mutate func(*Config)) *durable {
	t.Helper()
	st, err := store.Open(store.Config{Dir: dir, Faults: faults})
	require.NoError(t, err)
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond))
	repo := newTestRepo()
	cfg := Config{Name: "fetch", Repository: repo, MaximumThreads: 1, TokenPort: 7000, Store: st, StopTimeout: time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	q, err := Start(sys, cfg)
	require.NoError(t, err)
	d := &durable{dir: dir, st: st, sys: sys, q: q, repo: repo, mutate: mutate}
	return d
}

func (d *durable) bundle() *bundle { return &bundle{q: d.q, repo: d.repo, sys: d.sys} }

// crash abandons the queue as a kill -9 would: the store is closed first so
// nothing more reaches the disk, then the actors are torn down.
func (d *durable) crash(t *testing.T) {
	t.Helper()
	require.NoError(t, d.st.Close())
	d.releaseAll()
	_ = d.sys.Root.StopFuture(d.q.pid).Wait()
	d.sys.Shutdown()
}

// shutdown is a clean stop.
func (d *durable) shutdown(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, d.q.Shutdown(ctx))
	d.releaseAll()
	d.sys.Shutdown()
	require.NoError(t, d.st.Close())
}

func (d *durable) releaseAll() { d.repo.ReleaseAll() }

func TestDurableSurvivesCrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openDurable(t, dir, nil, nil)
	b := d.bundle()
	run := b.submit(t, "block", 0)
	b.waitState(t, run, messages.State_STATE_PROCESSING)
	d.waitDurable(t, run, started)
	low := b.submit(t, "instant", 1)
	hiA := b.submit(t, "instant", 5)
	hiB := b.submit(t, "instant", 5)
	cancelled := b.submit(t, "instant", 9)
	_, err := b.q.Cancel(context.Background(), cancelled)
	require.NoError(t, err)
	d.crash(t)

	d2 := openDurable(t, dir, nil, nil)
	defer d2.shutdown(t)
	b2 := d2.bundle()
	// Every acknowledged action is back with its token.
	s, err := b2.q.Status(context.Background(), cancelled)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_CANCELLED, s.State)
	s, err = b2.q.Status(context.Background(), run)
	require.NoError(t, err)
	require.EqualValues(t, 1, s.Restarts, "the interrupted action is run again and says so")
	require.EqualValues(t, 1, s.Seq)
	// Same priority-then-arrival order as before the crash; the interrupted
	// action keeps its place (priority 0, first to arrive).
	for _, tok := range []string{hiA, hiB, low} {
		b2.waitState(t, tok, messages.State_STATE_FINISHED)
	}
	testwait.For(t, 10*time.Second, func() bool { return len(b2.repo.Started()) == 4 }, "four actions started")
	require.Equal(t, []string{hiA, hiB, low, run}, b2.repo.Started())
	d2.repo.Release(run)
	b2.waitState(t, run, messages.State_STATE_FINISHED)
	// New actions continue the arrival sequence.
	next := b2.submit(t, "instant", 0)
	s, err = b2.q.Status(context.Background(), next)
	require.NoError(t, err)
	require.EqualValues(t, 6, s.Seq)
}

// waitDurable polls the store until the action's record satisfies ok.
func (d *durable) waitDurable(t *testing.T, tok string, ok func(*messages.ActionStatus) bool) {
	t.Helper()
	testwait.For(t, 10*time.Second, func() bool {
		found := false
		require.NoError(t, d.st.LoadActions("fetch", func(a *messages.StoredAction) error {
			if a.Status.Token == tok && ok(a.Status) {
				found = true
			}
			return nil
		}))
		return found
	}, "the stored record of %s", tok)
}

func started(s *messages.ActionStatus) bool { return s.StartedUnixMs != 0 }

// Under ProcessingOnRestart=Error an action that was running when the
// process died ends as Error, and so does one paused while it ran (it
// was running too, as docs/durability.md says): neither runs again.
func TestDurableCrashPolicyError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	onErr := func(c *Config) { c.OnRestart, c.MaximumThreads = RestartError, 2 }
	d := openDurable(t, dir, nil, onErr)
	b := d.bundle()
	run := b.submit(t, "block", 0)
	paused := b.submit(t, "block", 0)
	for _, tok := range []string{run, paused} {
		b.waitState(t, tok, messages.State_STATE_PROCESSING)
		d.waitDurable(t, tok, started) // a crash before this would simply queue it again
	}
	_, err := b.q.PauseAction(context.Background(), paused)
	require.NoError(t, err)
	d.crash(t)

	d2 := openDurable(t, dir, nil, onErr)
	defer d2.shutdown(t)
	for _, tok := range []string{run, paused} {
		s, err := d2.q.Status(context.Background(), tok)
		require.NoError(t, err)
		require.Equal(t, messages.State_STATE_ERROR, s.State)
		require.Equal(t, ErrInterrupted.Error(), s.Error)
	}
	require.Empty(t, d2.repo.Started())
}

func TestDurableCleanShutdownRerunsNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openDurable(t, dir, nil, nil)
	b := d.bundle()
	run := b.submit(t, "count", 0)
	b.waitState(t, run, messages.State_STATE_PROCESSING)
	queued := b.submit(t, "instant", 0)
	d.shutdown(t)

	d2 := openDurable(t, dir, nil, nil)
	defer d2.shutdown(t)
	b2 := d2.bundle()
	s, err := b2.q.Status(context.Background(), run)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_STOPPED, s.State, "stopped by the shutdown, not re-run")
	require.EqualValues(t, 7, s.Counts[0].Seen, "with its final counts")
	require.Zero(t, s.Restarts)
	b2.waitState(t, queued, messages.State_STATE_FINISHED)
	require.Equal(t, []string{queued}, b2.repo.Started())
}

func TestDurableControlsSurviveCrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openDurable(t, dir, nil, nil)
	b := d.bundle()
	run := b.submit(t, "block", 0)
	b.waitState(t, run, messages.State_STATE_PROCESSING)
	q := b.submit(t, "instant", 0)
	_, err := b.q.ChangePriority(context.Background(), q, 8)
	require.NoError(t, err)
	_, err = b.q.Stop(context.Background(), run)
	require.NoError(t, err)
	b.waitState(t, q, messages.State_STATE_FINISHED)
	run2 := b.submit(t, "block", 0)
	b.waitState(t, run2, messages.State_STATE_PROCESSING)
	_, err = b.q.PauseAction(context.Background(), run2)
	require.NoError(t, err)
	paused := b.submit(t, "instant", 0)
	_, err = b.q.PauseAction(context.Background(), paused)
	require.NoError(t, err)
	d.crash(t) // right after the replies: they were durable before they were sent

	d2 := openDurable(t, dir, nil, nil)
	defer d2.shutdown(t)
	s, err := d2.q.Status(context.Background(), run)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_STOPPED, s.State, "an acknowledged Stop is never undone by a crash")
	s, err = d2.q.Status(context.Background(), q)
	require.NoError(t, err)
	require.EqualValues(t, 8, s.Priority)
	s, err = d2.q.Status(context.Background(), paused)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_PAUSED, s.State)
	s, err = d2.q.Status(context.Background(), run2)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_PAUSED, s.State, "paused while running: still paused after the crash")
	require.EqualValues(t, 1, s.Restarts)
	r, err := d2.q.ResumeAction(context.Background(), run2)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_QUEUED, r.Status.State)
	d2.bundle().waitState(t, run2, messages.State_STATE_PROCESSING)
}

// failAfter fails every commit once armed, as a full disk would.
type failAfter struct{ armed atomic.Bool }

func (f *failAfter) Write() error { return nil }
func (f *failAfter) Commit() error {
	if f.armed.Load() {
		return syscall.ENOSPC
	}
	return nil
}
func (f *failAfter) Synced() error { return nil }

func TestDurableStoreFailureRefusesWork(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	faults := &failAfter{}
	d := openDurable(t, dir, faults, nil)
	b := d.bundle()
	ok := b.submit(t, "instant", 0)
	b.waitState(t, ok, messages.State_STATE_FINISHED)
	blocked := b.submit(t, "block", 0)
	b.waitState(t, blocked, messages.State_STATE_PROCESSING)
	faults.armed.Store(true)
	// A change made while the disk is full is kept and written later.
	d.repo.Release(blocked)
	b.waitState(t, blocked, messages.State_STATE_FINISHED)
	_, err := d.q.Submit(context.Background(), &messages.ActionSpec{FetchAction: "SYNCHRONIZE", Tasks: []string{"MYTASK"}})
	require.ErrorIs(t, err, messages.ErrStore)
	require.Contains(t, err.Error(), "not accepted")
	qs, err := d.q.QueueStatus(context.Background())
	require.NoError(t, err)
	require.Zero(t, qs.Queued, "a refused action leaves no trace")
	faults.armed.Store(false)
	again := b.submit(t, "instant", 0)
	b.waitState(t, again, messages.State_STATE_FINISHED)
	finished := func(s *messages.ActionStatus) bool { return s.State == messages.State_STATE_FINISHED }
	d.waitDurable(t, blocked, finished)
	d.waitDurable(t, again, finished)
	d.crash(t)

	d2 := openDurable(t, dir, nil, nil)
	defer d2.shutdown(t)
	qs, err = d2.q.QueueStatus(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 3, qs.Finished, "nothing lost, nothing re-run")
	require.Empty(t, d2.repo.Started())
}

func TestDurableRetentionDeletes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keep2 := func(c *Config) { c.MaximumFinishedActions = 2 }
	d := openDurable(t, dir, nil, keep2)
	b := d.bundle()
	var toks []string
	for i := 0; i < 5; i++ {
		toks = append(toks, b.submit(t, "instant", 0))
		b.waitState(t, toks[i], messages.State_STATE_FINISHED)
	}
	d.shutdown(t)
	st, err := store.Open(store.Config{Dir: dir})
	require.NoError(t, err)
	n := 0
	require.NoError(t, st.LoadActions("fetch", func(*messages.StoredAction) error { n++; return nil }))
	require.NoError(t, st.Close())
	require.Equal(t, 2, n, "evicted actions are deleted from disk too")
}

func TestDurableGroupCommit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	commits := &countCommits{}
	d := openDurable(t, dir, commits, func(c *Config) { c.MaximumThreads = 4 })
	defer d.shutdown(t)
	const n = 200
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := d.q.Submit(context.Background(), &messages.ActionSpec{FetchAction: "SYNCHRONIZE", Tasks: []string{"MYTASK"},
				Params: messages.Params{{Name: "Mode", Value: "instant"}}})
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		require.NoError(t, <-errs)
	}
	require.Less(t, commits.n.Load(), int64(n), "concurrent submissions share commits")
}

type countCommits struct{ n atomic.Int64 }

func (c *countCommits) Write() error  { return nil }
func (c *countCommits) Commit() error { c.n.Add(1); return nil }
func (c *countCommits) Synced() error { return nil }

// A QueueManager that restores no stored action for Start's bound (its
// restore is stuck) is stopped, not left running on the store its caller
// closes (and holding its name, which a new Start would find taken). Its
// restore is held here by the clock it reads for an interrupted action.
// Not parallel: it lowers startTimeout.
func TestStartTimeoutStopsTheQueueManager(t *testing.T) {
	defer func(d time.Duration) { startTimeout = d }(startTimeout)
	startTimeout = 100 * time.Millisecond
	st, err := store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.ApplyActions("fetch", []store.ActionMutation{{Put: &messages.StoredAction{
		Id:     "0190a8a4-8d3e-7000-8000-000000000001",
		Spec:   &messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE"},
		Status: &messages.ActionStatus{Seq: 1, State: messages.State_STATE_PROCESSING, Running: true},
	}}}))
	release := make(chan struct{})
	var held atomic.Bool
	sys := actor.NewActorSystem()
	defer sys.Shutdown()
	cfg := Config{Name: "fetch", Repository: newTestRepo(), Store: st, AskTimeout: 10 * time.Millisecond,
		OnRestart: RestartError, Now: func() time.Time {
			if held.CompareAndSwap(false, true) {
				<-release // the restore of the interrupted action
			}
			return time.Now()
		}}
	_, err = Start(sys, cfg)
	require.ErrorContains(t, err, "start made no progress for 100ms (0 of 1 stored actions restored in")
	close(release)
	pid := actor.NewPID(sys.Address(), "queue-fetch")
	testwait.For(t, 10*time.Second, func() bool {
		_, ok := sys.ProcessRegistry.Get(pid)
		return !ok
	}, "the QueueManager to stop once its restore is over")
	cfg.Now = nil
	q, err := Start(sys, cfg)
	require.NoError(t, err, "a new Start finds the name free")
	require.NoError(t, sys.Root.StopFuture(q.pid).Wait())
}

// A restore that takes longer than startTimeout in all, but goes on
// restoring actions, is not cut off: Start waits for it. Start gave up
// after a minute in all, so a big but healthy store could not start. Each
// interrupted action's restore is made slow here by the clock it reads.
// Not parallel: it lowers startTimeout and restoreLogEvery.
func TestStartWaitsForARestoreThatProgresses(t *testing.T) {
	defer func(d, e time.Duration) { startTimeout, restoreLogEvery = d, e }(startTimeout, restoreLogEvery)
	startTimeout, restoreLogEvery = time.Second, 100*time.Millisecond
	const n, each = 10, 200 * time.Millisecond // 2s in all, 5 restored a second
	st := storedActions(t, n, interrupted)
	var slow atomic.Int64
	sys := actor.NewActorSystem()
	defer sys.Shutdown()
	var logs syncBuffer
	cfg := Config{Name: "fetch", Repository: newTestRepo(), Store: st, AskTimeout: 10 * time.Millisecond,
		Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
		OnRestart: RestartError, Now: func() time.Time {
			if slow.Add(1) <= n {
				time.Sleep(each) // the restore of one interrupted action: slow, but progressing
			}
			return time.Now()
		}}
	begin := time.Now()
	q, err := Start(sys, cfg)
	require.NoError(t, err, "a restore that progresses is waited for")
	require.Greater(t, time.Since(begin), startTimeout, "the restore took longer than the bound")
	require.Contains(t, logs.String(), `msg="restoring stored actions"`, "the progress is logged")
	require.NoError(t, sys.Root.StopFuture(q.pid).Wait())
}

// An ended action's progress is the one it reached (docs/protocol.md,
// Progress), after a restart too: it was kept in memory only, so a
// restarted server answered 0% "ended" for a Stopped action that had
// reached 42% "crawling" (and a cluster node answering for an action
// whose node had left did the same).
func TestDurableProgressSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openDurable(t, dir, nil, nil)
	b := d.bundle()
	run := b.submit(t, "count", 0)
	b.waitState(t, run, messages.State_STATE_PROCESSING)
	testwait.For(t, 10*time.Second, func() bool {
		r, err := b.q.Progress(context.Background(), run)
		return err == nil && r.Progress.GetStage() == "crawling"
	}, "the action's progress")
	_, err := b.q.Stop(context.Background(), run)
	require.NoError(t, err)
	r, err := b.q.Progress(context.Background(), run)
	require.NoError(t, err)
	want := &messages.Progress{Percent: 42, Stage: "crawling"}
	require.True(t, proto.Equal(want, r.Progress), "before the restart: %v", r.Progress)
	d.shutdown(t)

	d2 := openDurable(t, dir, nil, nil)
	defer d2.shutdown(t)
	r, err = d2.q.Progress(context.Background(), run)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_STOPPED, r.Status.State)
	require.True(t, proto.Equal(want, r.Progress), "after the restart: %v", r.Progress)
}

// syncBuffer is a log output the test reads while the queue writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
