package httpfetch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A CSV, Markdown or JSON file the task allows (AllowedContentTypes=text/*)
// was delivered as bytes without text: only text/plain was decoded. Every
// type the extractor reads as plain text (any text/* but HTML and RTF,
// JSON) is decoded into DRECONTENT, in its charset.
func TestTextSubtypesHaveText(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":           htmlPage("Home", "/people.csv", "/notes.md", "/data.json"),
		"/people.csv": {body: "name,city\nAda,caf\xe9\n", ctype: "text/csv; charset=iso-8859-1"},
		"/notes.md":   {body: "# Notes\n\nSome *words*.", ctype: "text/markdown"},
		"/data.json":  {body: `{"name": "Ada"}`, ctype: "application/json"},
	})
	b := setup(t, siteConfig(s, "AllowedContentTypes=text/*,application/json"))
	job := b.sync(t)
	require.Equal(t, cnt{Seen: 4, Added: 4, IngestAdded: 4}, countsOf(job, "MYTASK"))
	for ref, want := range map[string]string{
		"/people.csv": "name,city\nAda,café\n",
		"/notes.md":   "# Notes\n\nSome *words*.",
		"/data.json":  `{"name": "Ada"}`,
	} {
		d := b.target.doc(s.URL + ref)
		require.NotNil(t, d, ref)
		require.Equal(t, want, d.Content, ref)
		require.Nil(t, d.Source, ref)
	}
}

// A PDF or docx served as application/octet-stream (a download script, a
// bucket's default type) was skipped by the crawl's type filter, with the
// default AllowedContentTypes that lists PDF and docx: it is delivered
// with its text, CONTENT_TYPE saying what the server sent.
func TestDocumentsServedAsOctetStreamHaveText(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":             htmlPage("Home", "/get?id=7", "/files/report"),
		"/get?id=7":     {body: realPDF, ctype: "application/octet-stream"},
		"/files/report": {body: realDOCX, ctype: "binary/octet-stream"},
	})
	b := setup(t, siteConfig(s))
	job := b.sync(t)
	require.Equal(t, cnt{Seen: 3, Added: 3, IngestAdded: 3}, countsOf(job, "MYTASK"))
	pdf := b.target.doc(s.URL + "/get?id=7")
	require.NotNil(t, pdf)
	require.Contains(t, pdf.Content, "The zebra crossed the meadow at dawn.")
	require.Equal(t, "pdf", fieldValue(pdf, FieldExtractFormat))
	require.Equal(t, "application/octet-stream", fieldValue(pdf, FieldContentType))
	require.Equal(t, "application/pdf", pdf.SourceType)
	docx := b.target.doc(s.URL + "/files/report")
	require.NotNil(t, docx)
	require.Contains(t, docx.Content, "The zebra crossed the meadow at dawn.")
	require.Equal(t, "docx", fieldValue(docx, FieldExtractFormat))
}

// A PDF that a server sends as text/plain (what Apache sends for a file
// whose extension it does not know) or as text/html was delivered with
// its binary bytes, decoded or parsed as markup, as its text. It is
// delivered with the PDF's text, CONTENT_TYPE saying what the server sent.
func TestDocumentsServedAsTextHaveTheirText(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":         htmlPage("Home", "/report", "/get?id=7"),
		"/report":   {body: realPDF, ctype: "text/plain"},
		"/get?id=7": {body: realPDF, ctype: "text/html; charset=utf-8"},
	})
	b := setup(t, siteConfig(s))
	job := b.sync(t)
	require.Equal(t, cnt{Seen: 3, Added: 3, IngestAdded: 3}, countsOf(job, "MYTASK"))
	for ref, ct := range map[string]string{"/report": "text/plain", "/get?id=7": "text/html; charset=utf-8"} {
		d := b.target.doc(s.URL + ref)
		require.NotNil(t, d, ref)
		require.Contains(t, d.Content, "The zebra crossed the meadow at dawn.", ref)
		require.NotContains(t, d.Content, "%PDF-", ref)
		require.Equal(t, "pdf", fieldValue(d, FieldExtractFormat), ref)
		require.Equal(t, ct, fieldValue(d, FieldContentType), ref)
		require.Equal(t, "application/pdf", d.SourceType, ref)
	}
}
