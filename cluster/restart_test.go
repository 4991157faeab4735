package cluster_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// A node killed and started again on the same remoting port (a fixed
// RemotePort, and systemd's Restart=) is a new member at the old one's
// address, while the old one stays a member until its lease lapses. A
// request about one of the old process's actions went to that address,
// where the new process has no actor for it: a dead letter at once, and
// the request asked again and again for AskTimeout (10 s here), then
// failed ("the action kept moving between nodes"), and a list waited as
// long for each such action. Like a request about the actions of a node
// that died and is not back, it is answered from the store at once: the
// process that owned the action is gone.
//
// The queues' AskTimeout is long here, so that "at once" is told from
// "after AskTimeout" with a wide margin on a loaded machine; and the port
// is one no other process gets meanwhile (freeFixedPort).
func TestRequestAboutTheActionOfANodeRestartedOnItsPort(t *testing.T) {
	const askTimeout = 2 * time.Minute
	c := newClusterWith(t, pg.DatabaseT(t), 2, 1, clusterOptions{askTimeout: askTimeout, fixedPorts: true})
	tok, victim, asker, _ := c.runningAction()
	_, portText, err := net.SplitHostPort(victim.sys.Address())
	require.NoError(t, err)
	port, err := strconv.Atoi(portText)
	require.NoError(t, err)

	// Killed: its actors stop where they are, its remoting goes; its
	// membership stays (its lease has not lapsed).
	victim.sys.Root.StopFuture(actor.NewPID(victim.sys.Address(), "queue-fetch")).Wait()
	victim.q = nil
	remote.GetRemote(victim.sys).Shutdown(false)
	var live []*node
	for _, nd := range c.nodes {
		if nd != victim {
			live = append(live, nd)
		}
	}
	c.nodes = live
	t.Cleanup(func() { victim.mem.Leave(); victim.db.Close() })

	// Started again on the same port: a new member there.
	reborn := c.startAt("n1-again", 1, port)
	c.waitMembers(asker, 3)

	rctx, cancel := context.WithTimeout(ctx, askTimeout+time.Minute)
	defer cancel()
	began := time.Now()
	st, err := asker.q.Status(rctx, tok)
	took := time.Since(began)
	require.NoError(t, err, "GetStatus after %s", took)
	require.Equal(t, messages.State_STATE_PROCESSING, st.State, "the store's last state")
	require.Less(t, took, askTimeout/4, "GetStatus of the old process's action: answered at once, not after AskTimeout")

	began = time.Now()
	list, err := asker.q.List(rctx, &messages.ListActions{})
	took = time.Since(began)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Less(t, took, askTimeout/4, "a list holding the old process's action: answered at once, not after AskTimeout")

	began = time.Now()
	_, err = asker.q.Stop(rctx, tok)
	took = time.Since(began)
	require.ErrorIs(t, err, messages.ErrTimeout)
	require.ErrorContains(t, err, "has left the cluster")
	require.Less(t, took, askTimeout/4, "a Stop of the old process's action: answered at once, not after AskTimeout")

	// The new process's own actions are answered by it.
	mine, err := reborn.q.Submit(ctx, spec("instant", 0))
	require.NoError(t, err)
	c.waitState(mine, messages.State_STATE_FINISHED)
}
