package queue

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
)

// Bad input to the exported API is refused, and never breaks the queue.
func TestBadSubmitDoesNotBreakQueue(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.AskTimeout = 500 * time.Millisecond })
	tok := b.submit(t, "block", 0)
	b.waitState(t, tok, messages.State_STATE_PROCESSING)
	_, err := b.q.Submit(context.Background(), nil)
	require.ErrorIs(t, err, messages.ErrInvalidParam)
	_, err = b.q.List(context.Background(), nil) // nil means every action
	require.NoError(t, err)
	s, err := b.q.Status(context.Background(), tok)
	require.NoError(t, err, "an existing action still answers")
	require.Equal(t, messages.State_STATE_PROCESSING, s.State)
}

// An action dispatched just before a queue Pause (its startTask sent, its
// start not yet reported) must be paused too. Here Resume dispatches it and
// Pause follows in the manager's mailbox before the task reports it started.
func TestQueuePauseCatchesDispatchedAction(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaximumThreads = 1 })
	_, err := b.q.Pause(context.Background())
	require.NoError(t, err)
	tok := b.submit(t, "block", 0)
	b.sys.Root.Send(b.q.pid, &messages.ResumeQueue{}) // dispatches tok
	b.sys.Root.Send(b.q.pid, &messages.PauseQueue{})
	qs, err := b.q.QueueStatus(context.Background())
	require.NoError(t, err)
	require.True(t, qs.Paused)
	testwait.For(t, 10*time.Second, func() bool {
		s, err := b.q.Status(context.Background(), tok)
		require.NoError(t, err)
		return s.State == messages.State_STATE_PAUSED
	}, "the queue is paused but the action runs unpaused")
}

// A stopped worker that does not honour its context must not hold up the
// eviction of the actions that end after it.
func TestRetentionNotBlockedByUnwindingWorker(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) {
		c.MaximumThreads = 2
		c.MaximumFinishedActions = 1
		c.StopTimeout = 50 * time.Millisecond
	})
	stuck := b.submit(t, "ignorectx", 0)
	b.waitState(t, stuck, messages.State_STATE_PROCESSING)
	_, err := b.q.Stop(context.Background(), stuck)
	require.NoError(t, err)
	for i := 0; i < 5; i++ {
		tok := b.submit(t, "instant", 0)
		b.waitState(t, tok, messages.State_STATE_FINISHED)
	}
	qs, err := b.q.QueueStatus(context.Background())
	require.NoError(t, err)
	require.LessOrEqual(t, qs.Finished, uint64(1), "MaximumFinishedActions=1, yet %d finished actions are kept", qs.Finished)
}

// A panic in the QueueManager is answered with an internal error and does
// not restart it: its actions keep answering.
func TestManagerPanicDoesNotRestartIt(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tok := b.submit(t, "block", 0)
	b.waitState(t, tok, messages.State_STATE_PROCESSING)
	_, err := b.q.ask(context.Background(), b.q.pid, (*messages.ListActions)(nil)) // dereferences nil
	require.NoError(t, err, "the requester gets a reply, not a timeout")
	s, err := b.q.Status(context.Background(), tok)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_PROCESSING, s.State)
	next := b.submit(t, "instant", 0)
	b.waitState(t, next, messages.State_STATE_FINISHED)
}
