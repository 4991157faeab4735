package httpfetch

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTransientFailureProtectsThroughRedirects: a transient failure keeps
// the pages the failed URL led to also when it led to them through a
// redirect ("/docs" → "/docs/", the usual folder redirect): the pages are
// recorded under the URL the redirect ends at, not the one that failed.
// Before, the run deleted them (and everything under them) from the
// target, and the next run delivered them all again.
func TestTransientFailureProtectsThroughRedirects(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":       htmlPage("Home", "/docs", "/p"),
		"/docs":   {loc: "/docs/", status: 301},
		"/docs/":  htmlPage("Docs", "a"),
		"/docs/a": htmlPage("A"),
		"/p":      htmlPage("P", "/q"),
		"/q":      {loc: "/q/", status: 301},
		"/q/":     htmlPage("Q", "b"),
		"/q/b":    htmlPage("B"),
	})
	b := setup(t, siteConfig(s))
	require.Equal(t, uint64(6), countsOf(b.sync(t), "MYTASK").Added)

	// The redirecting URL itself fails, and a page linking to a
	// redirecting URL fails.
	s.set("/docs", &page{status: 503})
	s.set("/p", &page{status: 502})
	job := b.sync(t)
	require.Equal(t, cnt{Seen: 1, Unchanged: 1, Errors: 2}, countsOf(job, "MYTASK"))
	require.Empty(t, b.target.removals())
	recs := b.records(t, "MYTASK")
	for _, p := range []string{"/docs/", "/docs/a", "/p", "/q/", "/q/b"} {
		require.Contains(t, recs, s.URL+p)
	}

	s.set("/docs", &page{loc: "/docs/", status: 301})
	s.set("/p", htmlPage("P", "/q"))
	job = b.sync(t)
	require.Equal(t, cnt{Seen: 6, Unchanged: 6}, countsOf(job, "MYTASK"))
}

// TestTransientFailureProtectsThroughNoindexPages: a page marked
// <meta name="robots" content="noindex, follow"> (a hub: an archive or
// category page, the usual SEO pattern) is crawled for its links but not
// indexed; when it fails transiently, the pages it leads to are kept like
// those behind any other page. Before, the crawl kept no record of such a
// page, so nothing told the deletion pass what it led to: a single 503 of
// the hub removed every page only it linked to from the index, until the
// next run delivered them all again.
func TestTransientFailureProtectsThroughNoindexPages(t *testing.T) {
	t.Parallel()
	hub := func() *page {
		p := htmlPage("Archive", "/a", "/b")
		p.body = strings.Replace(p.body, "<head>", `<head><meta name="robots" content="noindex, follow">`, 1)
		return p
	}
	s := newSite(t, map[string]*page{
		"/":    htmlPage("Home", "/hub"),
		"/hub": hub(),
		"/a":   htmlPage("A"),
		"/b":   htmlPage("B"),
	})
	b := setup(t, siteConfig(s))
	job := b.sync(t)
	require.Equal(t, uint64(3), countsOf(job, "MYTASK").IngestAdded, "/, /a and /b; not the hub")
	require.False(t, b.target.holds(s.URL+"/hub"))

	s.set("/hub", &page{status: 503})
	job = b.sync(t)
	require.Empty(t, b.target.removals())
	require.Zero(t, countsOf(job, "MYTASK").Deleted)
	for _, p := range []string{"/a", "/b"} {
		require.True(t, b.target.holds(s.URL+p), p)
	}

	s.set("/hub", hub())
	job = b.sync(t)
	require.Zero(t, countsOf(job, "MYTASK").IngestAdded+countsOf(job, "MYTASK").IngestUpdated, "nothing to deliver again")
	require.False(t, b.target.holds(s.URL+"/hub"))
}
