package httpfetch

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/crawl"
)

// benchSite is a site of n pages: the home page links them all, each page
// links its next five.
func benchSite(b *testing.B, n int) *site {
	pages := map[string]*page{}
	links := make([]string, n)
	for i := range n {
		links[i] = "/p" + strconv.Itoa(i)
	}
	pages["/"] = htmlPage("Home", links...)
	for i := range n {
		var next []string
		for j := 1; j <= 5; j++ {
			next = append(next, links[(i+j)%n])
		}
		p := htmlPage("Page "+strconv.Itoa(i), next...)
		p.body += fmt.Sprintf("<p>%0500d</p>", i) // some text
		pages[links[i]] = p
	}
	return newSite(b, pages)
}

// BenchmarkSyncUnchanged is a re-synchronisation of a 500-page site where
// nothing changed: 500 conditional requests answered 304, 500 records
// rewritten (run number) in 5 datastore batches.
func BenchmarkSyncUnchanged(b *testing.B) {
	s := benchSite(b, 500)
	bu := setup(b, siteConfig(s, "Concurrency=8"), setupOpts{noTarget: true})
	bu.sync(b)
	b.ReportAllocs()
	for b.Loop() {
		job := bu.sync(b)
		require.Equal(b, uint64(501), countsOf(job, "MYTASK").Unchanged)
	}
}

// BenchmarkSyncFirstRun is a first synchronisation of the same site into an
// IDX folder: 501 pages fetched, parsed, delivered and recorded (the
// datastore is cleared, in memory, at the start of each iteration).
func BenchmarkSyncFirstRun(b *testing.B) {
	s := benchSite(b, 500)
	bu := setup(b, siteConfig(s, "Concurrency=8"))
	ds, err := bu.st.Datastore("MYTASK")
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		require.NoError(b, ds.Clear())
		bu.target.reset()
		job := bu.sync(b)
		require.Equal(b, uint64(501), countsOf(job, "MYTASK").Added)
	}
}

func benchPage() *crawl.Page {
	body := []byte(htmlPage("A title", "/a", "/b", "/c").body)
	return &crawl.Page{
		URL: "http://example.com/x", FinalURL: "http://example.com/x", Status: 200,
		Header:    http.Header{"Content-Type": {"text/html; charset=utf-8"}, "Etag": {`"abc"`}, "Last-Modified": {siteModified.Format(http.TimeFormat)}},
		MediaType: "text/html", Body: body, Title: "A title", Text: "A title about it",
		Links: []string{"http://example.com/a", "http://example.com/b", "http://example.com/c"},
		Meta:  map[string][]string{"description": {"about A"}, "og:title": {"A"}}, Lang: "en",
		Depth: 2, Parent: "http://example.com/", FetchedAt: time.Unix(1700000000, 0),
	}
}

// BenchmarkPageDocument builds the ingestion document of a page.
func BenchmarkPageDocument(b *testing.B) {
	p := benchPage()
	b.ReportAllocs()
	for b.Loop() {
		_ = pageDocument("MYTASK", p, nil)
	}
}

// BenchmarkRecordCodec encodes and decodes a page's datastore record.
func BenchmarkRecordCodec(b *testing.B) {
	p := benchPage()
	hash := p.Hash()
	r := &record{ETag: `"abc"`, LastModified: p.Header.Get("Last-Modified"), Hash: hash[:], Delivered: hash[:],
		Links: p.Links, Run: 7, Title: p.Title, MediaType: p.MediaType, Size: int64(len(p.Body)), Depth: 2, Parent: p.Parent, FetchedMs: 1}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeRecord(encodeRecord(r)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeIdentifier decodes an AUTN_IDENTIFIER.
func BenchmarkDecodeIdentifier(b *testing.B) {
	id := EncodeIdentifier("MYTASK", "http://example.com/some/page.html?x=1")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeIdentifier(id); err != nil {
			b.Fatal(err)
		}
	}
}
