package httpd

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/connectorhq/connector/auth"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testwait"
)

// outcomes is a Metrics that keeps every request's outcome.
type outcomes struct {
	mu  sync.Mutex
	got []string // action outcome
}

func (o *outcomes) Request(_ auth.Port, action, outcome string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, action+" "+outcome)
}

func (o *outcomes) Serve(*fasthttp.RequestCtx) {}
func (o *outcomes) TLSHandshakeFailed()        {}

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
	e := startWith(t, setup{
		repo: func(r *testRepo) fetch.Repository { return bigTaskList{r, 8000} },
		front: func(c *Config) {
			c.Policy = queryOnlyPolicy(t)
			c.MaxConnectionsPerClient = 64
			c.MaxReplyBytesPerClient = 1 << 20
			c.Metrics = m
			c.WriteTimeout = 5 * time.Minute // the slow reader's reply is held, however slow -race is
		},
	})
	addr := strings.TrimPrefix(e.base, "http://")
	served := e.srv.served.Load()
	slowReader(t, addr, "GET /action=TaskList HTTP/1.1\r\nHost: x\r\n\r\n")
	testwait.For(t, 2*time.Minute, func() bool { return e.srv.served.Load() > served }, "the slow reader's request answered")
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
