package cluster_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/pgtest"
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
//
// The owner is waited for AskTimeout (3 s here), and the list has a minute
// in all, so that a loaded machine does not run the list out of time.
func TestListShowsAnActionWhoseOwnerDoesNotAnswer(t *testing.T) {
	c := newClusterWith(t, pg.DatabaseT(t), 2, 1, clusterOptions{askTimeout: 3 * time.Second})
	tok, owner, other, task := c.runningAction()
	h := holdActor{entered: make(chan struct{}), hold: make(chan struct{})}
	go owner.sys.Root.RequestFuture(task, h, time.Minute) // handled on that goroutine, which it holds
	<-h.entered
	defer close(h.hold)

	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	list, err := other.q.List(lctx, &messages.ListActions{})
	require.NoError(t, err)
	require.Len(t, list, 1, "the action whose owner does not answer is listed")
	require.Equal(t, tok, list[0].Token)
	require.Equal(t, messages.State_STATE_PROCESSING, list[0].State)
}

// GetStatus asked of a node that does not own the action, while PostgreSQL
// does not answer (its host frozen, or cut off without a reset: the
// connections stay open, nothing comes back), read the owner of record
// from the store, and waited for the store's deadline (30 s) before it
// asked the nodes who owns the action, although the owner answers in
// milliseconds: a client's poll, or a health check, timed out first. The
// nodes are asked once the store has not answered within RequestTimeout.
//
// The store's deadline is long here, so that "within RequestTimeout" is
// told from "after the store's deadline" with a wide margin on a loaded
// machine.
func TestStatusWhilePostgreSQLDoesNotAnswerAsksTheOwner(t *testing.T) {
	const storeTimeout = 2 * time.Minute
	own := pgtest.StartT(t, pgtest.Options{})
	c := newClusterWith(t, own.DatabaseT(t), 2, 1, clusterOptions{storeTimeout: storeTimeout})
	tok, _, asker, _ := c.runningAction()

	// PostgreSQL stops (its connections stay open), and goes on before
	// the nodes stop (cleanups run last first).
	require.NoError(t, own.Signal(syscall.SIGSTOP))
	t.Cleanup(func() { _ = own.Signal(syscall.SIGCONT) })

	for _, call := range []struct {
		name string
		ask  func() (messages.State, error)
	}{
		{"GetStatus", func() (messages.State, error) {
			st, err := asker.q.Status(ctx, tok)
			return st.GetState(), err
		}},
		{"Progress", func() (messages.State, error) {
			r, err := asker.q.Progress(ctx, tok)
			return r.GetStatus().GetState(), err
		}},
	} {
		began := time.Now()
		state, err := call.ask()
		took := time.Since(began)
		t.Logf("%s took %s", call.name, took)
		require.NoError(t, err, call.name)
		require.Equal(t, messages.State_STATE_PROCESSING, state, call.name)
		require.Less(t, took, storeTimeout/4, "%s of a running action while the store does not answer: the owner asked, not the store waited for", call.name)
	}
}
