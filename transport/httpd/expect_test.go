package httpd

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// expectRequest sends a POST of a body announced (not sent) with Expect:
// 100-continue, and returns the first response the server sends.
func expectRequest(t *testing.T, e *env, uri, extra string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(c, "POST "+uri+" HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
		extra+"Content-Length: 1000000\r\nExpect: 100-continue\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// TestExpectContinueRefusedByRoles: a request that its client's roles
// refuse (or that a browser sent from another site) by the action its
// request line names is answered with the ACI error at once, instead of
// "100 Continue": the client is not asked for a body it is refused for.
// Before, fasthttp answered "100 Continue" to every such request (its
// HeaderReceived hook sees no client address), and a client without
// Admin sent a Fetch's 64 MiB body to be told it may not send Fetch.
// A request the roles allow is still asked for its body, and one whose
// action may be in the body too.
func TestExpectContinueRefusedByRoles(t *testing.T) {
	t.Parallel()
	e := startWith(t, setup{front: func(c *Config) { c.Policy = queryOnlyPolicy(t) }})

	resp, body := expectRequest(t, e, "/action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask", "")
	require.Equal(t, 200, resp.StatusCode, "the refusal, not 100 Continue: %s", body)
	require.Contains(t, body, "may not send Fetch")
	require.Contains(t, body, "<action>FETCH</action>")
	require.True(t, resp.Close, "the connection is closed: the client may have started sending the body")

	resp, body = expectRequest(t, e, "/action=GetVersion", "Sec-Fetch-Site: cross-site\r\n")
	require.Equal(t, 200, resp.StatusCode, "the refusal, not 100 Continue: %s", body)
	require.Contains(t, body, "from another site")

	resp, _ = expectRequest(t, e, "/action=GetVersion", "")
	require.Equal(t, http.StatusContinue, resp.StatusCode, "an allowed action is asked for its body")
	resp, _ = expectRequest(t, e, "/", "")
	require.Equal(t, http.StatusContinue, resp.StatusCode, "the action is in the body")
	resp, _ = expectRequest(t, e, "/action=QueueInfo&QueueName=fetch", "")
	require.Equal(t, http.StatusContinue, resp.StatusCode, "its QueueAction, which decides, may be in the body")

	// Logged as refused, as any refusal.
	res, err := e.srv.cfg.System.Root.RequestFuture(e.srv.reqlog, &getLog{}, 5*time.Second).Result()
	require.NoError(t, err)
	var statuses []string
	for _, en := range res.(*logReply).entries {
		statuses = append(statuses, en.action+" "+en.status)
	}
	require.Contains(t, statuses, "FETCH denied")
	require.Contains(t, statuses, "GETVERSION denied")
}
