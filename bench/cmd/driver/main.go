// Command driver runs the benchmark programs of the bench module several
// times in one go, keeps every run's raw JSON under -out, computes the
// median, min and max of each figure and of each ratio (a ratio is taken
// within one iteration, between a figure and the reference measured just
// before it, then summarised like any figure), and renders the generated
// sections of RESULTS.md. bench/run.sh (make bench) builds the programs,
// starts Redis and PostgreSQL and calls it; it can also be run by itself:
//
//	driver -bin out/bin -connector ../bin/connector -runs 5 \
//	  -redis-everysec 127.0.0.1:6390 -redis-always 127.0.0.1:6391 \
//	  -pg postgres://bench@127.0.0.1:5491/postgres -results RESULTS.md
//
// A program that fails is recorded (its error goes into the report) and
// the run goes on: one broken row does not lose the others. Once the
// summary and the results are written, a run in which any program failed
// exits with status 1 (naming the failed steps), so that make bench and
// the smoke run (make -C bench quick) fail too.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/connectorhq/connector/bench/internal/result"
)

type config struct {
	bin, connector, work, out, results, summary string
	runs, heavyRuns                             int
	quick                                       bool
	redisEverysec, redisAlways, pg              string
	soak                                        time.Duration
	only                                        string
	rev                                         string
}

func main() {
	var c config
	flag.StringVar(&c.bin, "bin", "out/bin", "folder of the bench programs (floors, ceiling, inproc, httpbench, peers)")
	flag.StringVar(&c.connector, "connector", "../bin/connector", "the connector binary")
	flag.StringVar(&c.work, "work", "", "scratch folder for data (default: a new temporary folder)")
	flag.StringVar(&c.out, "out", "out", "folder for raw JSON and logs")
	flag.StringVar(&c.results, "results", "RESULTS.md", "RESULTS.md to update (empty: do not)")
	flag.StringVar(&c.summary, "summary", "", "also write the summary JSON here (the committed copy)")
	flag.IntVar(&c.runs, "runs", 5, "iterations of the quick rows")
	flag.IntVar(&c.heavyRuns, "heavy-runs", 3, "iterations of the long rows (burn-downs of 100k, memory at 1M, recovery)")
	flag.BoolVar(&c.quick, "quick", false, "small sizes and short durations: checks that everything works, figures are not quotable")
	flag.StringVar(&c.redisEverysec, "redis-everysec", "", "Redis with appendfsync everysec (empty: skip asynq on it)")
	flag.StringVar(&c.redisAlways, "redis-always", "", "Redis with appendfsync always (empty: skip)")
	flag.StringVar(&c.pg, "pg", "", "PostgreSQL DSN for River (empty: skip)")
	flag.DurationVar(&c.soak, "soak", 3*time.Minute, "soak duration")
	flag.StringVar(&c.only, "only", "", "comma-separated step keys or prefixes to run (debugging)")
	flag.StringVar(&c.rev, "rev", "", "connector revision to print in the header when the binary does not say its own (connector -version)")
	renderOnly := flag.String("render-only", "", "run nothing: render RESULTS.md and its charts again from this summary JSON (results/latest.json)")
	flag.Parse()
	if *renderOnly != "" {
		if err := rerender(c, *renderOnly); err != nil {
			result.Fatal("driver", err)
		}
		return
	}
	if err := run(c); err != nil {
		result.Fatal("driver", err)
	}
}

// step is one program invocation, keyed for the report.
type step struct {
	key  string
	prog string
	args []string
}

// sizes are what quick mode shrinks.
type sizes struct {
	httpDur, dur, floorDur         string
	burnN, memN, bigMemN, recN     int
	stops, iters, cancelQ, cancelR int
}

// sizes keeps the default run near 20 minutes on the 2-core machine:
// most of it goes to the 100k burn-downs of the peers that fsync every
// write (Redis always, PostgreSQL).
func (c config) sizes() sizes {
	if c.quick {
		return sizes{httpDur: "1s", dur: "1s", floorDur: "500ms", burnN: 5000, memN: 20000, bigMemN: 0, recN: 5000, stops: 30, iters: 50, cancelQ: 30, cancelR: 10}
	}
	return sizes{httpDur: "3s", dur: "2s", floorDur: "1s", burnN: 100_000, memN: 100_000, bigMemN: 1_000_000, recN: 100_000, stops: 200, iters: 300, cancelQ: 200, cancelR: 50}
}

func (c config) plan() (light, heavy, once []step) {
	s := c.sizes()
	data := func(name string) string { return filepath.Join(c.work, name) }
	http := func(target string) step {
		return step{"http." + target, "httpbench", []string{"-mode", "load", "-target", target,
			"-connector", c.connector, "-ceiling", filepath.Join(c.bin, "ceiling"), "-dir", data("http"),
			"-dur", s.httpDur, "-conc", "32", "-stops", fmt.Sprint(s.stops)}}
	}
	inproc := func(mode, st string, extra ...string) step {
		return step{"inproc." + mode + "." + st, "inproc", append([]string{"-mode", mode, "-store", st,
			"-dir", data("inproc"), "-dur", s.dur, "-conc", "16", "-iters", fmt.Sprint(s.iters)}, extra...)}
	}
	peers := func(key, system string, extra ...string) []step {
		args := []string{"-system", system, "-dur", s.dur, "-conc", "16",
			"-cancel-queued", fmt.Sprint(s.cancelQ), "-cancel-running", fmt.Sprint(s.cancelR), "-n", fmt.Sprint(s.burnN)}
		args = append(args, extra...)
		return []step{{"peers." + key, "peers", append(append([]string{}, args...), "-skip-burn")},
			{"burn." + key, "peers", append(append([]string{}, args...), "-rows", "burn")}}
	}
	light = []step{
		{"floors", "floors", []string{"-dir", data("fsync"), "-dur", s.floorDur, "-conc", "16"}},
		http("ceiling"), http("durable"), http("memory"),
		inproc("submit", "durable"), inproc("submit", "memory"),
		inproc("status", "durable"), inproc("status", "memory"),
		inproc("stop", "durable"), inproc("stop", "memory"),
		inproc("cancel", "durable"), inproc("cancel", "memory"),
	}
	heavy = []step{
		inproc("complete", "durable", "-n", fmt.Sprint(s.burnN)), inproc("complete", "memory", "-n", fmt.Sprint(s.burnN)),
		{"inproc.memory.small", "inproc", []string{"-mode", "memory", "-store", "memory", "-n", fmt.Sprint(s.memN)}},
	}
	if s.bigMemN > 0 {
		heavy = append(heavy, step{"inproc.memory.big", "inproc", []string{"-mode", "memory", "-store", "memory", "-n", fmt.Sprint(s.bigMemN)}})
	}
	heavy = append(heavy, step{"recovery", "httpbench", []string{"-mode", "recovery", "-connector", c.connector,
		"-dir", data("recovery"), "-n", fmt.Sprint(s.recN), "-conc", "32"}})
	for _, p := range []struct{ key, system, flag, addr string }{
		{"asynq-everysec", "asynq", "-redis", c.redisEverysec},
		{"asynq-always", "asynq", "-redis", c.redisAlways},
		{"river", "river", "-pg", c.pg},
	} {
		if p.addr == "" {
			continue
		}
		ps := peers(p.key, p.system, p.flag, p.addr)
		light = append(light, ps[0])
		heavy = append(heavy, ps[1])
	}
	soak := c.soak
	if c.quick {
		soak = 15 * time.Second
	}
	sample := max(soak/36, time.Second)
	once = []step{
		// The durable store adds little to the heap (bbolt maps its file);
		// one run of it shows that, the goal rows are the in-memory ones.
		{"inproc.memory.small.durable", "inproc", []string{"-mode", "memory", "-store", "durable", "-dir", data("inproc"), "-n", fmt.Sprint(s.memN)}},
		{"soak", "httpbench", []string{"-mode", "soak", "-connector", c.connector, "-dir", data("soak"),
			"-dur", soak.String(), "-sample", sample.String(), "-conc", "8", "-crawlsite", filepath.Join(c.bin, "crawlsite")}},
	}
	return light, heavy, once
}

func (c config) selected(key string) bool {
	if c.only == "" {
		return true
	}
	for _, p := range strings.Split(c.only, ",") {
		if p = strings.TrimSpace(p); p != "" && (key == p || strings.HasPrefix(key, p+".") || strings.HasPrefix(key, p)) {
			return true
		}
	}
	return false
}

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
	HeavyRuns  int       `json:"heavy_runs"`
	Quick      bool      `json:"quick"`
	CPUs       int       `json:"nproc"`
	Kernel     string    `json:"kernel"`
	Go         string    `json:"go"`
	Modules    []string  `json:"modules"`
	Rev        string    `json:"connector_rev"`
	LoadBefore string    `json:"loadavg_before"`
	LoadAfter  string    `json:"loadavg_after"`
	Command    string    `json:"command"`
	Only       string    `json:"only,omitempty"` // -only: the steps of a partial (debugging) run
}

func run(c config) error {
	if c.work == "" {
		d, err := os.MkdirTemp("", "bench-work-")
		if err != nil {
			return fmt.Errorf("driver: %w", err)
		}
		defer os.RemoveAll(d)
		c.work = d
	}
	raw := filepath.Join(c.out, "raw")
	logs := filepath.Join(c.out, "log")
	for _, d := range []string{raw, logs} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return fmt.Errorf("driver: %w", err)
		}
	}
	m := newMeta(c)
	light, heavy, once := c.plan()
	res := runs{}
	var fails []failure
	steps := 0
	exec1 := func(st step, iter int) {
		if !c.selected(st.key) {
			return
		}
		steps++
		// Each step starts from an empty scratch folder.
		_ = os.RemoveAll(c.work)
		_ = os.MkdirAll(c.work, 0o750)
		t0 := time.Now()
		o, err := runStep(c, st, iter, raw, logs)
		status := "ok"
		if err != nil {
			status = "FAILED: " + err.Error()
			fails = append(fails, failure{st.key, iter, err.Error()})
		} else {
			if res[st.key] == nil {
				res[st.key] = map[int]*result.Output{}
			}
			res[st.key][iter] = o
		}
		fmt.Fprintf(os.Stderr, "driver: [%d] %-28s %6.1fs %s\n", iter+1, st.key, time.Since(t0).Seconds(), firstLine(status))
	}
	for i := 0; i < max(c.runs, c.heavyRuns); i++ {
		if i < c.runs {
			for _, st := range light {
				exec1(st, i)
			}
		}
		if i < c.heavyRuns {
			for _, st := range heavy {
				exec1(st, i)
			}
		}
	}
	for _, st := range once {
		exec1(st, 0)
	}
	m.Finished = time.Now().UTC()
	m.LoadAfter = result.LoadAvg()
	sum := summarize(res, fails, m)
	block := render(sum, res, chartsFor(c, sum, res, raw)) // also fills sum.Ratios
	b, err := json.MarshalIndent(sum, "", " ")
	if err != nil {
		return fmt.Errorf("driver: %w", err)
	}
	if err := os.WriteFile(filepath.Join(c.out, "summary.json"), append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("driver: %w", err)
	}
	if c.summary != "" {
		if err := os.MkdirAll(filepath.Dir(c.summary), 0o750); err != nil {
			return fmt.Errorf("driver: %w", err)
		}
		if err := os.WriteFile(c.summary, append(b, '\n'), 0o640); err != nil {
			return fmt.Errorf("driver: %w", err)
		}
	}
	if c.results != "" {
		if err := updateResults(c.results, block); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "driver: done in %v, %d failures; raw JSON in %s\n", m.Finished.Sub(m.Started).Round(time.Second), len(fails), raw)
	if len(fails) > 0 {
		var keys []string
		for _, f := range fails {
			keys = append(keys, fmt.Sprintf("%s (run %d)", f.Key, f.Iter+1))
		}
		return fmt.Errorf("%d of %d step runs failed: %s (their errors are in the report and in %s)", len(fails), steps, strings.Join(keys, ", "), logs)
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

func runStep(c config, st step, iter int, raw, logs string) (*result.Output, error) {
	name := fmt.Sprintf("%s-%d", st.key, iter+1)
	logf, err := os.Create(filepath.Join(logs, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("driver: %w", err)
	}
	defer logf.Close()
	var stdout, stderr bytes.Buffer
	args := st.args
	if strings.HasPrefix(st.key, "http.") {
		// The loadgen reports, whose histograms the charts merge.
		args = append(slices.Clone(args), "-reports", filepath.Join(raw, name))
	}
	cmd := exec.Command(filepath.Join(c.bin, st.prog), args...)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	fmt.Fprintf(logf, "$ %s %s\n", st.prog, strings.Join(args, " "))
	err = cmd.Run()
	_, _ = logf.Write(stderr.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %s", st.prog, err, strings.TrimSpace(result.LastLines(stderr.String(), 3)))
	}
	if err := os.WriteFile(filepath.Join(raw, name+".json"), stdout.Bytes(), 0o640); err != nil {
		return nil, fmt.Errorf("driver: %w", err)
	}
	o, err := result.Read(&stdout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", st.prog, err)
	}
	o.Info["command"] = st.prog + " " + strings.Join(st.args, " ")
	return o, nil
}

func newMeta(c config) *meta {
	m := &meta{Started: time.Now().UTC(), Runs: c.runs, HeavyRuns: c.heavyRuns, Quick: c.quick,
		CPUs: runtime.NumCPU(), Go: runtime.Version(), Rev: c.rev, LoadBefore: result.LoadAvg(), Command: "make bench", Only: c.only}
	m.Rev = binaryRevision(c.connector, c.rev)
	if c.quick {
		m.Command += " QUICK=1"
	}
	if c.only != "" {
		m.Command += " ONLY=" + c.only
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("nproc").Output(); err == nil {
		fmt.Sscan(string(out), &m.CPUs)
	}
	// The versions the bench module builds with (run from bench/).
	want := []string{"github.com/asynkron/protoactor-go", "github.com/valyala/fasthttp", "go.etcd.io/bbolt",
		"github.com/hibiken/asynq", "github.com/riverqueue/river", "github.com/jackc/pgx/v5", "github.com/redis/go-redis/v9"}
	if out, err := exec.Command("go", append([]string{"list", "-m"}, want...)...).Output(); err == nil {
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				m.Modules = append(m.Modules, l)
			}
		}
	}
	return m
}

// binaryRevision is the revision the connector binary says it was built
// from (-version; make build stamps it, with -dirty for uncommitted
// changes): what was measured, which the tree's HEAD (fallback, the -rev
// flag) is not when the tree has uncommitted changes or CONNECTOR names
// another binary.
func binaryRevision(bin, fallback string) string {
	out, err := exec.Command(bin, "-version").Output()
	if err == nil {
		if _, rest, ok := strings.Cut(string(out), "(revision "); ok {
			if rev, _, ok := strings.Cut(rest, ","); ok && rev != "" && rev != "unknown" {
				return rev
			}
		}
	}
	if fallback == "" {
		return ""
	}
	return fallback + " (the tree's HEAD; the binary does not say)"
}

// summary is what summary.json holds.
type summary struct {
	Meta     *meta                        `json:"meta"`
	Figures  map[string]result.Stat       `json:"figures"` // "key metric"
	Ratios   map[string]result.Stat       `json:"ratios"`  // "key metric / key metric"
	Info     map[string]map[string]string `json:"info"`    // key → info of its last run
	Notes    map[string][]string          `json:"notes,omitempty"`
	Failures []failure                    `json:"failures"`
}

func values(res runs, key, metric string) []float64 {
	var vs []float64
	for _, o := range res[key] {
		if v, ok := o.Get(metric); ok {
			vs = append(vs, v)
		}
	}
	return vs
}

// ratioValues pairs num and den run by run.
func ratioValues(res runs, numKey, numMetric, denKey, denMetric string) []float64 {
	var vs []float64
	for i, o := range res[numKey] {
		d := res[denKey][i]
		if d == nil {
			continue
		}
		n, ok1 := o.Get(numMetric)
		dv, ok2 := d.Get(denMetric)
		if ok1 && ok2 && dv != 0 {
			vs = append(vs, n/dv)
		}
	}
	return vs
}

func summarize(res runs, fails []failure, m *meta) *summary {
	s := &summary{Meta: m, Figures: map[string]result.Stat{}, Ratios: map[string]result.Stat{}, Info: map[string]map[string]string{},
		Notes: map[string][]string{}, Failures: fails}
	if s.Failures == nil {
		s.Failures = []failure{}
	}
	for key, byIter := range res {
		names := map[string]bool{}
		last := -1
		for i, o := range byIter {
			for _, mt := range o.Metrics {
				names[mt.Name] = true
			}
			if i > last {
				last = i
				s.Info[key] = o.Info
			}
			for _, n := range o.Notes {
				s.Notes[key] = append(s.Notes[key], fmt.Sprintf("run %d: %s", i+1, n))
			}
		}
		for n := range names {
			if st, ok := result.Summarise(values(res, key, n)); ok {
				s.Figures[key+" "+n] = st
			}
		}
	}
	return s
}
