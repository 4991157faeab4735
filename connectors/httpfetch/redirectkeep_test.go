package httpfetch

import (
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
