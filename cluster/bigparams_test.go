package cluster_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// An action's parameters may be as large as a request (64 MiB by
// default); a node that does not own the action gets them from its owner
// in one remoting message. Past gRPC's default 4 MiB receive limit that
// reply was refused by the receiving node and the request timed out.
func TestLargeParametersFromAnotherNode(t *testing.T) {
	// Six MiB through PostgreSQL and remoting under -race on a loaded
	// machine outlasted the default 10 s AskTimeout and 30 s store
	// deadline; the defect was a refusal, not slowness.
	c := newClusterWith(t, pg.DatabaseT(t), 2, 1, clusterOptions{askTimeout: 2 * time.Minute, storeTimeout: 2 * time.Minute})
	big := strings.Repeat("x", 6<<20)
	sp := spec("block", 0)
	sp.Params = append(sp.Params, &messages.Param{Name: "Big", Value: big})
	tok, err := c.nodes[0].q.Submit(ctx, sp)
	require.NoError(t, err)
	c.waitState(tok, messages.State_STATE_PROCESSING)
	asker := c.other(c.ownerOf(tok))

	r, err := asker.q.ActionParameters(ctx, tok)
	require.NoError(t, err)
	require.Equal(t, len(big), len(messages.Params(r.Params).Value("Big")))
	require.Equal(t, big, messages.Params(r.Params).Value("Big"))

	ps, err := asker.q.ListParams(ctx, 0, 10)
	require.NoError(t, err)
	require.Len(t, ps, 1)
	require.Equal(t, big, messages.Params(ps[0].Params).Value("Big"))
}
