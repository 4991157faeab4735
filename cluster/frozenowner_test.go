package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// holdActor is a message whose handling holds the actor that gets it
// until hold is closed (protoactor calls GetAutoResponse on the actor's
// goroutine): the actor answers nothing meanwhile, as the actors of a node
// that is frozen (SIGSTOP, a paused VM) before its lease lapses.
type holdActor struct{ entered, hold chan struct{} }

func (h holdActor) GetAutoResponse(actor.Context) any {
	close(h.entered)
	<-h.hold
	return nil
}

// A list asked of a node shows every action the store selects, even one
// whose owner does not answer in time: as the store last had it, as for an
// owner that has left. It was left out of the list, silently (the list
// looked complete, and QueueStatus counted the action).
func TestListShowsAnActionWhoseOwnerDoesNotAnswer(t *testing.T) {
	c := newCluster(t, 2, 1)
	tok, owner, other, task := c.runningAction()
	h := holdActor{entered: make(chan struct{}), hold: make(chan struct{})}
	go owner.sys.Root.RequestFuture(task, h, time.Minute) // handled on that goroutine, which it holds
	<-h.entered
	defer close(h.hold)

	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	list, err := other.q.List(lctx, &messages.ListActions{})
	require.NoError(t, err)
	require.Len(t, list, 1, "the action whose owner does not answer is listed")
	require.Equal(t, tok, list[0].Token)
	require.Equal(t, messages.State_STATE_PROCESSING, list[0].State)
}
