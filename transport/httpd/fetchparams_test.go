package httpd

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unsafe"

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

// TestFetchResultsAreRecycledClean: a Fetch's reply object goes back to
// its pool holding nothing of its request (recycleFetch), and replies made
// from reused ones each carry their own token, with the submission's own
// priority and parameters, including after refused submissions.
func TestFetchResultsAreRecycledClean(t *testing.T) { // not parallel: it reads a pooled object
	f := fetchResults.Get().(*fetchResult)
	f.spec.Action, f.spec.FetchAction, f.spec.Priority, f.spec.Client = "FETCH", "COLLECT", 7, "client"
	f.spec.Params = messages.Params{{Name: "ConfigSection", Value: "MyTask"}}
	f.node[0] = aci.TokenNode("tok")
	f.data = f.node[:]
	f.recycle = recycleFetch
	recycleFetch(&f.result)
	require.Zero(t, f.result.data)
	require.Nil(t, f.result.recycle)
	require.Zero(t, f.node[0].Name)
	require.Empty(t, f.spec.FetchAction)
	require.Nil(t, f.spec.Params)
	require.Zero(t, f.spec.Priority)
	require.Empty(t, f.spec.Client)

	e := start(t, nil)
	x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Pause") // they stay queued, with their parameters
	require.Equal(t, "SUCCESS", x.Response, string(x.ResponseData.Inner))
	seen := map[string]bool{}
	for i := range 20 {
		if i%5 == 0 { // a refused one gives its object back too
			x := e.aci(t, "/action=Fetch&FetchAction=Nope&ConfigSection=MyTask")
			require.Equal(t, "ERROR", x.Response)
		}
		tok := e.submit(t, "Collect", "&Priority="+strconv.Itoa(i))
		require.False(t, seen[tok], "a new token each time")
		seen[tok] = true
		x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetActionParameters&Token="+url.QueryEscape(tok))
		require.Equal(t, "SUCCESS", x.Response, string(x.ResponseData.Inner))
		require.Contains(t, string(x.ResponseData.Inner), "MyTask")
		require.Contains(t, string(e.status(t, tok).ResponseData.Inner), "<priority>"+strconv.Itoa(i)+"</priority>")
	}
}

// TestQueuedParamsKeepNoRequestText: the kept names and values are in
// memory of their own, not in the parser's buffer of the whole request (a
// queued action would keep a request padded with a megabyte in a standard
// parameter it does not keep).
func TestQueuedParamsKeepNoRequestText(t *testing.T) {
	t.Parallel()
	body := "action=Fetch&FetchAction=Synchronize&TemplateParamCSVs=" + strings.Repeat("x", 1<<16) + "&ConfigSection=MyTask"
	req, err := aci.ParseLimited([]byte("POST"), []byte("/"), []byte("application/x-www-form-urlencoded"), []byte(body), aci.Limits{})
	require.NoError(t, err)
	var pad string
	for _, p := range req.Params {
		if p.GetName() == "TemplateParamCSVs" {
			pad = p.GetValue()
		}
	}
	require.Len(t, pad, 1<<16)
	p := queuedParams(req)
	require.Len(t, p, 1)
	require.Equal(t, "ConfigSection=MyTask", p[0].GetName()+"="+p[0].GetValue())
	// The parser's names and values share one buffer; the kept ones must not
	// lie in it.
	lo := uintptr(unsafe.Pointer(unsafe.StringData(pad)))
	hi := lo + uintptr(len(pad))
	for _, x := range p {
		for _, s := range []string{x.GetName(), x.GetValue()} {
			a := uintptr(unsafe.Pointer(unsafe.StringData(s)))
			require.False(t, a >= lo-4096 && a < hi+4096, "%q lies in the request's buffer", s)
		}
	}
}

// TestFetchIsAsynchronousWhateverSyncSays: the reference leaves open
// whether connectors honour Sync=true (a tutorial's hint for Identifiers)
// or Synchronous=true (Controller's, Content's); this server does not
// (protocol.md, Choices): a Fetch that asks for either still answers at
// once with a token, as every Fetch does, and the parameter is kept as
// sent, as any parameter the action does not know is.
func TestFetchIsAsynchronousWhateverSyncSays(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	for _, q := range []string{"&Sync=true", "&Synchronous=TRUE"} {
		// Synchronize runs until released: a Fetch that waited for its
		// action would answer only once it had ended, or not at all.
		tok := e.submit(t, "Synchronize", q)
		x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(tok))
		require.Len(t, x.ResponseData.Actions, 1, q)
		require.Contains(t, []string{"Queued", "Processing"}, x.ResponseData.Actions[0].Status, q)
		e.repo.Release(tok)
		e.waitStatus(t, tok, "Finished")
	}
}
