package browser

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(runKillHelper())
	}
	var mu sync.Mutex
	var groups []int
	startHook = func(pgid int) {
		mu.Lock()
		groups = append(groups, pgid)
		mu.Unlock()
	}
	code := m.Run()
	// No browser process of this test binary may survive its tests: not
	// a browser (it carries this process's marker), not a helper (it is in
	// the process group of a browser started here).
	if self, err := identity(os.Getpid()); err == nil {
		left := func() []int {
			pids := processesOf(self+"/", true)
			mu.Lock()
			defer mu.Unlock()
			for _, g := range groups {
				pids = append(pids, groupMembers(g, "")...)
			}
			return pids
		}
		deadline := time.Now().Add(30 * time.Second)
		pids := left()
		for len(pids) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			pids = left()
		}
		if len(pids) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: browser processes left behind by the tests: %v\n", pids)
			code = 1
		} else {
			fmt.Fprintf(os.Stderr, "browser: %d browsers started by the tests, no process left\n", len(groups))
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: goroutines leaked: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// newPool starts nothing: it makes a Pool whose browser starts on first
// use, closed when the test ends. The test fails (it does not skip) when
// no browser binary is installed.
func newPool(t testing.TB, cfg Config) *Pool {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.TempDir == "" {
		cfg.TempDir = t.TempDir()
	}
	if cfg.Tabs == 0 {
		cfg.Tabs = 2
	}
	p, err := New(cfg)
	if errors.Is(err, ErrNoBrowser) {
		t.Fatalf("these tests need headless Chromium: %v (`make test` installs the Debian package chromium-headless-shell)", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

// site is an in-process web site on 127.0.0.1 that counts the requests it
// receives per path.
type site struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
	mux  *http.ServeMux
}

func newSite(t testing.TB) *site {
	t.Helper()
	s := &site{hits: map[string]int{}, mux: http.NewServeMux()}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		s.mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// page serves a fixed body at path (the tests give the same bytes to
// Render, and check that the browser never asked for them).
func (s *site) handle(path, contentType, body string) {
	s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		io.WriteString(w, body)
	})
}

func (s *site) hitsOf(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

func render(t testing.TB, p *Pool, url, body string, opts RenderOptions) *Page {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := p.Render(ctx, url, []byte(body), "text/html; charset=utf-8", opts)
	require.NoError(t, err)
	return pg
}

func linkURLs(pg *Page) []string {
	var out []string
	for _, l := range pg.Links {
		out = append(out, l.URL)
	}
	return out
}
