package queue

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
)

// exclRepo is testRepo whose SYNCHRONIZE holds its tasks exclusively, as
// the HTTP connector's Synchronize, Update and Delete do.
type exclRepo struct{ *testRepo }

func (exclRepo) FetchActions() []string { return []string{"SYNCHRONIZE", "COLLECT"} }

func (exclRepo) Exclusive(fa string) bool { return fa == "SYNCHRONIZE" }

func setupExclusive(t *testing.T, threads int) *bundle {
	t.Helper()
	var repo *testRepo
	b := setup(t, func(c *Config) {
		repo = c.Repository.(*testRepo)
		c.Repository = exclRepo{repo}
		c.MaximumThreads = threads
	})
	return b
}

// submitOn queues fa for the given tasks.
func (b *bundle) submitOn(t *testing.T, fa, mode string, prio int32, tasks ...string) string {
	t.Helper()
	tok, err := b.q.Submit(context.Background(), &messages.ActionSpec{
		Action: "FETCH", FetchAction: fa, Priority: prio, Tasks: tasks,
		Params: messages.Params{{Name: "TaskSections", Value: strings.Join(tasks, ",")}, {Name: "Mode", Value: mode}},
	})
	require.NoError(t, err)
	return tok
}

func (b *bundle) state(t *testing.T, tok string) messages.State {
	t.Helper()
	s, err := b.q.Status(context.Background(), tok)
	require.NoError(t, err)
	return s.State
}

func (b *bundle) threadsHeld(t *testing.T) int {
	t.Helper()
	ts, err := b.q.ThreadStatus(context.Background())
	require.NoError(t, err)
	n := 0
	for _, th := range ts {
		if th.Action != nil {
			n++
		}
	}
	return n
}

// Synchronizes of a task that is being synchronised wait Queued and hold
// no thread: the other work of the queue goes on beside the running one.
func TestWaitingForABusyTaskHoldsNoThread(t *testing.T) {
	t.Parallel()
	b := setupExclusive(t, 2)
	first := b.submitOn(t, "SYNCHRONIZE", "block", 0, "MYTASK")
	b.waitState(t, first, messages.State_STATE_PROCESSING)
	// Processing is set before the worker's Run records its start: wait
	// for the record, or a later action may record its start first.
	testwait.For(t, 10*time.Second, func() bool { return indexOf(b.repo.Started(), first) >= 0 },
		"%s never started", first)
	var waiting []string
	for range 4 {
		waiting = append(waiting, b.submitOn(t, "SYNCHRONIZE", "block", 0, "MYTASK"))
	}
	// Other tasks, and actions that do not hold their task, run meanwhile
	// on the one thread left, though they came later.
	other := b.submitOn(t, "SYNCHRONIZE", "instant", 0, "OTHER")
	collect := b.submitOn(t, "COLLECT", "instant", 0, "MYTASK")
	b.waitState(t, other, messages.State_STATE_FINISHED)
	b.waitState(t, collect, messages.State_STATE_FINISHED)
	for _, tok := range waiting {
		require.Equal(t, messages.State_STATE_QUEUED, b.state(t, tok))
	}
	require.Equal(t, 1, b.threadsHeld(t), "only the running Synchronize holds a thread")
	qs, err := b.q.QueueStatus(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 4, qs.Queued)
	require.EqualValues(t, 1, qs.Processing)

	// Each waiting one runs in turn, in arrival order, one at a time.
	b.repo.Release(first)
	for i, tok := range waiting {
		b.waitState(t, tok, messages.State_STATE_PROCESSING)
		for _, later := range waiting[i+1:] {
			require.Equal(t, messages.State_STATE_QUEUED, b.state(t, later))
		}
		b.repo.Release(tok)
		b.waitState(t, tok, messages.State_STATE_FINISHED)
	}
	require.Equal(t, append([]string{first, other, collect}, waiting...), b.repo.Started())
}

// Among the actions waiting for a task, priority then arrival order
// decides which runs next; ChangePriority and Cancel act on them where
// they wait.
func TestWaitingForATaskKeepsPriorityOrder(t *testing.T) {
	t.Parallel()
	b := setupExclusive(t, 4)
	first := b.submitOn(t, "SYNCHRONIZE", "block", 0, "MYTASK")
	b.waitState(t, first, messages.State_STATE_PROCESSING)
	low := b.submitOn(t, "SYNCHRONIZE", "block", 1, "MYTASK")
	high := b.submitOn(t, "SYNCHRONIZE", "block", 5, "MYTASK")
	cancelled := b.submitOn(t, "SYNCHRONIZE", "block", 9, "MYTASK")
	raised := b.submitOn(t, "SYNCHRONIZE", "block", 0, "MYTASK")
	// Let the queue consider (and pass over) all of them.
	b.waitState(t, b.submitOn(t, "SYNCHRONIZE", "instant", 0, "OTHER"), messages.State_STATE_FINISHED)

	r, err := b.q.Cancel(context.Background(), cancelled)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_CANCELLED, r.Status.State)
	_, err = b.q.ChangePriority(context.Background(), raised, 7)
	require.NoError(t, err)

	for i, tok := range []string{first, raised, high, low} {
		b.waitState(t, tok, messages.State_STATE_PROCESSING)
		// Processing is set before the worker's Run records its start:
		// wait for the record, then check that it is this one, alone.
		testwait.For(t, 10*time.Second, func() bool { return indexOf(b.repo.Started(), tok) >= 0 },
			"%s never started", tok)
		started := b.repo.Started()
		require.Equal(t, 1+i+1, len(started), "one at a time")
		if i > 0 { // after first and OTHER's instant action
			require.Equal(t, tok, started[len(started)-1], "priority order")
		}
		b.repo.Release(tok)
		b.waitState(t, tok, messages.State_STATE_FINISHED)
	}
	require.Equal(t, messages.State_STATE_CANCELLED, b.state(t, cancelled))
}

// An action on several tasks waits while any of them is busy; a stopped
// action keeps its task until its worker has exited.
func TestTaskHeldUntilTheWorkerExits(t *testing.T) {
	t.Parallel()
	b := setupExclusive(t, 4)
	a := b.submitOn(t, "SYNCHRONIZE", "ignorectx", 0, "A")
	b.waitState(t, a, messages.State_STATE_PROCESSING)
	bTask := b.submitOn(t, "SYNCHRONIZE", "block", 0, "B")
	b.waitState(t, bTask, messages.State_STATE_PROCESSING)
	both := b.submitOn(t, "SYNCHRONIZE", "instant", 0, "A", "B")
	onlyA := b.submitOn(t, "SYNCHRONIZE", "instant", 0, "A")

	// B frees first: both still waits for A.
	b.repo.Release(bTask)
	b.waitState(t, bTask, messages.State_STATE_FINISHED)
	b.waitState(t, b.submitOn(t, "SYNCHRONIZE", "instant", 0, "C"), messages.State_STATE_FINISHED)
	require.Equal(t, messages.State_STATE_QUEUED, b.state(t, both))

	// A is stopped but its worker ignores the context: A stays held.
	r, err := b.q.Stop(context.Background(), a)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_STOPPED, r.Status.State)
	b.waitState(t, b.submitOn(t, "SYNCHRONIZE", "instant", 0, "C"), messages.State_STATE_FINISHED)
	require.Equal(t, messages.State_STATE_QUEUED, b.state(t, both))
	require.Equal(t, messages.State_STATE_QUEUED, b.state(t, onlyA))

	b.repo.Release(a) // the worker exits
	b.waitState(t, both, messages.State_STATE_FINISHED)
	b.waitState(t, onlyA, messages.State_STATE_FINISHED)
	started := b.repo.Started()
	require.Less(t, indexOf(started, both), indexOf(started, onlyA), "arrival order")
}

// Without fetch.Exclusive, actions of one task run side by side as before.
func TestActionsOfATaskRunTogetherWhenNotExclusive(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaximumThreads = 3 })
	var toks []string
	for range 3 {
		toks = append(toks, b.submitOn(t, "SYNCHRONIZE", "block", 0, "MYTASK"))
	}
	for _, tok := range toks {
		b.waitState(t, tok, messages.State_STATE_PROCESSING)
	}
	require.Equal(t, 3, b.threadsHeld(t))
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// CancelQueued selects what a Cancel can end: actions that have not
// started, paused before starting included, running ones (even paused)
// never; the statuses it returns are bounded.
func TestCancelQueuedSelectsWhatHasNotStarted(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaximumThreads = 1 })
	run := b.submit(t, "block", 0)
	b.waitState(t, run, messages.State_STATE_PROCESSING)
	_, err := b.q.PauseAction(context.Background(), run) // paused while running
	require.NoError(t, err)
	var queued []string
	for range 3 {
		queued = append(queued, b.submit(t, "instant", 0))
	}
	_, err = b.q.PauseAction(context.Background(), queued[0]) // paused before starting
	require.NoError(t, err)

	r, err := b.q.CancelQueued(context.Background(), &messages.ListActions{}, true, 10)
	require.NoError(t, err)
	require.Equal(t, 3, r.Matched)
	require.Zero(t, r.Cancelled)
	require.Len(t, r.Actions, 3)

	_, err = b.q.CancelQueued(context.Background(), &messages.ListActions{States: []messages.State{messages.State_STATE_FINISHED}}, true, 10)
	require.ErrorIs(t, err, messages.ErrInvalidParam)

	r, err = b.q.CancelQueued(context.Background(), &messages.ListActions{}, false, 1)
	require.NoError(t, err)
	require.Equal(t, []int{3, 3, 0}, []int{r.Matched, r.Cancelled, r.Skipped})
	require.Len(t, r.Actions, 1, "the statuses returned are bounded")
	require.Equal(t, messages.State_STATE_CANCELLED, r.Actions[0].State)
	for _, tok := range queued {
		require.Equal(t, messages.State_STATE_CANCELLED, b.state(t, tok))
	}
	require.Equal(t, messages.State_STATE_PAUSED, b.state(t, run))
}
