package httpfetch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Text extraction turned on (ExtractText, or a format added to
// ExtractFormats) for a task that indexed its files without it: the files
// already indexed are fetched in full and delivered again with their
// text. Before, they answered 304 and kept no text for as long as they
// did not change. HTML pages are not delivered again.
func TestExtractionTurnedOnExtractsWhatWasIndexed(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":         htmlPage("Home", "/file.pdf"),
		"/file.pdf": {body: realPDF, ctype: "application/pdf"},
	})
	b := setup(t, siteConfig(s, "ExtractText=false"))
	b.sync(t)
	require.Empty(t, b.target.doc(s.URL+"/file.pdf").Content)

	b2 := setup(t, siteConfig(s, "ExtractText=true"), setupOpts{store: b.st})
	job := b2.sync(t)
	require.Equal(t, []string{s.URL + "/file.pdf"}, b2.target.refs())
	require.Contains(t, b2.target.doc(s.URL+"/file.pdf").Content, "The zebra crossed the meadow at dawn.")
	require.Equal(t, cnt{Seen: 2, Updated: 1, Unchanged: 1, IngestUpdated: 1}, countsOf(job, "MYTASK"))

	b2.target.reset()
	require.Equal(t, cnt{Seen: 2, Unchanged: 2}, countsOf(b2.sync(t), "MYTASK"))
	require.Empty(t, b2.target.refs())
}
