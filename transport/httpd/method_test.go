package httpd

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestOtherMethodsRunNoAction: a request with an HTTP method ACI does not
// use (PUT, DELETE, OPTIONS, TRACE, PATCH, or GET spelt in lower case) is
// answered 405 Method Not Allowed with Allow: GET, HEAD, POST and an
// ERRORBADREQUEST reply naming the method, in the format it asked for,
// and runs nothing. On main every method was taken for GET or POST:
// DELETE /action=Fetch&FetchAction=Synchronize... queued a Synchronize,
// and an OPTIONS or TRACE probe ran the action its URL named. With
// Expect: 100-continue it is refused before its body is sent.
func TestOtherMethodsRunNoAction(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	const fetch = "/action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask"
	for _, m := range []string{"PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "get"} {
		req, err := http.NewRequest(m, e.base+fetch, strings.NewReader("Note=1"))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, m)
		require.Equal(t, "GET, HEAD, POST", resp.Header.Get("Allow"), m)
		require.Equal(t, "text/xml; charset=UTF-8", resp.Header.Get("Content-Type"), m)
		require.Contains(t, string(body), "<action>FETCH</action><response>ERROR</response>", m)
		require.Contains(t, string(body), "<errorcode>ERRORBADREQUEST</errorcode>", m)
		require.Contains(t, string(body), `the HTTP method "`+m+`" is not one of ACI's: send the request as GET or POST`, m)
	}
	req, err := http.NewRequest("DELETE", e.base+"/action=GetVersion&ResponseFormat=json", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	require.Equal(t, "application/json; charset=UTF-8", resp.Header.Get("Content-Type"))
	require.Contains(t, string(body), `"ERRORBADREQUEST"`)

	// Expect: 100-continue: refused at once, the body never asked for.
	c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(c, "PUT "+fetch+" HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n")
	require.NoError(t, err)
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(c, buf, len("HTTP/1.1 405"))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(buf[:n]), "HTTP/1.1 405 "), "%q", buf[:n])

	x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus")
	require.Equal(t, "SUCCESS", x.Response)
	require.Empty(t, x.ResponseData.Actions, "no method but GET and POST queues an action")
	entries := e.logEntries(t, "")
	require.Len(t, entries, 9)
	for _, en := range entries[:8] {
		require.Equal(t, "failure", en.Status, en.Request)
	}
	require.Equal(t, "action=FETCH&FetchAction=Synchronize&ConfigSection=MyTask", entries[0].Request)

	// GET, HEAD and POST still run actions.
	resp, err = http.Head(e.base + "/action=GetVersion")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, e.post(t, "/", "text/plain", []byte("action=GetVersion")), "<response>SUCCESS</response>")
}
