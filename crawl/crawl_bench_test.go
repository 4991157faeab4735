package crawl

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchSite is a generated site of n pages with k links each, in the
// manner of `scrapy bench`: page i links to pages i*k+1 ... i*k+k (mod n),
// so every page is reachable from page 0, plus ~2 KB of text.
func benchSite(b *testing.B, n, k int) *httptest.Server {
	b.Helper()
	bodies := make([][]byte, n)
	filler := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 35)
	for i := range bodies {
		var sb strings.Builder
		fmt.Fprintf(&sb, "<!doctype html><html><head><title>Page %d</title></head><body><h1>Page %d</h1><p>%s</p><ul>", i, i, filler)
		for j := 1; j <= k; j++ {
			fmt.Fprintf(&sb, `<li><a href="/p/%d">page %d</a></li>`, (i*k+j)%n, (i*k+j)%n)
		}
		sb.WriteString("</ul></body></html>")
		bodies[i] = []byte(sb.String())
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/p/"))
		if err != nil || i < 0 || i >= n {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(bodies[i])
	}))
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkCrawl crawls a generated 2000-page site (10 links per page)
// end to end over loopback HTTP and reports pages/s.
//
//	go test -run '^$' -bench BenchmarkCrawl -benchtime 5x ./crawl/
func BenchmarkCrawl(b *testing.B) {
	const pagesN, linksN = 2000, 10
	srv := benchSite(b, pagesN, linksN)
	for _, conc := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			b.ReportAllocs()
			var pages int64
			var elapsed time.Duration
			for b.Loop() {
				start := time.Now()
				st, err := Crawl(context.Background(), Config{
					StartURLs:   []string{srv.URL + "/p/0"},
					Depth:       -1,
					Concurrency: conc,
					Logger:      quietLogger(),
				}, Hooks{OnPage: func(*Page) {}})
				elapsed += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				if st.Pages != pagesN {
					b.Fatalf("crawled %d pages, want %d", st.Pages, pagesN)
				}
				pages += st.Pages
			}
			b.ReportMetric(float64(pages)/elapsed.Seconds(), "pages/s")
		})
	}
}

// BenchmarkDedupMemory records 1M distinct URLs and reports the heap
// bytes the dedup set costs per URL.
//
//	go test -run '^$' -bench BenchmarkDedupMemory ./crawl/
func BenchmarkDedupMemory(b *testing.B) {
	const n = 1_000_000
	urls := make([]string, n)
	for i := range urls {
		urls[i] = fmt.Sprintf("https://www.example.com/section/%d/page-%d.html?id=%d", i%1000, i, i*7)
	}
	b.ReportAllocs()
	var perURL float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		d := newDedup(0)
		for _, u := range urls {
			d.add(u)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if d.len() != n {
			b.Fatalf("recorded %d URLs, want %d (hash collision?)", d.len(), n)
		}
		perURL = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(d)
	}
	b.ReportMetric(perURL, "bytes/URL")
}

// BenchmarkParseHTML measures link and text extraction on a 2 KB page.
func BenchmarkParseHTML(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("<!doctype html><html><head><title>T</title><script>var x=1</script></head><body>")
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&sb, `<p>Paragraph %d with <b>bold</b> text and <a href="/page/%d?x=1">a link</a>.</p>`, i, i)
	}
	sb.WriteString("</body></html>")
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		parseHTML(body, "text/html; charset=utf-8", "connector")
	}
}

// BenchmarkNormalize measures resolving and normalising one relative link.
func BenchmarkNormalize(b *testing.B) {
	n := newNormalizer(DefaultSessionParams)
	base, err := parseURL(nil, "https://www.example.com/docs/guide/index.html")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := n.resolve(base, "../api/page.html?b=2&PHPSESSID=abc#frag"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseHTMLManual parses the pages of the PostgreSQL manual
// (Debian postgresql-doc-15, the crawl benchmark's site) in turn: the
// engine's per-page parsing cost on real pages, without the network.
func BenchmarkParseHTMLManual(b *testing.B) {
	const dir = "/usr/share/doc/postgresql-doc-15/html"
	names, err := filepath.Glob(filepath.Join(dir, "*.html"))
	if err != nil || len(names) == 0 {
		b.Skipf("%s: no pages (install postgresql-doc-15)", dir)
	}
	var bodies [][]byte
	size := 0
	for _, n := range names {
		body, err := os.ReadFile(n)
		if err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, body)
		size += len(body)
	}
	b.SetBytes(int64(size / len(bodies)))
	b.ReportAllocs()
	var scratch []byte
	var links []string
	i := 0
	for b.Loop() {
		links = parseHTMLWith(bodies[i%len(bodies)], "text/html; charset=utf-8", "connector", &scratch, links).links
		i++
	}
}
