package crawl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectorhq/connector/messages"
	"github.com/stretchr/testify/require"
)

// treeSite: / links to a and b; a to a1, a2 and b; b to b1 and back to /;
// a1 to deep; deep to deeper.
func treeSite(t *testing.T) *site {
	return newSite(t, pages{
		"/":       linksPage("root", "/a", "/b"),
		"/a":      linksPage("a", "/a1", "/a2", "/b"),
		"/b":      linksPage("b", "/b1", "/"),
		"/a1":     linksPage("a1", "/deep"),
		"/a2":     linksPage("a2"),
		"/b1":     linksPage("b1", "/a1"),
		"/deep":   linksPage("deep", "/deeper"),
		"/deeper": linksPage("deeper"),
	})
}

func TestDepthLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc      string
		depth     int
		wantDepth [][]string // pages per depth
	}{
		{"depth 0 fetches only the start URL", 0, [][]string{{"/"}}},
		{"depth 1", 1, [][]string{{"/"}, {"/a", "/b"}}},
		{"depth 2", 2, [][]string{{"/"}, {"/a", "/b"}, {"/a1", "/a2", "/b1"}}},
		{"unlimited", -1, [][]string{{"/"}, {"/a", "/b"}, {"/a1", "/a2", "/b1"}, {"/deep"}, {"/deeper"}}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			s := treeSite(t)
			r := run(t, Config{StartURLs: []string{s.URL + "/"}, Depth: tt.depth, Concurrency: 4})
			require.NoError(t, r.err)
			total := 0
			for d, want := range tt.wantDepth {
				require.Equal(t, want, r.paths(d), "depth %d", d)
				total += len(want)
			}
			require.Len(t, r.paths(-1), total)
			require.Equal(t, int64(total), r.stats.Pages)
			require.Equal(t, len(tt.wantDepth), r.stats.Levels)
			require.Equal(t, StopDone, r.stats.StoppedBy)
			// Nothing beyond the limit was requested, nothing twice.
			var requested []string
			for _, req := range s.requests() {
				requested = append(requested, req.Path)
			}
			require.ElementsMatch(t, r.paths(-1), requested)
		})
	}
}

// TestMinimumDepthWithConcurrency: z is at depth 2 through "slow" and at
// depth 3 through fast→f2. Slow holds its answer until f2 is requested (or
// 300 ms pass): a crawl without a level barrier would fetch f2 meanwhile and
// record z at depth 3.
func TestMinimumDepthWithConcurrency(t *testing.T) {
	t.Parallel()
	f2Requested := make(chan struct{})
	var once sync.Once
	p := pages{
		"/":     linksPage("root", "/slow", "/fast"),
		"/fast": linksPage("fast", "/f2"),
		"/f2":   linksPage("f2", "/z"),
		"/slow": linksPage("slow", "/z"),
		"/z":    linksPage("z"),
	}
	s := newSite(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/f2":
			once.Do(func() { close(f2Requested) })
		case "/slow":
			select {
			case <-f2Requested:
			case <-time.After(300 * time.Millisecond):
			}
		}
		p.ServeHTTP(w, r)
	}))
	r := run(t, Config{StartURLs: []string{s.URL + "/"}, Depth: -1, Concurrency: 4})
	require.NoError(t, r.err)
	require.Equal(t, 2, r.page(t, s.URL+"/z").Depth)
	require.Equal(t, s.URL+"/slow", r.page(t, s.URL+"/z").Parent)
}

func TestCyclesFetchEachPageOnce(t *testing.T) {
	t.Parallel()
	s := newSite(t, pages{
		"/":   linksPage("root", "/x", "/y", "/x#frag", "./x", "/y?"),
		"/x":  linksPage("x", "/y", "/", "/x"),
		"/y":  linksPage("y", "/x", "/"),
		"/y?": linksPage("y?", "/"),
	})
	r := run(t, Config{StartURLs: []string{s.URL}, Depth: -1, Concurrency: 8})
	require.NoError(t, r.err)
	require.Equal(t, []string{"/", "/x", "/y", "/y?"}, r.paths(-1))
	for _, p := range []string{"/", "/x", "/y", "/y?"} {
		require.Equal(t, 1, s.count(p), p)
	}
	require.Equal(t, int64(4), r.stats.URLsDiscovered)
}

func TestRedirects(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	redirect := func(path, to string, code int) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			if to == "" {
				w.WriteHeader(code)
				return
			}
			w.Header().Set("Location", to)
			w.WriteHeader(code)
		})
	}
	page := func(path, body string) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, body)
		})
	}
	page("/{$}", linksPage("root", "/r1", "/final", "/loop1", "/chain/0", "/noloc", "/toftp", "/dup"))
	redirect("/r1", "/r2", http.StatusMovedPermanently)
	redirect("/r2", "final#x", http.StatusFound)
	page("/final", linksPage("final", "/after"))
	page("/after", linksPage("after"))
	redirect("/loop1", "/loop2", http.StatusTemporaryRedirect)
	redirect("/loop2", "/loop1", http.StatusPermanentRedirect)
	mux.HandleFunc("/chain/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		http.Redirect(w, r, fmt.Sprintf("/chain/%d", n+1), http.StatusFound)
	})
	redirect("/noloc", "", http.StatusFound)
	redirect("/toftp", "ftp://example.com/x", http.StatusFound)
	redirect("/dup", "/after", http.StatusFound)
	s := newSite(t, mux)

	r := run(t, Config{StartURLs: []string{s.URL}, Depth: 1, MaxRedirects: 5, Concurrency: 1})
	require.NoError(t, r.err)

	// /r1 → /r2 → /final: delivered once, under the first URL of the
	// chain that reached it. Links on it are at depth 2: beyond the limit.
	var final *Page
	r.mu.Lock()
	for _, p := range r.pages {
		if p.FinalURL == s.URL+"/final" {
			require.Nil(t, final, "final delivered twice")
			final = p
		}
	}
	r.mu.Unlock()
	require.NotNil(t, final)
	require.Equal(t, 1, s.count("/final"))
	require.Equal(t, 1, final.Depth)

	require.ErrorIs(t, r.errFor(s.URL+"/loop1"), ErrRedirectLoop)
	require.ErrorIs(t, r.errFor(s.URL+"/chain/0"), ErrTooManyRedirects)
	require.Equal(t, 6, countPrefix(s, "/chain/"), "one request plus MaxRedirects hops")
	require.ErrorIs(t, r.errFor(s.URL+"/noloc"), ErrBadRedirect)
	require.ErrorIs(t, r.errFor(s.URL+"/toftp"), ErrBadRedirect)
	var fe *FetchError
	require.ErrorAs(t, r.errFor(s.URL+"/noloc"), &fe)
	require.Equal(t, http.StatusFound, fe.Status)
	require.Equal(t, int64(4), r.stats.Errors.Redirect)

	// /dup redirects to /after, which depth 1 does not reach through links
	// (it is a depth-2 link of /final), so it is fetched through the
	// redirect; dedup of the target is covered by TestRedirectToSeenURL.
	require.LessOrEqual(t, s.count("/after"), 1)
}

func TestRedirectToSeenURL(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, linksPage("root", "/target", "/moved"))
	})
	mux.HandleFunc("/target", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, linksPage("target"))
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/target", http.StatusMovedPermanently)
	})
	s := newSite(t, mux)
	r := run(t, Config{StartURLs: []string{s.URL}, Depth: 1, Concurrency: 1})
	require.NoError(t, r.err)
	require.Equal(t, 1, s.count("/target"), "the redirect target is deduplicated")
	require.Equal(t, int64(1), r.stats.Skipped.Duplicate)
	require.Equal(t, int64(2), r.stats.Pages)
}

func countPrefix(s *site, prefix string) int {
	n := 0
	for _, r := range s.requests() {
		if strings.HasPrefix(r.Path, prefix) {
			n++
		}
	}
	return n
}

func TestStatusErrors(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, linksPage("root", "/missing", "/boom", "/gone", "/ok"))
	})
	mux.HandleFunc("/boom", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/gone", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "gone", http.StatusGone)
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, linksPage("ok"))
	})
	s := newSite(t, mux)
	r := run(t, Config{StartURLs: []string{s.URL}, Depth: 1})
	require.NoError(t, r.err)
	for path, want := range map[string]int{"/missing": 404, "/boom": 503, "/gone": 410} {
		err := r.errFor(s.URL + path)
		require.ErrorIs(t, err, ErrStatus, path)
		var fe *FetchError
		require.ErrorAs(t, err, &fe)
		require.Equal(t, want, fe.Status)
		require.Contains(t, err.Error(), "HTTP "+strconv.Itoa(want))
	}
	require.Equal(t, int64(3), r.stats.Errors.Status)
	require.Equal(t, []string{"/", "/ok"}, r.paths(-1))
}

func TestNetworkError(t *testing.T) {
	t.Parallel()
	s := newSite(t, pages{})
	addr := s.URL
	s.Close() // nothing listens there any more
	r := run(t, Config{StartURLs: []string{addr + "/"}})
	require.NoError(t, r.err)
	require.ErrorIs(t, r.errFor(addr+"/"), ErrNetwork)
	require.Equal(t, int64(1), r.stats.Errors.Network)
}

func TestHugePages(t *testing.T) {
	t.Parallel()
	const limit = 1000
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, linksPage("root", "/declared", "/streamed", "/exact"))
	})
	var streamedBytes atomic.Int64
	mux.HandleFunc("/declared", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Length", "5000000")
		// Say it, but send little: the crawl must not wait for the rest.
		_, _ = io.WriteString(w, "<p>")
	})
	mux.HandleFunc("/streamed", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		chunk := []byte(strings.Repeat("x", 100))
		for i := 0; i < 100_000; i++ { // 10 MB, chunked, unless aborted
			if _, err := w.Write(chunk); err != nil {
				return
			}
			streamedBytes.Add(100)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/exact", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, strings.Repeat("y", limit))
	})
	s := newSite(t, mux)
	r := run(t, Config{StartURLs: []string{s.URL}, Depth: 1, MaxPageSize: limit, RequestTimeout: 20 * time.Second})
	require.NoError(t, r.err)
	require.ErrorIs(t, r.errFor(s.URL+"/declared"), ErrTooLarge)
	require.ErrorIs(t, r.errFor(s.URL+"/streamed"), ErrTooLarge)
	require.Less(t, streamedBytes.Load(), int64(5_000_000), "the streamed download was aborted")
	p := r.page(t, s.URL+"/exact")
	require.Len(t, p.Body, limit)
	require.Equal(t, int64(2), r.stats.Errors.TooLarge)
}

func TestSlowPagesTimeOut(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, linksPage("root", "/slowheaders", "/slowbody", "/fast"))
	})
	mux.HandleFunc("/slowheaders", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers; ends when the client gives up
	})
	mux.HandleFunc("/slowbody", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html><body>first part")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the rest never comes
	})
	mux.HandleFunc("/fast", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, linksPage("fast"))
	})
	s := newSite(t, mux)
	r := run(t, Config{StartURLs: []string{s.URL}, Depth: 1, RequestTimeout: time.Second})
	require.NoError(t, r.err)
	require.ErrorIs(t, r.errFor(s.URL+"/slowheaders"), ErrTimeout)
	require.ErrorIs(t, r.errFor(s.URL+"/slowbody"), ErrTimeout, "the timeout covers the body")
	require.Equal(t, int64(2), r.stats.Errors.Timeout)
	require.Equal(t, []string{"/", "/fast"}, r.paths(-1))
}

func TestContentTypes(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, linksPage("root", "/doc.txt", "/blob", "/sniffed", "/pic", "/xhtml"))
	})
	var blobBytes atomic.Int64
	mux.HandleFunc("/doc.txt", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "see <a href=\"/hidden\">not a link</a> http://example.com/")
	})
	mux.HandleFunc("/blob", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		// 20 MB: more than loopback socket buffers hold, so the writes
		// fail once the crawler hangs up after the headers.
		for i := 0; i < 20_000; i++ {
			n, err := w.Write(make([]byte, 1000))
			blobBytes.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/sniffed", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil // no header, no automatic sniffing
		_, _ = io.WriteString(w, "<!DOCTYPE html><html><title>sniffed</title><a href=/viasniffed>x</a></html>")
	})
	mux.HandleFunc("/viasniffed", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, linksPage("viasniffed"))
	})
	mux.HandleFunc("/pic", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil
		_, _ = w.Write([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"))
	})
	mux.HandleFunc("/xhtml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xhtml+xml")
		_, _ = io.WriteString(w, `<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>x</title></head><body><a href="/viaxhtml">v</a></body></html>`)
	})
	mux.HandleFunc("/viaxhtml", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, linksPage("viaxhtml"))
	})
	mux.HandleFunc("/hidden", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a text/plain body was parsed for links")
	})
	s := newSite(t, mux)
	r := run(t, Config{
		StartURLs:           []string{s.URL},
		Depth:               2,
		AllowedContentTypes: []string{"text/html", "application/xhtml+xml", "text/plain"},
	})
	require.NoError(t, r.err)

	txt := r.page(t, s.URL+"/doc.txt")
	require.Equal(t, "text/plain", txt.MediaType)
	require.Empty(t, txt.Links)
	require.Empty(t, txt.Text, "only HTML is parsed")
	require.Contains(t, string(txt.Body), "not a link")

	require.ErrorIs(t, r.errFor(s.URL+"/blob"), ErrContentType)
	require.Less(t, blobBytes.Load(), int64(20_000_000), "a refused body is not downloaded")
	require.ErrorIs(t, r.errFor(s.URL+"/pic"), ErrContentType, "sniffed image/png is refused")

	sn := r.page(t, s.URL+"/sniffed")
	require.Equal(t, "text/html", sn.MediaType)
	require.Equal(t, "sniffed", sn.Title)
	r.page(t, s.URL+"/viasniffed")
	r.page(t, s.URL+"/viaxhtml")
	require.Equal(t, int64(2), r.stats.Skipped.ContentType)
}

func TestWildcardContentTypes(t *testing.T) {
	t.Parallel()
	s := newSite(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/gif")
		_, _ = io.WriteString(w, "GIF89a")
	}))
	r := run(t, Config{StartURLs: []string{s.URL}, AllowedContentTypes: []string{"image/*"}})
	require.Equal(t, "image/gif", r.page(t, s.URL+"/").MediaType)
	r = run(t, Config{StartURLs: []string{s.URL}, AllowedContentTypes: []string{"*/*"}})
	require.Equal(t, "image/gif", r.page(t, s.URL+"/").MediaType)
	r = run(t, Config{StartURLs: []string{s.URL}, AllowedContentTypes: []string{"text/*"}})
	require.ErrorIs(t, r.errFor(s.URL+"/"), ErrContentType)
}

func TestLinkTraps(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	var calls atomic.Int64
	mux.HandleFunc("/calendar", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		m, _ := strconv.Atoi(r.URL.Query().Get("month"))
		_, _ = io.WriteString(w, linksPage("cal", fmt.Sprintf("/calendar?month=%d", m+1), fmt.Sprintf("/calendar?month=%d", m-1)))
	})
	var sess atomic.Int64
	mux.HandleFunc("/session/{page}", func(w http.ResponseWriter, r *http.Request) {
		// Every link carries a fresh session id, as a path parameter and a
		// query parameter.
		id := sess.Add(1)
		_, _ = io.WriteString(w, linksPage("s",
			fmt.Sprintf("/session/a;jsessionid=%032d", id),
			fmt.Sprintf("/session/b?PHPSESSID=%032d&x=1", id),
			fmt.Sprintf("/session/a?sid=%d", id)))
	})
	mux.HandleFunc("/grow/", func(w http.ResponseWriter, r *http.Request) {
		// Each page links one segment deeper, with new names.
		n := strings.Count(r.URL.Path, "/")
		_, _ = io.WriteString(w, linksPage("g", fmt.Sprintf("%d/", n)))
	})
	mux.HandleFunc("/loop/", func(w http.ResponseWriter, r *http.Request) {
		// Relative link to the same segments: /loop/a/b/a/b/...
		_, _ = io.WriteString(w, linksPage("l", "a/", "b/"))
	})
	var infinite atomic.Int64
	mux.HandleFunc("/n/{n}", func(w http.ResponseWriter, r *http.Request) {
		infinite.Add(1)
		n, _ := strconv.Atoi(r.PathValue("n"))
		_, _ = io.WriteString(w, linksPage("n", fmt.Sprintf("/n/%d", 2*n), fmt.Sprintf("/n/%d", 2*n+1)))
	})
	s := newSite(t, mux)

	t.Run("calendar query variants", func(t *testing.T) {
		t.Parallel()
		r := run(t, Config{StartURLs: []string{s.URL + "/calendar?month=0"}, Depth: -1, MaxQueryVariants: 30})
		require.NoError(t, r.err)
		// The start URL plus 30 discovered variants of /calendar?month=.
		require.Equal(t, int64(31), r.stats.Pages)
		require.Positive(t, r.stats.Skipped.Trap)
	})
	t.Run("session ids", func(t *testing.T) {
		t.Parallel()
		r := run(t, Config{StartURLs: []string{s.URL + "/session/start"}, Depth: -1})
		require.NoError(t, r.err)
		require.Equal(t, []string{"/session/a", "/session/b?x=1", "/session/start"}, r.paths(-1))
	})
	t.Run("growing paths", func(t *testing.T) {
		t.Parallel()
		r := run(t, Config{StartURLs: []string{s.URL + "/grow/"}, Depth: -1, MaxPathSegments: 10})
		require.NoError(t, r.err)
		// Segments are counted like WHATWG path items: "/grow/" has two
		// ("grow" and ""), so paths of 2 to 10 segments are fetched.
		require.Equal(t, int64(9), r.stats.Pages)
		require.Equal(t, int64(1), r.stats.Skipped.Trap)
	})
	t.Run("repeated segments", func(t *testing.T) {
		t.Parallel()
		r := run(t, Config{StartURLs: []string{s.URL + "/loop/"}, Depth: -1, MaxSegmentRepeats: 2})
		require.NoError(t, r.err)
		for _, p := range r.paths(-1) {
			require.LessOrEqual(t, strings.Count(p, "a/"), 2, p)
			require.LessOrEqual(t, strings.Count(p, "b/"), 2, p)
		}
		require.Positive(t, r.stats.Skipped.Trap)
	})
	t.Run("long URLs", func(t *testing.T) {
		t.Parallel()
		r := run(t, Config{StartURLs: []string{s.URL + "/grow/"}, Depth: -1, MaxURLLength: len(s.URL) + 20})
		require.NoError(t, r.err)
		for u := range r.pages {
			require.LessOrEqual(t, len(u), len(s.URL)+20)
		}
		require.Equal(t, int64(1), r.stats.Skipped.Trap)
	})
	t.Run("MaxURLs bounds an infinite site", func(t *testing.T) {
		t.Parallel()
		r := run(t, Config{StartURLs: []string{s.URL + "/n/1"}, Depth: -1, MaxURLs: 200})
		require.NoError(t, r.err)
		require.Equal(t, int64(200), r.stats.URLsDiscovered)
		require.Equal(t, int64(200), r.stats.Pages)
		require.Positive(t, r.stats.Skipped.MaxURLs)
	})
}

// conditionalSite answers 304 when the request's validators match.
func TestConditionalRequests(t *testing.T) {
	t.Parallel()
	const etag = `"v1"`
	const lastMod = "Mon, 02 Jan 2006 15:04:05 GMT"
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == etag {
			w.Header().Set("ETag", etag)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		_, _ = io.WriteString(w, linksPage("root", "/a"))
	})
	mux.HandleFunc("/a", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-Modified-Since") == lastMod {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Last-Modified", lastMod)
		_, _ = io.WriteString(w, linksPage("a", "/c"))
	})
	for _, p := range []string{"/b", "/c", "/d"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, linksPage(p)) })
	}
	s := newSite(t, mux)

	// First crawl: full fetches; keep what Page.Prior says.
	var priorsMu sync.Mutex
	priors := map[string]Prior{}
	first := &result{onPage: func(p *Page) {
		priorsMu.Lock()
		priors[p.URL] = p.Prior()
		priorsMu.Unlock()
	}}
	runWith(t, context.Background(), Config{StartURLs: []string{s.URL}, Depth: -1}, first)
	require.NoError(t, first.err)
	require.Equal(t, []string{"/", "/a", "/c"}, first.paths(-1))
	require.Equal(t, etag, priors[s.URL+"/"].ETag)
	require.Equal(t, lastMod, priors[s.URL+"/a"].LastModified)

	// Second crawl: the site "changed" its root links to /a and /b, but the
	// root is unchanged per its validators, so the crawl follows the prior
	// links — add /b to them to see that they are what is followed.
	root := priors[s.URL+"/"]
	root.Links = append(root.Links, s.URL+"/b")
	priors[s.URL+"/"] = root
	second := &result{}
	cfg := Config{StartURLs: []string{s.URL}, Depth: -1}
	hooks := second.hooks()
	hooks.Prior = func(u string) (Prior, bool) {
		priorsMu.Lock()
		defer priorsMu.Unlock()
		p, ok := priors[u]
		return p, ok
	}
	cfg.Logger = quietLogger()
	second.stats, second.err = Crawl(context.Background(), cfg, hooks)
	require.NoError(t, second.err)

	rootPage := second.page(t, s.URL+"/")
	require.True(t, rootPage.NotModified)
	require.Equal(t, http.StatusNotModified, rootPage.Status)
	require.Nil(t, rootPage.Body)
	require.Zero(t, rootPage.Hash(), "no body, no hash")
	require.Equal(t, []string{s.URL + "/a", s.URL + "/b"}, rootPage.Links)
	aPage := second.page(t, s.URL+"/a")
	require.True(t, aPage.NotModified)
	require.Equal(t, 1, aPage.Depth)
	require.False(t, second.page(t, s.URL+"/b").NotModified)
	require.False(t, second.page(t, s.URL+"/c").NotModified)
	require.Equal(t, int64(2), second.stats.NotModified)
	require.Equal(t, int64(2), second.stats.Pages)

	// The server saw the validators.
	var sawINM, sawIMS bool
	for _, rq := range s.requests() {
		sawINM = sawINM || (rq.Path == "/" && rq.Header.Get("If-None-Match") == etag)
		sawIMS = sawIMS || (rq.Path == "/a" && rq.Header.Get("If-Modified-Since") == lastMod)
	}
	require.True(t, sawINM)
	require.True(t, sawIMS)
}

func TestStayOnSite(t *testing.T) {
	t.Parallel()
	home := newSite(t, pages{
		"/":      linksPage("home", "http://www.site.test/w", "https://blog.site.test/b", "http://other.test/o", "/local"),
		"/w":     linksPage("w"),
		"/local": linksPage("local"),
	})
	other := newSite(t, pages{"/o": linksPage("o"), "/b": linksPage("b")})
	hosts := map[string]string{
		"site.test":      home.Listener.Addr().String(),
		"www.site.test":  home.Listener.Addr().String(),
		"other.test":     other.Listener.Addr().String(),
		"blog.site.test": other.Listener.Addr().String(),
	}
	client := hostDialer(t, hosts)

	r := run(t, Config{StartURLs: []string{"http://site.test/"}, Depth: 1, StayOnSite: true, Client: client})
	require.NoError(t, r.err)
	require.ElementsMatch(t, []string{"http://site.test/", "http://www.site.test/w", "http://site.test/local"}, keys(r))
	require.Equal(t, int64(2), r.stats.Skipped.OffSite, "blog.site.test and other.test")
	require.Zero(t, len(other.requests()))

	r = run(t, Config{StartURLs: []string{"http://site.test/"}, Depth: 1, StayOnSite: false, Client: client})
	require.NoError(t, r.err)
	require.Len(t, keys(r), 4) // https://blog.site.test fails (no TLS there)
	require.Zero(t, r.stats.Skipped.OffSite)
}

// TestStayOnSiteComparesSchemeAndPort is the regression test of a crawl
// that walked from a site to another service of the same host: a link to
// another port, or to the other scheme, is off site.
func TestStayOnSiteComparesSchemeAndPort(t *testing.T) {
	t.Parallel()
	internal := newSite(t, pages{"/admin": linksPage("admin")})
	_, internalPort, _ := net.SplitHostPort(internal.Listener.Addr().String())
	home := newSite(t, pages{
		"/":      linksPage("home", "http://127.0.0.1:"+internalPort+"/admin", "https://127.0.0.1/tls", "/local"),
		"/local": linksPage("local"),
	})
	r := run(t, Config{StartURLs: []string{home.URL + "/"}, Depth: 1, StayOnSite: true})
	require.NoError(t, r.err)
	require.ElementsMatch(t, []string{home.URL + "/", home.URL + "/local"}, keys(r))
	require.Equal(t, int64(2), r.stats.Skipped.OffSite, "another port and another scheme")
	require.Zero(t, len(internal.requests()), "the other service was never asked")
}

func keys(r *result) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for k := range r.pages {
		out = append(out, k)
	}
	return out
}

func TestSpiderRegexes(t *testing.T) {
	t.Parallel()
	s := newSite(t, pages{
		"/":               linksPage("root", "/docs/a", "/docs/b", "/blog/c", "/docs/private/d"),
		"/docs/a":         linksPage("a"),
		"/docs/b":         linksPage("b"),
		"/blog/c":         linksPage("c"),
		"/docs/private/d": linksPage("d"),
	})
	r := run(t, Config{
		StartURLs:      []string{s.URL + "/"},
		Depth:          1,
		SpiderMustHave: regexp.MustCompile(`^http://127\.0\.0\.1:\d+/(docs/.*)?$`),
		SpiderCantHave: regexp.MustCompile(`/private/`),
	})
	require.NoError(t, r.err)
	require.Equal(t, []string{"/", "/docs/a", "/docs/b"}, r.paths(-1))
	require.Equal(t, int64(2), r.stats.Skipped.Spider)
	require.Zero(t, s.count("/blog/c"))

	// The rules apply to start URLs too.
	r = run(t, Config{StartURLs: []string{s.URL + "/blog/c"}, SpiderCantHave: regexp.MustCompile(`blog`)})
	require.Empty(t, r.paths(-1))
	require.Equal(t, int64(1), r.stats.Skipped.Spider)
}

func TestMaxPages(t *testing.T) {
	t.Parallel()
	p := pages{}
	var links []string
	for i := 0; i < 50; i++ {
		links = append(links, fmt.Sprintf("/p%d", i))
		p[fmt.Sprintf("/p%d", i)] = linksPage("p")
	}
	p["/"] = linksPage("root", links...)
	s := newSite(t, p)
	for _, conc := range []int{1, 8} {
		r := run(t, Config{StartURLs: []string{s.URL}, Depth: 1, MaxPages: 10, Concurrency: conc})
		require.NoError(t, r.err)
		require.Len(t, r.paths(-1), 10)
		require.Equal(t, int64(10), r.stats.Pages)
		require.Equal(t, StopMaxPages, r.stats.StoppedBy)
	}
}

// TestConcurrencyIsParallel: each page request waits until another one is
// in flight; a sequential crawler would never satisfy that (and the test
// would fail on maxIn == 1 after the handler's 10 s guard).
func TestConcurrencyIsParallel(t *testing.T) {
	t.Parallel()
	var links []string
	for i := 0; i < 8; i++ {
		links = append(links, fmt.Sprintf("/p%d", i))
	}
	var s *site
	s = newSite(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			_, _ = io.WriteString(w, linksPage("root", links...))
			return
		}
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			s.mu.Lock()
			m := s.maxIn
			s.mu.Unlock()
			if m > 1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		_, _ = io.WriteString(w, linksPage(r.URL.Path))
	}))
	r := run(t, Config{StartURLs: []string{s.URL}, Depth: 1, Concurrency: 4})
	require.NoError(t, r.err)
	require.Len(t, r.paths(-1), 9)
	s.mu.Lock()
	defer s.mu.Unlock()
	require.Greater(t, s.maxIn, 1)
	require.LessOrEqual(t, s.maxIn, 4, "never more than Concurrency requests at once")
}

// TestStopMidCrawl: the site serves 20 pages, then holds every request.
// Once Concurrency requests are held, the test cancels. Crawl must return
// the cause, abort the held requests, and start no request after that.
func TestStopMidCrawl(t *testing.T) {
	t.Parallel()
	const conc = 4
	var served atomic.Int64
	var held atomic.Int64
	s := newSite(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		if served.Add(1) > 20 {
			held.Add(1)
			<-r.Context().Done()
			return
		}
		_, _ = io.WriteString(w, linksPage("p", fmt.Sprintf("/%d", 2*n+1), fmt.Sprintf("/%d", 2*n+2)))
	}))

	// Client-side check: a request must never be started with the crawl's
	// context already done.
	var startedAfterCancel atomic.Int64
	base := hostDialer(t, nil)
	client := &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Context().Err() != nil {
			startedAfterCancel.Add(1)
		}
		return base.Transport.RoundTrip(req)
	})}

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stopCause := errors.New("test: user pressed stop")
	done := make(chan *result, 1)
	go func() {
		r := &result{}
		r.stats, r.err = Crawl(ctx, Config{StartURLs: []string{s.URL + "/0"}, Depth: -1, Concurrency: conc, Client: client, Logger: quietLogger()}, r.hooks())
		done <- r
	}()
	waitFor(t, 10*time.Second, func() bool { return held.Load() == conc }, "all workers held")
	cancel(stopCause)

	var r *result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Crawl did not return after cancel")
	}
	require.ErrorIs(t, r.err, stopCause)
	require.Equal(t, StopCancelled, r.stats.StoppedBy)
	require.Equal(t, int64(20), r.stats.Pages)
	arrived := len(s.requests())
	s.Close() // waits for every handler to finish
	require.Equal(t, arrived, len(s.requests()), "no request arrived after Crawl returned")
	require.Equal(t, 20+conc, arrived)
	require.Zero(t, startedAfterCancel.Load())
	require.Empty(t, r.errs, "cancellation is not reported as fetch errors")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestStopBeforeStart(t *testing.T) {
	t.Parallel()
	s := newSite(t, pages{"/": linksPage("root")})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	st, err := Crawl(ctx, Config{StartURLs: []string{s.URL}, Logger: quietLogger()}, Hooks{})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, StopCancelled, st.StoppedBy)
	require.Empty(t, s.requests())
}

func TestPageDelay(t *testing.T) {
	t.Parallel()
	s := newSite(t, pages{
		"/":  linksPage("root", "/a", "/b", "/c"),
		"/a": linksPage("a"), "/b": linksPage("b"), "/c": linksPage("c"),
	})
	const delay = 50 * time.Millisecond
	var mu sync.Mutex
	var starts []time.Time
	base := hostDialer(t, nil)
	client := &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		return base.Transport.RoundTrip(req)
	})}
	r := run(t, Config{StartURLs: []string{s.URL}, Depth: 1, Concurrency: 1, PageDelay: delay, Client: client})
	require.NoError(t, r.err)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, starts, 4)
	for i := 1; i < len(starts); i++ {
		// The delay runs from the end of the previous exchange, which is
		// after its start.
		require.GreaterOrEqual(t, starts[i].Sub(starts[i-1]), delay)
	}
}

func TestMaxBytesPerSec(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("z", 20_000)
	s := newSite(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, body)
	}))
	var urls []string
	for i := 0; i < 5; i++ {
		urls = append(urls, fmt.Sprintf("%s/%d", s.URL, i))
	}
	const rate = 50_000
	start := time.Now()
	r := run(t, Config{StartURLs: urls, Concurrency: 4, MaxBytesPerSec: rate})
	elapsed := time.Since(start)
	require.NoError(t, r.err)
	require.Equal(t, int64(5), r.stats.Pages)
	require.Equal(t, int64(100_000), r.stats.Bytes)
	// 100 kB at 50 kB/s with a 50 kB initial burst: at least one second.
	require.GreaterOrEqual(t, elapsed, 900*time.Millisecond)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		cfg     Config
		wantErr string // substring; "" = valid
	}{
		{"minimal", Config{StartURLs: []string{"http://example.com"}}, ""},
		{"no start URL", Config{}, "StartURLs"},
		{"relative start URL", Config{StartURLs: []string{"/x"}}, "StartURLs"},
		{"ftp start URL", Config{StartURLs: []string{"ftp://example.com/"}}, "not an http or https URL"},
		{"depth", Config{StartURLs: []string{"http://e.com"}, Depth: -2}, "Depth"},
		{"negative concurrency", Config{StartURLs: []string{"http://e.com"}, Concurrency: -1}, "Concurrency"},
		{"negative page size", Config{StartURLs: []string{"http://e.com"}, MaxPageSize: -1}, "MaxPageSize"},
		{"bad content type", Config{StartURLs: []string{"http://e.com"}, AllowedContentTypes: []string{"html"}}, "AllowedContentTypes"},
		{"bad robots agent", Config{StartURLs: []string{"http://e.com"}, RobotsAgent: "Foo Bar"}, "RobotsAgent"},
		{"user agent without token", Config{StartURLs: []string{"http://e.com"}, UserAgent: "(x)"}, "UserAgent"},
		{"multi-line user agent", Config{StartURLs: []string{"http://e.com"}, UserAgent: "a\r\nX: y"}, "UserAgent"},
		{"bad session param", Config{StartURLs: []string{"http://e.com"}, SessionParams: []string{"a=b"}}, "SessionParams"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.wantErr)
			require.True(t, errors.Is(err, messages.ErrInvalidParam) || errors.Is(err, messages.ErrMissingParam))
			_, cerr := Crawl(context.Background(), tt.cfg, Hooks{})
			require.Error(t, cerr)
		})
	}
}

func TestConditionalThroughRedirect(t *testing.T) {
	t.Parallel()
	const etag = `"n1"`
	mux := http.NewServeMux()
	mux.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/new", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/new", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = io.WriteString(w, linksPage("new"))
	})
	mux.HandleFunc("/linked", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, linksPage("linked")) })
	s := newSite(t, mux)
	var asked []string
	var mu sync.Mutex
	r := &result{}
	hooks := r.hooks()
	hooks.Prior = func(u string) (Prior, bool) {
		mu.Lock()
		asked = append(asked, u)
		mu.Unlock()
		if u == s.URL+"/new" {
			return Prior{ETag: etag, Links: []string{s.URL + "/linked"}}, true
		}
		return Prior{}, false
	}
	st, err := Crawl(context.Background(), Config{StartURLs: []string{s.URL + "/old"}, Depth: 1, Logger: quietLogger()}, hooks)
	require.NoError(t, err)
	p := r.page(t, s.URL+"/old")
	require.True(t, p.NotModified)
	require.Equal(t, s.URL+"/new", p.FinalURL)
	require.Equal(t, []string{s.URL + "/linked"}, p.Links)
	r.page(t, s.URL+"/linked")
	require.Equal(t, int64(1), st.NotModified)
	require.Contains(t, asked, s.URL+"/old")
	require.Contains(t, asked, s.URL+"/new")
}

func TestRedirectsDisabled(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/a", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/b", http.StatusFound) })
	mux.HandleFunc("/b", func(w http.ResponseWriter, r *http.Request) { t.Error("redirect followed") })
	s := newSite(t, mux)
	r := run(t, Config{StartURLs: []string{s.URL + "/a"}, MaxRedirects: -1})
	require.NoError(t, r.err)
	require.ErrorIs(t, r.errFor(s.URL+"/a"), ErrTooManyRedirects)
}

func TestStartURLsNormalisedAndDeduplicated(t *testing.T) {
	t.Parallel()
	s := newSite(t, pages{"/": linksPage("root"), "/x": linksPage("x")})
	port := s.URL[strings.LastIndexByte(s.URL, ':'):]
	r := run(t, Config{StartURLs: []string{s.URL, s.URL + "/", "HTTP://127.0.0.1" + port + "/#top", " " + s.URL + "/x "}})
	require.NoError(t, r.err)
	require.Equal(t, []string{"/", "/x"}, r.paths(0))
	require.Equal(t, 1, s.count("/"))
	require.Equal(t, int64(2), r.stats.URLsDiscovered)
}
