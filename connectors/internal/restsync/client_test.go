package restsync

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/internal/netguard"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/oauth"
)

// waits records the waits a client asked for, without waiting.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	return context.Cause(ctx)
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

func newClient(t *testing.T, url string, auth Auth, w *waits) *Client {
	t.Helper()
	c, err := NewClient(url, nil, auth, Options{Service: "svc", Sleep: w.sleep,
		Message: func(b []byte) string {
			var m struct{ Message string }
			_ = json.Unmarshal(b, &m)
			return m.Message
		}})
	require.NoError(t, err)
	return c
}

// A 429 is waited out for as long as Retry-After says (seconds or a date),
// and does not count as a failed attempt.
func TestRateLimitHonoursRetryAfter(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1, 2, 3, 4, 5:
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
		case 6:
			w.Header().Set("Retry-After", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat))
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			fmt.Fprint(w, `{"ok":true}`)
		}
	}))
	defer srv.Close()
	w := &waits{}
	c := newClient(t, srv.URL, nil, w)
	var v struct{ OK bool }
	_, err := c.GetJSON(context.Background(), "/x", &v)
	require.NoError(t, err)
	require.True(t, v.OK)
	got := w.all()
	require.Len(t, got, 6)
	for _, d := range got[:5] {
		require.Equal(t, 7*time.Second, d)
	}
	require.InDelta(t, 90, got[5].Seconds(), 2)
	require.Equal(t, int64(6), c.Stats().Throttled)
	require.Equal(t, int64(7), c.Stats().Requests)
}

// A Retry-After date is a time on the service's clock: a service whose
// clock is behind the connector's (here by two minutes) asks for a wait
// that looked past, so the 429 was sent again at once, MaxThrottled times
// in a row, and the request then failed as throttled. The wait is now
// measured from the answer's own Date, when it has one.
func TestRateLimitRetryAfterDateOnTheServicesClock(t *testing.T) {
	behind := time.Now().Add(-2 * time.Minute).UTC() // the service's clock
	var throttled atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if throttled.CompareAndSwap(false, true) {
			w.Header().Set("Date", behind.Format(http.TimeFormat))
			w.Header().Set("Retry-After", behind.Add(7*time.Second).Format(http.TimeFormat))
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	w := &waits{}
	resp, err := newClient(t, srv.URL, nil, w).Do(context.Background(), &Request{URL: "/x"})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, []time.Duration{7 * time.Second}, w.all(), "the wait the service asked for, on its clock")
}

// A Retry-After longer than MaxRetryAfter ends the request with the
// service's message rather than holding the action for hours.
func TestRateLimitTooLong(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "86400")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"message":"slow down"}`)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, nil, &waits{})
	_, err := c.GetJSON(context.Background(), "/x", &struct{}{})
	require.ErrorIs(t, err, ErrThrottled)
	require.Contains(t, err.Error(), "slow down")
}

// A 5xx is tried again MaxAttempts times with a growing backoff; a POST is
// not (it may have been done).
func TestServerErrorRetried(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 3 {
			http.Error(w, `{"message":"boom"}`, http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	w := &waits{}
	c := newClient(t, srv.URL, nil, w)
	_, err := c.GetJSON(context.Background(), "/x", &struct{}{})
	require.NoError(t, err)
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second}, w.all())

	n.Store(0)
	_, err = c.SendJSON(context.Background(), &Request{Method: http.MethodPost, URL: "/x"}, nil)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 500, se.Status)
	require.Equal(t, "boom", se.Message)
	require.Equal(t, int32(1), n.Load())

	n.Store(-100)
	_, err = c.GetJSON(context.Background(), "/x", &struct{}{})
	require.ErrorAs(t, err, &se)
	require.Equal(t, int32(-96), n.Load(), "4 attempts")
}

// A body that breaks off (the connection drops mid-body) or is cut short
// is read again; one that is never whole ends as ErrBadResponse.
func TestTruncatedBodyReadAgain(t *testing.T) {
	var n atomic.Int32
	var always atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := `{"items":[1,2,3]}`
		if n.Add(1) == 1 || always.Load() {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			fmt.Fprint(w, body[:8])
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close()
			return
		}
		if n.Load() == 2 {
			fmt.Fprint(w, body[:8]) // well framed, but not whole JSON
			return
		}
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, nil, &waits{})
	var v struct{ Items []int }
	_, err := c.GetJSON(context.Background(), "/x", &v)
	require.NoError(t, err)
	require.Equal(t, []int{1, 2, 3}, v.Items)
	require.Equal(t, int32(3), n.Load())

	always.Store(true)
	_, err = c.GetJSON(context.Background(), "/x", &v)
	require.ErrorIs(t, err, ErrBadResponse)
}

// A refused token is renewed once and the request sent again; a renewed
// token that is refused too ends with the service's message, and the token
// never appears in an error.
func TestUnauthorizedRenewsOnce(t *testing.T) {
	var valid atomic.Value
	valid.Store("tok-2")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+valid.Load().(string) {
			w.Header().Set("TrackingID", "ROUTER_1")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"The request requires a valid access token set in the Authorization request header."}`)
			return
		}
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	var issued atomic.Int32
	auth := &TokenAuth{New: func(context.Context) (oauth2.TokenSource, error) {
		n := issued.Add(1)
		return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: fmt.Sprintf("tok-%d", n)}), nil
	}}
	c := newClient(t, srv.URL, auth, &waits{})
	_, err := c.GetJSON(context.Background(), "/x", &struct{}{})
	require.NoError(t, err)
	require.Equal(t, int32(2), issued.Load())
	_, err = c.GetJSON(context.Background(), "/x", &struct{}{})
	require.NoError(t, err)
	require.Equal(t, int32(2), issued.Load(), "a good token is kept")

	valid.Store("never")
	_, err = c.GetJSON(context.Background(), "/x", &struct{}{})
	require.ErrorIs(t, err, ErrUnauthorized)
	require.Contains(t, err.Error(), "requires a valid access token")
	require.Contains(t, err.Error(), "ROUTER_1")
	require.NotContains(t, err.Error(), "tok-")
}

// Basic credentials cannot be renewed: the 401 ends the request at once.
func TestBasicRefused(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"message":"bad password"}`)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, BasicAuth{User: "u", Password: "hunter2"}, &waits{})
	_, err := c.GetJSON(context.Background(), "/x", &struct{}{})
	require.ErrorIs(t, err, ErrUnauthorized)
	require.Contains(t, err.Error(), "bad password")
	require.NotContains(t, err.Error(), "hunter2")
	require.Equal(t, int32(1), n.Load())
}

// A service whose error body quotes the request's Authorization header
// (a debugging proxy, a gateway that echoes what it refused) had its
// message shown as it was: the basic password's base64, or the bearer
// token, went into the action's error, GetStatus, the log and the store.
// The message is now scrubbed of the credentials that request carried.
func TestErrorBodyQuotingCredentialsIsScrubbed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": "refused: you sent " + r.Header.Get("Authorization")})
	}))
	defer srv.Close()
	basic := base64.StdEncoding.EncodeToString([]byte("u:hunter2"))
	c := newClient(t, srv.URL, BasicAuth{User: "u", Password: "hunter2"}, &waits{})
	_, err := c.GetJSON(context.Background(), "/x", &struct{}{})
	require.ErrorIs(t, err, ErrUnauthorized)
	require.Contains(t, err.Error(), "refused: you sent Basic [REDACTED]")
	require.NotContains(t, err.Error(), basic)

	c = newClient(t, srv.URL, &TokenAuth{New: func(context.Context) (oauth2.TokenSource, error) {
		return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "at-s3cret"}), nil
	}}, &waits{})
	_, err = c.GetJSON(context.Background(), "/x", &struct{}{})
	require.ErrorIs(t, err, ErrUnauthorized)
	require.Contains(t, err.Error(), "refused: you sent Bearer [REDACTED]")
	require.NotContains(t, err.Error(), "at-s3cret")
}

// A token endpoint that refuses is ErrAuth with its description.
func TestTokenEndpointRefuses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	c := newClient(t, srv.URL, &TokenAuth{New: func(context.Context) (oauth2.TokenSource, error) {
		return nil, errors.New("invalid_grant: refresh token expired")
	}}, &waits{})
	_, err := c.GetJSON(context.Background(), "/x", &struct{}{})
	require.ErrorIs(t, err, ErrAuth)
	require.Contains(t, err.Error(), "refresh token expired")
}

// 404 is messages.ErrNotFound; other 4xx end at once.
func TestNotFound(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	c := newClient(t, srv.URL, nil, &waits{})
	_, err := c.GetJSON(context.Background(), "/x", &struct{}{})
	require.ErrorIs(t, err, messages.ErrNotFound)
}

// Pages follows Link rel="next" and refuses a page that links to itself,
// a cycle, and a link to another origin (where the token would go).
func TestPagesLoopAndOrigin(t *testing.T) {
	var srvURL string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := strconv.Atoi(r.URL.Query().Get("p"))
		switch r.URL.Path {
		case "/ok":
			if p < 3 {
				w.Header().Set("Link", fmt.Sprintf(`<%s/ok?p=%d&max=2>; rel="next"`, srvURL, p+1))
			}
		case "/self":
			w.Header().Set("Link", fmt.Sprintf(`<%s/self?max=2&p=%d>; rel="next"`, srvURL, p))
		case "/cycle":
			w.Header().Set("Link", fmt.Sprintf(`<%s/cycle?p=%d>; rel="next"`, srvURL, (p+1)%3))
		case "/away":
			w.Header().Set("Link", `<http://169.254.169.254/latest/meta-data>; rel="next"`)
		}
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	srvURL = srv.URL
	c := newClient(t, srv.URL, nil, &waits{})
	follow := func(first string) (int, error) {
		n := 0
		err := Walk(context.Background(), c, first, func(ctx context.Context, u string) (Page[int], error) {
			h, err := c.GetJSON(ctx, u, &struct{}{})
			if err != nil {
				return Page[int]{}, err
			}
			return Page[int]{Items: []int{1}, Next: NextLink(h)}, nil
		}, func(items []int) (bool, error) {
			n += len(items)
			return false, nil
		})
		return n, err
	}
	n, err := follow("/ok?p=0&max=2")
	require.NoError(t, err)
	require.Equal(t, 4, n)
	n, err = follow("/self?p=1&max=2")
	require.ErrorIs(t, err, ErrPageLoop)
	require.Equal(t, 1, n)
	n, err = follow("/cycle?p=0")
	require.ErrorIs(t, err, ErrPageLoop)
	require.Equal(t, 3, n)
	_, err = follow("/away")
	require.ErrorIs(t, err, ErrOrigin)
}

func TestNextLink(t *testing.T) {
	h := http.Header{}
	h.Add("Link", `<https://a/prev?x=1,2>; rel="prev", <https://a/next?y=2>; rel="next"`)
	require.Equal(t, "https://a/next?y=2", NextLink(h))
	h = http.Header{"Link": {`<https://a/n>; rel=next`}}
	require.Equal(t, "https://a/n", NextLink(h))
	h = http.Header{"Link": {`<https://a/n>; rel="first last"`}}
	require.Equal(t, "", NextLink(h))
	require.Equal(t, "", NextLink(http.Header{}))
}

// Link parameters are read as RFC 8288 says: a ";" or "," inside a quoted
// title (with its \" escapes) is text, not a new parameter or link, and a
// second rel of a link is ignored; so no title can pass a link off as the
// next page.
func TestNextLinkQuotedParameters(t *testing.T) {
	for _, c := range []struct{ link, want string }{
		{`<https://a/p>; rel="prev"; title="a;rel=next"`, ""},
		{`<https://a/p>; title="x;rel=next"; rel=prev, <https://a/n>; rel=next`, "https://a/n"},
		{`<https://a/p>; title="q\",<https://evil/x>;rel=next"; rel=prev`, ""},
		{`<https://a/p>; title="q\\", <https://a/n>; rel=next`, "https://a/n"},
		{`<https://a/p>; rel=prev; rel=next`, ""},
		{`<https://a/n> ; REL = "Next"`, "https://a/n"},
		{`<https://a/n>; rel="prev  next"`, "https://a/n"},
		{`<https://a/p>; title=";rel=next`, ""},
		{`<https://a/p>; x; rel=prev, <https://a/n>; rel=next; title="<"`, "https://a/n"},
	} {
		require.Equal(t, c.want, NextLink(http.Header{"Link": {c.link}}), c.link)
	}
}

// A file larger than the limit is not read: by its Content-Length, or,
// without one, once more than the limit has come; the connection is
// dropped, so a 1 GiB file costs the limit in memory and a fraction of
// its bytes on the wire.
func TestDownloadBounded(t *testing.T) {
	const size = 1 << 30
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Disposition", `attachment; filename="../../big file.bin"`)
		w.Header().Set("Content-Type", "application/octet-stream")
		if r.URL.Query().Get("len") == "1" {
			w.Header().Set("Content-Length", strconv.Itoa(size))
		}
		if r.URL.Query().Get("small") == "1" {
			fmt.Fprint(w, "hello")
			return
		}
		buf := make([]byte, 64<<10)
		for written := 0; written < size; written += len(buf) {
			n, err := w.Write(buf)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, nil, &waits{})
	f, err := c.Download(context.Background(), "/f?len=1", 1<<20)
	require.NoError(t, err)
	require.True(t, f.TooLarge)
	require.Nil(t, f.Data)
	require.Equal(t, int64(size), f.Size)
	require.Equal(t, "big file.bin", f.FileName)

	f, err = c.Download(context.Background(), "/f", 1<<20)
	require.NoError(t, err)
	require.True(t, f.TooLarge)
	require.Equal(t, int64(-1), f.Size)
	require.Less(t, sent.Load(), int64(256<<20), "the server was stopped long before the end")

	f, err = c.Download(context.Background(), "/f?small=1", 1<<20)
	require.NoError(t, err)
	require.False(t, f.TooLarge)
	require.Equal(t, "hello", string(f.Data))
	require.Equal(t, "application/octet-stream", f.ContentType)
}

// A service that stops sending in the middle of a body fails the read
// after the task's timeout instead of stalling.
func TestStalledBodyTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		fmt.Fprint(w, `{"a":`)
		w.(http.Flusher).Flush()
		<-release
	}))
	defer srv.Close()
	defer close(release)
	hc, err := HTTPClient(nil, TLS{CheckCertificate: true}, 200*time.Millisecond)
	require.NoError(t, err)
	c, err := NewClient(srv.URL, hc, nil, Options{MaxAttempts: 1})
	require.NoError(t, err)
	start := time.Now()
	_, err = c.GetJSON(context.Background(), "/x", &struct{}{})
	require.ErrorIs(t, err, ErrBadResponse)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout())
	require.Less(t, time.Since(start), 20*time.Second)
}

// A stopped action ends a wait for Retry-After at once.
func TestRateLimitWaitEndsWithContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "300")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL, nil, nil, Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("stopped")
	done := make(chan error, 1)
	go func() { _, err := c.GetJSON(ctx, "/x", &struct{}{}); done <- err }()
	require.Eventually(t, func() bool { return c.Stats().Throttled > 0 }, 10*time.Second, 5*time.Millisecond)
	cancel(stop)
	select {
	case err := <-done:
		require.ErrorIs(t, err, stop)
	case <-time.After(10 * time.Second):
		t.Fatal("the wait did not end")
	}
}

func TestDispositionName(t *testing.T) {
	for in, want := range map[string]string{
		`attachment; filename="a.pdf"`:                   "a.pdf",
		`attachment; filename*=UTF-8''%C3%A9t%C3%A9.txt`: "été.txt",
		`inline; filename="C:\dir\x.doc"`:                "x.doc",
		`attachment; filename=/etc/passwd`:               "passwd",
		`attachment`:                                     "",
		``:                                               "",
	} {
		require.Equal(t, want, DispositionName(in), in)
	}
}

// Identifiers round-trip, with characters XML must escape, and are what
// encoding/xml writes.
func TestIdentifierRoundTrip(t *testing.T) {
	id := Identifier{Task: "myTask", Kind: "document", Container: `a"<b>&'c`, Item: "A101", Part: "vA101.2"}
	got, err := DecodeIdentifier(id.Encode())
	require.NoError(t, err)
	id.Task = "MYTASK"
	require.Equal(t, id, got)
	b, err := xml.Marshal(xmlID{Task: "T", Item: "i"})
	require.NoError(t, err)
	require.Equal(t, base64.StdEncoding.EncodeToString(b), Identifier{Task: "t", Item: "i"}.Encode())
	_, err = DecodeIdentifier("bm90IHhtbA")
	require.ErrorIs(t, err, ErrIdentifier)
}

// The service's client dials through [Security] DeniedAddresses: a
// denied address is never reached, whatever the task's URL says.
func TestDeniedAddressesApply(t *testing.T) {
	var reached atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Store(true) }))
	defer srv.Close()
	g, err := netguard.Parse([]string{"127.0.0.0/8"})
	require.NoError(t, err)
	hc, err := HTTPClient(g, TLS{CheckCertificate: true}, 5*time.Second)
	require.NoError(t, err)
	c, err := NewClient(srv.URL, hc, nil, Options{MaxAttempts: 1})
	require.NoError(t, err)
	_, err = c.GetJSON(context.Background(), "/x", &struct{}{})
	require.ErrorIs(t, err, netguard.ErrDenied)
	require.False(t, reached.Load())
}

// countingDecoder decodes an answer itself (JSONDecoder): it counts the
// items of a JSON array by hand and fails on anything else.
type countingDecoder struct{ items, calls int }

func (d *countingDecoder) DecodeJSON(body []byte) error {
	d.calls++
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return err
	}
	d.items = len(raw)
	return nil
}

// A value that decodes itself is given the body (and read again when it
// cannot decode it, as encoding/json's errors are); the size limit still
// holds; reused buffers do not leak one answer into the next.
func TestJSONDecoder(t *testing.T) {
	bodies := []string{`[1,2,`, `[1,2,3]`, `[4]`, `[` + strings.Repeat(`1,`, 600) + `1]`}
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		_, _ = io.WriteString(w, bodies[min(i, len(bodies)-1)])
	}))
	defer srv.Close()
	w := &waits{}
	c := newClient(t, srv.URL, nil, w)
	d := &countingDecoder{}
	_, err := c.GetJSON(context.Background(), "x", d)
	require.NoError(t, err)
	require.Equal(t, 2, d.calls, "the truncated answer was read again")
	require.Equal(t, 3, d.items)
	_, err = c.GetJSON(context.Background(), "x", d)
	require.NoError(t, err)
	require.Equal(t, 1, d.items)

	small, err := NewClient(srv.URL, nil, nil, Options{Service: "svc", Sleep: w.sleep, MaxJSONBytes: 1000})
	require.NoError(t, err)
	_, err = small.GetJSON(context.Background(), "x", d)
	require.ErrorIs(t, err, ErrTooLarge)
}

// An identifier is written as xml.EscapeText escapes its values, whether
// they need escaping or not (plain ids take a shorter path).
func TestIdentifierEscapesAsEncodingXML(t *testing.T) {
	for _, v := range []string{"A101", "Y2lzY29zcGFyazovL3VzL01FU1NBR0UvOTJkYjNiZTAtNDNiZC0xMWU2LThhZTktZGQ1YjNkZmM1NjVk",
		`a"b`, "a'b", "a&b", "a<b>", "tab\there", "nl\nhere", "cr\rhere", "ctl\x01", "é", "bad\xffutf8", "~ !#$%()*+,-./:;=?@[]^_`{|}", ""} {
		var want strings.Builder
		want.WriteString(`<id s="T" t="k"`)
		if v != "" {
			want.WriteString(` i="`)
			require.NoError(t, xml.EscapeText(&want, []byte(v)))
			want.WriteString(`"`)
		}
		want.WriteString("></id>")
		require.Equal(t, base64.StdEncoding.EncodeToString([]byte(want.String())), Identifier{Task: "t", Kind: "k", Item: v}.Encode(), "%q", v)
	}
}

func BenchmarkIdentifierEncode(b *testing.B) {
	id := Identifier{Task: "WEBEX", Kind: "message", Container: "Y2lzY29zcGFyazovL3VzL1JPT00vMDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDFh", Item: "Y2lzY29zcGFyazovL3VzL01FU1NBR0UvMDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDZh"}
	b.ReportAllocs()
	for b.Loop() {
		_ = id.Encode()
	}
}

// blockingSource hands out its token once release is closed.
type blockingSource struct {
	tok     string
	release chan struct{}
	asked   *atomic.Int32
}

func (s blockingSource) Token() (*oauth2.Token, error) {
	s.asked.Add(1)
	<-s.release
	return &oauth2.Token{AccessToken: s.tok}, nil
}

// Requests refused at the same time (several in flight with the same
// token: rooms read at once) renew the token once: the second waits for
// the first one's new token instead of asking for another.
func TestRenewOnceForRequestsRefusedTogether(t *testing.T) {
	var issued, asked atomic.Int32
	release := make(chan struct{})
	auth := &TokenAuth{New: func(context.Context) (oauth2.TokenSource, error) {
		n := issued.Add(1)
		if n == 1 {
			return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok-1"}), nil
		}
		return blockingSource{tok: fmt.Sprintf("tok-%d", n), release: release, asked: &asked}, nil
	}}
	ctx := context.Background()
	r1, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/x", nil)
	r2, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/y", nil)
	require.NoError(t, auth.Authorize(ctx, r1))
	require.NoError(t, auth.Authorize(ctx, r2))
	errs := make(chan error, 2)
	go func() { errs <- auth.Renew(ctx, r1) }()
	require.Eventually(t, func() bool { return asked.Load() == 1 }, 10*time.Second, time.Millisecond, "the first renewal asks for a token")
	go func() { errs <- auth.Renew(ctx, r2) }()
	require.Never(t, func() bool { return issued.Load() > 2 }, 200*time.Millisecond, time.Millisecond, "a second renewal while the first is under way")
	close(release)
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	require.Equal(t, int32(2), issued.Load())
	r3, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/z", nil)
	require.NoError(t, auth.Authorize(ctx, r3))
	require.Equal(t, "Bearer tok-2", r3.Header.Get("Authorization"))
}

// countingGate is a token source whose calls after the first wait for
// release: a request that took its token before a renewal and is slow to
// get it.
type countingGate struct {
	tok     string
	calls   *atomic.Int32
	release chan struct{}
}

func (s countingGate) Token() (*oauth2.Token, error) {
	if s.calls.Add(1) > 1 {
		<-s.release
	}
	return &oauth2.Token{AccessToken: s.tok}, nil
}

// A request that got its token from the source a renewal then dropped
// (it asked before the renewal and was answered after it) sends the old
// token; its refusal must not renew again: the token it was refused is
// not the last one handed out. (Under load, webexfetch's
// TestTokenExpiresMidRun saw three refreshes instead of two this way.)
func TestRefusedStaleTokenDoesNotRenewAgain(t *testing.T) {
	var issued, calls atomic.Int32
	release := make(chan struct{})
	auth := &TokenAuth{New: func(context.Context) (oauth2.TokenSource, error) {
		n := issued.Add(1)
		if n == 1 {
			return countingGate{tok: "tok-1", calls: &calls, release: release}, nil
		}
		return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: fmt.Sprintf("tok-%d", n)}), nil
	}}
	ctx := context.Background()
	r1, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/x", nil)
	r2, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/y", nil)
	require.NoError(t, auth.Authorize(ctx, r1))
	slow := make(chan error, 1)
	go func() { slow <- auth.Authorize(ctx, r2) }()
	require.Eventually(t, func() bool { return calls.Load() == 2 }, 10*time.Second, time.Millisecond, "the slow request asks the first source")
	require.NoError(t, auth.Renew(ctx, r1))
	require.Equal(t, int32(2), issued.Load())
	close(release)
	require.NoError(t, <-slow)
	require.Equal(t, "Bearer tok-1", r2.Header.Get("Authorization"))
	require.NoError(t, auth.Renew(ctx, r2))
	require.Equal(t, int32(2), issued.Load(), "the stale token's refusal renewed again")
	r3, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/z", nil)
	require.NoError(t, auth.Authorize(ctx, r3))
	require.Equal(t, "Bearer tok-2", r3.Header.Get("Authorization"))
}

// A service whose pages are empty but each links to a new one (distinct
// URLs, so no loop) ends the walk with ErrEmptyPages after maxEmptyPages
// of them in a row, instead of paging until the task is stopped; empty
// pages among pages with items are followed.
func TestWalkEndsAfterTooManyEmptyPages(t *testing.T) {
	var srvURL string
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		p, _ := strconv.Atoi(r.URL.Query().Get("p"))
		items := "[]"
		if r.URL.Path == "/sparse" && p%maxEmptyPages == 0 {
			items = "[1]" // an item every maxEmptyPages pages
		}
		if r.URL.Path == "/endless" || p < 3*maxEmptyPages {
			w.Header().Set("Link", fmt.Sprintf(`<%s%s?p=%d>; rel="next"`, srvURL, r.URL.Path, p+1))
		}
		fmt.Fprint(w, items)
	}))
	defer srv.Close()
	srvURL = srv.URL
	c := newClient(t, srv.URL, nil, &waits{})
	follow := func(ctx context.Context, first string) (int, error) { return walkInts(ctx, c, first) }
	n, err := follow(context.Background(), "/sparse?p=0")
	require.NoError(t, err)
	require.Equal(t, 4, n)
	requests.Store(0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = follow(ctx, "/endless?p=1")
	require.ErrorIs(t, err, ErrEmptyPages, "after %d requests", requests.Load())
	require.LessOrEqual(t, requests.Load(), int64(maxEmptyPages+1))
}

// An SSLCACertificate that is a FIFO is refused at once: os.ReadFile
// waited for a writer for ever, holding the action, which Stop cannot
// interrupt (and /dev/zero was read until memory ran out).
func TestCAFileThatIsNoFileIsRefused(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	err := testwait.Return(t, 10*time.Second, func() error {
		_, err := HTTPClient(nil, TLS{CheckCertificate: true, CAFile: fifo}, time.Second)
		return err
	}, "the HTTP client's set-up to end")
	require.ErrorContains(t, err, "SSLCACertificate: read "+fifo+": not a regular file (a FIFO)")
}

// throttledTokens is a token source whose first refreshes answer as a
// rate-limited token endpoint does (oauth.EndpointError), then tokens
// "at-1", "at-2"...
type throttledTokens struct {
	mu       sync.Mutex
	failures int
	issued   *atomic.Int32
}

func (s *throttledTokens) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures > 0 {
		s.failures--
		return nil, &oauth.EndpointError{Status: http.StatusTooManyRequests, RetryAfter: "9", Message: "the token endpoint answered 429 Too Many Requests"}
	}
	return &oauth2.Token{AccessToken: fmt.Sprintf("at-%d", s.issued.Add(1)), Expiry: time.Now().Add(time.Hour)}, nil
}

// A rate-limited token endpoint (429 with Retry-After) is waited out
// before the first request, after a 401 (the renewal's refresh), and
// before a POST, which was not sent; on main each ended the request with
// ErrAuth at once. A refusal (invalid_grant) still ends it at once.
func TestTokenEndpointRateLimitWaitedOut(t *testing.T) {
	var valid atomic.Value
	valid.Store("at-1")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+valid.Load().(string) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	var issued atomic.Int32
	sources := 0
	w := &waits{}
	c := newClient(t, srv.URL, &TokenAuth{New: func(context.Context) (oauth2.TokenSource, error) {
		sources++
		return oauth2.ReuseTokenSource(nil, &throttledTokens{failures: 2, issued: &issued}), nil
	}}, w)
	_, err := c.GetJSON(context.Background(), "/x", &struct{}{})
	require.NoError(t, err)
	require.Equal(t, []time.Duration{9 * time.Second, 9 * time.Second}, w.all())

	valid.Store("at-2") // at-1 revoked: the renewal's source is throttled too
	_, err = c.SendJSON(context.Background(), &Request{Method: http.MethodPost, URL: "/x"}, &struct{}{})
	require.NoError(t, err)
	require.Len(t, w.all(), 4)
	require.Equal(t, 2, sources)

	c = newClient(t, srv.URL, &TokenAuth{New: func(context.Context) (oauth2.TokenSource, error) {
		return nil, &oauth.EndpointError{Status: http.StatusBadRequest, Message: "the token endpoint answered invalid_grant"}
	}}, w)
	_, err = c.GetJSON(context.Background(), "/x", &struct{}{})
	require.ErrorIs(t, err, ErrAuth)
	require.ErrorContains(t, err, "invalid_grant")
	require.Len(t, w.all(), 4, "a refusal is not waited on")
}

// A relative Link target is resolved against the URL of the page that
// sent it, as RFC 8288 (section 3.2) and RFC 3986 say, not appended to the
// service's base path: behind a gateway that sends absolute-path links
// (</v1/items?cursor=...>) or query-only ones (<?cursor=...>), the walk
// reads the pages the service named. Before, </v1/items?p=1> under the
// base https://host/v1 was fetched as /v1/v1/items (a 404, and the
// listing ended with an error), and <?p=2> as /v1/?p=2.
func TestWalkResolvesRelativeLinksAgainstThePage(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.RequestURI())
		mu.Unlock()
		if r.URL.Path != "/v1/items" {
			http.NotFound(w, r)
			return
		}
		switch r.URL.Query().Get("p") {
		case "":
			w.Header().Set("Link", `</v1/items?p=1>; rel="next"`) // absolute path
		case "1":
			w.Header().Set("Link", `<?p=2>; rel="next"`) // query only
		case "2":
			w.Header().Set("Link", `<items?p=3>; rel="next"`) // relative path
		}
		fmt.Fprint(w, `[1]`)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL+"/v1", nil, &waits{})
	n, err := walkInts(context.Background(), c, "items")
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.Equal(t, []string{"/v1/items", "/v1/items?p=1", "/v1/items?p=2", "/v1/items?p=3"}, got)
}

// A query the form decoder refuses (";" between its parameters, as RFC
// 3986 allows and some services page with, or a bad % escape) is a page
// of its own: the walk's loop check kept only the parameters that
// decode, so every such page read as the first one and the walk ended at
// page two with ErrPageLoop. Its parameters in another order are still
// the same page.
func TestWalkQueriesThatDoNotDecode(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.RawQuery {
		case "":
			w.Header().Set("Link", `<?p=1;n=2>; rel="next"`)
		case "p=1;n=2":
			w.Header().Set("Link", `<?p=2;n=2>; rel="next"`)
		case "p=2;n=2":
			w.Header().Set("Link", `<?c=%zz>; rel="next"`)
		case "c=%zz":
			w.Header().Set("Link", `<?c=%zy>; rel="next"`)
		case "c=%zy":
			w.Header().Set("Link", `<?b=1&a=2>; rel="next"`)
		case "b=1&a=2":
			w.Header().Set("Link", `<?a=2&b=1>; rel="next"`)
		}
		fmt.Fprint(w, `[1]`)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, nil, &waits{})
	n, err := walkInts(context.Background(), c, "/items")
	require.ErrorIs(t, err, ErrPageLoop)
	require.Equal(t, 6, n)
}

// walkInts walks the pages from first, each a JSON array of numbers with
// its next page in a Link header, and returns how many numbers they held.
func walkInts(ctx context.Context, c *Client, first string) (int, error) {
	n := 0
	err := Walk(ctx, c, first, func(ctx context.Context, u string) (Page[int], error) {
		var items []int
		h, err := c.GetJSON(ctx, u, &items)
		if err != nil {
			return Page[int]{}, err
		}
		return Page[int]{Items: items, Next: NextLink(h)}, nil
	}, func(items []int) (bool, error) {
		n += len(items)
		return false, nil
	})
	return n, err
}

// SameOrigin compared the URLs' host strings: a WebexApiUrl (or Objective
// ServerUrl) written with its scheme's default port,
// https://webexapis.com:443/v1, which the configuration accepts, made
// every next-page link (https://webexapis.com/v1/...) refused as another
// origin, so that no listing went past its first page, and every message
// file refused as not on the API's origin; and a service that writes the
// default port in its links was refused the other way round. A default
// port written out is the same origin now; another port, scheme or host
// is not.
func TestSameOriginWithTheDefaultPortWrittenOut(t *testing.T) {
	for _, tc := range []struct {
		base, u string
		same    bool
	}{
		{"https://webexapis.com:443/v1", "https://webexapis.com/v1/messages?max=2", true},
		{"https://webexapis.com/v1", "https://webexapis.com:443/v1/contents/x", true},
		{"http://objective.example:80", "http://objective.example/documents", true},
		{"https://H.example/v1", "HTTPS://h.EXAMPLE:443/v1", true},
		{"https://[::1]/v1", "https://[::1]:443/v1", true},
		{"https://h.example/v1", "https://h.example/v1", true},
		{"https://h.example:8443/v1", "https://h.example:8443/v1", true},
		{"https://h.example/v1", "https://h.example:8443/v1", false},
		{"https://h.example:443/v1", "http://h.example:443/v1", false},
		{"https://h.example/v1", "http://h.example:443/v1", false},
		{"http://h.example/v1", "http://h.example:443/v1", false},
		{"https://h.example/v1", "https://h.example.evil/v1", false},
		{"https://h.example/v1", "https://other.example:443/v1", false},
	} {
		c := newClient(t, tc.base, nil, &waits{})
		u, err := url.Parse(tc.u)
		require.NoError(t, err)
		require.Equal(t, tc.same, c.SameOrigin(u), "%s vs %s", tc.base, tc.u)
	}
}
