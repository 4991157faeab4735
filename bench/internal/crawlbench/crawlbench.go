// Package crawlbench is what the crawl benchmark programs of the bench
// module share (cmd/crawlsite, crawlours, crawlcolly, crawlget and
// crawldriver): the check that a contender found exactly the set of pages
// the site should yield (computed by internal/sitepages); and the measurement of one crawl
// (wall time, the process's own CPU time and peak RSS from getrusage)
// into a result.Output. It is bench code, never linked into the shipped
// binary.
package crawlbench

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/connectorhq/connector/bench/internal/result"
)

// ErrMismatch is returned by Check when a contender's pages differ from
// the expected set.
var ErrMismatch = errors.New("crawlbench: pages found differ from the expected set")

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
