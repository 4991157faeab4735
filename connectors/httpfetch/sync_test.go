package httpfetch

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
)

// pageHits returns the page requests (robots.txt left out) from index
// from on.
func pageHits(s *site, from int) []hit {
	var out []hit
	for _, h := range s.requests()[from:] {
		if h.path != "/robots.txt" {
			out = append(out, h)
		}
	}
	return out
}

// TestIncrementalSync is the life of a small site over four runs: first
// crawl, an unchanged re-crawl through conditional requests, then edits, a
// 404 and a page no longer linked, with exact counts each time.
func TestIncrementalSync(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":      htmlPage("Home", "/a", "/b", "/c"),
		"/a":     htmlPage("A", "/b", "/d.txt"),
		"/b":     htmlPage("B", "/"),
		"/c":     htmlPage("C", "/e"),
		"/d.txt": {body: "plain text", ctype: "text/plain; charset=utf-8"},
		"/e":     htmlPage("E"),
	})
	b := setup(t, siteConfig(s))

	job := b.sync(t)
	require.Equal(t, cnt{Seen: 6, Added: 6, IngestAdded: 6}, countsOf(job, "MYTASK"))
	require.Len(t, b.target.refs(), 6)
	recs := b.records(t, "MYTASK")
	require.Len(t, recs, 6)
	for u, r := range recs {
		require.True(t, r.deliveredCurrent(), u)
		require.Equal(t, uint64(1), r.Run, u)
	}

	// Second run: every page answered 304 to a conditional request.
	mark := len(s.requests())
	b.target.reset()
	job = b.sync(t)
	require.Equal(t, cnt{Seen: 6, Unchanged: 6}, countsOf(job, "MYTASK"))
	hits := pageHits(s, mark)
	require.Len(t, hits, 6)
	for _, h := range hits {
		require.NotEmpty(t, h.inm, "%s: no If-None-Match", h.path)
		require.NotEmpty(t, h.ims, "%s: no If-Modified-Since", h.path)
		require.Equal(t, 304, h.status, h.path)
	}
	require.Empty(t, b.target.refs())

	// Third run: A and C change (C no longer links E), B is gone.
	s.set("/a", htmlPage("A2", "/b", "/d.txt"))
	s.set("/c", htmlPage("C2"))
	s.set("/b", nil)
	job = b.sync(t)
	require.Equal(t, cnt{Seen: 4, Updated: 2, Unchanged: 2, Deleted: 2, IngestUpdated: 2, IngestDeleted: 2}, countsOf(job, "MYTASK"))
	require.Equal(t, []string{s.URL + "/a", s.URL + "/c"}, b.target.refs())
	require.Equal(t, []string{s.URL + "/b", s.URL + "/e"}, b.target.removals())
	recs = b.records(t, "MYTASK")
	require.Len(t, recs, 4)
	require.NotContains(t, recs, s.URL+"/b")
	require.NotContains(t, recs, s.URL+"/e")

	// The IDX folder holds the same story.
	adds, dels := b.target.idxFiles(t)
	require.Len(t, adds, 8)
	require.Equal(t, []string{s.URL + "/b", s.URL + "/e"}, dels)

	// Fourth run: nothing changed; A's link to the missing B is now a
	// broken link, an error.
	b.target.reset()
	job = b.sync(t)
	require.Equal(t, cnt{Seen: 4, Unchanged: 4, Errors: 1}, countsOf(job, "MYTASK"))
}

// TestLastModifiedOnly: a site without ETags gets If-Modified-Since.
func TestLastModifiedOnly(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":  {body: `<a href="/x">x</a>`, lmOnly: true},
		"/x": {body: `x`, lmOnly: true},
	})
	b := setup(t, siteConfig(s))
	require.Equal(t, cnt{Seen: 2, Added: 2, IngestAdded: 2}, countsOf(b.sync(t), "MYTASK"))
	mark := len(s.requests())
	require.Equal(t, cnt{Seen: 2, Unchanged: 2}, countsOf(b.sync(t), "MYTASK"))
	for _, h := range pageHits(s, mark) {
		require.Empty(t, h.inm)
		require.Equal(t, siteModified.Format(http.TimeFormat), h.ims)
		require.Equal(t, 304, h.status)
	}
}

// TestNoValidators: pages without validators are fetched in full every
// time and compared by content hash.
func TestNoValidators(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":  {body: `<a href="/x">x</a>`, noValid: true},
		"/x": {body: `x`, noValid: true},
	})
	b := setup(t, siteConfig(s))
	require.Equal(t, cnt{Seen: 2, Added: 2, IngestAdded: 2}, countsOf(b.sync(t), "MYTASK"))
	s.set("/x", &page{body: "x2", noValid: true})
	require.Equal(t, cnt{Seen: 2, Unchanged: 1, Updated: 1, IngestUpdated: 1}, countsOf(b.sync(t), "MYTASK"))
}

func TestDepth(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":  htmlPage("0", "/1"),
		"/1": htmlPage("1", "/2"),
		"/2": htmlPage("2", "/3"),
		"/3": htmlPage("3"),
	})
	for _, tc := range []struct {
		depth string
		want  uint64
	}{{"0", 1}, {"1", 2}, {"2", 3}, {"-1", 4}} {
		t.Run("depth "+tc.depth, func(t *testing.T) {
			t.Parallel()
			b := setup(t, siteConfig(s, "Depth="+tc.depth))
			job := b.sync(t)
			require.Equal(t, cnt{Seen: tc.want, Added: tc.want, IngestAdded: tc.want}, countsOf(job, "MYTASK"))
		})
	}
	// Depth as a request override, and the depth field of each document.
	b := setup(t, siteConfig(s))
	b.sync(t, "Depth", "1")
	require.Len(t, b.records(t, "MYTASK"), 2)
	require.Equal(t, "1", fieldValue(b.target.doc(s.URL+"/1"), FieldDepth))
	require.Equal(t, s.URL+"/", fieldValue(b.target.doc(s.URL+"/1"), FieldParentURL))
}

func fieldValue(d *ingest.Document, name string) string {
	if d == nil {
		return ""
	}
	for _, f := range d.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// TestLoopsAndRedirects: a link cycle is fetched once per page; a
// redirect is delivered under its final URL; a redirect loop and a chain
// too long are errors.
func TestLoopsAndRedirects(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":      htmlPage("Home", "/a", "/old", "/loop1", "/r1"),
		"/a":     htmlPage("A", "/b"),
		"/b":     htmlPage("B", "/a", "/"),
		"/old":   {loc: "/new", status: 301},
		"/new":   htmlPage("New"),
		"/loop1": {loc: "/loop2"},
		"/loop2": {loc: "/loop1"},
		"/r1":    {loc: "/r2"},
		"/r2":    {loc: "/r3"},
		"/r3":    htmlPage("R3"),
	})
	b := setup(t, siteConfig(s, "MaxRedirects=1"))
	job := b.sync(t)
	// /, /a, /b, /new; the loop and the two-hop chain fail.
	require.Equal(t, cnt{Seen: 4, Added: 4, IngestAdded: 4, Errors: 2}, countsOf(job, "MYTASK"))
	for _, p := range []string{"/", "/a", "/b", "/old", "/new"} {
		require.Equal(t, 1, s.count(p), p)
	}
	d := b.target.doc(s.URL + "/new")
	require.NotNil(t, d)
	require.Equal(t, s.URL+"/old", fieldValue(d, FieldRedirectedFrom))
	require.Nil(t, b.target.doc(s.URL+"/old"))

	// A second run goes through the redirect to a 304.
	job = b.sync(t)
	require.Equal(t, cnt{Seen: 4, Unchanged: 4, Errors: 2}, countsOf(job, "MYTASK"))

	// MaxRedirects=0 follows none.
	b2 := setup(t, siteConfig(s, "MaxRedirects=0"))
	job = b2.sync(t)
	require.Equal(t, cnt{Seen: 3, Added: 3, IngestAdded: 3, Errors: 3}, countsOf(job, "MYTASK"))
}

func TestRobots(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/robots.txt": {body: "User-agent: *\nDisallow: /private\n", ctype: "text/plain"},
		"/":           htmlPage("Home", "/private/x", "/public"),
		"/private/x":  htmlPage("secret"),
		"/public":     htmlPage("public"),
	})
	b := setup(t, siteConfig(s))
	job := b.sync(t)
	require.Equal(t, cnt{Seen: 2, Added: 2, IngestAdded: 2}, countsOf(job, "MYTASK"), "a robots refusal is not an error")
	require.Zero(t, s.count("/private/x"))

	b2 := setup(t, siteConfig(s, "FollowRobotProtocol=false"))
	job = b2.sync(t)
	require.Equal(t, uint64(3), countsOf(job, "MYTASK").Seen)
	require.Equal(t, 1, s.count("/private/x"))

	// A page that robots.txt starts refusing is deleted.
	job = b2.sync(t, "FollowRobotProtocol", "true")
	require.Equal(t, cnt{Seen: 2, Unchanged: 2, Deleted: 1, IngestDeleted: 1}, countsOf(job, "MYTASK"))
}

// TestRobotsUnavailable: a 5xx robots.txt blocks the host (and protects
// its pages from deletion) unless IgnoreRobotProtocolErrors.
func TestRobotsUnavailable(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":  htmlPage("Home", "/x"),
		"/x": htmlPage("X"),
	})
	b := setup(t, siteConfig(s))
	require.Equal(t, uint64(2), countsOf(b.sync(t), "MYTASK").Added)
	s.set("/robots.txt", &page{status: 503})
	job := b.sync(t)
	require.Equal(t, cnt{Errors: 1}, countsOf(job, "MYTASK"))
	require.Len(t, b.records(t, "MYTASK"), 2, "nothing deleted")
	job = b.sync(t, "IgnoreRobotProtocolErrors", "true")
	require.Equal(t, cnt{Seen: 2, Unchanged: 2}, countsOf(job, "MYTASK"))
}

func TestStatusErrors(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":     htmlPage("Home", "/ok", "/missing", "/boom", "/deny"),
		"/ok":   htmlPage("ok"),
		"/boom": {status: 500},
		"/deny": {status: 403},
	})
	b := setup(t, siteConfig(s))
	job := b.sync(t)
	require.Equal(t, cnt{Seen: 2, Added: 2, IngestAdded: 2, Errors: 3}, countsOf(job, "MYTASK"))
}

func TestHugeAndSlowPages(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":      htmlPage("Home", "/big", "/slow", "/small"),
		"/big":   {body: strings.Repeat("x", 5000), ctype: "text/plain"},
		"/slow":  {block: true},
		"/small": {body: "small", ctype: "text/plain"},
	})
	b := setup(t, siteConfig(s, "MaxPageBytes=2000", "RequestTimeout=300ms"))
	job := b.sync(t)
	require.Equal(t, cnt{Seen: 2, Added: 2, IngestAdded: 2, Errors: 2}, countsOf(job, "MYTASK"))
	require.Nil(t, b.target.doc(s.URL+"/big"))
}

func TestContentTypes(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":           htmlPage("Home", "/doc.txt", "/file.pdf", "/img.png", "/latin1.txt", "/broken.pdf", "/file.docx"),
		"/doc.txt":    {body: "hello\nworld", ctype: "text/plain; charset=utf-8"},
		"/file.pdf":   {body: realPDF, ctype: "application/pdf"},
		"/broken.pdf": {body: "%PDF-1.4 fake", ctype: "application/pdf"},
		"/file.docx":  {body: realDOCX, ctype: "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		"/img.png":    {body: "\x89PNG\r\n\x1a\n", ctype: "image/png"},
		"/latin1.txt": {body: "caf\xe9", ctype: "text/plain; charset=iso-8859-1"},
	})
	b := setup(t, siteConfig(s))
	job := b.sync(t)
	require.Equal(t, cnt{Seen: 6, Added: 6, IngestAdded: 6, Errors: 1}, countsOf(job, "MYTASK"),
		"a media type not allowed is skipped, not an error; a failed extraction is an error, and the document is delivered")
	txt := b.target.doc(s.URL + "/doc.txt")
	require.Equal(t, "hello\nworld", txt.Content)
	require.Nil(t, txt.Source)
	require.Equal(t, "café", b.target.doc(s.URL+"/latin1.txt").Content)
	pdf := b.target.doc(s.URL + "/file.pdf")
	require.Equal(t, []byte(realPDF), pdf.Source)
	require.Equal(t, "application/pdf", pdf.SourceType)
	require.Contains(t, pdf.Content, "The zebra crossed the meadow at dawn.")
	require.Equal(t, "1", fieldValue(pdf, FieldPageCount))
	require.Equal(t, "pdf", fieldValue(pdf, FieldExtractFormat))
	require.Equal(t, "file.pdf", fieldValue(pdf, "DRETITLE"), "the PDF has no title of its own")
	broken := b.target.doc(s.URL + "/broken.pdf")
	require.Equal(t, []byte("%PDF-1.4 fake"), broken.Source)
	require.Empty(t, broken.Content)
	require.Contains(t, fieldValue(broken, FieldExtractError), "malformed")
	docx := b.target.doc(s.URL + "/file.docx")
	require.Contains(t, docx.Content, "Quarterly Report\n\nThe zebra crossed the meadow at dawn.")
	require.Equal(t, "docx", fieldValue(docx, FieldExtractFormat))
	home := b.target.doc(s.URL + "/")
	require.Contains(t, home.Content, "Home")
	require.NotContains(t, home.Content, "<a")
	require.Nil(t, home.Source)

	b2 := setup(t, siteConfig(s, "AllowedContentTypes=text/html,image/*"))
	job = b2.sync(t)
	require.Equal(t, uint64(2), countsOf(job, "MYTASK").Added)
	require.NotNil(t, b2.target.doc(s.URL+"/img.png"))
}

// TestDocumentFields checks every field of a page's document.
func TestDocumentFields(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/": {body: `<html lang="de"><head><title> Hello  World </title>
<meta name="description" content="A page">
<meta name="keywords" content="a, b">
<meta property="og:title" content="OG">
<link rel="canonical" href="/canon"></head>
<body><p>Body <b>text</b></p><script>var x</script></body></html>`},
	})
	b := setup(t, siteConfig(s))
	b.sync(t)
	d := b.target.doc(s.URL + "/")
	require.NotNil(t, d)
	require.NoError(t, d.Validate())
	got := map[string]string{}
	for _, f := range d.Fields {
		got[f.Name] = f.Value
	}
	id, err := DecodeIdentifier(got[FieldIdentifier])
	require.NoError(t, err)
	require.Equal(t, Identifier{Task: "MYTASK", Reference: s.URL + "/"}, id)
	require.Equal(t, "Hello World", got["DRETITLE"])
	require.Equal(t, "1709294400", got["DREDATE"]) // Last-Modified
	require.Equal(t, s.URL+"/", got[FieldURL])
	require.Equal(t, "text/html; charset=utf-8", got[FieldContentType])
	require.NotEmpty(t, got[FieldSize])
	require.Equal(t, siteModified.Format(http.TimeFormat), got[FieldLastModified])
	require.NotEmpty(t, got[FieldETag])
	require.Equal(t, "0", got[FieldDepth])
	require.NotContains(t, got, FieldParentURL)
	require.NotEmpty(t, got[FieldFetchTime])
	require.Equal(t, "de", got[FieldLanguage])
	require.Equal(t, s.URL+"/canon", got[FieldCanonicalURL])
	require.Equal(t, "A page", got["META_DESCRIPTION"])
	require.Equal(t, "a, b", got["META_KEYWORDS"])
	require.Equal(t, "OG", got["META_OG_TITLE"])
	require.Equal(t, "Body text", d.Content)
}

// TestLinkTrap: an infinite site (every page links two pages one level
// deeper) is bounded by the crawl's trap rules: a path segment repeated
// more than 3 times is not followed, which leaves the 69 paths with at most
// three x and three y segments.
func TestLinkTrap(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{"/": htmlPage("Home", "/trap/")})
	s.dynamic = func(path string) *page {
		if strings.HasPrefix(path, "/trap/") {
			return htmlPage("trap", "x/", "y/")
		}
		return nil
	}
	b := setup(t, siteConfig(s))
	job := b.sync(t)
	require.Equal(t, cnt{Seen: 70, Added: 70, IngestAdded: 70}, countsOf(job, "MYTASK"))
}

func TestStayOnSiteAndSpiderRegexes(t *testing.T) {
	t.Parallel()
	other := newSite(t, map[string]*page{"/x": htmlPage("elsewhere")})
	elsewhere := strings.Replace(other.URL, "127.0.0.1", "localhost", 1) + "/x"
	s := newSite(t, map[string]*page{
		"/":        htmlPage("Home", elsewhere, "/skip/me", "/keep"),
		"/skip/me": htmlPage("skip"),
		"/keep":    htmlPage("keep"),
	})
	b := setup(t, siteConfig(s, `SpiderUrlCantHaveRegex=.*/skip/.*`))
	job := b.sync(t)
	require.Equal(t, uint64(2), countsOf(job, "MYTASK").Seen)
	require.Zero(t, other.count("/x"))
	require.Zero(t, s.count("/skip/me"))

	// A request cannot turn StayOnSite off (issue 9: it must not walk a
	// crawl to other hosts); the configuration can.
	_, err := b.repo.Validate(fetch.ActionSynchronize, params("StayOnSite", "false"))
	paramErr(t, err, "StayOnSite")
	job = setup(t, siteConfig(s, `SpiderUrlCantHaveRegex=.*/skip/.*`, "StayOnSite=false")).sync(t)
	require.Equal(t, cnt{Seen: 3, Added: 3, IngestAdded: 3}, countsOf(job, "MYTASK"))
	require.Equal(t, 1, other.count("/x"))

	// SpiderUrlMustHaveRegex must match the whole URL.
	b2 := setup(t, siteConfig(s, `SpiderUrlMustHaveRegex=`+s.URL+`/(keep)?`))
	require.Equal(t, uint64(2), countsOf(b2.sync(t), "MYTASK").Seen)
}

// TestIngestRegexes: pages excluded from ingestion are still crawled for
// their links; a page that becomes excluded is removed from the target,
// one that becomes included is added.
func TestIngestRegexes(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":       htmlPage("Home", "/list/1"),
		"/list/1": htmlPage("list", "/item/a"),
		"/item/a": htmlPage("item a"),
	})
	b := setup(t, siteConfig(s, `UrlCantHaveRegex=.*/list/.*`))
	job := b.sync(t)
	require.Equal(t, cnt{Seen: 3, Added: 2, IngestAdded: 2}, countsOf(job, "MYTASK"))
	require.Nil(t, b.target.doc(s.URL+"/list/1"))
	require.True(t, b.records(t, "MYTASK")[s.URL+"/list/1"].Excluded)

	// Unchanged: the excluded page gets a conditional request too.
	mark := len(s.requests())
	require.Equal(t, cnt{Seen: 3, Unchanged: 2}, countsOf(b.sync(t), "MYTASK"))
	for _, h := range pageHits(s, mark) {
		require.Equal(t, 304, h.status, h.path)
	}

	// The home page becomes excluded too; /list/1 becomes a document.
	job = b.sync(t, "UrlCantHaveRegex", `.*/`)
	require.Equal(t, cnt{Seen: 3, Added: 1, Unchanged: 1, Deleted: 1, IngestAdded: 1, IngestDeleted: 1}, countsOf(job, "MYTASK"))
	require.Equal(t, []string{s.URL + "/"}, b.target.removals())
	require.NotNil(t, b.target.doc(s.URL+"/list/1"))

	// UrlMustHaveRegex.
	b2 := setup(t, siteConfig(s, `UrlMustHaveRegex=.*/item/.*`))
	require.Equal(t, cnt{Seen: 3, Added: 1, IngestAdded: 1}, countsOf(b2.sync(t), "MYTASK"))
}

// TestTransientFailureProtects: a page answering 5xx keeps itself and what
// only it leads to; other unreached pages are still deleted.
func TestTransientFailureProtects(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":   htmlPage("Home", "/p", "/z"),
		"/p":  htmlPage("P", "/q"),
		"/q":  htmlPage("Q", "/q2"),
		"/q2": htmlPage("Q2"),
		"/z":  htmlPage("Z"),
	})
	b := setup(t, siteConfig(s))
	require.Equal(t, uint64(5), countsOf(b.sync(t), "MYTASK").Added)

	s.set("/", htmlPage("Home", "/p")) // Z is no longer linked
	s.set("/p", &page{status: 502})
	job := b.sync(t)
	require.Equal(t, cnt{Seen: 1, Updated: 1, IngestUpdated: 1, Deleted: 1, IngestDeleted: 1, Errors: 1}, countsOf(job, "MYTASK"))
	require.Equal(t, []string{s.URL + "/z"}, b.target.removals())
	recs := b.records(t, "MYTASK")
	for _, p := range []string{"/p", "/q", "/q2"} {
		require.Contains(t, recs, s.URL+p)
	}

	s.set("/p", htmlPage("P", "/q"))
	job = b.sync(t)
	require.Equal(t, cnt{Seen: 4, Unchanged: 4}, countsOf(job, "MYTASK"))
}

// TestStartURLFailureDeletesNothing: a crawl that reaches no page at all
// does not delete what it did not reach.
func TestStartURLFailureDeletesNothing(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{"/": htmlPage("Home", "/x"), "/x": htmlPage("X")})
	b := setup(t, siteConfig(s))
	b.sync(t)
	s.set("/", &page{status: 403})
	job := b.sync(t)
	require.Equal(t, cnt{Errors: 1}, countsOf(job, "MYTASK"))
	require.Len(t, b.records(t, "MYTASK"), 2)
}

// TestIngestFailure: a failing target counts ingestfailed, never marks the
// pages delivered, and the next run delivers them again.
func TestIngestFailure(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{"/": htmlPage("Home", "/a"), "/a": htmlPage("A")})
	b := setup(t, siteConfig(s))
	b.target.fail.Store(true)
	job := b.sync(t)
	require.Equal(t, cnt{Seen: 2, Added: 2, IngestFailed: 2}, countsOf(job, "MYTASK"))
	for u, r := range b.records(t, "MYTASK") {
		require.Nil(t, r.Delivered, u)
		require.NotEmpty(t, r.Hash, u)
	}

	// Working again: no conditional request (a 304 would carry no
	// content), both pages delivered as new.
	b.target.fail.Store(false)
	mark := len(s.requests())
	job = b.sync(t)
	require.Equal(t, cnt{Seen: 2, Added: 2, IngestAdded: 2}, countsOf(job, "MYTASK"))
	for _, h := range pageHits(s, mark) {
		require.Empty(t, h.inm, h.path)
		require.Equal(t, 200, h.status)
	}
	require.Equal(t, []string{s.URL + "/", s.URL + "/a"}, b.target.refs())

	// An update that fails keeps the datastore's view of what the target
	// holds: the old version.
	delivered := b.records(t, "MYTASK")[s.URL+"/a"].Delivered
	s.set("/a", htmlPage("A2"))
	b.target.fail.Store(true)
	job = b.sync(t)
	require.Equal(t, cnt{Seen: 2, Unchanged: 1, Updated: 1, IngestFailed: 1}, countsOf(job, "MYTASK"))
	rec := b.records(t, "MYTASK")[s.URL+"/a"]
	require.Equal(t, delivered, rec.Delivered)
	require.False(t, rec.deliveredCurrent())

	// A removal that fails keeps the record, so the next run removes it.
	s.set("/", htmlPage("Home"))
	s.set("/a", htmlPage("A2"))
	job = b.sync(t)
	require.Equal(t, cnt{Seen: 1, Updated: 1, IngestFailed: 2}, countsOf(job, "MYTASK"))
	require.Contains(t, b.records(t, "MYTASK"), s.URL+"/a")

	b.target.fail.Store(false)
	b.target.reset()
	job = b.sync(t)
	require.Equal(t, cnt{Seen: 1, Updated: 1, IngestUpdated: 1, Deleted: 1, IngestDeleted: 1}, countsOf(job, "MYTASK"))
	require.Equal(t, []string{s.URL + "/a"}, b.target.removals())
	require.Len(t, b.records(t, "MYTASK"), 1)
}

// TestMaxPages: MaxPages bounds the pages added or updated per run;
// unchanged pages do not count, so successive runs cover the site, and a
// cut-off run deletes nothing.
func TestMaxPages(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":  htmlPage("Home", "/1", "/2", "/3", "/4"),
		"/1": htmlPage("1"), "/2": htmlPage("2"), "/3": htmlPage("3"), "/4": htmlPage("4"),
	})
	b := setup(t, siteConfig(s, "MaxPages=2", "Concurrency=1"))
	require.Equal(t, cnt{Seen: 2, Added: 2, IngestAdded: 2}, countsOf(b.sync(t), "MYTASK"))
	require.Equal(t, cnt{Seen: 4, Added: 2, Unchanged: 2, IngestAdded: 2}, countsOf(b.sync(t), "MYTASK"))
	require.Equal(t, cnt{Seen: 5, Added: 1, Unchanged: 4, IngestAdded: 1}, countsOf(b.sync(t), "MYTASK"))
	require.Equal(t, cnt{Seen: 5, Unchanged: 5}, countsOf(b.sync(t), "MYTASK"))
}

// TestNoTarget: with ingestion disabled, changes are still tracked and
// counted, and no ingest count moves.
func TestNoTarget(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{"/": htmlPage("Home", "/a"), "/a": htmlPage("A")})
	b := setup(t, siteConfig(s), setupOpts{noTarget: true})
	require.Equal(t, cnt{Seen: 2, Added: 2}, countsOf(b.sync(t), "MYTASK"))
	require.Equal(t, cnt{Seen: 2, Unchanged: 2}, countsOf(b.sync(t), "MYTASK"))
	s.set("/a", htmlPage("A2"))
	require.Equal(t, cnt{Seen: 2, Unchanged: 1, Updated: 1}, countsOf(b.sync(t), "MYTASK"))
	s.set("/", htmlPage("Home"))
	require.Equal(t, cnt{Seen: 1, Updated: 1, Deleted: 1}, countsOf(b.sync(t), "MYTASK"))
}

// TestTwoTasks: one Synchronize reports per task, in TaskSections order.
func TestTwoTasks(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{"/": htmlPage("Home", "/a"), "/a": htmlPage("A"), "/other": htmlPage("Other")})
	b := setup(t, "[FetchTasks]\n0=One\n1=Two\nConcurrency=2\n[One]\nUrl="+s.URL+"/\n[Two]\nUrl="+s.URL+"/other\n")
	tasks, err := b.repo.Validate(fetch.ActionSynchronize, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"ONE", "TWO"}, tasks)
	job := b.sync(t)
	require.Equal(t, cnt{Seen: 2, Added: 2, IngestAdded: 2}, countsOf(job, "ONE"))
	require.Equal(t, cnt{Seen: 1, Added: 1, IngestAdded: 1}, countsOf(job, "TWO"))
	p := job.Progress()
	require.NotNil(t, p)
	require.Equal(t, 100.0, p.Percent)
	require.Len(t, p.Stages, 2)

	job = b.sync(t, "TaskSections", "two")
	require.Nil(t, job.Counts("ONE"))
	require.Equal(t, cnt{Seen: 1, Unchanged: 1}, countsOf(job, "TWO"))
}

// TestSyncIdentifiers: Synchronize with Identifiers re-ingests just those.
func TestSyncIdentifiers(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{"/": htmlPage("Home", "/a"), "/a": htmlPage("A")})
	b := setup(t, siteConfig(s))
	b.sync(t)
	b.target.reset()
	mark := len(s.requests())
	id := EncodeIdentifier("MyTask", s.URL+"/a")
	job, res := b.run(t, fetch.ActionSynchronize, params("Identifiers", id))
	require.Equal(t, cnt{Seen: 1, Updated: 1, IngestUpdated: 1}, countsOf(job, "MYTASK"))
	require.Equal(t, []string{s.URL + "/a"}, b.target.refs())
	require.Equal(t, []string{"/a"}, pathsOf(pageHits(s, mark)))
	require.Len(t, res, 1)
	require.Equal(t, id, res[0].Children[0].Text)
}

func pathsOf(hits []hit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.path
	}
	return out
}

// TestPause: no request reaches the site while the job is paused.
func TestPause(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":  htmlPage("Home", "/1", "/2", "/3"),
		"/1": htmlPage("1"), "/2": htmlPage("2"), "/3": htmlPage("3"),
	})
	b := setup(t, siteConfig(s, "Concurrency=1", "FollowRobotProtocol=false"))
	tasks, err := b.repo.Validate(fetch.ActionSynchronize, nil)
	require.NoError(t, err)
	job := fetch.NewJob("token", fetch.ActionSynchronize, nil, tasks)
	var violations atomic.Int32
	s.onHit = func(path string) {
		if job.Paused() {
			violations.Add(1)
		}
		if path == "/1" {
			job.Pause() // the next request must wait for Resume
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.repo.Run(t.Context(), job)
		done <- err
	}()
	waitFor(t, 10*time.Second, func() bool { return len(s.requests()) >= 2 }, "the paused page to be served")
	require.True(t, job.Paused())
	require.Len(t, s.requests(), 2)
	job.Resume()
	require.NoError(t, <-done)
	require.Zero(t, violations.Load())
	require.Equal(t, cnt{Seen: 4, Added: 4, IngestAdded: 4}, countsOf(job, "MYTASK"))
}

// With ExtractText=false a PDF is delivered as before: bytes, no text.
func TestExtractTextOff(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":         htmlPage("Home", "/file.pdf"),
		"/file.pdf": {body: realPDF, ctype: "application/pdf"},
	})
	b := setup(t, siteConfig(s, "ExtractText=false"))
	job := b.sync(t)
	require.Equal(t, cnt{Seen: 2, Added: 2, IngestAdded: 2}, countsOf(job, "MYTASK"))
	pdf := b.target.doc(s.URL + "/file.pdf")
	require.Equal(t, []byte(realPDF), pdf.Source)
	require.Empty(t, pdf.Content)
	require.Empty(t, fieldValue(pdf, FieldExtractFormat))
}

// A task with only SitemapUrl crawls the sitemap's pages (Depth applies to
// their links); FollowSitemaps reads robots.txt's Sitemap: lines.
func TestSitemapTask(t *testing.T) {
	t.Parallel()
	pagesMap := map[string]*page{
		"/":         htmlPage("Home", "/a"),
		"/a":        htmlPage("A"),
		"/orphan":   htmlPage("Orphan", "/b"),
		"/b":        htmlPage("B"),
		"/only.pdf": {body: realPDF, ctype: "application/pdf"},
	}
	s := newSite(t, pagesMap)
	s.set("/sitemap.xml", &page{ctype: "application/xml", body: `<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">` +
		`<url><loc>` + s.URL + `/orphan</loc></url><url><loc>` + s.URL + `/only.pdf</loc></url></urlset>`})
	s.set("/robots.txt", &page{ctype: "text/plain", body: "User-agent: *\nAllow: /\nSitemap: " + s.URL + "/sitemap.xml\n"})

	cfg := "[FetchTasks]\nNumber=1\n0=MyTask\n[MyTask]\nSitemapUrl=" + s.URL + "/sitemap.xml\nDepth=0\n"
	b := setup(t, cfg)
	job := b.sync(t)
	require.Equal(t, cnt{Seen: 2, Added: 2, IngestAdded: 2}, countsOf(job, "MYTASK"))
	require.NotNil(t, b.target.doc(s.URL+"/orphan"))
	require.Contains(t, b.target.doc(s.URL+"/only.pdf").Content, "zebra")

	b2 := setup(t, siteConfig(s, "FollowSitemaps=true", "Depth=1"))
	job = b2.sync(t)
	require.Equal(t, cnt{Seen: 5, Added: 5, IngestAdded: 5}, countsOf(job, "MYTASK"), "/, /a, /orphan, /b, /only.pdf")
}

// TestSyncCrawlsOnWhileADeliveryWaits: a delivery that takes long does
// not hold the crawl (pages go on being fetched and batched), and the
// batches that waited meanwhile are delivered together, in one Add, then
// recorded: every page ends up delivered once and recorded.
func TestSyncCrawlsOnWhileADeliveryWaits(t *testing.T) {
	const n = 350
	pages := map[string]*page{}
	var links []string
	for i := range n {
		l := fmt.Sprintf("/p%d", i)
		links = append(links, l)
		pages[l] = htmlPage(fmt.Sprintf("Page %d", i))
	}
	pages["/"] = htmlPage("Home", links...)
	s := newSite(t, pages)
	b := setup(t, siteConfig(s, "Concurrency=4"), setupOpts{extra: "[Ingestion]\nIngestBatchSize=50\n"})
	gate := make(chan struct{})
	b.target.mu.Lock()
	b.target.gate = gate
	b.target.mu.Unlock()

	done := make(chan *fetch.Job)
	go func() { done <- b.sync(t) }()
	// The first delivery waits at the gate; the crawl goes on to the end.
	waitFor(t, 30*time.Second, func() bool { return len(s.requests()) >= n+1 }, "every page fetched while the first delivery waits")
	b.target.mu.Lock()
	calls := b.target.calls
	b.target.gate = nil
	b.target.mu.Unlock()
	require.Equal(t, 1, calls, "one delivery under way, the other batches waiting")
	close(gate)
	job := <-done

	c := countsOf(job, "MYTASK")
	require.Equal(t, uint64(n+1), c.Added)
	require.Equal(t, uint64(n+1), c.IngestAdded)
	require.Len(t, b.target.refs(), n+1)
	recs := b.records(t, "MYTASK")
	require.Len(t, recs, n+1)
	for u, r := range recs {
		require.True(t, r.deliveredCurrent(), "record of %s says its page is delivered", u)
	}
	b.target.mu.Lock()
	sizes := slices.Clone(b.target.sizes)
	b.target.mu.Unlock()
	require.Less(t, len(sizes), (n+1+49)/50, "the batches that waited were delivered together: %v", sizes)
	require.Greater(t, slices.Max(sizes), 50, "one delivery carried several batches: %v", sizes)
}
