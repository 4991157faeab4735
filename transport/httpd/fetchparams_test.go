package httpd

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/transport/aci"
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

// TestQueuedParamsAreCopies: the parameters a Fetch's action keeps are
// copies of the request's (the parser's hold every parameter of the
// request, which a queued action would keep), in the order sent, the
// usual single one with its slice; the values are as sent.
func TestQueuedParamsAreCopies(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"action=Fetch&FetchAction=Identifiers&ConfigSection=EMPTY", []string{"ConfigSection=EMPTY"}},
		{"action=Fetch&ConfigSection=A%26B&FetchAction=Collect&Priority=2&ResponseFormat=json", []string{"ConfigSection=A&B"}},
		{"action=Fetch&FetchAction=Collect&Priority=1&Identifiers=x&fetchaction=y&Destination=d&ConfigSection=c",
			[]string{"Identifiers=x", "Destination=d", "ConfigSection=c"}},
		{"action=Fetch&FetchAction=Collect&PRIORITY=1", nil},
	} {
		req, err := aci.ParseLimited([]byte("GET"), []byte("/?"+c.query), nil, nil, aci.Limits{})
		require.NoError(t, err, c.query)
		p := queuedParams(req)
		var got []string
		for _, x := range p {
			got = append(got, x.GetName()+"="+x.GetValue())
			for _, orig := range req.Params {
				require.NotSame(t, orig, x, "%s: a copy, not the parser's parameter", c.query)
			}
		}
		require.Equal(t, c.want, got, c.query)
		require.Equal(t, len(p), cap(p), c.query)
		if c.want == nil {
			require.Nil(t, p, c.query)
		}
	}
}
