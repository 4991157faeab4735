package crawl

import (
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/sitepages"
)

// pgDocDir is the PostgreSQL 15 HTML manual (Debian postgresql-doc-15).
const pgDocDir = sitepages.PostgresDocs

// TestRealSitePostgresDocs crawls the PostgreSQL manual served from disk
// and checks the pages found at depths 0, 1 and 2 against the set computed
// from the files (corpora.md measured 1 / 112 / 1169 for 15.20).
func TestRealSitePostgresDocs(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("crawls 1169 pages; skipped with -short")
	}
	want, err := sitepages.PostgresPages(2)
	require.NoError(t, err)
	srv := httptest.NewServer(http.FileServer(http.Dir(pgDocDir)))
	t.Cleanup(srv.Close)

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
