package crawl

import (
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"
)

// pgDocDir is the PostgreSQL 15 HTML manual of the Debian package
// postgresql-doc-15: a real site nobody on the team wrote.
const pgDocDir = "/usr/share/doc/postgresql-doc-15/html"

// expectedPages computes, independently of the crawl code (net/url and
// html.Parse), which .html files of dir are reachable from index.html
// through <a href> links within each depth up to maxDepth.
func expectedPages(t *testing.T, dir string, maxDepth int) [][]string {
	t.Helper()
	linksOf := func(name string) []string {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(name)))
		require.NoError(t, err)
		defer f.Close()
		doc, err := html.Parse(f)
		require.NoError(t, err, name)
		base := &neturl.URL{Scheme: "http", Host: "site", Path: "/" + name}
		var out []string
		var walk func(n *html.Node)
		walk = func(n *html.Node) {
			if n.Type == html.ElementNode && n.Data == "a" {
				for _, a := range n.Attr {
					if a.Key != "href" {
						continue
					}
					u, err := base.Parse(strings.TrimSpace(a.Val))
					if err != nil || u.Scheme != "http" || u.Host != "site" {
						continue
					}
					p := strings.TrimPrefix(path.Clean(u.Path), "/")
					if p == "" {
						p = "index.html"
					}
					if st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); err == nil && !st.IsDir() {
						out = append(out, p)
					}
				}
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walk(c)
			}
		}
		walk(doc)
		return out
	}
	seen := map[string]bool{"index.html": true}
	levels := [][]string{{"index.html"}}
	for d := 1; d <= maxDepth; d++ {
		var next []string
		for _, name := range levels[d-1] {
			if !strings.HasSuffix(name, ".html") {
				continue
			}
			for _, l := range linksOf(name) {
				if !seen[l] {
					seen[l] = true
					next = append(next, l)
				}
			}
		}
		levels = append(levels, next)
	}
	// Only HTML files are delivered as pages.
	for d := range levels {
		var htmlOnly []string
		for _, n := range levels[d] {
			if strings.HasSuffix(n, ".html") {
				htmlOnly = append(htmlOnly, n)
			}
		}
		sort.Strings(htmlOnly)
		levels[d] = htmlOnly
	}
	return levels
}

// TestRealSitePostgresDocs crawls the PostgreSQL manual served from disk
// and checks the pages found at depths 0, 1 and 2 against the set computed
// from the files (corpora.md measured 1 / 112 / 1169 for 15.20).
func TestRealSitePostgresDocs(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(filepath.Join(pgDocDir, "index.html")); err != nil {
		t.Skipf("%s not installed (Debian package postgresql-doc-15; `make test` installs it): %v", pgDocDir, err)
	}
	if testing.Short() {
		t.Skip("crawls 1169 pages; skipped with -short")
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(pgDocDir)))
	t.Cleanup(srv.Close)

	want := expectedPages(t, pgDocDir, 2)
	for depth := 0; depth <= 2; depth++ {
		t.Run("depth "+string(rune('0'+depth)), func(t *testing.T) {
			t.Parallel()
			r := run(t, Config{
				StartURLs:   []string{srv.URL + "/"},
				Depth:       depth,
				StayOnSite:  true, // the manual links to postgresql.org: never leave 127.0.0.1
				Concurrency: 8,
			})
			require.NoError(t, r.err)
			var got, wantAll []string
			r.mu.Lock()
			for _, p := range r.pages {
				name := strings.TrimPrefix(p.FinalURL[pathStart(p.FinalURL):], "/")
				if name == "" {
					name = "index.html"
				}
				got = append(got, name)
			}
			r.mu.Unlock()
			for d := 0; d <= depth; d++ {
				wantAll = append(wantAll, want[d]...)
			}
			sort.Strings(got)
			sort.Strings(wantAll)
			require.Equal(t, wantAll, got)
			require.Equal(t, int64(len(wantAll)), r.stats.Pages)
			// Per-depth sets are exact too.
			for d := 0; d <= depth; d++ {
				var atDepth []string
				r.mu.Lock()
				for _, p := range r.pages {
					if p.Depth == d {
						name := strings.TrimPrefix(p.FinalURL[pathStart(p.FinalURL):], "/")
						if name == "" {
							name = "index.html"
						}
						atDepth = append(atDepth, name)
					}
				}
				r.mu.Unlock()
				sort.Strings(atDepth)
				require.Equal(t, want[d], atDepth, "depth %d", d)
			}
			t.Logf("depth %d: %d pages (%d requests, %d errors)", depth, r.stats.Pages, r.stats.Requests, len(r.errs))
		})
	}
}
