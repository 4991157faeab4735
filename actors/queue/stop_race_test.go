package queue

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
)

// TestChangeRacingTheQueuesStopIsAnswered: a change (Cancel, Stop,
// ChangePriority, ...) waits for its reply without a timeout, since it is
// answered once on disk. When the QueueManager stops, protoactor drops
// the user messages still in its mailbox without a reply: here the Cancel's
// report (TaskChanged, which carries the requester), handled by the task
// actor while the QueueManager was busy, and queued behind the Stop. The
// Cancel waited forever (as did a request for a queued action without an
// actor, whose lookup goes through the QueueManager); it now ends with
// ErrShuttingDown once the QueueManager has stopped.
func TestChangeRacingTheQueuesStopIsAnswered(t *testing.T) {
	t.Parallel()
	var block atomic.Bool
	entered, gate := make(chan struct{}), make(chan struct{})
	b := setup(t, func(c *Config) {
		ids := newIDSource(time.Now)
		c.NewID = func() (uuid.UUID, error) {
			if block.Load() {
				entered <- struct{}{}
				<-gate // holds the QueueManager
			}
			return ids.NewID()
		}
	})
	ctx := context.Background()
	_, err := b.q.Pause(ctx)
	require.NoError(t, err)
	tok := b.submit(t, "instant", 0)
	_, err = b.q.Status(ctx, tok) // its task actor is spawned now
	require.NoError(t, err)

	block.Store(true)
	submitted := make(chan error, 1)
	go func() {
		_, err := b.q.Submit(ctx, &messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE", Tasks: []string{"MYTASK"},
			Params: messages.Params{{Name: "ConfigSection", Value: "MyTask"}, {Name: "Mode", Value: "instant"}}})
		submitted <- err
	}()
	<-entered
	cancelled := make(chan error, 1)
	go func() {
		_, err := b.q.Cancel(ctx, tok)
		cancelled <- err
	}()
	// The task actor has handled the Cancel (it answers GetStatus itself):
	// its report is in the QueueManager's mailbox.
	testwait.For(t, 10*time.Second, func() bool {
		s, err := b.q.Status(ctx, tok)
		require.NoError(t, err)
		return s.State == messages.State_STATE_CANCELLED
	}, "the task actor cancelled")
	stopped := b.sys.Root.StopFuture(b.q.pid)
	close(gate)
	require.NoError(t, <-submitted)
	require.NoError(t, stopped.Wait())

	select {
	case err := <-cancelled:
		require.True(t, errors.Is(err, messages.ErrShuttingDown), "err = %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the Cancel is still waiting after the queue stopped")
	}
}
