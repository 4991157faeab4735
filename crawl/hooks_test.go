package crawl

import (
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestOnAdmitReportsTheFrontier: OnAdmit receives exactly the URLs the
// crawl goes on to request (start URLs, and links that pass depth,
// StayOnSite and the spider rules), each once, with its depth.
func TestOnAdmitReportsTheFrontier(t *testing.T) {
	t.Parallel()
	s := newSite(t, pages{
		"/":        linksPage("Home", "/a", "/b", "/skip/x", "/a", "http://elsewhere.invalid/z"),
		"/a":       linksPage("A", "/deep"),
		"/b":       linksPage("B", "/"),
		"/deep":    linksPage("Deep", "/deeper"),
		"/skip/x":  linksPage("Skip"),
		"/deeper":  linksPage("Deeper"),
		"/ignored": linksPage("Ignored"),
	})
	r := &result{}
	var mu sync.Mutex
	admitted := map[string]int{}
	hooks := r.hooks()
	hooks.OnAdmit = func(u string, depth int) {
		mu.Lock()
		defer mu.Unlock()
		if _, dup := admitted[u]; dup {
			t.Errorf("admitted twice: %s", u)
		}
		admitted[u] = depth
	}
	cfg := Config{StartURLs: []string{s.URL + "/"}, Depth: 2, StayOnSite: true, Logger: quietLogger(),
		SpiderCantHave: regexp.MustCompile("/skip/")}
	_, err := Crawl(context.Background(), cfg, hooks)
	require.NoError(t, err)
	var paths []string
	for u, d := range admitted {
		paths = append(paths, u[len(s.URL):]+" "+string(rune('0'+d)))
	}
	slices.Sort(paths)
	require.Equal(t, []string{"/ 0", "/a 1", "/b 1", "/deep 2"}, paths)
	require.Equal(t, []string{"/", "/a", "/b", "/deep"}, r.paths(-1), "every admitted URL was fetched, and nothing else")
}

// TestGateHoldsRequests: while Gate waits, no page request is sent; when
// it returns, the crawl goes on; when the crawl's context ends, Gate's
// error drops the request without a report.
func TestGateHoldsRequests(t *testing.T) {
	t.Parallel()
	s := newSite(t, pages{"/": linksPage("Home", "/a"), "/a": linksPage("A")})
	open := make(chan struct{})
	var waits atomic.Int32
	r := &result{}
	hooks := r.hooks()
	hooks.Gate = func(ctx context.Context) error {
		waits.Add(1)
		select {
		case <-open:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := Crawl(context.Background(), Config{StartURLs: []string{s.URL + "/"}, Depth: 1, Logger: quietLogger()}, hooks)
		done <- err
	}()
	waitFor(t, 10*time.Second, func() bool { return waits.Load() >= 1 }, "the crawl asks the gate")
	require.Zero(t, s.count("/"), "no request while the gate is closed")
	close(open)
	require.NoError(t, <-done)
	require.Equal(t, []string{"/", "/a"}, r.paths(-1))
	require.Equal(t, int32(2), waits.Load(), "the gate is asked before each page request")

	// A gate that never opens: cancelling the crawl ends it, with nothing reported.
	r2 := &result{}
	hooks2 := r2.hooks()
	hooks2.Gate = func(ctx context.Context) error { <-ctx.Done(); return context.Cause(ctx) }
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, err := Crawl(ctx, Config{StartURLs: []string{s.URL + "/"}, Logger: quietLogger()}, hooks2)
		done <- err
	}()
	cancel()
	<-done
	require.Empty(t, r2.paths(-1))
	require.Nil(t, r2.errFor(s.URL+"/"))
}

// rewriting is a Fetcher that answers every page itself, as a browser
// fetcher answers with the rendered page.
type rewriting struct{ calls atomic.Int32 }

func (f *rewriting) Do(req *http.Request) (*http.Response, error) {
	f.calls.Add(1)
	body := linksPage("Rendered "+req.URL.Path, "/rendered")
	if req.URL.Path == "/rendered" {
		body = linksPage("Leaf")
	}
	return &http.Response{StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"text/html; charset=utf-8"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: req}, nil
}

// TestFetcherReplacesTheClient: with Config.Fetcher the crawl sends every
// request through it and reads its responses as from the network.
func TestFetcherReplacesTheClient(t *testing.T) {
	t.Parallel()
	s := newSite(t, pages{"/": linksPage("Network")})
	f := &rewriting{}
	r := runWith(t, context.Background(), Config{StartURLs: []string{s.URL + "/"}, Depth: 1, Fetcher: f}, &result{})
	require.NoError(t, r.err)
	require.Equal(t, []string{"/", "/rendered"}, r.paths(-1))
	require.Equal(t, "Rendered /", r.page(t, s.URL+"/").Title)
	require.Equal(t, int32(2), f.calls.Load())
	require.Zero(t, s.count("/"), "nothing went to the network")
}

// TestHashDuringOnPage: Page.Hash, asked for during OnPage without
// KeepBody (the body buffer is lent and reused for the worker's next
// pages), is the SHA-256 of the page as served, for every page of a site
// whose pages differ in length.
func TestHashDuringOnPage(t *testing.T) {
	t.Parallel()
	site := pages{"/": linksPage("Home", "/a", "/b", "/c", "/d")}
	for i, p := range []string{"/a", "/b", "/c", "/d"} {
		site[p] = linksPage(strings.Repeat("long title ", 40*i) + p)
	}
	s := newSite(t, site)
	var mu sync.Mutex
	got := map[string][32]byte{}
	_, err := Crawl(context.Background(), Config{StartURLs: []string{s.URL + "/"}, Depth: 1, Concurrency: 2, Logger: quietLogger()},
		Hooks{OnPage: func(p *Page) {
			h := p.Hash()
			mu.Lock()
			defer mu.Unlock()
			got[strings.TrimPrefix(p.URL, s.URL)] = h
		}})
	require.NoError(t, err)
	require.Len(t, got, len(site))
	for path, body := range site {
		require.Equal(t, sha256.Sum256([]byte(body)), got[path], path)
	}
}
