package crawl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// quietLogger discards everything.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// reqRecord is one request a test site received.
type reqRecord struct {
	Path   string // path and query as sent
	At     time.Time
	Header http.Header
}

// site is an in-process web site on 127.0.0.1 built by a test. It records
// every request it receives.
type site struct {
	*httptest.Server
	mu       sync.Mutex
	log      []reqRecord
	inflight int
	maxIn    int
}

// newSite serves h and records requests. It is closed when the test ends.
func newSite(t testing.TB, h http.Handler) *site {
	t.Helper()
	s := &site{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.log = append(s.log, reqRecord{Path: r.URL.RequestURI(), At: time.Now(), Header: r.Header.Clone()})
		s.inflight++
		s.maxIn = max(s.maxIn, s.inflight)
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.inflight--
			s.mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// requests returns a copy of the request log.
func (s *site) requests() []reqRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]reqRecord(nil), s.log...)
}

// count returns how many requests had exactly this path (and query).
func (s *site) count(path string) int {
	n := 0
	for _, r := range s.requests() {
		if r.Path == path {
			n++
		}
	}
	return n
}

// pages serves fixed HTML pages by path; other paths are 404.
type pages map[string]string

func (p pages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := p[r.URL.RequestURI()]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, body)
}

// linksPage returns an HTML page linking to hrefs.
func linksPage(title string, hrefs ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!doctype html><html><head><title>%s</title></head><body><h1>%s</h1>\n", title, title)
	for _, h := range hrefs {
		fmt.Fprintf(&b, "<a href=\"%s\">%s</a>\n", h, h)
	}
	b.WriteString("</body></html>")
	return b.String()
}

// result collects what the hooks received.
type result struct {
	mu     sync.Mutex
	pages  map[string]*Page // by Page.URL
	order  []string
	errs   map[string]error // by url
	stats  Stats
	err    error
	onPage func(p *Page) // optional extra
}

func (r *result) hooks() Hooks {
	return Hooks{
		OnPage: func(p *Page) {
			p.KeepBody() // kept for the test's checks
			r.mu.Lock()
			if r.pages == nil {
				r.pages = make(map[string]*Page)
			}
			r.pages[p.URL] = p
			r.order = append(r.order, p.URL)
			f := r.onPage
			r.mu.Unlock()
			if f != nil {
				f(p)
			}
		},
		OnError: func(u string, depth int, err error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.errs == nil {
				r.errs = make(map[string]error)
			}
			r.errs[u] = err
		},
	}
}

// paths returns the sorted paths (path+query after the origin) of the
// delivered pages, optionally only those of one depth (depth < 0: all).
func (r *result) paths(depth int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for u, p := range r.pages {
		if depth >= 0 && p.Depth != depth {
			continue
		}
		out = append(out, u[pathStart(u):])
	}
	sort.Strings(out)
	return out
}

func (r *result) page(t testing.TB, u string) *Page {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.pages[u]
	require.True(t, ok, "no page delivered for %s", u)
	return p
}

func (r *result) errFor(u string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errs[u]
}

// run crawls with cfg (logger and a generous timeout filled in) and
// collects the results.
func run(t testing.TB, cfg Config) *result {
	t.Helper()
	return runWith(t, context.Background(), cfg, &result{})
}

func runWith(t testing.TB, ctx context.Context, cfg Config, r *result) *result {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	// A safety net that ends a hung crawl, not a measure of speed: the
	// 1169-page real-site crawl under -race on a loaded 2-core machine
	// (GOMAXPROCS=1 beside CPU hogs) has taken over a minute.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	r.stats, r.err = Crawl(ctx, cfg, r.hooks())
	return r
}

// hostDialer returns a client that sends requests for each host name in
// hosts (name → 127.0.0.1:port) to that address, so that tests can crawl
// several "sites" with real host names. Its idle connections are closed
// when the test ends.
func hostDialer(t testing.TB, hosts map[string]string) *http.Client {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if a, ok := hosts[host]; ok {
				return d.DialContext(ctx, network, a)
			}
			if host == "127.0.0.1" {
				return d.DialContext(ctx, network, net.JoinHostPort(host, port))
			}
			return nil, errors.New("test: unknown host " + host)
		},
		MaxIdleConnsPerHost: 16,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// waitFor polls cond until it is true or the deadline passes.
func waitFor(t testing.TB, d time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", msg)
		}
		time.Sleep(2 * time.Millisecond) // polling interval, not a wait for an outcome
	}
}
