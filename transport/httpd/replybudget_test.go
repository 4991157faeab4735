package httpd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/connectorhq/connector/auth"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
)

// budgetServer starts a front end over repo (a testRepo wrapped) whose
// limited client (the test's, by policy) has a 1 MiB reply budget, and
// whose held replies stay held however slow -race on a loaded machine is
// (WriteTimeout); more, when set, changes the configuration further.
func budgetServer(t *testing.T, repo func(*testRepo) fetch.Repository, policy *auth.Policy, more func(*Config)) *env {
	t.Helper()
	return startWith(t, setup{repo: repo, front: func(c *Config) {
		c.Policy = policy
		c.MaxConnectionsPerClient = 64
		c.MaxReplyBytesPerClient = 1 << 20
		c.WriteTimeout = 5 * time.Minute
		if more != nil {
			more(c)
		}
	}})
}

// holdReply sends request as a slow reader (slowReader) and waits until
// it is answered: its reply is then held, and counted.
func holdReply(t *testing.T, e *env, request string) net.Conn {
	t.Helper()
	served := e.srv.served.Load()
	c := slowReader(t, strings.TrimPrefix(e.base, "http://"), request)
	testwait.For(t, 2*time.Minute, func() bool { return e.srv.served.Load() > served }, "the slow reader's request answered")
	return c
}

// randomTaskList is testRepo with a TaskList of n tasks whose datastores
// are 6000 random base64 letters: a large reply that compresses to about
// three quarters of its size.
type randomTaskList struct {
	*testRepo
	tasks []fetch.TaskInfo
}

func newRandomTaskList(r *testRepo, n int) randomTaskList {
	out := make([]fetch.TaskInfo, n)
	b := make([]byte, 4500)
	for i := range out {
		_, _ = rand.Read(b)
		out[i] = fetch.TaskInfo{Name: fmt.Sprintf("TASK%d", i), Action: "SYNCHRONIZE", Datastore: base64.RawURLEncoding.EncodeToString(b)}
	}
	return randomTaskList{r, out}
}

func (r randomTaskList) TaskList() ([]fetch.TaskInfo, error) { return r.tasks, nil }

// TestCompressedRepliesCountAgainstTheBudget: a client that asks for
// large replies compressed and does not read them is held to [Server]
// MaxReplyBytesPerClient as one that takes them uncompressed. Before, a
// compressed reply was not counted: the client's Accept-Encoding: gzip
// took it past the budget without limit (MaxConnectionsPerClient
// connections, each with a compressed reply of up to the reply's size
// when it compresses badly).
func TestCompressedRepliesCountAgainstTheBudget(t *testing.T) {
	t.Parallel()
	e := budgetServer(t, func(r *testRepo) fetch.Repository { return newRandomTaskList(r, 2000) }, queryOnlyPolicy(t), nil)
	// Compressed, the reply is about 9 MB: more than the socket buffers
	// (4 MiB at most) take, so the slow reader's stays held.
	holdReply(t, e, "GET /action=TaskList HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
	x := e.aci(t, "/action=TaskList") // Go's client asks for gzip
	require.Equal(t, "ERRORCLIENTLIMIT", x.ResponseData.Code, "a compressed reply while another of 8 MB waits, over a 1 MiB budget")
	require.Contains(t, x.ResponseData.Desc, "more than [Server] MaxReplyBytesPerClient (1048576 bytes)")
}

// randomView is testRepo whose View of "big" is n random bytes.
type randomView struct {
	*testRepo
	content []byte
}

func (r randomView) View(ctx context.Context, id string, p messages.Params) (*fetch.ViewResult, error) {
	if id != "big" {
		return r.testRepo.View(ctx, id, p)
	}
	return &fetch.ViewResult{Reference: "http://x/big", MimeType: "application/octet-stream", Content: r.content}, nil
}

// viewerPolicy gives localhost Query and View (not Admin: its connections
// are limited).
func viewerPolicy(t *testing.T) *auth.Policy {
	t.Helper()
	local, err := auth.ParseClients("localhost")
	require.NoError(t, err)
	p, err := auth.New([]auth.Role{{Name: "Viewers", Standard: auth.Query, Actions: []string{"View"}, Clients: local}})
	require.NoError(t, err)
	return p
}

// TestViewRepliesCountAgainstTheBudget: a View's document, raw
// (NoACI=true, the default) or compressed, counts against the client's
// [Server] MaxReplyBytesPerClient as any other large reply. Before, it was
// not counted at all: a client allowed View could have as many documents
// waiting as it had connections, each a copy of the whole document.
func TestViewRepliesCountAgainstTheBudget(t *testing.T) {
	t.Parallel()
	content := make([]byte, 8<<20)
	_, _ = rand.Read(content)
	e := budgetServer(t, func(r *testRepo) fetch.Repository { return randomView{r, content} }, viewerPolicy(t), nil)
	for _, enc := range []string{"", "Accept-Encoding: gzip\r\n"} {
		c := holdReply(t, e, "GET /action=View&Identifier=big HTTP/1.1\r\nHost: x\r\n"+enc+"\r\n")
		for _, gzip := range []bool{false, true} {
			req, err := http.NewRequest("GET", e.base+"/action=View&Identifier=big", nil)
			require.NoError(t, err)
			tr := &http.Transport{DisableCompression: !gzip}
			resp, err := (&http.Client{Transport: tr}).Do(req)
			require.NoError(t, err)
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			resp.Body.Close()
			tr.CloseIdleConnections()
			require.True(t, bytes.Contains(b, []byte("ERRORCLIENTLIMIT")), "a View (gzip %v) while another of 8 MiB waits (%q), over a 1 MiB budget: %d bytes", gzip, enc, len(b))
		}
		require.NoError(t, c.Close())
		// Its connection closing gives the budget back.
		testwait.For(t, 2*time.Minute, func() bool {
			_, b := e.get(t, "/action=View&Identifier=big")
			return len(b) == len(content)
		}, "the View sent once the slow reader has gone")
	}
}

// outcomes is a Metrics that keeps every request's outcome and counts
// the connections refused by port.
type outcomes struct {
	mu      sync.Mutex
	got     []string        // action outcome
	took    []time.Duration // each request's duration, in the order of got
	refused [2]int          // by auth.Port
}

func (o *outcomes) ConnectionRefused(port auth.Port) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refused[port&1]++
}

func (o *outcomes) refusedOn(port auth.Port) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.refused[port&1]
}

func (o *outcomes) Request(_ auth.Port, action, outcome string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, action+" "+outcome)
	o.took = append(o.took, d)
}

func (o *outcomes) durations() []time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]time.Duration(nil), o.took...)
}

func (o *outcomes) Serve(*fasthttp.RequestCtx) {}
func (o *outcomes) TLSHandshakeFailed()        {}

func (o *outcomes) all() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.got...)
}

func (o *outcomes) last() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.got) == 0 {
		return ""
	}
	return o.got[len(o.got)-1]
}

// TestBudgetRefusalIsAFailure: a reply refused for [Server]
// MaxReplyBytesPerClient (ERRORCLIENTLIMIT) is a failure in the request
// log and the metrics, as every other error reply is. Before, the request
// was recorded as a success: GetRequestLog and the failure rate of the
// metrics hid the refusals.
func TestBudgetRefusalIsAFailure(t *testing.T) {
	t.Parallel()
	m := &outcomes{}
	e := budgetServer(t, func(r *testRepo) fetch.Repository { return bigTaskList{r, 8000} }, queryOnlyPolicy(t), func(c *Config) { c.Metrics = m })
	holdReply(t, e, "GET /action=TaskList HTTP/1.1\r\nHost: x\r\n\r\n")
	x := uncompressed(t, e, "/action=TaskList")
	require.Equal(t, "ERRORCLIENTLIMIT", x.ResponseData.Code)
	require.Equal(t, "TaskList failure", m.last(), "the metrics' outcome")
	res, err := e.srv.cfg.System.Root.RequestFuture(e.srv.reqlog, &getLog{}, 5*time.Second).Result()
	require.NoError(t, err)
	entries := res.(*logReply).entries
	require.NotEmpty(t, entries)
	got := entries[len(entries)-1]
	require.Equal(t, "TASKLIST", got.action)
	require.Equal(t, "failure", got.status, "the request log's status")
}
