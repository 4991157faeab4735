// Command crawldriver runs the crawl benchmark of `make bench` (the
// "Crawl" section of RESULTS.md): bench/crawl.sh builds the programs and
// calls it; it can also be run by itself:
//
//	crawldriver -bin out/bin -site /usr/share/doc/postgresql-doc-15/html \
//	  -runs 7 -concs 4,8,16 -mem-n 1000000 -results RESULTS.md
//
// It starts cmd/crawlsite on the site's folder (one server process for
// the whole run), computes the pages every contender must find from the
// site's files (sitepages.Reachable: depth 2 from index.html), and
// then, -runs times, for every concurrency of -concs, runs each
// contender once as a process of its own, in an order rotated from one
// iteration to the next: our crawl engine (and, for information, the
// same with GOGC=200), colly (keep-alive pool like
// ours, and with its default client), the plain-fetch ceilings (net/http
// and fasthttp clients), the fetch-and-tokenise ceiling (net/http client,
// every body run through x/net/html's tokenizer for its links), our full Synchronize with an in-memory and with
// a durable datastore. Around each run it reads the server's CPU time
// from /proc. Ratios are taken within one iteration and concurrency
// (ours ÷ colly measured a few seconds apart), then summarised as median
// (min–max) like every figure.
//
// Then, once: a CPU profile of our engine crawling the manual 20 times at
// concurrency 16 (the cost centres go into the report), and the memory
// run (crawlours -mode memory against crawlsite -gen -mem-n) -mem-runs
// times, plus the crawl package's BenchmarkDedupMemory.
//
// Raw JSON of every run goes to -out/raw/crawl.*.json, each program's
// standard error to -out/log/crawl.*.log, the summary to
// -out/crawl-summary.json (and -summary); the generated part of the Crawl
// section of -results is replaced between its markers. A program that
// fails is recorded in the report and the run goes on.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/connectorhq/connector/bench/internal/crawlbench"
	"github.com/connectorhq/connector/bench/internal/procstat"
	"github.com/connectorhq/connector/bench/internal/result"
	"github.com/connectorhq/connector/internal/sitepages"
)

// errInterrupted is returned when a signal stopped the run.
var errInterrupted = errors.New("interrupted: nothing written")

type config struct {
	bin, site, work, out, results, summary, rev, product string
	runs, memN, memRuns, depth, profileRepeat, passes    int
	concs                                                []int
	quick, noMemory, noProfile                           bool
	baseline, baselineRev                                string
}

func main() {
	var c config
	var concs, expectOnly string
	flag.StringVar(&c.bin, "bin", "out/bin", "folder of the crawl programs (crawlsite, crawlours, crawlcolly, crawlget)")
	flag.StringVar(&c.site, "site", "/usr/share/doc/postgresql-doc-15/html", "static site to crawl (its index.html is the start page)")
	flag.StringVar(&c.work, "work", "", "scratch folder (default: a new temporary folder, removed at the end)")
	flag.StringVar(&c.out, "out", "out", "folder for raw JSON, logs and profiles")
	flag.StringVar(&c.results, "results", "RESULTS.md", "file whose Crawl section is updated (empty: none)")
	flag.StringVar(&c.summary, "summary", "", "also write the summary JSON here (the committed copy)")
	flag.StringVar(&c.rev, "rev", "", "connector revision to print in the header")
	flag.StringVar(&c.product, "product", "..", "the connector module's folder, where BenchmarkDedupMemory runs (empty: skip it)")
	flag.IntVar(&c.runs, "runs", 7, "iterations of the pages/s runs")
	flag.StringVar(&concs, "concs", "4,8,16", "concurrencies, comma-separated")
	flag.IntVar(&c.depth, "depth", 2, "crawl depth from index.html")
	flag.IntVar(&c.passes, "ceiling-passes", 5, "times the ceiling fetches the whole URL list in one run")
	flag.IntVar(&c.memN, "mem-n", 1_000_000, "pages of the generated site of the memory run (0: skip it)")
	flag.IntVar(&c.memRuns, "mem-runs", 1, "iterations of the memory run")
	flag.IntVar(&c.profileRepeat, "profile-repeat", 20, "crawls of the manual in the profiled process")
	flag.BoolVar(&c.noProfile, "no-profile", false, "skip the CPU profile")
	flag.StringVar(&c.baseline, "baseline", "", "folder holding a crawlours built from an earlier revision: its engine and durable Synchronize run in the same iterations (before/after, interleaved)")
	flag.StringVar(&c.baselineRev, "baseline-rev", "", "the revision -baseline was built from, for the report")
	flag.BoolVar(&c.quick, "quick", false, "label the report as a smoke run (figures not quotable)")
	flag.StringVar(&expectOnly, "expect-only", "", "only print the expected URLs of the site served at this base URL (http://ADDR), one per line, and exit")
	flag.Parse()
	if expectOnly != "" {
		if err := printExpected(c.site, strings.TrimRight(expectOnly, "/"), c.depth); err != nil {
			result.Fatal("crawldriver", err)
		}
		return
	}
	for _, s := range strings.Split(concs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			result.Fatal("crawldriver", fmt.Errorf("-concs %q: want positive whole numbers", concs))
		}
		c.concs = append(c.concs, n)
	}
	c.noMemory = c.memN <= 0 || c.memRuns <= 0
	if err := run(c); err != nil {
		result.Fatal("crawldriver", err)
	}
}

// printExpected prints the URLs of the pages reachable within depth of
// index.html, for the site served at base.
func printExpected(site, base string, depth int) error {
	levels, err := sitepages.Reachable(site, "index.html", depth)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(os.Stdout)
	for _, l := range levels {
		for _, name := range l {
			fmt.Fprintf(w, "%s/%s\n", base, name)
		}
	}
	return w.Flush()
}

// contender is one program of the pages/s runs.
type contender struct {
	name string // key part and label
	prog string
	args func(c config, start, expect, dir string, conc int) []string
	env  []string // added to the environment
}

var contenders = []contender{
	{"ours-engine", "crawlours", func(c config, start, expect, _ string, conc int) []string {
		return []string{"-mode", "engine", "-start", start, "-expect", expect, "-conc", fmt.Sprint(conc), "-depth", fmt.Sprint(c.depth)}
	}, nil},
	{"ours-engine-gogc200", "crawlours", func(c config, start, expect, _ string, conc int) []string {
		return []string{"-mode", "engine", "-start", start, "-expect", expect, "-conc", fmt.Sprint(conc), "-depth", fmt.Sprint(c.depth)}
	}, []string{"GOGC=200"}},
	{"colly", "crawlcolly", func(c config, start, expect, _ string, conc int) []string {
		return []string{"-start", start, "-expect", expect, "-conc", fmt.Sprint(conc), "-depth", fmt.Sprint(c.depth)}
	}, nil},
	{"colly-default-client", "crawlcolly", func(c config, start, expect, _ string, conc int) []string {
		return []string{"-start", start, "-expect", expect, "-conc", fmt.Sprint(conc), "-depth", fmt.Sprint(c.depth), "-keepalive=false"}
	}, nil},
	{"ceiling-nethttp", "crawlget", func(c config, _, expect, _ string, conc int) []string {
		return []string{"-urls", expect, "-conc", fmt.Sprint(conc), "-client", "nethttp", "-passes", fmt.Sprint(c.passes)}
	}, nil},
	{"ceiling-fasthttp", "crawlget", func(c config, _, expect, _ string, conc int) []string {
		return []string{"-urls", expect, "-conc", fmt.Sprint(conc), "-client", "fasthttp", "-passes", fmt.Sprint(c.passes)}
	}, nil},
	{"ceiling-tokenize", "crawlget", func(c config, _, expect, _ string, conc int) []string {
		return []string{"-urls", expect, "-conc", fmt.Sprint(conc), "-client", "nethttp", "-tokenize", "-passes", fmt.Sprint(c.passes)}
	}, nil},
	{"ours-sync-memory", "crawlours", func(c config, start, expect, dir string, conc int) []string {
		return []string{"-mode", "sync", "-store", "memory", "-start", start, "-expect", expect, "-conc", fmt.Sprint(conc), "-depth", fmt.Sprint(c.depth), "-dir", dir}
	}, nil},
	{"ours-sync-durable", "crawlours", func(c config, start, expect, dir string, conc int) []string {
		return []string{"-mode", "sync", "-store", "durable", "-start", start, "-expect", expect, "-conc", fmt.Sprint(conc), "-depth", fmt.Sprint(c.depth), "-dir", dir}
	}, nil},
}

// baselineContenders are our engine and durable Synchronize built from
// an earlier revision (-baseline), run like the current ones.
func baselineContenders(prog string) []contender {
	var out []contender
	for _, name := range []string{"ours-engine", "ours-sync-durable"} {
		for _, ct := range contenders {
			if ct.name == name {
				ct.name, ct.prog = name+"-baseline", prog
				out = append(out, ct)
			}
		}
	}
	return out
}

func key(name string, conc int) string { return fmt.Sprintf("crawl.%s.c%d", name, conc) }

// runs holds every run's output: runs[key][iteration].
type runs map[string]map[int]*result.Output

type failure struct {
	Key  string `json:"key"`
	Iter int    `json:"iteration"`
	Err  string `json:"error"`
}

type meta struct {
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`
	Runs       int       `json:"runs"`
	MemRuns    int       `json:"mem_runs"`
	Concs      []int     `json:"concurrencies"`
	Quick      bool      `json:"quick"`
	CPUs       int       `json:"nproc"`
	Kernel     string    `json:"kernel"`
	Go         string    `json:"go"`
	Modules    []string  `json:"modules"`
	Rev        string    `json:"connector_rev"`
	LoadBefore string    `json:"loadavg_before"`
	LoadAfter  string    `json:"loadavg_after"`
	Command    string    `json:"command"`
	Site       string    `json:"site"`
	Levels     []int     `json:"pages_per_level"`
	Pages      int       `json:"pages"`
}

// driver is one run of the benchmark.
type driver struct {
	ctx      context.Context // cancelled by SIGINT / SIGTERM
	c        config
	raw, log string
	res      runs
	fails    []failure
	m        *meta
	profile  *profileReport
	heapTop  map[string][]heapSite // memory run phase → top allocation sites
	dedup    string                // BenchmarkDedupMemory's bytes/URL, as printed
}

func run(c config) error {
	if _, err := os.Stat(filepath.Join(c.site, "index.html")); err != nil {
		return fmt.Errorf("%s: no index.html (Debian package postgresql-doc-15; bench/crawl.sh installs it): %w", c.site, err)
	}
	if c.work == "" {
		d, err := os.MkdirTemp("", "crawl-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		c.work = d
	}
	// SIGINT or SIGTERM kills the running program, stops the servers and
	// removes the scratch folder (the deferred calls), and writes nothing.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &driver{ctx: ctx, c: c, raw: filepath.Join(c.out, "raw"), log: filepath.Join(c.out, "log"), res: runs{}}
	for _, dir := range []string{d.raw, d.log, c.work} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return err
		}
	}
	d.m = newMeta(c)

	levels, err := sitepages.Reachable(c.site, "index.html", c.depth)
	if err != nil {
		return err
	}
	srv, err := startServer(filepath.Join(c.bin, "crawlsite"), filepath.Join(d.log, "crawl.site.log"), "-dir", c.site)
	if err != nil {
		return err
	}
	defer srv.stop()
	base := "http://" + srv.addr
	var want []string
	for _, l := range levels {
		d.m.Levels = append(d.m.Levels, len(l))
		for _, name := range l {
			want = append(want, base+"/"+name)
		}
	}
	d.m.Pages = len(want)
	expect := filepath.Join(c.work, "expect.txt")
	if err := crawlbench.WriteURLs(expect, want); err != nil {
		return err
	}
	start := base + "/index.html"
	fmt.Fprintf(os.Stderr, "crawldriver: %s served at %s, %d pages expected (%v by depth)\n", c.site, base, len(want), d.m.Levels)

	all := contenders
	if c.baseline != "" {
		abs, err := filepath.Abs(filepath.Join(c.baseline, "crawlours"))
		if err != nil {
			return err
		}
		all = append(append([]contender{}, contenders...), baselineContenders(abs)...)
	}
	for i := 0; i < c.runs; i++ {
		for _, conc := range c.concs {
			n := len(all)
			for j := range n {
				ct := all[(i+j)%n]
				dir := filepath.Join(c.work, "run")
				_ = os.RemoveAll(dir)
				if err := os.MkdirAll(dir, 0o750); err != nil {
					return err
				}
				d.step(key(ct.name, conc), i, ct.prog, ct.args(c, start, expect, dir, conc), ct.env, srv.pid)
				if ctx.Err() != nil {
					return errInterrupted
				}
			}
		}
	}
	if !c.noProfile {
		d.runProfile(start, expect)
	}
	srv.stop()
	if !c.noMemory {
		d.runMemory()
	}
	if c.product != "" {
		d.runDedup()
	}
	if ctx.Err() != nil {
		return errInterrupted
	}
	d.m.Finished = time.Now().UTC()
	d.m.LoadAfter = result.LoadAvg()
	return d.report()
}

// server is a crawlsite process.
type server struct {
	cmd  *exec.Cmd
	addr string
	pid  int
	done chan struct{}
}

// startServer starts crawlsite with args and waits for its "listening
// ADDR" line.
func startServer(prog, logPath string, args ...string) (*server, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(prog, args...)
	// It dies with crawldriver, however that ends (SIGINT and SIGTERM
	// stop it through the deferred stop; SIGKILL or a panic would not).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	s := &server{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	select {
	case l, ok := <-lines:
		if a, found := strings.CutPrefix(l, "listening "); ok && found {
			s.addr = strings.TrimSpace(a)
			return s, nil
		}
		s.stop()
		return nil, fmt.Errorf("%s: no \"listening ADDR\" line (see %s)", prog, logPath)
	case <-time.After(60 * time.Second):
		s.stop()
		return nil, fmt.Errorf("%s: not listening after 60 s (see %s)", prog, logPath)
	}
}

// stop ends the server (SIGTERM, then SIGKILL after 10 s); it may be
// called more than once.
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// step runs one program, records its output and the server's CPU time
// per 1000 pages (when serverPID > 0).
func (d *driver) step(k string, iter int, prog string, args, env []string, serverPID int) {
	t0 := time.Now()
	var cpu0 time.Duration
	if serverPID > 0 {
		cpu0, _ = procstat.CPU(serverPID)
	}
	o, err := d.exec(k, iter, prog, args, env)
	status := "ok"
	if err != nil {
		status = "FAILED: " + err.Error()
		d.fails = append(d.fails, failure{k, iter, err.Error()})
	} else {
		if serverPID > 0 {
			if cpu1, err := procstat.CPU(serverPID); err == nil {
				if pages, ok := o.Get("pages"); ok && pages > 0 {
					o.Add("server_cpu_ms_per_kpage", float64((cpu1-cpu0).Microseconds())/1e3/pages*1000, "ms")
				}
			}
		}
		if d.res[k] == nil {
			d.res[k] = map[int]*result.Output{}
		}
		d.res[k][iter] = o
		if v, ok := o.Get("pages_per_s"); ok {
			status = fmt.Sprintf("%.0f pages/s", v)
		}
	}
	fmt.Fprintf(os.Stderr, "crawldriver: [%d] %-34s %6.1fs %s\n", iter+1, k, time.Since(t0).Seconds(), firstLine(status))
}

func (d *driver) exec(k string, iter int, prog string, args, env []string) (*result.Output, error) {
	name := fmt.Sprintf("%s-%d", k, iter+1)
	logf, err := os.Create(filepath.Join(d.log, name+".log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	var stdout, stderr bytes.Buffer
	path := prog
	if !filepath.IsAbs(path) {
		path = filepath.Join(d.c.bin, prog)
	}
	cmd := exec.CommandContext(d.ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	line := strings.TrimSpace(strings.Join(env, " ") + " " + prog + " " + strings.Join(args, " "))
	fmt.Fprintf(logf, "$ %s\n", line)
	err = cmd.Run()
	_, _ = logf.Write(stderr.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %s", prog, err, strings.TrimSpace(result.LastLines(stderr.String(), 3)))
	}
	if err := os.WriteFile(filepath.Join(d.raw, name+".json"), stdout.Bytes(), 0o640); err != nil {
		return nil, err
	}
	o, err := result.Read(&stdout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", prog, err)
	}
	o.Info["command"] = line
	return o, nil
}

// runProfile takes a CPU profile of the engine crawling the manual
// profileRepeat times at concurrency 16, and reads its cost centres.
func (d *driver) runProfile(start, expect string) {
	if d.ctx.Err() != nil {
		return
	}
	prof := filepath.Join(d.c.out, "crawl-engine-c16.prof")
	k := "crawl.profile"
	d.step(k, 0, "crawlours", []string{"-mode", "engine", "-start", start, "-expect", expect, "-conc", "16",
		"-depth", fmt.Sprint(d.c.depth), "-repeat", fmt.Sprint(d.c.profileRepeat), "-cpuprofile", prof}, nil, 0)
	if d.res[k] == nil {
		return
	}
	p, err := readProfile(filepath.Join(d.c.bin, "crawlours"), prof)
	if err != nil {
		d.fails = append(d.fails, failure{k, 0, err.Error()})
		return
	}
	p.path = prof
	d.profile = p
}

// runMemory runs the memory measurement memRuns times, each against a
// fresh generated site server.
func (d *driver) runMemory() {
	for i := 0; i < d.c.memRuns && d.ctx.Err() == nil; i++ {
		k := "crawl.memory.durable"
		srv, err := startServer(filepath.Join(d.c.bin, "crawlsite"), filepath.Join(d.log, fmt.Sprintf("crawl.gensite-%d.log", i+1)),
			"-gen", fmt.Sprint(d.c.memN), "-fanout", "100")
		if err != nil {
			d.fails = append(d.fails, failure{k, i, err.Error()})
			continue
		}
		dir := filepath.Join(d.c.work, "memory")
		_ = os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			d.fails = append(d.fails, failure{k, i, err.Error()})
			srv.stop()
			continue
		}
		args := []string{"-mode", "memory", "-store", "durable", "-n", fmt.Sprint(d.c.memN), "-start", "http://" + srv.addr + "/",
			"-conc", "16", "-dir", dir}
		if i == 0 {
			args = append(args, "-heapprofile", filepath.Join(d.c.out, "crawl-memory"))
		}
		d.step(k, i, "crawlours", args, nil, 0)
		srv.stop()
		_ = os.RemoveAll(dir)
		if i == 0 && d.res[k][0] != nil {
			d.heapTop = map[string][]heapSite{}
			for _, ph := range []string{"engine", "first", "resync"} {
				sites, err := readHeapTop(filepath.Join(d.c.bin, "crawlours"), filepath.Join(d.c.out, "crawl-memory-"+ph+".heap"), 6)
				if err != nil {
					d.fails = append(d.fails, failure{k, i, err.Error()})
					continue
				}
				d.heapTop[ph] = sites
			}
		}
	}
}

var dedupLine = regexp.MustCompile(`BenchmarkDedupMemory\S*\s+\d+\s+.*?([\d.]+) bytes/URL`)

// runDedup runs the crawl package's BenchmarkDedupMemory once.
func (d *driver) runDedup() {
	if d.ctx.Err() != nil {
		return
	}
	k := "crawl.dedup"
	t0 := time.Now()
	cmd := exec.CommandContext(d.ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkDedupMemory$", "-benchtime", "1x", "./crawl/")
	cmd.Dir = d.c.product
	out, err := cmd.CombinedOutput()
	_ = os.WriteFile(filepath.Join(d.log, k+".log"), out, 0o640)
	if m := dedupLine.FindSubmatch(out); err == nil && m != nil {
		d.dedup = string(m[1])
		fmt.Fprintf(os.Stderr, "crawldriver: %-38s %6.1fs %s bytes/URL\n", k, time.Since(t0).Seconds(), d.dedup)
		return
	}
	msg := "no bytes/URL line in its output"
	if err != nil {
		msg = err.Error()
	}
	d.fails = append(d.fails, failure{k, 0, "go test -bench BenchmarkDedupMemory ./crawl/: " + msg})
}

func newMeta(c config) *meta {
	m := &meta{Started: time.Now().UTC(), Runs: c.runs, MemRuns: c.memRuns, Concs: c.concs, Quick: c.quick,
		CPUs: runtime.NumCPU(), Go: runtime.Version(), Rev: c.rev, LoadBefore: result.LoadAvg(), Command: "make bench", Site: c.site}
	if c.quick {
		m.Command = "make bench QUICK=1"
	}
	if c.noMemory {
		m.MemRuns = 0
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("go", "list", "-m", "github.com/gocolly/colly/v2", "github.com/valyala/fasthttp", "go.etcd.io/bbolt").Output(); err == nil {
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				m.Modules = append(m.Modules, l)
			}
		}
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "postgresql-doc-15").Output(); err == nil {
		m.Site += " (postgresql-doc-15 " + strings.TrimSpace(string(out)) + ")"
	}
	return m
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// figure summarises metric of key over the iterations.
func (d *driver) figure(k, metric string) (result.Stat, bool) {
	var vs []float64
	for _, o := range d.res[k] {
		if v, ok := o.Get(metric); ok {
			vs = append(vs, v)
		}
	}
	return result.Summarise(vs)
}

// ratio summarises num/den taken iteration by iteration.
func (d *driver) ratio(nk, dk, metric string) (result.Stat, bool) {
	var vs []float64
	for i, o := range d.res[nk] {
		den := d.res[dk][i]
		if den == nil {
			continue
		}
		n, ok1 := o.Get(metric)
		dv, ok2 := den.Get(metric)
		if ok1 && ok2 && dv != 0 {
			vs = append(vs, n/dv)
		}
	}
	return result.Summarise(vs)
}

// summary is what crawl-summary.json holds.
type summary struct {
	Meta     *meta                        `json:"meta"`
	Figures  map[string]result.Stat       `json:"figures"` // "key metric"
	Ratios   map[string]result.Stat       `json:"ratios"`  // "key / key metric"
	Info     map[string]map[string]string `json:"info"`    // key → info of its last run
	Dedup    string                       `json:"dedup_bytes_per_url,omitempty"`
	Failures []failure                    `json:"failures"`
}

func (d *driver) summary() *summary {
	s := &summary{Meta: d.m, Figures: map[string]result.Stat{}, Ratios: map[string]result.Stat{}, Info: map[string]map[string]string{},
		Dedup: d.dedup, Failures: d.fails}
	if s.Failures == nil {
		s.Failures = []failure{}
	}
	for k, byIter := range d.res {
		names := map[string]bool{}
		last := -1
		for i, o := range byIter {
			for _, mt := range o.Metrics {
				names[mt.Name] = true
			}
			if i > last {
				last, s.Info[k] = i, o.Info
			}
		}
		for n := range names {
			if st, ok := d.figure(k, n); ok {
				s.Figures[k+" "+n] = st
			}
		}
	}
	for _, conc := range d.c.concs {
		for _, num := range []string{"ours-engine", "ours-engine-gogc200", "ours-sync-memory", "ours-sync-durable", "colly", "colly-default-client", "ceiling-tokenize", "ours-engine-baseline", "ours-sync-durable-baseline"} {
			for _, den := range []string{"colly", "ceiling-nethttp", "ceiling-fasthttp", "ceiling-tokenize"} {
				if num == den {
					continue
				}
				if st, ok := d.ratio(key(num, conc), key(den, conc), "pages_per_s"); ok {
					s.Ratios[key(num, conc)+" / "+key(den, conc)+" pages_per_s"] = st
				}
			}
		}
		for _, num := range []string{"ours-engine", "ours-sync-durable"} {
			if st, ok := d.ratio(key(num, conc), key(num+"-baseline", conc), "pages_per_s"); ok {
				s.Ratios[key(num, conc)+" / "+key(num+"-baseline", conc)+" pages_per_s"] = st
			}
		}
	}
	return s
}

func (d *driver) report() error {
	s := d.summary()
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if err := os.WriteFile(filepath.Join(d.c.out, "crawl-summary.json"), b, 0o640); err != nil {
		return err
	}
	if d.c.summary != "" {
		if err := os.MkdirAll(filepath.Dir(d.c.summary), 0o750); err != nil {
			return err
		}
		if err := os.WriteFile(d.c.summary, b, 0o640); err != nil {
			return err
		}
	}
	if d.c.results != "" {
		if err := updateResults(d.c.results, d.render(s)); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "crawldriver: done in %v, %d failures; raw JSON in %s\n", d.m.Finished.Sub(d.m.Started).Round(time.Second), len(d.fails), d.raw)
	if len(d.fails) > 0 {
		// The report is written, failures included; the exit status says
		// so too, for crawl.sh and make bench.
		var keys []string
		for _, f := range d.fails {
			keys = append(keys, fmt.Sprintf("%s (run %d)", f.Key, f.Iter+1))
		}
		return fmt.Errorf("%d runs failed: %s (their errors are in the report and in %s)", len(d.fails), strings.Join(keys, ", "), d.log)
	}
	return nil
}
