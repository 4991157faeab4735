package queue

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// A submission that reaches the QueueManager after its Stop (protoactor
// delivers user messages to a stopping actor until its children are gone)
// is refused: a task actor spawned then would be one that stopTasks never
// stops, and the QueueManager, which waits for every task actor
// (WithUnlistedChild), would never stop. The window is held open here by a
// task actor whose mailbox is busy on its worker's goroutine (its list
// entry is being encoded) when the QueueManager stops it: its Stop waits,
// so the QueueManager handles the queued submission while stopping.
func TestSubmitAfterStopIsRefused(t *testing.T) {
	t.Parallel()
	var arm atomic.Bool
	entered, release := make(chan struct{}), make(chan struct{})
	b := setup(t, func(c *Config) {
		c.ListEntry = func(dst []byte, st *messages.ActionStatus) []byte {
			if arm.CompareAndSwap(true, false) {
				close(entered)
				<-release // the task actor's mailbox stays busy meanwhile
			}
			return append(dst, st.Token...)
		}
	})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // a failed test does not leave the worker blocked
	// The job ends only once the QueueManager has finished handling the
	// submission: a task mailbox runs on the goroutine that posts to it
	// while it is idle, and a job that ended while the QueueManager was
	// still delivering the task's first message had the task end on the
	// QueueManager's goroutine, which the blocked ListEntry then held
	// (the test hung in CI at shuffle seed 1796512006357887695).
	run := make(chan struct{})
	var runOnce sync.Once
	letRun := func() { runOnce.Do(func() { close(run) }) }
	t.Cleanup(letRun)
	b.repo.OnRun = func(string) { <-run }
	arm.Store(true)
	b.submit(t, "instant", 0)
	b.inspectManager(t, func(*manager) {})
	letRun()
	<-entered // the task actor is ending, on its worker's goroutine

	// Hold the QueueManager while a submission and a Stop queue up.
	held, unhold := make(chan struct{}), make(chan struct{})
	b.sys.Root.Send(b.q.pid, &inspect{fn: func(*manager) { close(held); <-unhold }})
	<-held
	spec := &messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE", Tasks: []string{"MYTASK"},
		Params: messages.Params{{Name: "ConfigSection", Value: "MyTask"}, {Name: "Mode", Value: "instant"}}}
	sub := b.sys.Root.RequestFuture(b.q.pid, &messages.SubmitAction{Spec: spec}, 10*time.Second)
	stopped := b.sys.Root.StopFuture(b.q.pid)
	close(unhold)

	res, err := sub.Result()
	require.NoError(t, err)
	require.Equal(t, messages.ErrorCode_ERROR_CODE_SHUTTING_DOWN, res.(*messages.SubmitReply).Code,
		"a submission handled after the QueueManager's Stop")
	unblock()
	require.NoError(t, stopped.Wait(), "the QueueManager stops once its task actors have")
	_, ok := b.sys.ProcessRegistry.Get(b.q.pid)
	require.False(t, ok, "the QueueManager after its Stop")
}

// The QueueManager stops its task actors (stopTasks) even when what it
// does before on Stopping panics (managerPanic recovers the panic):
// protoactor no longer stops them for it (WithUnlistedChild) and waits for
// them, so a Shutdown would otherwise never end. The panic is made here
// by a retention ticker's channel that is already closed.
func TestShutdownStopsTaskActorsAfterAPanicInStopping(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tok := b.submit(t, "instant", 0)
	b.waitState(t, tok, messages.State_STATE_FINISHED)
	_, id, err := messages.ParseToken(tok)
	require.NoError(t, err)
	pid := b.q.taskPIDOf(id)
	b.inspectManager(t, func(m *manager) {
		c := make(chan struct{})
		close(c)
		m.tickStop = c // close(m.tickStop) on Stopping panics
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, b.q.Shutdown(ctx))
	_, ok := b.sys.ProcessRegistry.Get(pid)
	require.False(t, ok, "the task actor after Shutdown")
	_, ok = b.sys.ProcessRegistry.Get(b.q.pid)
	require.False(t, ok, "the QueueManager after Shutdown")
}
