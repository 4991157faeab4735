package httpd

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/connectorhq/connector/actors/queue"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/fetch/fetchtest"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp's worker-pool cleaner notices Stop only after sleeping
		// MaxIdleWorkerDuration (10s): it ends by itself, after Shutdown.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		// Process-wide fasthttp singletons, started once and never stopped:
		// the Date header clock and the stackless compression workers.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp/stackless.funcWorker"))
}

// testRepo is the shared Repository double (fetchtest.Repo) set up so:
// SYNCHRONIZE counts five pages seen and one failure, then blocks until
// stopped or released; COLLECT finishes at once, BOOM panics. It serves
// View and TaskList too.
type testRepo struct{ *fetchtest.Repo }

func newTestRepo() *testRepo {
	r := &fetchtest.Repo{Actions: []string{"SYNCHRONIZE", "COLLECT", "BOOM"}}
	r.ValidateFunc = func(fa string, p messages.Params) ([]string, error) {
		sec, ok := p.Get("ConfigSection")
		if !ok {
			return nil, messages.Missing("ConfigSection")
		}
		if !strings.EqualFold(sec, "MyTask") {
			return nil, messages.Invalid("ConfigSection", sec, "no such task section")
		}
		if d := p.Value("[MyTask]Depth"); d != "" && d != "1" {
			return nil, messages.Invalid("[MyTask] Depth", d, "must be a whole number")
		}
		return []string{"MYTASK"}, nil
	}
	r.RunFunc = func(ctx context.Context, job *fetch.Job) ([]*messages.Element, error) {
		c := job.Counts("MYTASK")
		switch job.FetchAction {
		case "BOOM":
			panic("kaboom")
		case "COLLECT":
			c.Collected.Add(2)
			return []*messages.Element{{Name: "tasks", Children: []*messages.Element{
				{Name: "success", Text: "id1", List: true}, {Name: "success", Text: "id2", List: true}}}}, nil
		}
		c.Seen.Add(5)
		c.Errors.Add(1)
		job.Fail("MYTASK", "http://127.0.0.1:8000/gone.html", "unexpected HTTP status: HTTP 404")
		job.SetProgress(&messages.Progress{Percent: 50, Stage: "crawl"})
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-r.Gate(job.Token):
			return nil, nil
		}
	}
	return &testRepo{r}
}

func (r *testRepo) View(_ context.Context, id string, _ messages.Params) (*fetch.ViewResult, error) {
	if id == "caf\u00e9" {
		return &fetch.ViewResult{Reference: "http://x/caf%C3%A9", MimeType: "application/pdf", FileName: "caf\u00e9 \"1\".pdf", Content: []byte("%PDF-1.4")}, nil
	}
	if id != "doc1" {
		return nil, fmt.Errorf("%w: identifier %q", messages.ErrNotFound, id)
	}
	return &fetch.ViewResult{Reference: "http://x/doc1", MimeType: "text/html", FileName: "doc1.html", Content: []byte("<html>hello world</html>"),
		Metadata: []*messages.Param{{Name: "TITLE", Value: "Hello"}}}, nil
}

func (r *testRepo) TaskList() ([]fetch.TaskInfo, error) {
	return []fetch.TaskInfo{{Name: "MYTASK", Action: "SYNCHRONIZE", Calls: 3, Datastore: "data/connector.db",
		LastStart: time.Date(2026, 3, 4, 5, 6, 7, 0, time.Local), LastFinish: time.Date(2026, 3, 4, 5, 6, 9, 0, time.Local)}}, nil
}

type env struct {
	base string
	repo *testRepo
	srv  *Server
	q    *queue.Queue
}

func start(t *testing.T, mutate func(*queue.Config)) *env {
	t.Helper()
	return startWith(t, setup{mutate: mutate})
}

// setup varies the server start builds: a repository wrapping testRepo
// (default: testRepo itself), a logger for the front end, a queue config.
type setup struct {
	repo    func(*testRepo) fetch.Repository
	logger  *slog.Logger
	mutate  func(*queue.Config)
	version *Version      // default testVersion
	front   func(*Config) // changes the front end's configuration
}

// testVersion is what the test servers report unless a setup says otherwise.
var testVersion = Version{Version: "1.2.3", Revision: "0123456789ab", Build: 421}

func startWith(t *testing.T, o setup) *env {
	t.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond))
	repo := newTestRepo()
	var front fetch.Repository = repo
	if o.repo != nil {
		front = o.repo(repo)
	}
	version := testVersion
	if o.version != nil {
		version = *o.version
	}
	fc := Config{System: sys, Repository: front, Logger: o.logger, Version: version}
	if o.front != nil {
		o.front(&fc)
	}
	// Ended actions keep their list entries encoded, as the server
	// assembles it (on the front end's clock): every list test reads them.
	qc := queue.Config{Name: "fetch", Repository: front, MaximumThreads: 1, TokenPort: 7000, ListEntry: ListEntry}
	if fc.Now != nil {
		qc.ListEntry = ListEntryAt(fc.Now)
	}
	if o.mutate != nil {
		o.mutate(&qc)
	}
	q, err := queue.Start(sys, qc)
	require.NoError(t, err)
	fc.Queue = q
	srv, err := New(fc)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		repo.ReleaseAll()
		// The client's idle connections are closed first, so that the
		// server has none left to wait for; the deadline is one for a
		// machine loaded by a whole suite under -race (5 s was seen
		// passed, load ≈ 36 on 2 cores), not a time the test expects.
		http.DefaultClient.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		require.NoError(t, <-done)
		require.NoError(t, q.Shutdown(ctx))
		sys.Shutdown()
	})
	return &env{base: "http://" + ln.Addr().String(), repo: repo, srv: srv, q: q}
}

// xresp is the parts of an autnresponse the tests look at.
type xresp struct {
	Action       string `xml:"action"`
	Response     string `xml:"response"`
	ResponseData struct {
		Inner   []byte   `xml:",innerxml"`
		Token   string   `xml:"token"`
		ErrorID string   `xml:"error>errorid"`
		Code    string   `xml:"error>errorcode"`
		Desc    string   `xml:"error>errordescription"`
		Actions []action `xml:"actions>action"`
	} `xml:"responsedata"`
}

// action is one <action> of a GetStatus reply.
type action struct {
	Status   string `xml:"status"`
	Token    string `xml:"token"`
	Priority string `xml:"priority"`
	Counts   []struct {
		Seen string `xml:"seen,attr"`
		Task string `xml:"task,attr"`
	} `xml:"documentcounts>documentcount"`
}

func (e *env) get(t *testing.T, path string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(e.base + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

func (e *env) aci(t *testing.T, path string) xresp {
	t.Helper()
	resp, body := e.get(t, path)
	require.Equal(t, 200, resp.StatusCode, "ACI replies are always HTTP 200: %s", body)
	require.Equal(t, "text/xml; charset=UTF-8", resp.Header.Get("Content-Type"))
	require.NotContains(t, string(body), "<!DOCTYPE")
	var x xresp
	require.NoError(t, xml.Unmarshal(body, &x), string(body))
	return x
}

func (e *env) submit(t *testing.T, fa string, extra string) string {
	t.Helper()
	x := e.aci(t, "/action=Fetch&FetchAction="+fa+"&ConfigSection=MyTask"+extra)
	require.Equal(t, "SUCCESS", x.Response, string(x.ResponseData.Inner))
	require.Equal(t, "FETCH", x.Action)
	require.NotEmpty(t, x.ResponseData.Token)
	return x.ResponseData.Token
}

func (e *env) status(t *testing.T, tok string) xresp {
	t.Helper()
	return e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(tok))
}

func (e *env) waitStatus(t *testing.T, tok, want string) xresp {
	t.Helper()
	return e.waitAction(t, tok, "status "+want, func(a action) bool { return a.Status == want })
}

// waitAction polls the action's GetStatus until ok holds for it.
func (e *env) waitAction(t *testing.T, tok, what string, ok func(action) bool) xresp {
	t.Helper()
	var x xresp
	testwait.For(t, 10*time.Second, func() bool {
		x = e.status(t, tok)
		return len(x.ResponseData.Actions) == 1 && ok(x.ResponseData.Actions[0])
	}, "%s", what)
	return x
}

func TestTourSubmitStatusStopCancel(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	run := e.submit(t, "synchronize", "")
	// The status turns Processing before the worker has counted anything:
	// wait for the counts themselves.
	x := e.waitAction(t, run, "Processing with seen=5", func(a action) bool {
		return a.Status == "Processing" && len(a.Counts) == 1 && a.Counts[0].Seen == "5"
	})
	require.Equal(t, "5", x.ResponseData.Actions[0].Counts[0].Seen, "counts are live")
	require.Equal(t, "MYTASK", x.ResponseData.Actions[0].Counts[0].Task)

	queued := e.submit(t, "Collect", "&Priority=3")
	x = e.status(t, queued)
	require.Equal(t, "Queued", x.ResponseData.Actions[0].Status)
	require.Equal(t, "3", x.ResponseData.Actions[0].Priority)

	// Cancel of the running one points to Stop.
	x = e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Cancel&Token="+url.QueryEscape(run))
	require.Equal(t, "ERROR", x.Response)
	require.Contains(t, x.ResponseData.Desc, "QueueAction=Stop")

	x = e.aci(t, "/action=QueueInfo&QueueName=Fetch&QueueAction=cancel&Token="+url.QueryEscape(queued))
	require.Equal(t, "SUCCESS", x.Response)
	require.Equal(t, "Cancelled", x.ResponseData.Actions[0].Status)

	x = e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Stop&Token="+url.QueryEscape(run))
	require.Equal(t, "SUCCESS", x.Response)
	require.Equal(t, "Stopped", x.ResponseData.Actions[0].Status)
	require.Equal(t, "5", x.ResponseData.Actions[0].Counts[0].Seen, "partial counts kept")

	all := e.aci(t, "/?Action=QueueInfo&QueueName=fetch&QueueAction=GetStatus")
	require.Len(t, all.ResponseData.Actions, 2)
	require.Equal(t, queued, all.ResponseData.Actions[0].Token, "most recent first")
}

func TestPanicInRepositoryIsError(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	tok := e.submit(t, "BOOM", "")
	x := e.waitStatus(t, tok, "Error")
	require.Contains(t, string(x.ResponseData.Inner), "<error>panic: kaboom</error>")
	// the server still serves
	tok = e.submit(t, "COLLECT", "")
	x = e.waitStatus(t, tok, "Finished")
	require.Contains(t, string(x.ResponseData.Inner), "<tasks><success>id1</success><success>id2</success></tasks>")
}

func TestErrors(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	for _, tc := range []struct {
		desc, path, code, desc2 string
	}{
		{"unknown action", "/action=Frobnicate", "ERRORNOTIMPLEMENTED", ""},
		{"no action", "/?foo=bar", "", "Action"},
		{"missing fetchaction", "/action=Fetch&ConfigSection=MyTask", "", "FetchAction"},
		{"bad fetchaction", "/action=Fetch&FetchAction=Explode&ConfigSection=MyTask", "ERRORPARAMINVALID", "FetchAction"},
		{"bad priority", "/action=Fetch&FetchAction=Collect&ConfigSection=MyTask&Priority=high", "ERRORPARAMINVALID", "Priority"},
		{"repository refuses", "/action=Fetch&FetchAction=Collect&ConfigSection=Nope", "ERRORPARAMINVALID", "ConfigSection"},
		{"override refused", "/action=Fetch&FetchAction=Collect&ConfigSection=MyTask&%5BMyTask%5DDepth=deep", "ERRORPARAMINVALID", "[MyTask] Depth"},
		{"unknown queue", "/action=QueueInfo&QueueName=ingest&QueueAction=GetStatus", "", "ingest"},
		{"missing queue action", "/action=QueueInfo&QueueName=fetch", "", "QueueAction"},
		{"bad queue action", "/action=QueueInfo&QueueName=fetch&QueueAction=Explode", "ERRORPARAMINVALID", "QueueAction"},
		{"garbled token", "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token=%25%25garbage", "", "token"},
		{"cancel needs token", "/action=QueueInfo&QueueName=fetch&QueueAction=Cancel", "", "Token"},
		{"changepriority needs priority", "/action=QueueInfo&QueueName=fetch&QueueAction=ChangePriority&Token=abc", "", "Priority"},
		{"bad state filter", "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&State=sleepy", "ERRORPARAMINVALID", "State"},
		{"bad sort", "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Sort-By=colour", "ERRORPARAMINVALID", "Sort-By"},
		// Names are matched in ASCII case only: a capital I with a dot is
		// not an I, a long s not an s.
		{"sort by with a dotted I", "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Sort-By=pr%C4%B0ority", "ERRORPARAMINVALID", "Sort-By"},
		{"state with a long s", "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&State=Pau%C5%BFed", "ERRORPARAMINVALID", "State"},
		{"bad time", "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Queued-After=yesterday", "ERRORPARAMINVALID", "Queued-After"},
		{"bad format", "/action=GetVersion&ResponseFormat=yaml", "ERRORPARAMINVALID", "ResponseFormat"},
		{"view unknown", "/action=View&Identifier=nope", "", "nope"},
		{"view bad range", "/action=View&Identifier=doc1&Range=bytes=99-", "ERRORPARAMINVALID", "Range"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			x := e.aci(t, tc.path)
			require.Equal(t, "ERROR", x.Response)
			require.NotEmpty(t, x.ResponseData.ErrorID)
			if tc.code != "" {
				require.Equal(t, tc.code, x.ResponseData.Code)
			}
			require.Contains(t, strings.ToLower(x.ResponseData.Desc), strings.ToLower(tc.desc2))
		})
	}
}

func TestUnknownTokenError(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	tok := messages.NewToken("127.0.0.1", 7000, "FETCH", [16]byte{0x01, 0x90, 0, 0, 0, 0, 0x70, 0, 0x80})
	x := e.status(t, tok)
	require.Equal(t, "ERROR", x.Response)
	y := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token=bm9wZQ==")
	require.Equal(t, x.ResponseData.Code, y.ResponseData.Code, "garbled and never-issued tokens get the same error")
}

func TestQueueFullIsClearError(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *queue.Config) { c.MaximumQueueSize = 1 })
	run := e.submit(t, "Synchronize", "")
	e.waitStatus(t, run, "Processing")
	e.submit(t, "Synchronize", "")
	x := e.aci(t, "/action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask")
	require.Equal(t, "ERROR", x.Response)
	require.Contains(t, x.ResponseData.Desc, "MaximumQueueSize=1")
}

func TestQueueActions(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	run := e.submit(t, "Synchronize", "")
	e.waitStatus(t, run, "Processing")
	q1 := e.submit(t, "Collect", "")
	q2 := e.submit(t, "Collect", "")
	esc := url.QueryEscape

	x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=ChangePriority&Priority=10&Token="+esc(q2))
	require.Equal(t, "10", x.ResponseData.Actions[0].Priority)

	// The worker reports its stage after it starts (Processing): poll.
	testwait.For(t, 10*time.Second, func() bool {
		x = e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Progress&Token="+esc(run))
		require.Equal(t, "SUCCESS", x.Response)
		return strings.Contains(string(x.ResponseData.Inner), "crawl")
	}, "the running action's progress stage")

	x = e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetActionParameters&Token="+esc(q1))
	require.Contains(t, string(x.ResponseData.Inner), `<parameter name="ConfigSection">MyTask</parameter>`)

	x = e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Duplicate&Token="+esc(q1))
	require.NotEmpty(t, x.ResponseData.Token)
	require.NotEqual(t, q1, x.ResponseData.Token)

	x = e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Pause")
	require.Contains(t, string(x.ResponseData.Inner), "<paused>true</paused>")
	e.waitStatus(t, run, "Paused")
	x = e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=QueueStatus")
	require.Contains(t, string(x.ResponseData.Inner), "<paused>true</paused>")
	x = e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Resume")
	require.Contains(t, string(x.ResponseData.Inner), "<paused>false</paused>")
	e.waitStatus(t, run, "Processing")

	x = e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Pause&Token="+esc(q1))
	require.Equal(t, "Paused", x.ResponseData.Actions[0].Status)
	x = e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Resume&Token="+esc(q1))
	require.Equal(t, "Queued", x.ResponseData.Actions[0].Status)

	x = e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&State=queued&Sort-By=priority&Sort-Order=descending&MaxResults=1")
	require.Len(t, x.ResponseData.Actions, 1)
	require.Equal(t, q2, x.ResponseData.Actions[0].Token)

	x = e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetActionParameters")
	require.Len(t, x.ResponseData.Actions, 4)
}

func TestPostForms(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	for name, tc := range map[string]struct{ ct, body string }{
		"java text/plain": {"text/plain; charset=ISO-8859-1", "action=Fetch&FetchAction=Collect&ConfigSection=MyTask"},
		"lines":           {"", "action=Fetch\r\nFetchAction=Collect\r\nConfigSection=MyTask\r\n"},
		"urlencoded":      {"application/x-www-form-urlencoded", "Action=Fetch&FetchAction=Collect&ConfigSection=My%54ask"},
	} {
		resp, err := http.Post(e.base+"/", tc.ct, strings.NewReader(tc.body))
		require.NoError(t, err, name)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var x xresp
		require.NoError(t, xml.Unmarshal(body, &x))
		require.Equal(t, "SUCCESS", x.Response, "%s: %s", name, body)
		require.NotEmpty(t, x.ResponseData.Token, name)
	}
}

func TestJSONFormats(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	tok := e.submit(t, "Collect", "")
	e.waitStatus(t, tok, "Finished")
	resp, body := e.get(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&ResponseFormat=simplejson&Token="+url.QueryEscape(tok))
	require.Equal(t, "application/json; charset=UTF-8", resp.Header.Get("Content-Type"))
	var sj struct {
		Autnresponse struct {
			Action       string
			Response     string
			Responsedata struct {
				Actions struct {
					Action []struct {
						Status string `json:"status"`
						Token  string `json:"token"`
					} `json:"action"`
				} `json:"actions"`
			} `json:"responsedata"`
		} `json:"autnresponse"`
	}
	require.NoError(t, json.Unmarshal(body, &sj), string(body))
	require.Equal(t, "QUEUEINFO", sj.Autnresponse.Action)
	require.Equal(t, "Finished", sj.Autnresponse.Responsedata.Actions.Action[0].Status)
	_, body = e.get(t, "/action=GetVersion&ResponseFormat=json")
	require.True(t, json.Valid(body))
	require.Contains(t, string(body), `"autn:version":{"$":"1.2.3"}`)
}

func TestGzip(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	get := func(t *testing.T, path string) (*http.Response, []byte) {
		req, err := http.NewRequest("GET", e.base+path, nil)
		require.NoError(t, err)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := http.DefaultTransport.RoundTrip(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var r io.Reader = resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(resp.Body)
			require.NoError(t, err)
			r = zr
		}
		body, err := io.ReadAll(r)
		require.NoError(t, err)
		return resp, body
	}
	// A small reply goes as it is: compressing it gains the client nothing.
	resp, body := get(t, "/action=GetPid")
	require.Less(t, len(body), compressMin)
	require.Empty(t, resp.Header.Get("Content-Encoding"))
	require.Contains(t, string(body), "<action>GETPID</action>")
	// A reply of at least compressMin bytes is compressed: the request log
	// grows with every request until its reply is that long.
	testwait.For(t, 10*time.Second, func() bool {
		resp, body = get(t, "/action=GetRequestLog")
		return len(body) >= compressMin
	}, "a request log reply of at least compressMin bytes")
	require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
	require.Contains(t, string(body), "<action>GETREQUESTLOG</action>")
	require.Contains(t, string(body), "<autn:action>GETPID</autn:action>")
}

func TestGetVersionAndRequestLog(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	x := e.aci(t, "/a=getversion")
	require.Equal(t, "GETVERSION", x.Action)
	for _, f := range []string{"autn:version>1.2.3<", "autn:productname>connector<", "autn:build>421<", "autn:aciversion>1.2.3+0123456789ab<", "<autn:servertime><autn:epoch>", "<autn:uptime><autn:uptime>"} {
		require.Contains(t, string(x.ResponseData.Inner), f)
	}
	e.aci(t, "/action=GetStatus")
	testwait.For(t, 10*time.Second, func() bool {
		x = e.aci(t, "/action=GetRequestLog&MaxEntries=2")
		return strings.Count(string(x.ResponseData.Inner), "<logentry>") == 2
	}, "two request log entries")
	require.Contains(t, string(x.ResponseData.Inner), "<autn:action>GETSTATUS</autn:action>")
	require.Contains(t, string(x.ResponseData.Inner), "<autn:client>127.0.0.1</autn:client>")
}

func TestViewAndTaskList(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	resp, body := e.get(t, "/action=View&Identifier=doc1")
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "text/html", resp.Header.Get("Content-Type"))
	require.Equal(t, "<html>hello world</html>", string(body))

	require.Equal(t, `inline; filename="doc1.html"`, resp.Header.Get("Content-Disposition"))

	// A name that is not ASCII is sent as RFC 6266 says, with an ASCII
	// fallback: raw UTF-8 in a header is read as Latin-1 by browsers.
	resp, _ = e.get(t, "/action=View&Identifier=caf%C3%A9")
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, `inline; filename="caf_ \"1\".pdf"; filename*=UTF-8''caf%C3%A9%20%221%22.pdf`, resp.Header.Get("Content-Disposition"))

	resp, body = e.get(t, "/action=View&Identifier=doc1&Range=bytes=6-10")
	require.Equal(t, 206, resp.StatusCode)
	require.Equal(t, "hello", string(body))
	require.Equal(t, "bytes 6-10/24", resp.Header.Get("Content-Range"))

	x := e.aci(t, "/action=View&Identifier=doc1&NoACI=false")
	require.Contains(t, string(x.ResponseData.Inner), "<mime-type>text/html</mime-type>")
	require.Contains(t, string(x.ResponseData.Inner), "<content>PGh0bWw+aGVsbG8gd29ybGQ8L2h0bWw+</content>")
	require.Contains(t, string(x.ResponseData.Inner), `<field name="TITLE">Hello</field>`)

	x = e.aci(t, "/action=TaskList&MatchName=my*")
	require.Contains(t, string(x.ResponseData.Inner), "<task><name>MYTASK</name><action>SYNCHRONIZE</action><calls>3</calls>")
	require.Contains(t, string(x.ResponseData.Inner), "<lastStartTime>2026-Mar-04 05:06:07</lastStartTime>")
	x = e.aci(t, "/action=TaskList&MatchName=other")
	require.NotContains(t, string(x.ResponseData.Inner), "<task>")
}

func TestMalformedHTTPNeverKillsServer(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	addr := strings.TrimPrefix(e.base, "http://")
	for _, raw := range []string{
		"GARBAGE\r\n\r\n",
		"GET /action=GetVersion HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=zz\r\nContent-Length: 12\r\n\r\n--zz\r\nbroken",
		"GET /" + strings.Repeat("a", 40000) + " HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		exchange(t, addr, raw)
	}
	x := e.aci(t, "/action=GetVersion")
	require.Equal(t, "SUCCESS", x.Response)

	// A malformed escape (that Go's client would refuse to send) is an ACI error.
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("GET /action=GetVersion&x=%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
	require.NoError(t, err)
	raw, err := io.ReadAll(c)
	require.NoError(t, err)
	require.Contains(t, string(raw), "HTTP/1.1 200 OK")
	require.Contains(t, string(raw), "<response>ERROR</response>")
	require.Contains(t, string(raw), `invalid percent escape in the value of parameter "x"`)
}

func TestConcurrentLoad(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *queue.Config) { c.MaximumThreads = 4; c.MaximumFinishedActions = 100000 })
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for c := 0; c < 16; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				resp, err := http.Get(e.base + "/action=Fetch&FetchAction=Collect&ConfigSection=MyTask")
				if err != nil {
					errs <- err
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !bytes.Contains(body, []byte("<token>")) {
					errs <- errors.New(string(body))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	testwait.For(t, 60*time.Second, func() bool {
		x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=QueueStatus")
		return strings.Contains(string(x.ResponseData.Inner), "<finished>400</finished>")
	}, "400 actions finished")
}

// A ChangePriority whose Priority is present but blank is refused as
// missing, as a blank Token is an unknown one: it used to succeed and set
// the action's priority to 0, so a client whose variable was empty moved
// the action silently.
func TestChangePriorityBlankPriorityIsMissing(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Pause")
	require.Equal(t, "SUCCESS", x.Response)
	tok := e.submit(t, "Collect", "&Priority=5")
	for _, blank := range []string{"", "%20", "%09"} {
		x = e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=ChangePriority&Token="+url.QueryEscape(tok)+"&Priority="+blank)
		require.Equal(t, "ERROR", x.Response, "Priority=%q", blank)
		require.Contains(t, x.ResponseData.Desc, "Priority")
		x = e.status(t, tok)
		require.Contains(t, string(x.ResponseData.Inner), "<priority>5</priority>", "Priority=%q changed nothing", blank)
	}
}
