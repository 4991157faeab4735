package ingest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// ingestToken is the token of the CFS documentation's sample Ingest reply.
const ingestToken = "MTAuMi4xMTAuMTQ6NzAwMDpJTkdFU1Q6LTU0MzIyNTEzNQ=="

// successReply is the CFS documentation's sample reply to Ingest.
const successReply = `<?xml version='1.0' encoding='UTF-8' ?>
<autnresponse xmlns:autn='http://schemas.autonomy.com/aci/'>
  <action>INGEST</action>
  <response>SUCCESS</response>
  <responsedata>
    <token>` + ingestToken + `</token>
  </responsedata>
</autnresponse>`

// addsXML is the adds parameter as the CFS documentation describes it.
type addsXML struct {
	XMLName xml.Name `xml:"adds"`
	Add     []struct {
		Document struct {
			Reference string `xml:"reference"`
			Metadata  []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"metadata"`
			Pages []struct {
				Content string `xml:"content,attr"`
			} `xml:"pages"`
		} `xml:"document"`
		Source *struct {
			Content string `xml:"content,attr"`
		} `xml:"source"`
	} `xml:"add"`
}

// cfsCall is one Ingest request as the fake CFS understood it.
type cfsCall struct {
	Adds    []*Document // from adds, nil when absent
	Removes []string    // from removes, nil when absent
}

// fakeCFS is an HTTP server on 127.0.0.1 that parses requests the way CFS
// does: ACI parameters from a form body, names case-insensitive, action
// Ingest, adds XML decoded strictly, removes split on commas. Anything
// unexpected fails the test. reply answers a well-formed request.
type fakeCFS struct {
	t     *testing.T
	srv   *httptest.Server
	mu    sync.Mutex
	calls []cfsCall
	reply func(w http.ResponseWriter, r *http.Request, n int)
}

func newFakeCFS(t *testing.T, tls bool) *fakeCFS {
	t.Helper()
	f := &fakeCFS{t: t, reply: func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Content-Type", "text/xml; charset=UTF-8")
		_, _ = io.WriteString(w, successReply)
	}}
	if tls {
		f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	} else {
		f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	}
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCFS) serve(w http.ResponseWriter, r *http.Request) {
	call, err := parseIngest(r)
	if err != nil {
		f.t.Errorf("fake CFS: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	n := len(f.calls)
	f.mu.Unlock()
	f.reply(w, r, n)
}

func parseIngest(r *http.Request) (cfsCall, error) {
	var call cfsCall
	if r.Method != http.MethodPost || r.URL.Path != "/" || r.URL.RawQuery != "" {
		return call, fmt.Errorf("want POST / with the parameters in the body, got %s %s", r.Method, r.URL)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return call, fmt.Errorf("content type %q", ct)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return call, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return call, fmt.Errorf("body is not form data: %w", err)
	}
	params := map[string]string{}
	for k, v := range form {
		if len(v) != 1 {
			return call, fmt.Errorf("parameter %s repeated", k)
		}
		params[strings.ToLower(k)] = v[0]
	}
	if !strings.EqualFold(params["action"], "Ingest") || !strings.HasPrefix(string(body), "action=") {
		return call, fmt.Errorf("want action=Ingest first, got %q", body[:min(len(body), 40)])
	}
	delete(params, "action")
	if v, ok := params["adds"]; ok {
		delete(params, "adds")
		var adds addsXML
		dec := xml.NewDecoder(strings.NewReader(v))
		dec.Strict = true
		if err := dec.Decode(&adds); err != nil {
			return call, fmt.Errorf("adds is not the documented XML: %w", err)
		}
		call.Adds = []*Document{}
		for _, a := range adds.Add {
			d := &Document{Reference: a.Document.Reference}
			for _, m := range a.Document.Metadata {
				d.Fields = append(d.Fields, Field{Name: m.Name, Value: m.Value})
			}
			if len(a.Document.Pages) > 1 {
				return call, errors.New("the target sends at most one pages element")
			}
			for _, p := range a.Document.Pages {
				d.Content = p.Content
			}
			if a.Source != nil {
				d.Source, err = base64.StdEncoding.DecodeString(a.Source.Content)
				if err != nil {
					return call, fmt.Errorf("source content is not base64: %w", err)
				}
			}
			call.Adds = append(call.Adds, d)
		}
	}
	if v, ok := params["removes"]; ok {
		delete(params, "removes")
		call.Removes = strings.Split(v, ",")
	}
	if len(params) != 0 || (call.Adds == nil) == (call.Removes == nil) {
		return call, fmt.Errorf("want exactly one of adds and removes and nothing else, got extra %v", params)
	}
	return call, nil
}

func (f *fakeCFS) hostPort(t *testing.T) (string, int) {
	t.Helper()
	u, err := url.Parse(f.srv.URL)
	require.NoError(t, err)
	port, err := strconv.Atoi(u.Port())
	require.NoError(t, err)
	return u.Hostname(), port
}

func (f *fakeCFS) received() []cfsCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]cfsCall(nil), f.calls...)
}

func openFakeCFS(t *testing.T, f *fakeCFS, opts Options) Target {
	t.Helper()
	opts.Type = TypeCFS
	opts.Host, opts.Port = f.hostPort(t)
	tg, err := Open(opts, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = tg.Close() })
	return tg
}

func TestCFSAddAndRemove(t *testing.T) {
	t.Parallel()
	f := newFakeCFS(t, false)
	tg := openFakeCFS(t, f, Options{BatchSize: 2})
	ctx := context.Background()
	docs := []*Document{
		{Reference: "http://site/a?x=1&y=2", Fields: []Field{
			{Name: "TITLE", Value: `<b>"Quotes" & 'apostrophes'</b>`},
			{Name: "K", Value: "1"}, {Name: "K", Value: "2"},
			{Name: "MULTI", Value: "line1\nline2\ttab\r\n"},
		}, Content: "Extracted text\nwith + and %20 and &amp;"},
		{Reference: "http://site/b.pdf", Fields: []Field{{Name: "CONTENTTYPE", Value: "application/pdf"}},
			Content: "ignored when Source is sent", Source: []byte("%PDF-1.7\n\x00\xff binary"), SourceType: "application/pdf"},
		{Reference: "http://site/c", Content: "naïve café 日本語"},
	}
	require.NoError(t, tg.Add(ctx, docs))
	require.NoError(t, tg.Remove(ctx, []string{"http://site/old1", "http://site/old 2", "http://site/old3"}))

	want0 := *docs[0]
	want1 := *docs[1]
	want1.Content, want1.SourceType = "", "" // Source replaces Content; no place for the MIME type
	want2 := *docs[2]
	require.Equal(t, []cfsCall{
		{Adds: []*Document{&want0, &want1}},
		{Adds: []*Document{&want2}},
		{Removes: []string{"http://site/old1", "http://site/old 2"}},
		{Removes: []string{"http://site/old3"}},
	}, f.received())
	require.Equal(t, "CFS "+f.srv.URL+"/", tg.Describe())
}

func TestCFSRemoveRefusesCommas(t *testing.T) {
	t.Parallel()
	f := newFakeCFS(t, false)
	tg := openFakeCFS(t, f, Options{})
	err := tg.Remove(context.Background(), []string{"http://a/ok", "http://a/?q=1,2"})
	require.ErrorIs(t, err, ErrDelivery)
	require.ErrorIs(t, err, ErrInvalidDocument)
	require.ErrorContains(t, err, "comma")
	require.Empty(t, f.received(), "nothing may be sent when one reference cannot be")
}

func TestCFSErrorReplies(t *testing.T) {
	t.Parallel()
	realError, err := os.ReadFile("testdata/aci/error.xml")
	require.NoError(t, err)
	tests := []struct {
		desc    string
		reply   func(w http.ResponseWriter, r *http.Request, n int)
		wantErr string
		check   func(t *testing.T, err error)
	}{
		{
			desc:    "ACI ERROR reply (real server output)",
			reply:   func(w http.ResponseWriter, _ *http.Request, _ int) { _, _ = w.Write(realError) },
			wantErr: "CFS replied ERROR ERRORPARAMINVALID (AXEQUERY502): No valid query text supplied: All terms were invalid",
			check: func(t *testing.T, err error) {
				var aci *ACIError
				require.ErrorAs(t, err, &aci)
				require.Equal(t, &ACIError{
					ErrorID:          "AXEQUERY502",
					ErrorString:      "No valid query text supplied",
					ErrorDescription: "All terms were invalid, through being stopwords, too short, or incorrectly formatted",
					ErrorCode:        "ERRORPARAMINVALID",
				}, aci)
			},
		},
		{
			desc: "HTTP 500",
			reply: func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = io.WriteString(w, successReply) // a 500 is a failure whatever the body says
			},
			wantErr: "CFS answered HTTP 500 Internal Server Error",
		},
		{
			desc: "HTTP 502 from a gateway: its page's text is the reason",
			reply: func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusBadGateway)
				_, _ = io.WriteString(w, "<html>\r\n<head><title>502 Bad Gateway</title></head>\n<body>\n<h1>Bad Gateway</h1>\n<p>upstream cfs01:7000 timed out\x00\x1b[31m</p>\n</body></html>\n")
			},
			wantErr: "CFS answered HTTP 502 Bad Gateway: 502 Bad Gateway Bad Gateway upstream cfs01:7000 timed out [31m",
		},
		{
			desc: "HTTP 500 with an ACI ERROR reply: the ACI error, status kept",
			reply: func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write(realError)
			},
			wantErr: "CFS answered HTTP 500 Internal Server Error: CFS replied ERROR ERRORPARAMINVALID (AXEQUERY502): No valid query text supplied",
			check: func(t *testing.T, err error) {
				var aci *ACIError
				require.ErrorAs(t, err, &aci)
				require.Equal(t, "AXEQUERY502", aci.ErrorID)
			},
		},
		{
			desc: "HTTP 413 with a long body: the reason is cut",
			reply: func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.WriteHeader(http.StatusRequestEntityTooLarge)
				_, _ = io.WriteString(w, "request body too large: "+strings.Repeat("x", 64<<10))
			},
			wantErr: "CFS answered HTTP 413 Request Entity Too Large: request body too large: xxx",
			check: func(t *testing.T, err error) {
				require.Less(t, len(err.Error()), 600, "the reason is bounded")
				require.True(t, strings.HasSuffix(err.Error(), "…"), "a cut reason says so: %q", err)
			},
		},
		{
			desc: "HTTP 503 with a plain text body",
			reply: func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(w, "ingest queue full (size < 10000)\nretry later via http://admin:hunter2@cfs01/\n")
			},
			wantErr: "CFS answered HTTP 503 Service Unavailable: ingest queue full (size < 10000) retry later via http://admin:[REDACTED]@cfs01/",
		},
		{
			desc: "redirect",
			reply: func(w http.ResponseWriter, r *http.Request, _ int) {
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
			},
			wantErr: "CFS answered HTTP 302 Found",
		},
		{
			desc:    "garbage body",
			reply:   func(w http.ResponseWriter, _ *http.Request, _ int) { _, _ = io.WriteString(w, "<html><body>Gateway") },
			wantErr: "malformed reply",
		},
		{
			desc: "other XML",
			reply: func(w http.ResponseWriter, _ *http.Request, _ int) {
				_, _ = io.WriteString(w, "<html><body>hi</body></html>")
			},
			wantErr: "malformed reply: aci: reply is not an autnresponse",
		},
		{
			desc:    "empty body",
			reply:   func(http.ResponseWriter, *http.Request, int) {},
			wantErr: "malformed reply: aci: empty reply",
		},
		{
			desc: "SUCCESS without token",
			reply: func(w http.ResponseWriter, _ *http.Request, _ int) {
				_, _ = io.WriteString(w, "<autnresponse><action>INGEST</action><response>SUCCESS</response><responsedata/></autnresponse>")
			},
			wantErr: "SUCCESS reply without a token",
		},
		{
			desc: "unknown response value",
			reply: func(w http.ResponseWriter, _ *http.Request, _ int) {
				_, _ = io.WriteString(w, "<autnresponse><response>MAYBE</response></autnresponse>")
			},
			wantErr: `reply has response "MAYBE", want SUCCESS or ERROR`,
		},
		{
			desc: "oversized reply",
			reply: func(w http.ResponseWriter, _ *http.Request, _ int) {
				_, _ = io.WriteString(w, "<autnresponse><response>SUCCESS</response><responsedata><token>"+strings.Repeat("A", maxReplyBytes)+"</token></responsedata></autnresponse>")
			},
			wantErr: "reply longer than",
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			f := newFakeCFS(t, false)
			f.reply = tt.reply
			tg := openFakeCFS(t, f, Options{})
			err := tg.Add(context.Background(), makeDocs("x", 2))
			require.ErrorIs(t, err, ErrDelivery)
			require.ErrorContains(t, err, tt.wantErr)
			require.ErrorContains(t, err, "ingest: CFS add of 2 documents to "+f.srv.URL+"/: ")
			if tt.check != nil {
				tt.check(t, err)
			}
		})
	}
}

// TestCFSPartialBatchFailure: when a request of a call fails, the call
// fails, although the batches before it were delivered, and nothing more
// is sent; also after a size refusal, while its halves go (CFS went down).
func TestCFSPartialBatchFailure(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		desc         string
		status       func(n int) int // of the nth request; 0: accepted
		batch, docs  int
		wantRequests int
	}{
		{"second batch refused", func(n int) int { return map[int]int{2: http.StatusServiceUnavailable}[n] }, 2, 6, 2},
		{"first half of a batch refused for its size", func(n int) int {
			return map[int]int{1: http.StatusRequestEntityTooLarge, 2: http.StatusServiceUnavailable}[n]
		}, 8, 32, 2},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			f := newFakeCFS(t, false)
			ok := f.reply
			f.reply = func(w http.ResponseWriter, r *http.Request, n int) {
				if code := tt.status(n); code != 0 {
					w.WriteHeader(code)
					return
				}
				ok(w, r, n)
			}
			tg := openFakeCFS(t, f, Options{BatchSize: tt.batch})
			err := tg.Add(context.Background(), makeDocs("x", tt.docs))
			require.ErrorIs(t, err, ErrDelivery)
			require.ErrorContains(t, err, "HTTP 503")
			var pe *PartialError
			require.False(t, errors.As(err, &pe), "not every other document was delivered")
			require.Len(t, f.received(), tt.wantRequests, "the call stops at the first failed request")
		})
	}
}

func TestCFSTimeout(t *testing.T) {
	t.Parallel()
	f := newFakeCFS(t, false)
	f.reply = func(_ http.ResponseWriter, r *http.Request, _ int) { <-r.Context().Done() } // never answers
	tg := openFakeCFS(t, f, Options{Timeout: 100 * time.Millisecond})
	err := tg.Add(context.Background(), makeDocs("x", 1))
	require.ErrorIs(t, err, ErrDelivery)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "%v", err)
}

func TestCFSContextCancelled(t *testing.T) {
	t.Parallel()
	f := newFakeCFS(t, false)
	arrived := make(chan struct{})
	f.reply = func(_ http.ResponseWriter, r *http.Request, _ int) {
		close(arrived)
		<-r.Context().Done()
	}
	tg := openFakeCFS(t, f, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	err := tg.Remove(ctx, []string{"x"})
	require.ErrorIs(t, err, ErrDelivery)
	require.ErrorIs(t, err, context.Canceled)
}

func TestCFSConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	tg, err := Open(Options{Type: "cfs", Host: "127.0.0.1", Port: port}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tg.Close() })
	err = tg.Add(context.Background(), makeDocs("x", 1))
	require.ErrorIs(t, err, ErrDelivery)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
}

func TestCFSOverHTTPS(t *testing.T) {
	t.Parallel()
	f := newFakeCFS(t, true)
	pool := x509.NewCertPool()
	pool.AddCert(f.srv.Certificate())
	tg := openFakeCFS(t, f, Options{SSL: true, TLSConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
	require.NoError(t, tg.Add(context.Background(), makeDocs("x", 1)))
	require.Len(t, f.received(), 1)
	require.True(t, strings.HasPrefix(tg.Describe(), "CFS https://127.0.0.1:"))

	// Without the test CA the server is not trusted.
	host, port := f.hostPort(t)
	untrusted, err := Open(Options{Type: TypeCFS, Host: host, Port: port, SSL: true}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = untrusted.Close() })
	err = untrusted.Add(context.Background(), makeDocs("y", 1))
	require.ErrorIs(t, err, ErrDelivery)
	var unknown x509.UnknownAuthorityError
	require.ErrorAs(t, err, &unknown)
	require.Len(t, f.received(), 1)
}

func TestCFSClosed(t *testing.T) {
	t.Parallel()
	f := newFakeCFS(t, false)
	tg := openFakeCFS(t, f, Options{})
	require.NoError(t, tg.Close())
	require.NoError(t, tg.Close())
	err := tg.Add(context.Background(), makeDocs("x", 1))
	require.ErrorIs(t, err, ErrDelivery)
	require.ErrorIs(t, err, ErrClosed)
	require.Empty(t, f.received())
}

func TestCFSOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc     string
		opts     Options
		wantName string
		missing  bool
	}{
		{desc: "no host", opts: Options{Port: 7000}, wantName: "IngestHost", missing: true},
		{desc: "no port", opts: Options{Host: "cfs"}, wantName: "IngestPort", missing: true},
		{desc: "port too large", opts: Options{Host: "cfs", Port: 70000}, wantName: "IngestPort"},
		{desc: "negative port", opts: Options{Host: "cfs", Port: -1}, wantName: "IngestPort"},
		{desc: "URL as host", opts: Options{Host: "http://cfs/", Port: 7000}, wantName: "IngestHost"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			tt.opts.Type = TypeCFS
			_, err := Open(tt.opts, nil)
			var pe *messages.ParamError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tt.wantName, pe.Name)
			require.Equal(t, tt.missing, pe.Missing)
		})
	}
	tg, err := Open(Options{Type: TypeCFS, Host: "::1", Port: 7000}, nil)
	require.NoError(t, err)
	require.Equal(t, "CFS http://[::1]:7000/", tg.Describe())
	require.NoError(t, tg.Close())
}

func TestAppendXMLEscaped(t *testing.T) {
	t.Parallel()
	in := "a&b<c>d\"e'f\tg\nh\ri\x00j\x1fk\xffl\uFFFEm😀"
	got := string(appendXMLEscaped(nil, in))
	require.Equal(t, "a&amp;b&lt;c&gt;d&quot;e&apos;f&#x9;g&#xA;h&#xD;i\uFFFDj\uFFFDk\uFFFDl\uFFFDm😀", got)
	var v struct {
		A string `xml:"a,attr"`
	}
	require.NoError(t, xml.Unmarshal([]byte(`<x a="`+got+`"/>`), &v))
	require.Equal(t, "a&b<c>d\"e'f\tg\nh\ri\uFFFDj\uFFFDk\uFFFDl\uFFFDm😀", v.A)
}

// sizeLimitedCFS is a fake CFS (or the gateway before it) that refuses a
// request body larger than limit with refuse, and keeps the references of
// the documents it accepts.
func sizeLimitedCFS(t *testing.T, limit int64, refuse func(w http.ResponseWriter)) (*fakeCFS, func() []string) {
	f := newFakeCFS(t, false)
	var mu sync.Mutex
	var accepted []string
	ok := f.reply
	f.reply = func(w http.ResponseWriter, r *http.Request, n int) {
		if r.ContentLength > limit {
			refuse(w)
			return
		}
		call := f.received()[n-1]
		mu.Lock()
		for _, d := range call.Adds {
			accepted = append(accepted, d.Reference)
		}
		accepted = append(accepted, call.Removes...)
		mu.Unlock()
		ok(w, r, n)
	}
	return f, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), accepted...)
	}
}

// addOneTooLarge adds 25 documents, in requests of 10, to f, a
// sizeLimitedCFS whose accepted says what it took, with x/3 too large on
// its own: it checks that only x/3 is refused, the others delivered, and
// returns the call's error.
func addOneTooLarge(t *testing.T, f *fakeCFS, accepted func() []string) error {
	t.Helper()
	tg := openFakeCFS(t, f, Options{BatchSize: 10})
	docs := makeDocs("x", 25)
	docs[3].Content = strings.Repeat("big ", 1000) // too large alone
	err := tg.Add(context.Background(), docs)
	require.ErrorIs(t, err, ErrDelivery)
	var pe *PartialError
	require.ErrorAs(t, err, &pe, "the caller learns that the others were delivered")
	require.Equal(t, []int{3}, slices.Sorted(maps.Keys(pe.Refused)))
	var want []string
	for i, d := range docs {
		if i != 3 {
			want = append(want, d.Reference)
		}
	}
	require.Equal(t, want, accepted(), "every other document delivered, in order")
	return err
}

// A batch CFS refused for its size (HTTP 413 from a gateway's body limit,
// or CFS's own ERRORREQUESTTOOLARGE) failed whole, and every run sent the
// same batch again to be refused again: none of its documents was ever
// indexed. It now goes again in halves, so that only a document too large
// on its own fails, named, and the others (and the batches after it) are
// delivered.
func TestCFSSplitsABatchRefusedForItsSize(t *testing.T) {
	t.Parallel()
	refusals := map[string]func(w http.ResponseWriter){
		"HTTP 413": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			_, _ = io.WriteString(w, "<html><head><title>413 Request Entity Too Large</title></head></html>")
		},
		"ACI ERRORREQUESTTOOLARGE": func(w http.ResponseWriter) {
			_, _ = io.WriteString(w, "<autnresponse><action>INGEST</action><response>ERROR</response><responsedata><error>"+
				"<errorid>CFS-105</errorid><errorstring>The request exceeds a configured limit</errorstring>"+
				"<errorcode>ERRORREQUESTTOOLARGE</errorcode></error></responsedata></autnresponse>")
		},
	}
	for name, refuse := range refusals {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f, accepted := sizeLimitedCFS(t, 2000, refuse)
			err := addOneTooLarge(t, f, accepted)
			require.ErrorContains(t, err, `document "x/3" is too large for CFS on its own`)
			require.LessOrEqual(t, len(f.received()), 13, "requests: the three batches and their halves, fewer than one per document")

			refs := make([]string, 300)
			for i := range refs {
				refs[i] = fmt.Sprintf("http://site/page/%04d", i)
			}
			f2, removed := sizeLimitedCFS(t, 2000, refuse)
			tg2 := openFakeCFS(t, f2, Options{BatchSize: 300})
			require.NoError(t, tg2.Remove(context.Background(), refs), "removals refused for their size go in halves")
			require.Equal(t, refs, removed())
		})
	}
}

// The fields of a CFS ERROR reply went into the error as they came, up
// to the 1 MiB a reply may hold: a broken or hostile CFS (or a proxy
// answering in its name) put a megabyte into every warning line, every
// failure a connector lists for the action and every ingest error, one per
// batch, and a URL's password it quoted in clear. Each field is now
// bounded, on one line, URL passwords redacted, as a non-ACI reply's text
// is.
func TestCFSErrorReplyFieldsAreBounded(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("spam\n", 40<<10)
	body := "<autnresponse><action>INGEST</action><response>ERROR</response><responsedata><error>" +
		"<errorid>" + strings.Repeat("I", 100<<10) + "</errorid>" +
		"<errorstring>see http://admin:hunter2@cfs01/ " + long + "</errorstring>" +
		"<errordescription>" + long + "</errordescription>" +
		"<errorcode>" + strings.Repeat("C", 100<<10) + "</errorcode>" +
		"</error></responsedata></autnresponse>"
	for _, status := range []int{http.StatusOK, http.StatusInternalServerError} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			f := newFakeCFS(t, false)
			f.reply = func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.WriteHeader(status)
				_, _ = io.WriteString(w, body)
			}
			tg := openFakeCFS(t, f, Options{})
			err := tg.Add(context.Background(), makeDocs("x", 1))
			require.ErrorIs(t, err, ErrDelivery)
			var ae *ACIError
			require.ErrorAs(t, err, &ae)
			require.Less(t, len(err.Error()), 2000, "the error is bounded")
			for _, field := range []string{ae.ErrorID, ae.ErrorString, ae.ErrorDescription, ae.ErrorCode} {
				require.LessOrEqual(t, len(field), maxReasonBytes+len("…"))
				require.NotContains(t, field, "\n")
			}
			require.NotContains(t, err.Error(), "hunter2")
			require.Contains(t, ae.ErrorString, "http://admin:[REDACTED]@cfs01/ spam spam")
		})
	}
}

// With CFS hanging, every call waited out IngestTimeout (30 s by default)
// before failing, batch after batch, Add and Remove alike: a crawl of
// ten thousand pages sat for hours delivering nothing. After a request CFS
// does not answer, calls now fail at once, without a request, naming the
// failure and when CFS is tried again; then one call goes through, and
// once CFS answers, every call goes again.
func TestCFSNotAnsweringFailsFastUntilAProbeGetsThrough(t *testing.T) {
	t.Parallel()
	f := newFakeCFS(t, false)
	var hang sync.Mutex // guards hanging: CFS never answers
	var hanging bool
	setHang := func(v bool) { hang.Lock(); hanging = v; hang.Unlock() }
	ok := f.reply
	f.reply = func(w http.ResponseWriter, r *http.Request, n int) {
		hang.Lock()
		h := hanging
		hang.Unlock()
		if h {
			<-r.Context().Done()
			return
		}
		ok(w, r, n)
	}
	setHang(true)
	// A timeout long enough for a loaded machine to pass the request to
	// the fake before the client gives up (the fake records it then).
	tg := openFakeCFS(t, f, Options{Timeout: time.Second})
	requests := func(n int) func() bool { return func() bool { return len(f.received()) == n } }
	clock := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	var cmu sync.Mutex
	tg.(*cfsTarget).now = func() time.Time { cmu.Lock(); defer cmu.Unlock(); return clock }
	advance := func(d time.Duration) { cmu.Lock(); clock = clock.Add(d); cmu.Unlock() }

	err := tg.Add(context.Background(), makeDocs("x", 1))
	var ne net.Error
	require.ErrorAs(t, err, &ne, "the first call waits for CFS")
	require.Eventually(t, requests(1), 10*time.Second, 5*time.Millisecond)
	for i := range 5 {
		err = tg.Add(context.Background(), makeDocs("y", 1))
		if i%2 == 1 {
			err = tg.Remove(context.Background(), []string{"y/0"})
		}
		require.ErrorIs(t, err, ErrDelivery)
		require.ErrorIs(t, err, ErrUnavailable)
		require.ErrorContains(t, err, "not sent: CFS has not answered since 2026-12-07T12:00:00Z")
		require.ErrorContains(t, err, "a request is tried again at 2026-12-07T12:00:30Z")
	}
	require.Len(t, f.received(), 1, "no request while CFS does not answer")

	advance(breakerPause)
	err = tg.Add(context.Background(), makeDocs("z", 1))
	require.ErrorAs(t, err, &ne, "after the pause one call goes, and times out")
	require.Eventually(t, requests(2), 10*time.Second, 5*time.Millisecond)
	err = tg.Add(context.Background(), makeDocs("z", 1))
	require.ErrorContains(t, err, "a request is tried again at 2026-12-07T12:01:30Z", "the pause doubles")

	setHang(false)
	advance(2 * breakerPause)
	require.NoError(t, tg.Add(context.Background(), makeDocs("a", 1)), "CFS answers: the probe goes through")
	require.NoError(t, tg.Remove(context.Background(), []string{"a/0"}), "and every call after it")
	require.Len(t, f.received(), 4)
}

// A reply, even an error, is an answer: a CFS that refuses a batch is
// asked again by the next call, and so is one the caller stopped waiting
// for, or one that closed the connection.
func TestCFSRefusalOrCancelDoesNotStopDeliveries(t *testing.T) {
	t.Parallel()
	f := newFakeCFS(t, false)
	f.reply = func(w http.ResponseWriter, _ *http.Request, n int) {
		if n == 5 { // closed without a reply, as a server may refuse a large body
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = c.Close()
			}
			return
		}
		// Each request on a new connection: a close on a kept-alive one
		// is tried again first (TestCFSRetriesAStaleKeptAliveConnectionOnce).
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	tg := openFakeCFS(t, f, Options{})
	for range 3 {
		require.ErrorContains(t, tg.Add(context.Background(), makeDocs("x", 1)), "HTTP 503")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, tg.Add(ctx, makeDocs("x", 1)), context.Canceled)
	require.ErrorContains(t, tg.Add(context.Background(), makeDocs("x", 1)), "HTTP 503")
	require.Len(t, f.received(), 4, "every call but the cancelled one sent its request")
	err := tg.Add(context.Background(), makeDocs("x", 1))
	require.ErrorIs(t, err, ErrDelivery)
	require.NotErrorIs(t, err, ErrUnavailable)
	require.ErrorContains(t, tg.Add(context.Background(), makeDocs("x", 1)), "HTTP 503", "the next, smaller batch may pass")
	require.Len(t, f.received(), 6)
}

// A server (or a gateway) may refuse a request too large for it by
// closing the connection, without a status; and when it sends its 413
// while the client is still sending a large body, the client usually
// sees the connection reset rather than the 413. Such a request failed
// the whole call as CFS being unreachable: the batch was refused whole
// by every run, for good. It now goes again in halves as a 413 does, so
// that only the document refused on its own fails; a close after that
// (CFS gone) stops the call as any other failure.
func TestCFSSplitsABatchRefusedByAClose(t *testing.T) {
	t.Parallel()
	closeConn := func(w http.ResponseWriter) {
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = c.Close()
		}
	}
	f, accepted := sizeLimitedCFS(t, 2000, closeConn)
	err := addOneTooLarge(t, f, accepted)
	require.NotErrorIs(t, err, ErrUnavailable)
	require.ErrorContains(t, err, `document "x/3" was refused on its own`)
	require.ErrorContains(t, err, "CFS closed the connection without a reply")

	// CFS gone after the first close: the call stops there.
	f2 := newFakeCFS(t, false)
	f2.reply = func(w http.ResponseWriter, _ *http.Request, n int) {
		if n == 1 {
			_ = f2.srv.Listener.Close() // before the close the client sees
			closeConn(w)
		}
	}
	tg2 := openFakeCFS(t, f2, Options{BatchSize: 10})
	err = tg2.Add(context.Background(), makeDocs("y", 25))
	require.ErrorIs(t, err, ErrDelivery)
	var pe *PartialError
	require.False(t, errors.As(err, &pe), "not every other document was delivered: %v", err)
	require.Len(t, f2.received(), 1)
}
