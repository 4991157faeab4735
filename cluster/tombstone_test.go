package cluster_test

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// escapeRecovery is a message whose handling panics outside the task
// actor's recovery, as a failure the task cannot catch would: protoactor
// calls an AutoRespond message's GetAutoResponse after the actor's
// Receive, so the panic reaches the QueueManager's supervision, which
// keeps the action as an Error tombstone and stops the actor.
type escapeRecovery struct{}

func (escapeRecovery) GetAutoResponse(actor.Context) any {
	panic("injected failure outside task.Receive")
}

// runningAction submits an action that runs until the test releases it,
// and returns its token, the node that runs it, another node, and its
// task actor.
func (c *testCluster) runningAction() (tok string, owner, other *node, task *actor.PID) {
	c.t.Helper()
	tok, err := c.nodes[0].q.Submit(ctx, spec("block", 0))
	require.NoError(c.t, err)
	c.waitState(tok, messages.State_STATE_PROCESSING)
	owner = c.ownerOf(tok)
	_, id, err := messages.ParseToken(tok)
	require.NoError(c.t, err)
	return tok, owner, c.other(owner), actor.NewPID(owner.sys.Address(), "queue-fetch/"+id.String())
}

// An action whose task actor failed (a tombstone: status Error, "task
// actor failed: ...") answers the same from every node. Its owner answers
// for it from its QueueManager, but a request from another node went to
// the stopped actor, got a dead letter, and asked the owner's actor
// again, and again, for AskTimeout: GetStatus failed with "the
// action kept moving between nodes, or its owner of record had no actor
// for it", and a list left the action out, although the store had its
// Error since the owner's next commit.
//
// AskTimeout is long here, so that "at once" is told from "after
// AskTimeout" with a wide margin on a loaded machine.
func TestTombstoneAnswersFromEveryNode(t *testing.T) {
	const askTimeout = 2 * time.Minute
	c := newClusterWith(t, pg.DatabaseT(t), 2, 1, clusterOptions{askTimeout: askTimeout})
	tok, owner, other, task := c.runningAction()
	_, _ = owner.sys.Root.RequestFuture(task, escapeRecovery{}, 10*time.Second).Result()

	st, err := owner.q.Status(ctx, tok)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_ERROR, st.State, "the owner answers from its tombstone")
	require.Contains(t, st.Error, "task actor failed")

	asked := time.Now()
	st, err = other.q.Status(ctx, tok)
	require.NoError(t, err, "asked of another node (%s)", time.Since(asked))
	require.Equal(t, messages.State_STATE_ERROR, st.State)
	require.Contains(t, st.Error, "task actor failed")
	require.Less(t, time.Since(asked), askTimeout/4, "answered at once, not after AskTimeout")
	_, err = other.q.Cancel(ctx, tok)
	require.ErrorIs(t, err, messages.ErrActionEnded)

	list, err := other.q.List(ctx, &messages.ListActions{})
	require.NoError(t, err)
	require.Len(t, list, 1, "the list from another node shows it")
	require.Equal(t, tok, list[0].Token)
	require.Equal(t, messages.State_STATE_ERROR, list[0].State)
}
