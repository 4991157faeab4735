package httpd

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/transport/aci"
)

// TestRequestLogReusesEntries: the request log's entries are reused once
// its ring pushes them out (entryPool), and what GetRequestLog shows is
// still each request as it came, in order, after the ring has wrapped many
// times with texts of every length; the entries a reply was made from are
// copies, which later requests (reusing the log's entries) leave alone.
func TestRequestLogReusesEntries(t *testing.T) {
	t.Parallel()
	e := startWith(t, setup{front: func(c *Config) { c.RequestLogSize = 3 }})
	pad := func(i int) string { // texts of different lengths: buffers are reused for shorter and longer ones
		return strconv.Itoa(i) + "&P=" + repeatX(i%7*40)
	}
	for i := range 20 {
		e.aci(t, "/action=GetVersion&N="+pad(i))
	}
	got := e.logEntries(t, "")
	require.Equal(t, []struct{ Request, Status string }{
		{"action=GETVERSION&N=17&P=" + repeatX(17%7*40), "success"},
		{"action=GETVERSION&N=18&P=" + repeatX(18%7*40), "success"},
		{"action=GETVERSION&N=19&P=" + repeatX(19%7*40), "success"},
	}, got)

	lr := &requestLog{ring: make([]*logEntry, 2), pool: &entryPool{}}
	send := func(text string) {
		en := lr.pool.get()
		en.text = append(en.text[:0], text...)
		en.status = "success"
		lr.store(en)
	}
	send("a=1")
	send("b=22")
	first := lr.copies()
	for i := range 10 {
		send("c=" + repeatX(i*3))
	}
	require.Equal(t, []string{"a=1", "b=22"}, []string{first[0].request, first[1].request}, "a reply's entries are copies")
	last := lr.copies()
	require.Equal(t, []string{"c=" + repeatX(24), "c=" + repeatX(27)}, []string{last[0].request, last[1].request})
	for _, c := range last {
		require.Nil(t, c.text, "a copy carries no buffer of the log's")
	}
}

func repeatX(n int) string { return strings.Repeat("x", n) }

// TestRequestLogKeepsNoRequestText: a log entry's action is the route
// table's string, not the parsed one, which shares the memory of the
// request's whole text: the ring (RequestLogSize entries) would keep every
// logged request, up to MaxRequestBytes each, alive.
func TestRequestLogKeepsNoRequestText(t *testing.T) {
	t.Parallel()
	e := startWith(t, setup{})
	e.aci(t, "/action=GetVersion&Pad="+repeatX(4096))
	res, err := e.srv.cfg.System.Root.RequestFuture(e.srv.reqlog, &getLog{}, 5*time.Second).Result()
	require.NoError(t, err)
	var key string
	for a := range e.srv.routes {
		if a == "GETVERSION" {
			key = a
		}
	}
	require.NotEmpty(t, key)
	entries := res.(*logReply).entries
	require.NotEmpty(t, entries)
	got := entries[len(entries)-1]
	require.Equal(t, "GETVERSION", got.action)
	require.Same(t, unsafe.StringData(key), unsafe.StringData(got.action), "the route table's string, not the request's text")
}

// TestRequestLogBoundsUnknownActions: an action the server does not answer
// is kept in the request log as the client named it, but cut to maxLogged
// bytes, as the request's text is. Kept whole, any client (the action is
// refused before any role is asked) could make the ring hold
// RequestLogSize names of up to MaxRequestBytes each: a body of
// "action=" and 60 MiB, sent 1000 times, held 60 GB.
func TestRequestLogBoundsUnknownActions(t *testing.T) {
	t.Parallel()
	e := startWith(t, setup{})
	name := strings.Repeat("N", 512<<10) // a body within the 1 MiB of actions other than Fetch
	resp, err := http.Post(e.base+"/", "application/x-www-form-urlencoded", strings.NewReader("action="+name))
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var got logEntry
	testwait.For(t, 10*time.Second, func() bool {
		res, err := e.srv.cfg.System.Root.RequestFuture(e.srv.reqlog, &getLog{}, 5*time.Second).Result()
		require.NoError(t, err)
		for _, en := range res.(*logReply).entries {
			if strings.HasPrefix(en.action, "NNNN") {
				got = en
				return true
			}
		}
		return false
	}, "the request's log entry")
	require.LessOrEqual(t, len(got.action), maxLogged, "the logged action keeps %d bytes of the client's %d", len(got.action), len(name))
	require.Equal(t, name[:len(got.action)], got.action)
	require.Equal(t, "action="+name[:maxLogged-len("action=")], got.request)

	// The entry's text buffer, kept in the ring, holds what it shows, not
	// the whole action escaped before being cut.
	req, err := aci.Parse([]byte("POST"), []byte("/"), nil, []byte("action="+name))
	require.NoError(t, err)
	text := e.srv.appendRequestText(nil, req)
	require.Equal(t, got.request, string(text))
	require.LessOrEqual(t, cap(text), 4*maxLogged, "the text's buffer holds %d bytes to show %d", cap(text), len(text))
}

// configRecorder is secretRepo recording the longest Config value its
// Redact was given: the request log's cost of showing a request.
type configRecorder struct {
	secretRepo
	longest *atomic.Int64
}

func (r configRecorder) Redact(params messages.Params) messages.Params {
	for _, p := range params {
		if strings.EqualFold(strings.TrimSpace(p.GetName()), "Config") {
			for n := int64(len(p.GetValue())); ; {
				m := r.longest.Load()
				if n <= m || r.longest.CompareAndSwap(m, n) {
					break
				}
			}
		}
	}
	return r.secretRepo.Redact(params)
}

// TestRequestLogNeverReadsLargeConfig: a Config value longer than
// maxShownConfig is shown in the request log by its size, as a file part
// is, and never reaches the repository's Redact, which reads the whole
// configuration fragment (about a microsecond or more a byte). Every
// request is logged, whatever its action and before any role or size is
// checked: one request of MaxRequestBytes from any client cost seconds to
// minutes of CPU. A Config value within the limit is still redacted and
// shown.
func TestRequestLogNeverReadsLargeConfig(t *testing.T) {
	t.Parallel()
	var longest atomic.Int64
	e := startWith(t, setup{repo: func(r *testRepo) fetch.Repository { return configRecorder{secretRepo{r}, &longest} }})
	large := strings.Repeat("QUJD", 256<<10) // 1 MiB of base64
	for _, body := range []string{
		"action=NoSuchAction&Config=" + large, // refused: no such action
		"action=GetVersion&%20config%20=" + large[:maxShownConfig+1],
		"action=GetVersion&Config=" + large[:maxShownConfig],
	} {
		resp, err := http.Post(e.base+"/", "application/x-www-form-urlencoded", strings.NewReader(body))
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	var got []string
	testwait.For(t, 10*time.Second, func() bool {
		res, err := e.srv.cfg.System.Root.RequestFuture(e.srv.reqlog, &getLog{}, 5*time.Second).Result()
		require.NoError(t, err)
		got = got[:0]
		for _, en := range res.(*logReply).entries {
			got = append(got, en.request)
		}
		return len(got) == 3
	}, "the three requests' log entries")
	require.Equal(t, "action=NOSUCHACTION&Config=[1048576 bytes]", got[0])
	require.Equal(t, "action=GETVERSION&+config+=[1025 bytes]", got[1])
	require.Equal(t, "action=GETVERSION&Config="+large[:maxShownConfig-len("action=GETVERSION&Config=")], got[2])
	require.Equal(t, int64(maxShownConfig), longest.Load(), "Redact read a Config value of %d bytes", longest.Load())
}

// TestRequestLogOfPostedBodies: the request log shows a POSTed request as
// it came. Its body is read into a buffer the front end reuses (readBody),
// which the parsed request's strings share: the buffer goes back only once
// the entry is made. Here putBody zeroes every buffer it takes back, so an
// entry made after that would show zeros.
func TestRequestLogOfPostedBodies(t *testing.T) {
	t.Parallel()
	e := startWith(t, setup{})
	e.srv.poisonBodies.Store(true)
	var want []struct{ Request, Status string }
	for i := range 3 {
		body := fmt.Sprintf("action=GetVersion&N=%d&P=%s", i, repeatX(100*i))
		resp, err := http.Post(e.base+"/", "application/x-www-form-urlencoded", strings.NewReader(body))
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		want = append(want, struct{ Request, Status string }{fmt.Sprintf("action=GETVERSION&N=%d&P=%s", i, repeatX(100*i)), "success"})
	}
	require.Equal(t, want, e.logEntries(t, ""))
}

// TestRequestLogShowsEveryActionPair: a request that names its action more
// than once is acted on by its first (as every repeated parameter), and
// GetRequestLog shows that one first and then the others as they came. The
// log used to show the first alone: a request of action=GetVersion&a=Stop,
// or one whose body named another action than its request line, looked
// in the log like a plain GetVersion, so that whoever read it could not
// tell the request had asked for something else too (for instance past a
// proxy that looks at the last of them). A file part named action is
// shown by its size, as every file part is.
func TestRequestLogShowsEveryActionPair(t *testing.T) {
	t.Parallel()
	e := startWith(t, setup{})
	x := e.aci(t, "/action=GetVersion&N=1&a=GetPid&ACTION=Stop%20")
	require.Equal(t, "GETVERSION", x.Action, "the first action pair is acted on")
	require.Equal(t, "SUCCESS", x.Response)
	x = e.aci(t, "/action=GetVersion?action=GetPid")
	require.Equal(t, "GETVERSION", x.Action)
	body := e.post(t, "/action=GetVersion&N=2", "application/x-www-form-urlencoded", []byte("action=GetPid&N=3"))
	require.Contains(t, body, "<action>GETVERSION</action>")
	var mp bytes.Buffer
	w := multipart.NewWriter(&mp)
	require.NoError(t, w.WriteField("N", "4"))
	fw, err := w.CreateFormFile("action", "a.txt")
	require.NoError(t, err)
	_, err = fw.Write([]byte("Stop and a secret"))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	body = e.post(t, "/action=GetVersion", w.FormDataContentType(), mp.Bytes())
	require.Contains(t, body, "<action>GETVERSION</action>")

	got := e.logEntries(t, "")
	require.Equal(t, []struct{ Request, Status string }{
		{"action=GETVERSION&a=GetPid&ACTION=Stop+&N=1", "success"},
		{"action=GETVERSION&action=GetPid", "success"},
		{"action=GETVERSION&action=GetPid&N=2&N=3", "success"},
		{"action=GETVERSION&action=[file a.txt, 17 bytes]&N=4", "success"},
	}, got)
}

// TestURLPasswordsInActionNamesAndErrorsNeverShown: a URL with a password
// where no action reads one (the action's name, a second action pair, a
// QueueName) is shown with the password redacted by GetRequestLog and by
// the error reply. On main, action=GetVersion&a=http://u:pw@h/ showed
// the password in every Admin client's GetRequestLog (the other action
// pairs were logged as they came); an unknown action named by such a URL
// was echoed, upper-cased, in the reply's <action>, errorid and
// errordescription and in the request log; and a QueueName was quoted
// whole in the error reply.
func TestURLPasswordsInActionNamesAndErrorsNeverShown(t *testing.T) {
	t.Parallel()
	e := startWith(t, setup{})
	withPw := url.QueryEscape("http://u:hunter2@h/")
	var replies strings.Builder
	for _, path := range []string{
		"/action=GetVersion&a=" + withPw,
		"/action=" + withPw,
		"/action=QueueInfo&QueueAction=GetStatus&QueueName=" + withPw,
	} {
		_, body := e.get(t, path)
		replies.Write(body)
	}
	require.NotContains(t, strings.ToLower(replies.String()), "hunter2", replies.String())
	require.Contains(t, replies.String(), "there is no queue \"http://u:[REDACTED]@h/\"")
	got := e.logEntries(t, "")
	require.Len(t, got, 3)
	for _, g := range got {
		require.NotContains(t, strings.ToLower(g.Request), "hunter2", g.Request)
	}
	require.Equal(t, "action=GETVERSION&a=http%3A%2F%2Fu%3A%5BREDACTED%5D%40h%2F", got[0].Request)
}

// TestURLPasswordsInParameterNamesNeverShown: a parameter named by a URL
// with a password (an unencoded URL split at its = by the query syntax)
// is kept, shown and stored under its name with the password redacted
// (GetActionParameters lists the names the queue holds; TestCanaryHTTP
// scans the store).
// On main, Fetch&…&http://u:pw@h/=1 was queued, stored and listed by
// GetActionParameters and GetRequestLog under the name in clear: only
// values were redacted.
func TestURLPasswordsInParameterNamesNeverShown(t *testing.T) {
	t.Parallel()
	e := startWith(t, setup{})
	e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Pause")
	tok := e.submit(t, "Synchronize", "&"+url.QueryEscape("http://u:hunter2@h/")+"=1")
	_, params := e.get(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetActionParameters&Token="+url.QueryEscape(tok))
	require.Contains(t, string(params), `<parameter name="http://u:[REDACTED]@h/">1</parameter>`)
	for _, g := range e.logEntries(t, "") {
		require.NotContains(t, g.Request, "hunter2")
	}
}

// TestURLQuerySecretsNeverShown: a URL whose query or fragment carries a
// credential (?access_token=, ?token=, #password=) in a parameter's value
// is shown with it redacted by GetRequestLog, GetActionParameters, the
// server log and an error reply that quotes the value. On main only a
// URL's user information password was: Note=https://h/x?access_token=...
// was listed in clear by every Admin client's GetRequestLog and by
// GetActionParameters, and a MaxResults mistyped with such a URL was
// quoted whole in the error reply.
func TestURLQuerySecretsNeverShown(t *testing.T) {
	t.Parallel()
	e, logs := startSecretRepo(t)
	e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Pause")
	tok := e.submit(t, "Synchronize", "&Note="+url.QueryEscape("https://h/x?access_token=sekrit-1&page=2")+
		"&Next="+url.QueryEscape("https://h/cb#token=sekrit-2"))
	_, reply := e.get(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&MaxResults="+url.QueryEscape("https://h/?password=sekrit-3"))
	require.Contains(t, string(reply), `invalid value "https://h/?password=[REDACTED]" for parameter MaxResults`)
	_, params := e.get(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetActionParameters&Token="+url.QueryEscape(tok))
	require.Contains(t, string(params), `<parameter name="Note">https://h/x?access_token=[REDACTED]&amp;page=2</parameter>`)
	shown := string(reply) + string(params)
	var entries []string
	for _, g := range e.logEntries(t, "") {
		entries = append(entries, g.Request)
	}
	require.Contains(t, strings.Join(entries, "\n"), "Note=https%3A%2F%2Fh%2Fx%3Faccess_token%3D%5BREDACTED%5D%26page%3D2")
	for _, s := range []string{"sekrit-1", "sekrit-2", "sekrit-3"} {
		require.NotContains(t, shown, s)
		require.NotContains(t, strings.Join(entries, "\n"), s)
		require.NotContains(t, logs.String(), s)
	}
}
