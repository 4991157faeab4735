package httpd

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
)

// TestFetchQueuesOnlyTheActionsParameters: a Fetch hands the queue the
// action's own parameters, in the order sent, without FetchAction and
// Priority (in any case) and without the standard ACI ones; the slice the
// queue keeps holds nothing else, and an action without parameters has
// none.
func TestFetchQueuesOnlyTheActionsParameters(t *testing.T) {
	t.Parallel()
	seen := make(chan messages.Params, 4)
	e := startWith(t, setup{repo: func(r *testRepo) fetch.Repository {
		inner := r.ValidateFunc
		r.ValidateFunc = func(fa string, p messages.Params) ([]string, error) {
			seen <- p
			if fa == "COLLECT" && len(p) == 0 {
				return []string{"MYTASK"}, nil
			}
			return inner(fa, p)
		}
		return r
	}})

	e.submit(t, "Collect", "&priority=3&Extra=x&FETCHACTION=Other&[MyTask]Depth=1")
	p := <-seen
	var names []string
	for _, x := range p {
		names = append(names, x.GetName()+"="+x.GetValue())
	}
	require.Equal(t, []string{"ConfigSection=MyTask", "Extra=x", "[MyTask]Depth=1"}, names)
	require.Equal(t, len(p), cap(p), "the kept slice holds only the action's parameters")

	x := e.aci(t, "/action=Fetch&FetchAction=Collect&Priority=2")
	require.Equal(t, "SUCCESS", x.Response, string(x.ResponseData.Inner))
	require.Nil(t, <-seen, "no parameters: none")
}
