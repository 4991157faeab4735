package webfetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/crawl/browser"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: goroutines leaked: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// site is a test web site on 127.0.0.1: handlers by path, every request
// counted by path.
type site struct {
	*httptest.Server
	mu     sync.Mutex
	routes map[string]http.HandlerFunc
	hits   map[string]int
	held   atomic.Int64 // requests waiting in a "hold" handler
	unhold chan struct{}
}

func newSite(t testing.TB) *site {
	t.Helper()
	s := &site{routes: map[string]http.HandlerFunc{}, hits: map[string]int{}, unhold: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		h := s.routes[r.URL.Path]
		if h == nil { // a route ending in "/" serves its subtree
			best := ""
			for p, ph := range s.routes {
				if strings.HasSuffix(p, "/") && p != "/" && strings.HasPrefix(r.URL.Path, p) && len(p) > len(best) {
					best, h = p, ph
				}
			}
		}
		s.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() { close(s.unhold) })
		s.Close()
	})
	return s
}

func (s *site) handle(path string, h http.HandlerFunc) {
	s.mu.Lock()
	s.routes[path] = h
	s.mu.Unlock()
}

// html serves a fixed page.
func (s *site) html(path, body string) {
	s.handle(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, body)
	})
}

// json serves a value that may change (get is called per request).
func (s *site) json(path string, get func() string) {
	s.handle(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, get())
	})
}

// hold serves a page whose response never ends before the site closes.
func (s *site) hold(path string) {
	s.handle(path, func(w http.ResponseWriter, r *http.Request) {
		s.held.Add(1)
		defer s.held.Add(-1)
		select {
		case <-s.unhold:
		case <-r.Context().Done():
		}
	})
}

func (s *site) hitsOf(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// recTarget records the documents delivered.
type recTarget struct {
	mu      sync.Mutex
	docs    map[string]*ingest.Document
	removed []string
}

func (rt *recTarget) Add(_ context.Context, docs []*ingest.Document) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.docs == nil {
		rt.docs = map[string]*ingest.Document{}
	}
	for _, d := range docs {
		rt.docs[d.Reference] = d
	}
	return nil
}

func (rt *recTarget) Remove(_ context.Context, refs []string) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.removed = append(rt.removed, refs...)
	for _, r := range refs {
		delete(rt.docs, r)
	}
	return nil
}

func (rt *recTarget) Close() error     { return nil }
func (rt *recTarget) Describe() string { return "recording" }

func (rt *recTarget) doc(ref string) *ingest.Document {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.docs[ref]
}

func (rt *recTarget) refs() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var out []string
	for r := range rt.docs {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

func field(d *ingest.Document, name string) string {
	for _, f := range d.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// bundle is a repository under test.
type bundle struct {
	repo   *Repository
	target *recTarget
	st     store.Store
	cfg    *config.Config
}

type setupOpts struct {
	browser *browser.Config
	logger  *slog.Logger
}

// setup builds a Web connector repository from task configuration text
// (the [Connector] section is added). It fails, never skips, when the
// browser is missing.
func setup(t testing.TB, cfgText string, opts ...setupOpts) *bundle {
	t.Helper()
	var o setupOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	text := "[Connector]\nType=WEB\nBrowserTabs=2\n[Server]\nDataDirectory=" + t.TempDir() + "\n" + cfgText + "\n"
	cfg, err := config.Parse("test.cfg", []byte(text), TaskKeys)
	require.NoError(t, err)
	require.NoError(t, schema.Check(cfg))
	st, err := store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	if o.logger == nil {
		o.logger = quietLogger()
	}
	b := &bundle{target: &recTarget{}, st: st, cfg: cfg}
	bc := o.browser
	if bc == nil {
		bc = &browser.Config{Tabs: 2, TempDir: t.TempDir()}
	}
	b.repo, err = New(Options{Config: cfg, Store: st, Target: b.target, Logger: o.logger, Browser: bc})
	if errors.Is(err, browser.ErrNoBrowser) {
		t.Fatalf("the Web connector's tests need headless Chromium: %v (`make test` installs chromium-headless-shell)", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.repo.Close()) })
	return b
}

func params(kv ...string) messages.Params {
	var p messages.Params
	for i := 0; i+1 < len(kv); i += 2 {
		p = append(p, &messages.Param{Name: kv[i], Value: kv[i+1]})
	}
	return p
}

// run validates and runs a fetch action to its end.
func (b *bundle) run(t testing.TB, action string, p messages.Params) (*fetch.Job, []*messages.Element, error) {
	t.Helper()
	tasks, err := b.repo.Validate(action, p)
	require.NoError(t, err)
	job := fetch.NewJob("token", action, p, tasks)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := b.repo.Run(ctx, job)
	return job, res, err
}

func (b *bundle) sync(t testing.TB, kv ...string) *fetch.Job {
	t.Helper()
	job, _, err := b.run(t, fetch.ActionSynchronize, params(kv...))
	require.NoError(t, err)
	return job
}

type cnt struct {
	Seen, Added, Updated, Unchanged, Deleted, Errors uint64
}

func countsOf(job *fetch.Job, task string) cnt {
	c := job.Counts(task)
	if c == nil {
		return cnt{}
	}
	s := c.Snapshot()
	return cnt{Seen: s.Seen, Added: s.Added, Updated: s.Updated, Unchanged: s.Unchanged, Deleted: s.Deleted, Errors: s.Errors}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func taskConfig(url string, extra ...string) string {
	return "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=" + url + "\n" + strings.Join(extra, "\n") + "\n"
}

// runRepo validates and runs a fetch action with no parameter on any
// repository.
func runRepo(t testing.TB, r fetch.Repository, action string, kv ...string) *fetch.Job {
	t.Helper()
	p := params(kv...)
	tasks, err := r.Validate(action, p)
	require.NoError(t, err)
	job := fetch.NewJob("token", action, p, tasks)
	_, err = r.Run(context.Background(), job)
	require.NoError(t, err)
	return job
}
