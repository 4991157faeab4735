// Package crawlbench is what the crawl benchmark programs of the bench
// module share (cmd/crawlsite, crawlours, crawlcolly, crawlget and
// crawldriver): the set of pages a static site should yield, computed
// from its files independently of every crawler; the check that a
// contender found exactly that set; and the measurement of one crawl
// (wall time, the process's own CPU time and peak RSS from getrusage)
// into a result.Output. It is bench code, never linked into the shipped
// binary.
package crawlbench

import (
	"bufio"
	"errors"
	"fmt"
	neturl "net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/html"

	"github.com/connectorhq/connector/bench/internal/result"
)

// ErrMismatch is returned by Check when a contender's pages differ from
// the expected set.
var ErrMismatch = errors.New("crawlbench: pages found differ from the expected set")

// ExpectedPages returns, level by level (index 0 is start itself), the
// .html files of the static site in dir that are reachable from start (a
// file name relative to dir, such as "index.html") through <a href>
// links, up to maxDepth links away. Each file appears once, at its
// minimum depth; each level is sorted. It uses only net/url and
// golang.org/x/net/html, the same method as crawl/realsite_test.go, so
// that no crawler under test checks itself.
func ExpectedPages(dir, start string, maxDepth int) ([][]string, error) {
	linksOf := func(name string) ([]string, error) {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return nil, fmt.Errorf("crawlbench: %w", err)
		}
		defer f.Close()
		doc, err := html.Parse(f)
		if err != nil {
			return nil, fmt.Errorf("crawlbench: parse %s: %w", name, err)
		}
		base := &neturl.URL{Scheme: "http", Host: "site", Path: "/" + name}
		var out []string
		var walk func(n *html.Node)
		walk = func(n *html.Node) {
			if n.Type == html.ElementNode && n.Data == "a" {
				for _, a := range n.Attr {
					if a.Key != "href" {
						continue
					}
					u, err := base.Parse(strings.TrimSpace(a.Val))
					if err != nil || u.Scheme != "http" || u.Host != "site" {
						continue
					}
					p := strings.TrimPrefix(path.Clean(u.Path), "/")
					if p == "" || p == "." {
						p = "index.html"
					}
					if st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); err == nil && !st.IsDir() {
						out = append(out, p)
					}
				}
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walk(c)
			}
		}
		walk(doc)
		return out, nil
	}
	seen := map[string]bool{start: true}
	levels := [][]string{{start}}
	for d := 1; d <= maxDepth; d++ {
		var next []string
		for _, name := range levels[d-1] {
			if !strings.HasSuffix(name, ".html") {
				continue
			}
			links, err := linksOf(name)
			if err != nil {
				return nil, err
			}
			for _, l := range links {
				if !seen[l] {
					seen[l] = true
					next = append(next, l)
				}
			}
		}
		levels = append(levels, next)
	}
	for d := range levels {
		var htmlOnly []string
		for _, n := range levels[d] {
			if strings.HasSuffix(n, ".html") {
				htmlOnly = append(htmlOnly, n)
			}
		}
		sort.Strings(htmlOnly)
		levels[d] = htmlOnly
	}
	return levels, nil
}

// WriteURLs writes urls to path, one per line.
func WriteURLs(path string, urls []string) error {
	var b strings.Builder
	for _, u := range urls {
		b.WriteString(u)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o640); err != nil {
		return fmt.Errorf("crawlbench: %w", err)
	}
	return nil
}

// ReadURLs reads a file written by WriteURLs (blank lines ignored).
func ReadURLs(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("crawlbench: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("crawlbench: %s: %w", path, err)
	}
	return out, nil
}

// Check compares the pages a contender found (one entry per page
// delivered, repeats allowed) with the expected set. It returns the
// number of repeats (pages delivered more than once) and an error
// wrapping ErrMismatch, naming a few missing and unexpected URLs, when
// the distinct pages found are not exactly want.
func Check(want, got []string) (repeats int, err error) {
	w := make(map[string]bool, len(want))
	for _, u := range want {
		w[u] = true
	}
	g := make(map[string]bool, len(got))
	var extra []string
	for _, u := range got {
		if g[u] {
			repeats++
			continue
		}
		g[u] = true
		if !w[u] {
			extra = append(extra, u)
		}
	}
	var missing []string
	for _, u := range want {
		if !g[u] {
			missing = append(missing, u)
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return repeats, nil
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return repeats, fmt.Errorf("%w: %d distinct found, %d expected; %d missing %v; %d unexpected %v",
		ErrMismatch, len(g), len(w), len(missing), head(missing, 5), len(extra), head(extra, 5))
}

func head(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Usage is what getrusage reports for this process.
type Usage struct {
	CPU    time.Duration // user + system
	MaxRSS int64         // peak resident set size, bytes
}

// SelfUsage returns this process's CPU time so far and its peak RSS.
func SelfUsage() (Usage, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return Usage{}, fmt.Errorf("crawlbench: getrusage: %w", err)
	}
	tv := func(t syscall.Timeval) time.Duration {
		return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
	}
	return Usage{CPU: tv(ru.Utime) + tv(ru.Stime), MaxRSS: ru.Maxrss * 1024}, nil
}

// Meter times one crawl: wall clock, this process's CPU, and the Go
// heap allocations and garbage collections meanwhile.
type Meter struct {
	start        time.Time
	cpu          time.Duration
	alloc, numGC uint64
	elapsed      time.Duration // set by End, like the fields below
	cpuSpent     time.Duration
	maxRSS       int64
	allocd, nGC  uint64
}

// Start begins a measurement.
func Start() (*Meter, error) {
	u, err := SelfUsage()
	if err != nil {
		return nil, err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &Meter{start: time.Now(), cpu: u.CPU, alloc: ms.TotalAlloc, numGC: uint64(ms.NumGC)}, nil
}

// End ends the measurement; call it as soon as the crawl returns.
func (m *Meter) End() error {
	m.elapsed = time.Since(m.start)
	u, err := SelfUsage()
	if err != nil {
		return err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.cpuSpent, m.maxRSS = u.CPU-m.cpu, u.MaxRSS
	m.allocd, m.nGC = ms.TotalAlloc-m.alloc, uint64(ms.NumGC)-m.numGC
	return nil
}

// Record writes, for a crawl that found pages distinct pages with
// requests HTTP requests (negative: not known), into o: pages, requests
// (when known), elapsed_s, pages_per_s, cpu_s, cpu_ms_per_kpage (CPU
// milliseconds of this process per 1000 pages, between Start and End),
// maxrss_mib (peak RSS of the whole process life up to End),
// alloc_kib_per_page (Go heap bytes allocated per page) and
// gc_per_kpage (garbage collections per 1000 pages).
func (m *Meter) Record(o *result.Output, pages, requests int) error {
	if m.elapsed <= 0 {
		return errors.New("crawlbench: Record before End")
	}
	if pages <= 0 {
		return errors.New("crawlbench: no page found")
	}
	o.Add("pages", float64(pages), "pages")
	if requests >= 0 {
		o.Add("requests", float64(requests), "requests")
	}
	o.Add("elapsed_s", m.elapsed.Seconds(), "s")
	o.Add("pages_per_s", float64(pages)/m.elapsed.Seconds(), "pages/s")
	o.Add("cpu_s", m.cpuSpent.Seconds(), "s")
	o.Add("cpu_ms_per_kpage", m.cpuSpent.Seconds()*1e3/float64(pages)*1000, "ms")
	o.Add("maxrss_mib", float64(m.maxRSS)/(1<<20), "MiB")
	o.Add("alloc_kib_per_page", float64(m.allocd)/1024/float64(pages), "KiB")
	o.Add("gc_per_kpage", float64(m.nGC)/float64(pages)*1000, "GCs")
	return nil
}
