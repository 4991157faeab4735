package httpd

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/actors/queue"
	"github.com/connectorhq/connector/transport/aci"
)

// TestRequestLimits: too many parameters, and a body larger than its
// action's limit, get ERRORREQUESTTOOLARGE naming the limit (issue 9: a
// 16 MiB POST of tiny parameters peaked at 1.76 GB).
func TestRequestLimits(t *testing.T) {
	t.Parallel()
	e := startWith(t, setup{front: func(c *Config) {
		c.MaxRequestBytes = 4 << 20
		c.MaxRequestParameters = 16
	}})
	post := func(path, ct string, body []byte) xresp {
		t.Helper()
		resp, err := http.Post(e.base+path, ct, bytes.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
		return parseX(t, b)
	}
	tooLarge := func(x xresp, action, limit string) {
		t.Helper()
		require.Equal(t, "ERROR", x.Response)
		require.Equal(t, "ERRORREQUESTTOOLARGE", x.ResponseData.Code, x.ResponseData.Desc)
		require.Equal(t, action, x.Action)
		require.Contains(t, x.ResponseData.Desc, limit)
	}
	many := strings.Repeat("x=1&", 16)

	// Parameters: in the URI, in a form body, in a multipart body.
	tooLarge(e.aci(t, "/action=GetVersion&"+many), "GETVERSION", "more than 16 parameters ([Server] MaxRequestParameters)")
	tooLarge(post("/", "application/x-www-form-urlencoded", []byte("action=GetVersion&"+many)), "GETVERSION", "[Server] MaxRequestParameters")
	var mp bytes.Buffer
	w := multipart.NewWriter(&mp)
	require.NoError(t, w.WriteField("action", "GetVersion"))
	for i := range 20 {
		require.NoError(t, w.WriteField(fmt.Sprintf("p%d", i), "v"))
	}
	require.NoError(t, w.Close())
	tooLarge(post("/", w.FormDataContentType(), mp.Bytes()), "GETVERSION", "[Server] MaxRequestParameters")
	require.Equal(t, "SUCCESS", e.aci(t, "/action=GetVersion&"+strings.Repeat("x=1&", 14)).Response, "15 parameters are fine")

	// Body size: an action other than Fetch takes 1 MiB, whether the action
	// is in the request line (refused before the body is read) or in the
	// body; Fetch takes MaxRequestBytes.
	pad := bytes.Repeat([]byte("a"), 1<<20+1)
	tooLarge(postEarly(t, e, "/action=GetVersion", append([]byte("x="), pad...)), "GETVERSION", "1 MiB")
	tooLarge(postEarly(t, e, "/", append([]byte("action=GetVersion&x="), pad...)), "GETVERSION", "1 MiB")
	x := post("/action=Fetch&FetchAction=Collect&ConfigSection=MyTask", "application/x-www-form-urlencoded", append([]byte("x="), pad...))
	require.Equal(t, "SUCCESS", x.Response, x.ResponseData.Desc)
	// Announced larger than the limit: refused before a byte of the body
	// is read (the client may not even get to send it).
	c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	require.NoError(t, err)
	defer c.Close()
	_, err = fmt.Fprintf(c, "POST /action=Fetch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 4<<20+1)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	tooLarge(parseX(t, b), "FETCH", "[Server] MaxRequestBytes (4194304 bytes)")
	require.Equal(t, "SUCCESS", e.aci(t, "/action=GetVersion").Response)
}

// postEarly POSTs a form body the server refuses before reading all of it
// (from the request line, or after the first 1 MiB): the reply may come,
// and the connection close, while the body is still being sent, which net/http's client reports as
// a write error (connection reset) instead of the reply. So the body is
// written beside reading the reply, and a failed write is not an error.
func postEarly(t *testing.T, e *env, path string, body []byte) xresp {
	t.Helper()
	_, b := postEarlyRaw(t, e, path, body)
	return parseX(t, b)
}

// postEarlyRaw is postEarly's request; it returns the reply's Content-Type
// and body as they came.
func postEarlyRaw(t *testing.T, e *env, path string, body []byte) (contentType string, reply []byte) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	require.NoError(t, err)
	defer c.Close()
	go func() {
		_, _ = fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n", path, len(body))
		_, _ = c.Write(body) // may fail once the server has answered and closed
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	return resp.Header.Get("Content-Type"), b
}

// TestRefusedBodyKeepsResponseFormat: a body refused for its size before
// the handler runs (the action and ResponseFormat are in the request line)
// is answered in the format the request line asks for, as every other
// error is. It used to be XML whatever the client asked for, so a JSON
// client could not read why it was refused.
func TestRefusedBodyKeepsResponseFormat(t *testing.T) {
	t.Parallel()
	e := startWith(t, setup{front: func(c *Config) { c.MaxRequestBytes = 4 << 20 }})
	pad := append([]byte("x="), bytes.Repeat([]byte("a"), 1<<20+1)...)
	for _, f := range []string{"simplejson", "json"} {
		ct, b := postEarlyRaw(t, e, "/action=GetVersion&ResponseFormat="+f, pad)
		require.Equal(t, aci.ContentTypeJSON, ct, "%s: %s", f, b)
		var d aci.Decoded
		require.NoError(t, aci.DecodeReply(b, &d), string(b))
		require.True(t, d.IsError(), string(b))
		require.Equal(t, "ERRORREQUESTTOOLARGE", d.ErrorCode, string(b))
		require.Contains(t, d.ErrorDescription, "1 MiB", string(b))
		require.Contains(t, string(b), `"GETVERSION"`, "the action is named")
	}
	// An unknown ResponseFormat, or none, is XML as before.
	for _, q := range []string{"", "&ResponseFormat=yaml"} {
		ct, b := postEarlyRaw(t, e, "/action=GetVersion"+q, pad)
		require.Equal(t, aci.ContentTypeXML, ct, string(b))
		require.Equal(t, "ERRORREQUESTTOOLARGE", parseX(t, b).ResponseData.Code)
	}
}

// TestLongRequestLineIsTooLarge: a request line (or headers) longer than
// the 16 KiB the server reads, such as a GET with a long InsertXML, is
// ERRORREQUESTTOOLARGE naming the limit, as every request beyond a limit is
// (protocol.md, Limits), and says how to send it instead. It used to be
// ERRORBADREQUEST, as if the request were malformed.
func TestLongRequestLineIsTooLarge(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	for _, raw := range []string{
		"GET /action=GetVersion&x=" + strings.Repeat("a", 20000) + " HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /action=GetVersion HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 20000) + "\r\n\r\n",
	} {
		c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
		require.NoError(t, err)
		go func() { _, _ = c.Write([]byte(raw)) }() // may fail once the server has answered and closed
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		c.Close()
		require.Equal(t, 200, resp.StatusCode)
		x := parseX(t, b)
		require.Equal(t, "ERRORREQUESTTOOLARGE", x.ResponseData.Code, string(b))
		require.Contains(t, x.ResponseData.Desc, "16 KiB", string(b))
		require.Contains(t, x.ResponseData.Desc, "POST", string(b))
	}
}

func parseX(t *testing.T, body []byte) xresp {
	t.Helper()
	var x xresp
	require.NoError(t, xml.Unmarshal(body, &x), string(body))
	return x
}

// TestListingsArePaged: GetStatus and GetActionParameters without a Token
// list at most MaxListResults actions per reply, page with Start, and keep
// IDOL's filters (issue 9: eight concurrent full listings of 55k actions
// reached 1.65 GB).
func TestListingsArePaged(t *testing.T) {
	t.Parallel()
	e := startWith(t, setup{
		mutate: func(c *queue.Config) { c.MaximumFinishedActions = 1000 },
		front: func(c *Config) {
			c.MaxListResults = 5
			c.MaxRequestBytes = 4096
		},
	})
	var toks []string
	for range 12 {
		toks = append(toks, e.submit(t, "Collect", ""))
	}
	for _, tok := range toks {
		e.waitStatus(t, tok, "Finished")
	}
	list := func(q string) []string {
		t.Helper()
		x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus"+q)
		require.Equal(t, "SUCCESS", x.Response, x.ResponseData.Desc)
		var out []string
		for _, a := range x.ResponseData.Actions {
			out = append(out, a.Token)
		}
		return out
	}
	newest := slices.Clone(toks)
	slices.Reverse(newest)
	require.Equal(t, newest[:5], list(""), "the default page is MaxListResults long, newest first")
	require.Equal(t, newest[5:10], list("&Start=6"))
	require.Equal(t, newest[10:], list("&Start=11"))
	require.Empty(t, list("&Start=13"))
	require.Equal(t, newest[1:4], list("&Start=2&MaxResults=3&State=Finished"))
	require.Equal(t, toks[2:4], list("&Sort-Order=ascending&Start=3&MaxResults=2"))
	x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&MaxResults=6")
	require.Equal(t, "ERRORPARAMINVALID", x.ResponseData.Code)
	require.Contains(t, x.ResponseData.Desc, "[Actions] MaxListResults")

	// GetActionParameters: queued actions, oldest first, paged too, and a
	// page ends early once its parameters reach MaxRequestBytes.
	e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Pause")
	big := strings.Repeat("v", 1500)
	for range 7 {
		e.submit(t, "Collect", "&Note="+big)
	}
	params := func(q string) int {
		t.Helper()
		x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetActionParameters"+q)
		require.Equal(t, "SUCCESS", x.Response, x.ResponseData.Desc)
		return strings.Count(string(x.ResponseData.Inner), "<token>")
	}
	require.Equal(t, 3, params(""), "1500-byte parameters: the page ends once they reach 4096 bytes")
	require.Equal(t, 3, params("&Start=4"))
	require.Equal(t, 1, params("&Start=7"))
	e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Resume")
}

// TestAnnouncedBodyCostsWhatArrives: a request's body costs the server
// memory as its bytes arrive, not as its Content-Length announces. Before
// (rev19e), fasthttp allocated the whole announced length, up to
// MaxRequestBytes (64 MiB) for a Fetch, as soon as the headers were read,
// before any role was checked: 60 connections of one 110-byte header each,
// from any client, grew the real binary's resident memory by 1 GB in 12 s.
// Each request here announces 64 MiB, sends 100 KiB and ends: it must be
// answered as cut short (not parsed), and all of them together must
// allocate less than a quarter of what one announced (before: the whole
// 64 MiB, once, the buffer being reused from one request to the next).
// Not parallel: it reads the process's allocation count.
func TestAnnouncedBodyCostsWhatArrives(t *testing.T) {
	e := startWith(t, setup{})
	addr := strings.TrimPrefix(e.base, "http://")
	const conns, announced, sent = 8, 64 << 20, 100 << 10
	pad := bytes.Repeat([]byte("a"), sent)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range conns {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		_, err = fmt.Fprintf(c, "POST /action=Fetch HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
			"Content-Length: %d\r\n\r\nFetchAction=Synchronize&ConfigSection=MyTask&x=", announced)
		require.NoError(t, err)
		_, err = c.Write(pad)
		require.NoError(t, err)
		require.NoError(t, c.(*net.TCPConn).CloseWrite())
		reply, _ := io.ReadAll(c)
		c.Close()
		require.Contains(t, string(reply), "ERRORBADREQUEST")
		require.Contains(t, string(reply), "the connection ended in the middle of the request")
	}
	runtime.ReadMemStats(&after)
	grew := after.TotalAlloc - before.TotalAlloc
	require.Less(t, grew, uint64(announced/4),
		"%d requests that each announced %d bytes and sent %d allocated %d bytes", conns, announced, sent, grew)
	t.Logf("%d requests that each announced %d bytes and sent %d allocated %d bytes", conns, announced, sent, grew)
	require.Equal(t, "SUCCESS", e.aci(t, "/action=GetVersion").Response)
}

// TestTooLargeIsRefusedBeforeContinue: a request that announces a body
// larger than its action takes and asks "Expect: 100-continue" gets the
// refusal, not "100 Continue": the client then never sends the body. The
// server used to answer 100 Continue first (fasthttp sends it after the
// headers are read, whatever the body limit said), so a client that waits
// for it, as curl does for a large POST, uploaded the whole body only to
// have it refused.
func TestTooLargeIsRefusedBeforeContinue(t *testing.T) {
	t.Parallel()
	e := startWith(t, setup{front: func(c *Config) { c.MaxRequestBytes = 4 << 20 }})
	for _, tc := range []struct{ path, action, limit string }{
		{"/action=Fetch", "FETCH", "[Server] MaxRequestBytes (4194304 bytes)"},
		{"/action=GetVersion", "GETVERSION", "1 MiB"},
	} {
		c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
		require.NoError(t, err)
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		_, err = fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"+
			"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n", tc.path, 4<<20+1)
		require.NoError(t, err)
		br := bufio.NewReader(c)
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, "HTTP/1.1 200 OK\r\n", line, "%s: the refusal comes first, not 100 Continue", tc.path)
		resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(line), br)), nil)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		x := parseX(t, b)
		require.Equal(t, "ERRORREQUESTTOOLARGE", x.ResponseData.Code, x.ResponseData.Desc)
		require.Equal(t, tc.action, x.Action)
		require.Contains(t, x.ResponseData.Desc, tc.limit)
		require.True(t, resp.Close, "the connection closes: the client may have started sending the body")
		c.Close()
	}
	// A body within the limit still gets 100 Continue, and is read.
	c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	body := "action=GetVersion"
	_, err = fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n", len(body))
	require.NoError(t, err)
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "HTTP/1.1 100 Continue\r\n", line)
	_, err = br.ReadString('\n')
	require.NoError(t, err)
	_, err = io.WriteString(c, body)
	require.NoError(t, err)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "SUCCESS", parseX(t, b).Response, string(b))
}
