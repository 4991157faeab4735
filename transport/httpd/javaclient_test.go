package httpd

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/httpfetch"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/store"
)

// replay sends a raw request file byte for byte and returns the decoded
// reply body, checking what the Java client requires of every reply: HTTP
// 200 (anything else is a transport error to it), a text/xml content type
// (its stream parsers accept nothing else), no DOCTYPE (its DOM parser
// rejects one).
func (e *env) replay(t *testing.T, raw []byte) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = c.Write(raw)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/xml"), resp.Header.Get("Content-Type"))
	var r io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		require.NoError(t, err)
		r = zr
	}
	body, err := io.ReadAll(r)
	require.NoError(t, err)
	require.NotContains(t, string(body), "<!DOCTYPE")
	return string(body)
}

func readReplay(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "javaclient", name))
	require.NoError(t, err)
	return raw
}

func TestJavaClientRequestsReplayed(t *testing.T) {
	t.Parallel()
	e := start(t, nil)

	body := e.replay(t, readReplay(t, "get-getversion.http"))
	require.Contains(t, body, "<response>SUCCESS</response>")
	require.Contains(t, body, "<autn:version>1.2.3</autn:version>")

	params := func(tok string) string {
		x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetActionParameters&Token="+url.QueryEscape(tok))
		require.Equal(t, "SUCCESS", x.Response, string(x.ResponseData.Inner))
		return string(x.ResponseData.Inner)
	}

	body = e.replay(t, readReplay(t, "get-fetch.http"))
	sync := between(body, "<token>", "</token>")
	require.NotEmpty(t, sync, body)
	x := e.status(t, sync)
	require.Equal(t, "2", x.ResponseData.Actions[0].Priority)

	body = e.replay(t, readReplay(t, "post-fetch.http"))
	collect := between(body, "<token>", "</token>")
	require.NotEmpty(t, collect, body)
	// The request log has the POST's body parameters (the request is
	// GetRequestLog itself, posted with IDOL's Tail).
	body = e.replay(t, readReplay(t, "post-getrequestlog-tail.http"))
	require.Contains(t, body, "<autn:request>action=FETCH&amp;FetchAction=Collect&amp;ConfigSection=MyTask&amp;Identifiers=a%2Cb+c</autn:request>")
	require.Equal(t, 1, strings.Count(body, "<logentry>"))
	require.Contains(t, params(collect), `<parameter name="Identifiers">a,b c</parameter>`, "form-encoded body under text/plain")

	body = e.replay(t, readReplay(t, "multipart-chunked-fetch.http"))
	insert := between(body, "<token>", "</token>")
	require.NotEmpty(t, insert, body)
	// ... and a binary part by its size.
	body = e.replay(t, readReplay(t, "post-getrequestlog-tail.http"))
	require.Contains(t, body, "<autn:request>action=FETCH&amp;FetchAction=Collect&amp;ConfigSection=MyTask&amp;InsertXML=[50 bytes]</autn:request>")
	require.Contains(t, params(insert), `<parameter name="InsertXML">&lt;insert&gt;&lt;reference&gt;http://x/1&lt;/reference&gt;&lt;/insert&gt;</parameter>`,
		"chunked multipart, binary part")

	// The client percent-encodes the token's '=' padding.
	raw := bytes.Replace(readReplay(t, "get-queueinfo-token.http"), []byte("TOKEN"), []byte(url.QueryEscape(collect)), 1)
	body = e.replay(t, raw)
	require.Contains(t, body, "<token>"+collect+"</token>")

	// An error reply is still HTTP 200 with <response>ERROR</response>,
	// which is exactly what the client checks.
	raw = bytes.Replace(readReplay(t, "get-queueinfo-token.http"), []byte("TOKEN"), []byte("bm9wZQ%3D%3D"), 1)
	body = e.replay(t, raw)
	require.Contains(t, body, "<response>ERROR</response>")
	require.Contains(t, body, "<errorid>CONQUEUEINFO111</errorid>")
	require.Contains(t, body, "<errorcode>ERRORPARAMINVALID</errorcode>")
}

// startHTTPConnector is a front end over the real HTTP connector
// (httpfetch), with one task, MyTask, whose site is never reached while the
// queue is paused, so its actions stay queued.
func startHTTPConnector(t *testing.T) *env {
	t.Helper()
	cfg, err := config.Parse("test.cfg", []byte("[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:1/\n"), httpfetch.TaskKeys)
	require.NoError(t, err)
	st, err := store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	repo, err := httpfetch.New(httpfetch.Options{Config: cfg, Store: st})
	require.NoError(t, err)
	e := startWith(t, setup{repo: func(*testRepo) fetch.Repository { return repo }})
	x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Pause")
	require.Equal(t, "SUCCESS", x.Response)
	return e
}

// replayedParameters replays the recorded Fetch request file, which must
// succeed, and returns its action's GetActionParameters reply data.
func (e *env) replayedParameters(t *testing.T, file string) string {
	t.Helper()
	body := e.replay(t, readReplay(t, file))
	require.Contains(t, body, "<response>SUCCESS</response>", body)
	tok := between(body, "<token>", "</token>")
	x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetActionParameters&Token="+url.QueryEscape(tok))
	require.Equal(t, "SUCCESS", x.Response, string(x.ResponseData.Inner))
	return string(x.ResponseData.Inner)
}

// TestJavaClientExtraFetchParameters: parameters the connector does not
// have, as scripts written for IDOL send them, are accepted by the real
// HTTP connector and shown as sent by GetActionParameters; a bad value for
// a setting is still refused, naming it.
func TestJavaClientExtraFetchParameters(t *testing.T) {
	t.Parallel()
	e := startHTTPConnector(t)
	require.Contains(t, e.replayedParameters(t, "get-fetch-extra-params.http"), `<parameter name="ConfigSection">MyTask</parameter>`+
		`<parameter name="Foo">bar</parameter><parameter name="failedDirectory">/tmp/failed</parameter>`+
		`<parameter name="[MyTask]UnknownSetting">1</parameter>`)

	for _, c := range []struct{ query, name string }{
		{"Foo=bar&Depth=deep", "Depth"},
		{"Foo=bar&%5BMyTask%5DDepth=deep", "[MyTask] Depth"},
	} {
		x := e.aci(t, "/action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask&"+c.query)
		require.Equal(t, "ERROR", x.Response, c.query)
		require.Equal(t, "ERRORPARAMINVALID", x.ResponseData.Code, c.query)
		require.Contains(t, x.ResponseData.Desc, "parameter "+c.name+":", c.query)
	}
}

// TestJavaClientLatin1Multipart: the Java client configured for ISO-8859-1
// (AciServerDetails.setCharsetName) sends a request with a binary parameter
// as multipart, every string part labelled text/plain; charset=ISO-8859-1
// and encoded in it. Its é reaches the action as é; the binary part's bytes
// are kept as sent. It used to be the byte 0xE9, and the Fetch was refused
// as not UTF-8.
func TestJavaClientLatin1Multipart(t *testing.T) {
	t.Parallel()
	e := startHTTPConnector(t)
	require.Contains(t, e.replayedParameters(t, "multipart-latin1-fetch.http"), `<parameter name="ConfigSection">MyTask</parameter>`+
		`<parameter name="[MyTask]UnknownSetting">café crème</parameter>`+
		`<parameter name="InsertXML">&lt;insert&gt;&lt;reference&gt;http://x/café&lt;/reference&gt;&lt;/insert&gt;</parameter>`)

	// A charset the connector does not know is refused, naming the
	// parameter and the label.
	raw := bytes.ReplaceAll(readReplay(t, "multipart-latin1-fetch.http"), []byte("charset=ISO-8859-1\r\n\r\ncaf"), []byte("charset=ISO-8859-X\r\n\r\ncaf"))
	body := e.replay(t, raw)
	require.Contains(t, body, "<errorcode>ERRORPARAMINVALID</errorcode>", body)
	require.Contains(t, body, `parameter [MyTask]UnknownSetting: unknown charset "ISO-8859-X"`, body)
}
