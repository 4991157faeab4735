package httpd

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testlog"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/secret"
)

// secretRepo is testRepo with a settings schema that marks
// [MyTask]AuthPassword secret: Seal prefixes its value with "sealed:",
// Redact replaces it.
type secretRepo struct{ *testRepo }

var _ fetch.Secrets = secretRepo{}

func isAuthPassword(name string) bool {
	return strings.EqualFold(strings.TrimPrefix(name, "[MyTask]"), "AuthPassword")
}

func (secretRepo) Redact(params messages.Params) messages.Params {
	out := make(messages.Params, len(params))
	for i, p := range params {
		out[i] = p
		if isAuthPassword(p.Name) {
			out[i] = &messages.Param{Name: p.Name, Value: secret.Redacted}
		}
	}
	return out
}

func (secretRepo) Seal(params messages.Params) (messages.Params, error) {
	out := make(messages.Params, len(params))
	for i, p := range params {
		out[i] = p
		if isAuthPassword(p.Name) {
			out[i] = &messages.Param{Name: p.Name, Value: "sealed:" + p.Value}
		}
	}
	return out, nil
}

// startSecretRepo starts a server on secretRepo, logging at Debug into
// the buffer it returns.
func startSecretRepo(t *testing.T) (*env, *testlog.Buffer) {
	logs := &testlog.Buffer{}
	return startWith(t, setup{
		repo:   func(r *testRepo) fetch.Repository { return secretRepo{r} },
		logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}), logs
}

// TestSecretsNeverShown submits requests carrying secrets in every form
// the front end knows (a setting the schema marks secret, a name that
// looks secret, a URL with a password, in the URI and in a POST body) and
// checks that GetRequestLog, GetActionParameters and the server log show
// none of them, while the queue holds the sealed form.
func TestSecretsNeverShown(t *testing.T) {
	t.Parallel()
	e, logs := startSecretRepo(t)
	secrets := []string{"hunter2-in-uri", "pw-in-url", "hunter3-in-body", "looks-secret"}
	tok := e.submit(t, "Synchronize", "&%5BMyTask%5DAuthPassword=hunter2-in-uri&%5BMyTask%5DUrl="+
		url.QueryEscape("http://user:pw-in-url@example.com/")+"&ClientSecret=looks-secret")

	resp, err := http.Post(e.base+"/", "application/x-www-form-urlencoded",
		strings.NewReader("action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask&AuthPassword=hunter3-in-body"))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(body), "<token>")

	// The queue (and so the store) has the sealed value, never the clear one.
	r, err := e.q.ActionParameters(context.Background(), tok)
	require.NoError(t, err)
	require.Equal(t, "sealed:hunter2-in-uri", messages.Params(r.Params).Value("[MyTask]AuthPassword"))

	x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetActionParameters&Token="+url.QueryEscape(tok))
	require.Equal(t, "SUCCESS", x.Response)
	shown := string(x.ResponseData.Inner)
	require.Contains(t, shown, `<parameter name="[MyTask]AuthPassword">[REDACTED]</parameter>`)
	require.Contains(t, shown, "http://user:[REDACTED]@example.com/")
	all := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetActionParameters")
	shown += string(all.ResponseData.Inner)

	var entries string
	testwait.For(t, 10*time.Second, func() bool { // e.aci may call require: poll on the test's goroutine
		x := e.aci(t, "/action=GetRequestLog")
		entries = string(x.ResponseData.Inner)
		return strings.Count(entries, "<logentry>") >= 4
	}, "four request log entries")
	require.Contains(t, entries, "AuthPassword=%5BREDACTED%5D")
	require.Contains(t, entries, "ConfigSection=MyTask&amp;AuthPassword=%5BREDACTED%5D", "body parameters are logged too")
	for _, s := range secrets {
		require.NotContains(t, shown, s)
		require.NotContains(t, entries, s)
		require.NotContains(t, logs.String(), s)
	}
}

// TestMalformedRequestHeadersNeverEchoed sends requests fasthttp cannot
// read, carrying Authorization and Cookie headers, and checks that neither
// the reply nor the log quotes them.
func TestMalformedRequestHeadersNeverEchoed(t *testing.T) {
	t.Parallel()
	var logs testlog.Buffer
	e := startWith(t, setup{logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	addr := strings.TrimPrefix(e.base, "http://")
	const auth, cookie = "Basic dXNlcjpodW50ZXIy", "session=s3cr3t-cookie"
	for _, raw := range []string{
		// a header line without a colon
		"GET /action=GetVersion HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + "\r\nCookie: " + cookie + "\r\nbroken header line\r\n\r\n",
		// a negative length
		"POST /action=GetVersion HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + "\r\nCookie: " + cookie + "\r\nContent-Length: -5\r\n\r\n",
		// headers larger than the read buffer
		"GET /action=GetVersion HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + "\r\nCookie: " + cookie + "\r\nX-Pad: " + strings.Repeat("p", 20000) + "\r\n\r\n",
		// a body larger than the limit
		"POST /action=GetVersion HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + "\r\nCookie: " + cookie + "\r\nContent-Length: 999999999999\r\n\r\n",
	} {
		reply := exchange(t, addr, raw)
		require.Regexp(t, "ERRORBADREQUEST|ERRORREQUESTTOOLARGE", string(reply), "%q", raw[:40])
		for _, s := range []string{"dXNlcjpodW50ZXIy", "s3cr3t-cookie", "Authorization", "Cookie"} {
			require.NotContains(t, string(reply), s)
		}
	}
	x := e.aci(t, "/action=GetVersion")
	require.Equal(t, "SUCCESS", x.Response)
	for _, s := range []string{"dXNlcjpodW50ZXIy", "s3cr3t-cookie"} {
		require.NotContains(t, logs.String(), s)
	}
	require.Contains(t, logs.String(), "unreadable request")
}

// TestNotUTF8SecretNeverQuoted: a Fetch whose secret parameter (one the
// connector marks secret, or one whose name looks secret) is not UTF-8 is
// refused without quoting the secret, in the reply or the log; so is one
// whose parameter name is not UTF-8, whatever its value. The refusal used
// to quote the value as sent: a password with one stray byte (a Latin-1
// client's e-acute) came back in clear in the error reply.
func TestNotUTF8SecretNeverQuoted(t *testing.T) {
	t.Parallel()
	e, logs := startSecretRepo(t)
	for _, c := range []struct{ query, secret string }{
		{"%5BMyTask%5DAuthPassword=hunter2-schema%E9", "hunter2-schema"}, // the schema's secret
		{"ClientSecret=looks-secret%E9", "looks-secret"},                 // a name that looks secret
		{"Pass%E9word=hunter2-bad-name", "hunter2-bad-name"},             // a name that is not UTF-8
	} {
		x := e.aci(t, "/action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask&"+c.query)
		require.Equal(t, "ERRORPARAMINVALID", x.ResponseData.Code, "%s: %s", c.query, x.ResponseData.Inner)
		require.Contains(t, x.ResponseData.Desc, "not UTF-8", c.query)
		require.NotContains(t, x.ResponseData.Desc, c.secret, c.query)
		require.NotContains(t, logs.String(), c.secret, c.query)
	}
	// A value that is no secret is still quoted, to show what is wrong.
	x := e.aci(t, "/action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask&Note=caf%E9")
	require.Contains(t, x.ResponseData.Desc, `invalid value "caf\xe9" for parameter Note: not UTF-8`)
}

// TestUnreadableRequestsNeitherQuotedNorFlooded: a request whose headers
// fasthttp cannot read is answered with an ACI error and logged once, at
// debug level, without its text ("unreadable request"). fasthttp's own
// line for it ("error when serving connection ...: malformed mime header:
// missing colon: \"Authorization Bearer ...\"") went to the log at warning
// level for every such connection: a client whose Authorization header had
// lost its colon wrote its token into the log, and a scanner sending junk
// wrote one warning per connection.
func TestUnreadableRequestsNeitherQuotedNorFlooded(t *testing.T) {
	t.Parallel()
	var logs testlog.Buffer
	e := startWith(t, setup{logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	addr := strings.TrimPrefix(e.base, "http://")
	const token = "s3cr3t-bearer-token"
	const n = 20
	for i := range n {
		raw := "GET /action=GetVersion HTTP/1.1\r\nHost: x\r\nAuthorization Bearer " + token + "\r\n\r\n"
		if i%2 == 1 {
			raw = "JUNK\r\n\r\n" // a scanner's
		}
		reply := exchange(t, addr, raw)
		require.Contains(t, string(reply), "ERRORBADREQUEST")
		require.NotContains(t, string(reply), token)
	}
	// Each was logged at debug level by the time its reply was sent; what
	// fasthttp logs comes after the connection closes.
	testwait.For(t, 10*time.Second, func() bool {
		return strings.Count(logs.String(), "unreadable request") == n
	}, "one debug line per unreadable request")
	x := e.aci(t, "/action=GetVersion") // the server still serves
	require.Equal(t, "SUCCESS", x.Response)
	require.NotContains(t, logs.String(), token)
	require.LessOrEqual(t, strings.Count(logs.String(), "level=WARN"), 1, logs.String())
}

// exchange sends raw on a new connection to addr and returns what comes
// back until the server closes it (at most 5 s). A write the server cuts
// short (it answered and closed first) is not an error.
func exchange(t *testing.T, addr, raw string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write([]byte(raw))
	reply, _ := io.ReadAll(c)
	return reply
}
