// Command browserbench measures package crawl/browser (headless Chromium
// rendering for the Web connector) against a ceiling measured in the same
// run, and writes the "Browser rendering" section of bench/RESULTS.md.
//
// The test site (site.go) is served in process on 127.0.0.1: pages whose
// HTML as served contains no <a>; scripts create every link (two at once,
// two after a fetch() of a JSON list) and most of the text, then set
// body[data-ready="1"].
//
// Rows:
//
//   - pages/s at 1, 2 and 4 tabs, each iteration measuring, in rotated
//     order, the ceiling and ours over the same list of URLs:
//     ceiling: one browser (the same binary), N chromedp tabs, plain
//     chromedp.Navigate + chromedp.Poll for body[data-ready] + one
//     Evaluate reading title, innerText, links and outerHTML; no
//     interception, no isolated world, nothing else;
//     ours: browser.Pool with N tabs; each page fetched by Go's HTTP client
//     (the crawl's fetch) and given to Pool.Render with
//     WaitSelector body[data-ready="1"] (every default on: interception,
//     cookie reset, isolated-world read, limits).
//     Also ours with the default quiet-network wait (no selector), at 4
//     tabs, to show what the 500 ms quiet window costs.
//   - memory: browser PSS and RSS (sum over its processes) and Go RSS per
//     open tab (1 tab → 8 tabs), and over -mem-pages renders (default
//     10,000) at 4 tabs, sampled every 1,000.
//   - Stop: time from cancelling a render's context to Render returning,
//     over -cancel-n renders of a page that never settles.
//   - fetched once: requests the site received for page documents, per
//     page rendered (ours: the Go fetch only).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/connectorhq/connector/bench/internal/procstat"
	"github.com/connectorhq/connector/bench/internal/result"
	"github.com/connectorhq/connector/crawl/browser"
)

type config struct {
	pages    int
	runs     int
	tabs     []int
	quietRun bool
	memPages int
	memRuns  int
	cancelN  int
	// The Web connector's rows (connector.go).
	connector    bool
	connStopN    int
	connMemPages int
	results      string
	summary      string
	rev          string
	quick        bool
	exec         string
	tmp          string
}

func main() {
	var c config
	var tabs string
	flag.IntVar(&c.pages, "pages", 200, "pages in the site (the URL list of every throughput run)")
	flag.IntVar(&c.runs, "runs", 5, "iterations of the throughput rows")
	flag.StringVar(&tabs, "tabs", "1,2,4", "tab counts of the throughput rows")
	flag.BoolVar(&c.quietRun, "quiet-row", true, "also measure ours with the default quiet-network wait at the largest tab count")
	flag.IntVar(&c.memPages, "mem-pages", 10000, "renders of the memory run (0: skip)")
	flag.IntVar(&c.memRuns, "mem-runs", 3, "iterations of the per-tab memory row")
	flag.IntVar(&c.cancelN, "cancel-n", 200, "cancelled renders of the Stop row")
	flag.BoolVar(&c.connector, "connector", true, "also crawl the site with the Web connector (connectors/webfetch) in each throughput iteration")
	flag.IntVar(&c.connStopN, "conn-stop-n", 100, "Stops of a rendering Web connector action through the queue (0: skip)")
	flag.IntVar(&c.connMemPages, "conn-mem-pages", 10000, "pages of the Web connector's memory crawl (0: skip)")
	flag.StringVar(&c.results, "results", "", "RESULTS.md to update (empty: print the section)")
	flag.StringVar(&c.summary, "summary", "", "JSON summary to write")
	flag.StringVar(&c.rev, "rev", "unknown", "connector revision, for the header")
	flag.BoolVar(&c.quick, "quick", false, "smoke run (results marked QUICK)")
	flag.Parse()
	for _, s := range strings.Split(tabs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			result.Fatal("browserbench", fmt.Errorf("bad -tabs %q", tabs))
		}
		c.tabs = append(c.tabs, n)
	}
	exe, err := browser.FindExec("")
	if err != nil {
		result.Fatal("browserbench", err)
	}
	c.exec = exe
	// One fixed folder for the browsers' user-data-dirs: each pool removes
	// its own, and a run that was killed leaves one that the next run's
	// first start sweeps (crawl/browser does that per folder).
	c.tmp = filepath.Join(os.TempDir(), "connector-browserbench")
	if err := os.MkdirAll(c.tmp, 0o700); err != nil {
		result.Fatal("browserbench", err)
	}
	b := &bench{c: c, m: map[string][]float64{}, started: time.Now(), load0: result.LoadAvg()}
	if err := b.run(); err != nil {
		result.Fatal("browserbench", err)
	}
}

type bench struct {
	c       config
	s       *site
	mu      sync.Mutex
	m       map[string][]float64 // metric → one value per iteration
	notes   []string
	started time.Time
	load0   string
	version string
}

func (b *bench) add(name string, v float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[name] = append(b.m[name], v)
}

func (b *bench) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, "browserbench:", msg)
	b.notes = append(b.notes, msg)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "browserbench: "+format+"\n", args...)
}

func (b *bench) run() error {
	s, err := newSite(b.c.pages)
	if err != nil {
		return err
	}
	defer s.close()
	b.s = s
	if out, err := exec.Command(b.c.exec, "--version").Output(); err == nil {
		b.version = strings.TrimSpace(string(out))
	}
	urls := make([]string, b.c.pages)
	for i := range urls {
		urls[i] = s.url(i)
	}
	for it := 0; it < b.c.runs; it++ {
		for _, n := range b.c.tabs {
			first, second := b.ceiling, b.ours
			if it%2 == 1 {
				first, second = second, first
			}
			if err := first(urls, n); err != nil {
				return err
			}
			if err := second(urls, n); err != nil {
				return err
			}
			ce, ou := b.last(key("ceiling", n)), b.last(key("ours", n))
			if ce > 0 {
				b.add(key("ratio", n), ou/ce)
			}
			if b.c.connector {
				if err := b.connector(urls, n); err != nil {
					return err
				}
				if co := b.last(key("connector", n)); ce > 0 {
					b.add(key("connector-ratio", n), co/ce)
				}
			}
		}
		if b.c.quietRun {
			n := b.c.tabs[len(b.c.tabs)-1]
			if err := b.oursQuiet(urls, n); err != nil {
				return err
			}
		}
	}
	for it := 0; it < b.c.memRuns; it++ {
		if err := b.perTab(); err != nil {
			return err
		}
	}
	if b.c.memPages > 0 {
		if err := b.long(urls); err != nil {
			return err
		}
	}
	if b.c.cancelN > 0 {
		if err := b.cancel(); err != nil {
			return err
		}
	}
	if b.c.connMemPages > 0 {
		if err := b.connectorMemory(); err != nil {
			return err
		}
	}
	if b.c.connStopN > 0 {
		if err := b.connectorStop(); err != nil {
			return err
		}
	}
	return b.write()
}

func key(kind string, tabs int) string { return kind + "/" + strconv.Itoa(tabs) }

func (b *bench) last(k string) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	v := b.m[k]
	if len(v) == 0 {
		return 0
	}
	return v[len(v)-1]
}

// work runs f over urls with n workers and returns the rate.
func work(urls []string, n int, f func(w int, u string) error) (float64, error) {
	next := make(chan string, len(urls))
	for _, u := range urls {
		next <- u
	}
	close(next)
	var wg sync.WaitGroup
	var first error
	var mu sync.Mutex
	start := time.Now()
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for u := range next {
				if err := f(w, u); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("%s: %w", u, err)
					}
					mu.Unlock()
				}
			}
		}(w)
	}
	wg.Wait()
	return float64(len(urls)) / time.Since(start).Seconds(), first
}

const readyJS = `document.body !== null && document.body.getAttribute("data-ready") === "1"`

const readJS = `({title: document.title, text: document.body.innerText, html: document.documentElement.outerHTML,
  links: Array.from(document.querySelectorAll("a[href]"), function (a) { return [a.href, a.textContent] })})`

type ceilingPage struct {
	Title string     `json:"title"`
	Text  string     `json:"text"`
	HTML  string     `json:"html"`
	Links [][]string `json:"links"`
}

// ceiling renders urls with plain chromedp in n tabs of one browser.
func (b *bench) ceiling(urls []string, n int) error {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(b.c.exec), chromedp.DisableGPU,
		chromedp.Flag("window-size", fmt.Sprintf("%d,%d", browser.DefaultWindowWidth, browser.DefaultWindowHeight)))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx); err != nil {
		return fmt.Errorf("ceiling: starting the browser: %w", err)
	}
	tabs := make([]context.Context, n)
	for i := range tabs {
		tctx, tcancel := chromedp.NewContext(bctx)
		defer tcancel()
		if err := chromedp.Do(tctx); err != nil {
			return fmt.Errorf("ceiling: opening a tab: %w", err)
		}
		tabs[i] = tctx
	}
	pages0 := b.s.pages.Load()
	var bad, retried atomic.Int64
	rate, err := work(urls, n, func(w int, u string) error {
		ctx, cancel := context.WithTimeout(tabs[w], time.Minute)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate(u)); err != nil {
			return err
		}
		var pg ceilingPage
		for try := 0; ; try++ {
			_, err := chromedp.Run(ctx, chromedp.Poll[bool](readyJS))
			if err == nil {
				pg, err = chromedp.Run(ctx, chromedp.Evaluate[ceilingPage](readJS))
			}
			// The page's execution context can be replaced between two
			// calls (CDP -32000 "Cannot find context with specified id"
			// on a loaded machine): read it again, in the clock.
			if err != nil && try < 2 && strings.Contains(err.Error(), "Cannot find context with specified id") {
				retried.Add(1)
				continue
			}
			if err != nil {
				return err
			}
			break
		}
		if len(pg.Links) != 4 || !strings.HasPrefix(pg.Title, "Rendered page") {
			bad.Add(1)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ceiling at %d tabs: %w", n, err)
	}
	if bad.Load() > 0 {
		b.note("ceiling at %d tabs: %d pages read incompletely", n, bad.Load())
	}
	if retried.Load() > 0 {
		b.note("ceiling at %d tabs: %d reads repeated after the page's execution context was replaced", n, retried.Load())
	}
	b.add(key("ceiling", n), rate)
	b.add(key("ceiling-docs-per-page", n), float64(b.s.pages.Load()-pages0)/float64(len(urls)))
	logf("ceiling %d tabs: %.1f pages/s", n, rate)
	return nil
}

func (b *bench) pool(tabs int) (*browser.Pool, error) {
	return browser.New(browser.Config{
		Tabs: tabs, IdleTimeout: -1, TempDir: b.c.tmp,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: time.Minute}

// fetch is the crawl's part: the page's bytes over HTTP.
func fetch(u string) ([]byte, string, error) {
	resp, err := client.Get(u)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return body, resp.Header.Get("Content-Type"), err
}

func (b *bench) oursWith(urls []string, n int, name string, opts browser.RenderOptions) error {
	p, err := b.pool(n)
	if err != nil {
		return err
	}
	defer p.Close()
	// Warm: the browser starts and n tabs open, as the ceiling's do
	// before its clock starts.
	if _, err := work(urls[:n], n, func(_ int, u string) error {
		body, ct, err := fetch(u)
		if err != nil {
			return err
		}
		_, err = p.Render(context.Background(), u, body, ct, opts)
		return err
	}); err != nil {
		return fmt.Errorf("%s: warming up: %w", name, err)
	}
	pages0 := b.s.pages.Load()
	var bad, browserFetched atomic.Int64
	rate, err := work(urls, n, func(_ int, u string) error {
		body, ct, err := fetch(u)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		pg, err := p.Render(ctx, u, body, ct, opts)
		if err != nil {
			return err
		}
		if len(pg.Links) != 4 || !strings.HasPrefix(pg.Title, "Rendered page") {
			bad.Add(1)
		}
		if !pg.MainFromBody {
			browserFetched.Add(1)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s at %d tabs: %w", name, n, err)
	}
	if bad.Load() > 0 {
		b.note("%s at %d tabs: %d pages read incompletely", name, n, bad.Load())
	}
	b.add(key(name, n), rate)
	// Every page document request the site saw, per page: ours fetches
	// each page once with Go's client; the browser must add none.
	b.add(key(name+"-docs-per-page", n), float64(b.s.pages.Load()-pages0)/float64(len(urls)))
	b.add(key(name+"-browser-fetched", n), float64(browserFetched.Load()))
	logf("%s %d tabs: %.1f pages/s", name, n, rate)
	return nil
}

func (b *bench) ours(urls []string, n int) error {
	return b.oursWith(urls, n, "ours", browser.RenderOptions{WaitSelector: `body[data-ready="1"]`})
}

func (b *bench) oursQuiet(urls []string, n int) error {
	return b.oursWith(urls, n, "ours-quiet", browser.RenderOptions{})
}

// mem is the memory of the browser (its processes) and of this process.
type mem struct {
	pss, rss, goRSS float64 // bytes
	procs           int
	byType          map[string]float64 // PSS per process type ("browser", "renderer", "gpu-process", "utility", "zygote")
}

func measure(p *browser.Pool) mem {
	m := mem{byType: map[string]float64{}}
	for _, pid := range p.Processes() {
		m.procs++
		if v, err := smapsPss(pid); err == nil {
			m.pss += float64(v)
			m.byType[procType(pid)] += float64(v)
		}
		if v, err := procstat.RSS(pid); err == nil {
			m.rss += float64(v)
		}
	}
	runtime.GC()
	procstat.HeapInUse()
	if v, err := procstat.RSS(0); err == nil {
		m.goRSS = float64(v)
	}
	return m
}

// procType is a Chromium process's --type (the browser itself has none).
func procType(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return "gone"
	}
	// Chromium rewrites its helpers' titles: one string, spaces between
	// the arguments.
	for _, a := range strings.FieldsFunc(string(b), func(r rune) bool { return r == 0 || r == ' ' }) {
		if t, ok := strings.CutPrefix(a, "--type="); ok {
			return t
		}
	}
	return "browser"
}

// smapsPss reads the proportional set size of pid (shared pages split
// between the processes sharing them, so the sum over the browser's
// processes does not count the shared binary once per process).
func smapsPss(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Pss:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, err := strconv.ParseInt(f[1], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, errors.New("no Pss line")
}

// settle waits until the browser's memory stops changing much (the tabs'
// renderers finish their start), at most 5 s.
func settle(p *browser.Pool) mem {
	prev := measure(p)
	for i := 0; i < 10; i++ {
		time.Sleep(500 * time.Millisecond)
		cur := measure(p)
		if d := cur.pss - prev.pss; d < 2<<20 && d > -2<<20 {
			return cur
		}
		prev = cur
	}
	return prev
}

// perTab measures the memory of 1 open tab and of 8.
func (b *bench) perTab() error {
	const many = 8
	p, err := b.pool(many)
	if err != nil {
		return err
	}
	defer p.Close()
	render := func(k int) error {
		_, err := work(func() []string {
			u := make([]string, k)
			for i := range u {
				u[i] = b.s.url(i)
			}
			return u
		}(), k, func(_ int, u string) error {
			body, ct, err := fetch(u)
			if err != nil {
				return err
			}
			_, err = p.Render(context.Background(), u, body, ct, browser.RenderOptions{WaitSelector: `body[data-ready="1"]`})
			return err
		})
		return err
	}
	if err := render(1); err != nil {
		return err
	}
	m1 := settle(p)
	if err := render(many); err != nil {
		return err
	}
	if st := p.Stats(); st.TabsOpen != many {
		b.note("per-tab memory: %d tabs open, wanted %d", st.TabsOpen, many)
	}
	m8 := settle(p)
	d := float64(many - 1)
	b.add("tab-pss", (m8.pss-m1.pss)/d)
	b.add("tab-rss", (m8.rss-m1.rss)/d)
	b.add("tab-go-rss", (m8.goRSS-m1.goRSS)/d)
	b.add("one-tab-pss", m1.pss)
	b.add("one-tab-procs", float64(m1.procs))
	b.add("eight-tab-procs", float64(m8.procs))
	logf("per tab: browser PSS %.1f MiB, RSS %.1f MiB, Go RSS %.2f MiB", (m8.pss-m1.pss)/d/(1<<20), (m8.rss-m1.rss)/d/(1<<20), (m8.goRSS-m1.goRSS)/d/(1<<20))
	return nil
}

// long renders memPages pages at 4 tabs and samples memory every 1,000.
func (b *bench) long(urls []string) error {
	const n = 4
	p, err := b.pool(n)
	if err != nil {
		return err
	}
	defer p.Close()
	list := make([]string, b.c.memPages)
	for i := range list {
		list[i] = urls[i%len(urls)]
	}
	step := 1000
	if b.c.memPages < 4*step {
		step = max(1, b.c.memPages/4)
	}
	start := time.Now()
	for done := 0; done < len(list); done += step {
		end := min(done+step, len(list))
		if _, err := work(list[done:end], n, func(_ int, u string) error {
			body, ct, err := fetch(u)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err = p.Render(ctx, u, body, ct, browser.RenderOptions{WaitSelector: `body[data-ready="1"]`})
			return err
		}); err != nil {
			return fmt.Errorf("memory run: %w", err)
		}
		m := measure(p)
		b.add("long-at", float64(end))
		b.add("long-pss", m.pss)
		b.add("long-rss", m.rss)
		b.add("long-go-rss", m.goRSS)
		b.add("long-procs", float64(m.procs))
		b.add("long-pss-browser", m.byType["browser"])
		b.add("long-pss-renderers", m.byType["renderer"])
		logf("after %d renders: browser PSS %.0f MiB (%d processes; browser process %.0f MiB, renderers %.0f MiB, gpu %.0f MiB, utility %.0f MiB, zygotes %.0f MiB), Go RSS %.0f MiB",
			end, m.pss/(1<<20), m.procs, m.byType["browser"]/(1<<20), m.byType["renderer"]/(1<<20), m.byType["gpu-process"]/(1<<20), m.byType["utility"]/(1<<20), m.byType["zygote"]/(1<<20), m.goRSS/(1<<20))
	}
	st := p.Stats()
	b.add("long-tabs-opened", float64(st.TabsOpened))
	b.add("long-rate", float64(len(list))/time.Since(start).Seconds())
	b.add("long-starts", float64(st.Starts))
	return nil
}

// cancel measures cancel → Render returned over cancelN renders of pages
// that never settle.
func (b *bench) cancel() error {
	p, err := b.pool(2)
	if err != nil {
		return err
	}
	defer p.Close()
	if _, err := p.Render(context.Background(), b.s.url(0), b.s.page(0), "text/html", browser.RenderOptions{}); err != nil {
		return err
	}
	var lat []float64
	for k := 0; k < b.c.cancelN; k++ {
		u, body, seen := b.s.hangPage(k)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := p.Render(ctx, u, body, "text/html", browser.RenderOptions{Deadline: time.Hour})
			done <- err
		}()
		select {
		case <-seen:
		case err := <-done:
			cancel()
			return fmt.Errorf("cancel row: render ended before its cancel: %v", err)
		case <-time.After(time.Minute):
			cancel()
			<-done
			return errors.New("cancel row: the page never requested its hanging resource")
		}
		time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
		t0 := time.Now()
		cancel()
		err := <-done
		lat = append(lat, float64(time.Since(t0))/float64(time.Millisecond))
		if !errors.Is(err, context.Canceled) {
			return fmt.Errorf("cancel row: Render returned %v, want context.Canceled", err)
		}
	}
	sort.Float64s(lat)
	q := func(f float64) float64 { return quantile(lat, f) }
	b.add("cancel-p50", q(0.50))
	b.add("cancel-p99", q(0.99))
	b.add("cancel-max", lat[len(lat)-1])
	b.add("cancel-n", float64(len(lat)))
	logf("cancel → return: p50 %.2f ms, p99 %.2f ms, max %.2f ms (n=%d)", q(0.5), q(0.99), lat[len(lat)-1], len(lat))
	return nil
}

func (b *bench) stat(k string) (result.Stat, bool) {
	return result.Summarise(b.m[k])
}

func (b *bench) write() error {
	sec := b.render()
	if b.c.summary != "" {
		out := map[string]any{"generated": time.Now().UTC().Format(time.RFC3339), "rev": b.c.rev, "browser": b.version, "quick": b.c.quick}
		stats := map[string]result.Stat{}
		for k := range b.m {
			if st, ok := b.stat(k); ok {
				stats[k] = st
			}
		}
		out["stats"] = stats
		out["notes"] = b.notes
		data, _ := json.MarshalIndent(out, "", "  ")
		if err := os.WriteFile(b.c.summary, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	if b.c.results == "" {
		fmt.Print(sec)
		return nil
	}
	return updateResults(b.c.results, sec)
}

// quantile returns the q-th quantile (0 < q < 1) of sorted values, not
// empty: the value of its nearest rank, the smallest with at least q of
// the values at or below it (p99 of 100 values is the 99th, as
// HdrHistogram reads its own, not the largest), and for q = 0.5 the
// median (the mean of the two middle values of an even count).
func quantile(sorted []float64, q float64) float64 {
	n := len(sorted)
	if q == 0.5 && n%2 == 0 {
		return (sorted[n/2-1] + sorted[n/2]) / 2
	}
	// The rank q×n rounded up, less an ε: 0.99×100 in floating point
	// may land a hair above 99.
	i := int(math.Ceil(q*float64(n)-1e-9)) - 1
	return sorted[min(max(i, 0), n-1)]
}
