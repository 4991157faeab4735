package httpfetch

import (
	"encoding/json"
	"testing"

	"github.com/connectorhq/connector/store"
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

// oldExtractor rewrites every URL record of task as a server whose
// extractor predates extract.Version wrote it: without the version.
func oldExtractor(t *testing.T, b *bundle, task string) {
	t.Helper()
	ds, err := b.st.Datastore(task)
	require.NoError(t, err)
	old := map[string][]byte{}
	require.NoError(t, store.ForEachPrefix(ds, []byte(urlPrefix), func(k, v []byte) error {
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(v, &m))
		delete(m, "xv")
		nv, err := json.Marshal(m)
		require.NoError(t, err)
		old[string(k)] = nv
		return nil
	}))
	require.NotEmpty(t, old)
	require.NoError(t, ds.Update(func(w store.Writer) error {
		for k, v := range old {
			if err := w.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	}))
}

// A server upgraded to an extractor that extracts otherwise (a fix to the
// text of a CSV file, of a PDF) delivers again, once, the documents an
// older extractor built: before, they answered 304 or hashed the same and
// kept their old text (an empty DRECONTENT for a CSV file) until they
// changed at the source. HTML pages, whose text the crawl reads, are not
// delivered again (that would be a whole recrawl for nothing).
func TestNewExtractorVersionDeliversAgainOnce(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":         htmlPage("Home", "/file.pdf", "/list.csv"),
		"/file.pdf": {body: realPDF, ctype: "application/pdf"},
		"/list.csv": {body: "name,colour\nzebra,striped\n", ctype: "text/csv"},
	})
	cfg := siteConfig(s, "AllowedContentTypes=text/html,application/pdf,text/csv")
	b := setup(t, cfg)
	b.sync(t)
	all := []string{s.URL + "/", s.URL + "/file.pdf", s.URL + "/list.csv"}
	require.ElementsMatch(t, all, b.target.refs())

	oldExtractor(t, b, "MYTASK")
	b2 := setup(t, cfg, setupOpts{store: b.st})
	job := b2.sync(t)
	require.ElementsMatch(t, all[1:], b2.target.refs(), "documents of an older extractor delivered again, not the HTML page")
	require.Contains(t, b2.target.doc(s.URL+"/list.csv").Content, "zebra,striped")
	require.Contains(t, b2.target.doc(s.URL+"/file.pdf").Content, "The zebra crossed the meadow at dawn.")
	require.Equal(t, cnt{Seen: 3, Updated: 2, Unchanged: 1, IngestUpdated: 2}, countsOf(job, "MYTASK"))

	b2.target.reset()
	require.Equal(t, cnt{Seen: 3, Unchanged: 3}, countsOf(b2.sync(t), "MYTASK"))
	require.Empty(t, b2.target.refs(), "delivered again once, not at every run")
}

// A file the task excludes from indexing (UrlCantHaveRegex) is crawled
// but never delivered: its record holds no extraction settings, and a
// task on other extraction settings than the defaults' (ExtractText=false
// here) must not take that for a file delivered with other settings.
// Before, the file was fetched in full, without a conditional request,
// at every run.
func TestExcludedFileFetchedConditionally(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":         htmlPage("Home", "/file.pdf"),
		"/file.pdf": {body: realPDF, ctype: "application/pdf"},
	})
	b := setup(t, siteConfig(s, "ExtractText=false", `UrlCantHaveRegex=.*[.]pdf`))
	b.sync(t)
	require.Equal(t, []string{s.URL + "/"}, b.target.refs())
	require.Equal(t, cnt{Seen: 2, Unchanged: 1}, countsOf(b.sync(t), "MYTASK"))
	var last hit
	for _, h := range s.requests() {
		if h.path == "/file.pdf" {
			last = h
		}
	}
	require.Equal(t, 2, s.count("/file.pdf"))
	require.Equal(t, etagOf(realPDF), last.inm, "the second run's request is conditional")
	require.Equal(t, 304, last.status)
}
