package httpfetch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A page found by a later run at a smaller depth than before (a shorter
// link chain to it appeared) and answered 304 kept its old depth and
// parent in its record, and its links were followed from the new depth.
func TestNotModifiedPageTakesItsNewDepth(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":       htmlPage("Home", "/a"),
		"/a":      htmlPage("A", "/deep"),
		"/deep":   htmlPage("Deep", "/deeper"),
		"/deeper": htmlPage("Deeper"),
	})
	b := setup(t, siteConfig(s, "Depth=2"))
	b.sync(t)
	require.Equal(t, 2, b.records(t, "MYTASK")[s.URL+"/deep"].Depth)
	require.NotContains(t, b.records(t, "MYTASK"), s.URL+"/deeper", "depth 3")

	// The home page links to /deep now: it is at depth 1, unchanged (304),
	// and its link is at depth 2.
	s.set("/", htmlPage("Home", "/a", "/deep"))
	b.sync(t)
	recs := b.records(t, "MYTASK")
	require.Contains(t, recs, s.URL+"/deeper", "followed from the new depth")
	require.Equal(t, 2, recs[s.URL+"/deeper"].Depth)
	require.Equal(t, 1, recs[s.URL+"/deep"].Depth, "the record has the page's new depth")
	require.Equal(t, s.URL+"/", recs[s.URL+"/deep"].Parent)
}

// The document of a page found at another depth says so once the next
// run has fetched it in full (a 304 has nothing to build it from), and
// the run after is conditional and delivers nothing again.
func TestNotModifiedPageAtANewDepthIsDeliveredAgain(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":     htmlPage("Home", "/a"),
		"/a":    htmlPage("A", "/deep"),
		"/deep": htmlPage("Deep"),
	})
	b := setup(t, siteConfig(s))
	b.sync(t)
	require.Equal(t, "2", fieldValue(b.target.doc(s.URL+"/deep"), FieldDepth))
	s.set("/", htmlPage("Home", "/a", "/deep"))
	b.sync(t)
	b.target.reset()
	job := b.sync(t)
	require.Equal(t, []string{s.URL + "/deep"}, b.target.refs())
	require.Equal(t, "1", fieldValue(b.target.doc(s.URL+"/deep"), FieldDepth))
	require.Equal(t, s.URL+"/", fieldValue(b.target.doc(s.URL+"/deep"), FieldParentURL))
	require.Equal(t, cnt{Seen: 3, Updated: 1, Unchanged: 2, IngestUpdated: 1}, countsOf(job, "MYTASK"))
	b.target.reset()
	require.Equal(t, cnt{Seen: 3, Unchanged: 3}, countsOf(b.sync(t), "MYTASK"))
	require.Empty(t, b.target.refs())
}
