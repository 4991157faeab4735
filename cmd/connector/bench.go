package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/connectorhq/connector/loadgen"
)

// benchMain runs `connector bench [flags] [URL]`: a load test of an ACI
// server through package loadgen (docs/bench-harness.md). It prints the
// report as a table on stdout (on stderr when -json - takes stdout) and
// returns 0 when the run passed, 1 when it failed (error rate above
// -max-error-rate, no successful operation, or a failed setup or
// cleanup), 2 for bad usage or a target the loopback guard refuses.
func benchMain(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "report":
			return benchReportMain(args[1:], stdout, stderr)
		case "compare":
			return benchCompareMain(args[1:], stdout, stderr)
		case "workload":
			return benchWorkloadMain(args[1:], stdout, stderr)
		case "worker":
			return benchWorkerMain(args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("connector bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadgen.Config
	scenario := fs.String("scenario", string(loadgen.DefaultScenario), "workload: "+scenarioList()+"; every one but version and status-list queues actions and needs -params to name the task")
	fs.DurationVar(&cfg.Duration, "duration", loadgen.DefaultDuration, "how long the load runs (must be positive: a run always ends by itself)")
	fs.Int64Var(&cfg.Requests, "requests", 0, "also stop after this many operations (0: only -duration)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 0, fmt.Sprintf("closed loop: workers (default %d); with -rate: most operations in flight (default: sized from the rate)", loadgen.DefaultConcurrency))
	fs.Float64Var(&cfg.Rate, "rate", 0, "operations per second on a fixed schedule (open loop, coordinated-omission corrected); 0: closed loop")
	form := fs.String("form", string(loadgen.FormPath), "request form: path (/action=...), query (/?action=...) or post (text/plain body)")
	format := fs.String("format", string(loadgen.FormatXML), "ResponseFormat: xml, simplejson or json")
	fs.StringVar(&cfg.FetchAction, "fetchaction", loadgen.DefaultFetchAction, "FetchAction of every Fetch")
	fs.StringVar(&cfg.Params, "params", "", "extra Fetch parameters, URL-encoded: 'ConfigSection=MyTask&...'")
	fs.IntVar(&cfg.Prepare, "prepare", 0, fmt.Sprintf("actions to submit before the load (default: %d for status, 0 for status-list)", loadgen.DefaultPrepare))
	fs.StringVar(&cfg.Filter, "filter", "State=finished&MaxResults=10", "status-list GetStatus parameters, URL-encoded ('' sends none)")
	fs.DurationVar(&cfg.Poll, "poll", loadgen.DefaultPoll, "wait between GetStatus polls (mixed, stop; must be positive)")
	fs.StringVar(&cfg.Queue, "queue", loadgen.DefaultQueue, "QueueName of QueueInfo requests")
	fs.DurationVar(&cfg.Timeout, "timeout", loadgen.DefaultTimeout, "per-request timeout (must be positive)")
	maxErr := errorRate(loadgen.DefaultMaxErrorRate)
	fs.Var(&maxErr, "max-error-rate", "exit 1 when more than this fraction of operations fail: 0.01 or 1%")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file ('-': stdout, the table then goes to stderr)")
	htmlOut := fs.String("report", "", "also write the report as one self-contained HTML page with charts to this file")
	metricsOut := fs.String("metrics", "", "also write a snapshot of the run in the Prometheus text format to this file (for node_exporter's textfile collector or a Pushgateway)")
	hdrLog := fs.String("hdr-log", "", "also write the latencies to this file in HdrHistogram's interval log format (one tag per latency row, microseconds)")
	fs.DurationVar(&cfg.Interval, "interval", loadgen.DefaultInterval, "length of the timeline's intervals (report, HDR log, progress line)")
	quiet := fs.Bool("quiet", false, "no progress line and no log lines on stderr")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow a target that is not a loopback address")
	workloadPath := fs.String("workload", "", "run this workload file instead of a scenario (docs/bench-harness.md, \"Workload files\"); 'connector bench workload NAME' prints a scenario's as an example")
	var sets setFlag
	fs.Var(&sets, "set", "set a variable of the workload file: -set name=value (repeatable)")
	workers := fs.String("workers", "", "send the load from these load generators (host:port,...; each runs 'connector bench worker') instead of this process")
	secretFile := fs.String("secret-file", "", "file holding the secret the load generators expect (default: $CONNECTOR_BENCH_SECRET)")
	dryRun := fs.Bool("dry-run", false, "print what the run would send, and where, and exit without sending anything")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: connector bench [flags] [URL]\n"+
			"       connector bench report [-o FILE.html] RUN.json\n"+
			"       connector bench compare [-html FILE] [-alpha 0.05] [-fail-worse] GROUP GROUP [GROUP...]\n"+
			"       connector bench workload [NAME]\n"+
			"       connector bench worker [-listen ADDR] [-secret-file FILE] [-allow-remote]\n\n"+
			"Load-tests the ACI server at URL (default %s). See docs/bench-harness.md.\n"+
			"It prints what it will send, and where, before it starts; -dry-run prints only that.\n"+
			"The default scenario (version) reads only; the ones that submit actions need -params\n"+
			"to name the task, e.g. -scenario submit -params TaskSections=Small.\n\n", loadgen.DefaultTarget)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	switch fs.NArg() {
	case 0:
		cfg.Target = loadgen.DefaultTarget
	case 1:
		cfg.Target = fs.Arg(0)
	default:
		if f := flagAfterArgs(fs.Args()); f != "" {
			fmt.Fprintln(stderr, flagAfterArgsError("connector bench", f))
		} else {
			fmt.Fprintf(stderr, "connector bench: one URL expected, got %q\n", fs.Args())
		}
		fs.Usage()
		return 2
	}
	// loadgen.Config reads a zero as "the default": a zero given here
	// would silently run with the default instead (-poll 0 polling every
	// 10 ms, -timeout 0 timing out at 10 s).
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"-duration", cfg.Duration}, {"-timeout", cfg.Timeout}, {"-poll", cfg.Poll}, {"-interval", cfg.Interval}} {
		if d.v <= 0 {
			fmt.Fprintf(stderr, "connector bench: %s %v: must be positive\n", d.flag, d.v)
			return 2
		}
	}
	cfg.Scenario = loadgen.Scenario(strings.ToLower(*scenario))
	if *workloadPath != "" {
		var conflict []string
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "scenario", "fetchaction", "params", "prepare", "filter", "poll", "queue":
				conflict = append(conflict, "-"+f.Name)
			}
		})
		if len(conflict) > 0 {
			fmt.Fprintf(stderr, "connector bench: %s: a workload file sets these itself (use -set name=value for its variables)\n", strings.Join(conflict, ", "))
			return 2
		}
		w, err := loadgen.LoadWorkload(*workloadPath)
		if err != nil {
			fmt.Fprintf(stderr, "connector bench: %v\n", err)
			return 2
		}
		cfg.Workload, cfg.Vars = w, sets.m
	} else if len(sets.m) > 0 {
		fmt.Fprintln(stderr, "connector bench: -set sets variables of a workload file: give -workload")
		return 2
	} else if msg := unnamedTask(cfg); msg != "" {
		fmt.Fprintf(stderr, "connector bench: %s\n", msg)
		return 2
	}
	cfg.Form = loadgen.Form(*form)
	cfg.Format = loadgen.Format(*format)
	cfg.MaxErrorRate = float64(maxErr)
	if cfg.MaxErrorRate == 0 {
		cfg.MaxErrorRate = -1 // Config's zero means the default; -max-error-rate 0 means none allowed
	}
	level := slog.LevelInfo
	if *quiet {
		level = slog.LevelWarn
	} else {
		cfg.Progress = stderr
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if *workers != "" {
		for a := range strings.SplitSeq(*workers, ",") {
			if a = strings.TrimSpace(a); a != "" {
				cfg.Workers = append(cfg.Workers, a)
			}
		}
		secret, err := readSecret(*secretFile)
		if err != nil {
			fmt.Fprintf(stderr, "connector bench: %v\n", err)
			return 2
		}
		cfg.WorkerSecret = secret
	}
	if *dryRun {
		plan, err := loadgen.Describe(context.Background(), cfg)
		if err != nil {
			fmt.Fprintf(stderr, "connector bench: %v\n", err)
			return 2
		}
		fmt.Fprint(stdout, plan)
		fmt.Fprintln(stdout, "dry run: nothing was sent")
		return 0
	}
	if !*quiet {
		cfg.Plan = stderr
	}

	table, jsonW := stdout, io.Writer(nil)
	var outs outputs
	if *jsonOut == "-" {
		table, jsonW = stderr, stdout
	} else {
		jsonW = outs.create("-json", *jsonOut)
	}
	htmlW := outs.create("-report", *htmlOut)
	metricsW := outs.create("-metrics", *metricsOut)
	if w := outs.create("-hdr-log", *hdrLog); w != nil {
		cfg.HDRLog = w
	}
	if outs.err != nil {
		fmt.Fprintf(stderr, "connector bench: %v\n", outs.err)
		outs.close(false)
		return 2
	}

	// The first Ctrl-C ends the load early and still prints the report
	// (and resumes a queue the cancel scenario paused); a second one
	// exits at once.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		select {
		case s := <-sig:
			fmt.Fprintf(stderr, "connector bench: %v: ending the load (again to exit at once)\n", s)
			cancel()
		case <-ctx.Done():
			return
		}
		select {
		case <-sig:
			fmt.Fprintln(stderr, "connector bench: exiting; a queue paused by the cancel scenario may still be paused")
			os.Exit(130)
		case <-ctx.Done():
		}
	}()

	start := time.Now()
	rep, err := loadgen.Run(ctx, cfg)
	cancel()
	code := 0
	if rep != nil {
		if werr := loadgen.WriteTable(table, rep); werr != nil {
			fmt.Fprintf(stderr, "connector bench: %v\n", werr)
			code = 1
		}
		if jsonW != nil {
			if werr := loadgen.WriteJSON(jsonW, rep); werr != nil {
				fmt.Fprintf(stderr, "connector bench: %v\n", werr)
				code = 1
			}
		}
		if metricsW != nil {
			if werr := loadgen.WriteMetrics(metricsW, rep); werr != nil {
				fmt.Fprintf(stderr, "connector bench: %v\n", werr)
				code = 1
			}
		}
		if htmlW != nil {
			if werr := loadgen.WriteHTML(htmlW, rep); werr != nil {
				fmt.Fprintf(stderr, "connector bench: %v\n", werr)
				code = 1
			}
		}
		if !rep.Passed {
			code = 1
		}
	}
	if cerr := outs.close(rep != nil); cerr != nil {
		fmt.Fprintf(stderr, "connector bench: %v\n", cerr)
		code = 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "connector bench: %v (after %s)\n", err, time.Since(start).Round(time.Millisecond))
		if errors.Is(err, loadgen.ErrInvalidConfig) || errors.Is(err, loadgen.ErrRemoteTarget) {
			return 2
		}
		return 1
	}
	return code
}

// setFlag collects -set name=value.
type setFlag struct{ m map[string]string }

func (s *setFlag) String() string { return "" }

func (s *setFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("%q: expected name=value", v)
	}
	if s.m == nil {
		s.m = map[string]string{}
	}
	s.m[strings.TrimSpace(name)] = value
	return nil
}

// outputs are the files a run writes, created before it starts so that a
// bad path fails at once, and removed when the run produced no report.
type outputs struct {
	files []*os.File
	err   error
}

// create creates path for flag and returns it, or nil when path is empty
// or an earlier file failed.
func (o *outputs) create(flag, path string) io.Writer {
	if path == "" || o.err != nil {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		o.err = fmt.Errorf("%s: %w", flag, err)
		return nil
	}
	o.files = append(o.files, f)
	return f
}

// close closes every file, and removes them unless keep.
func (o *outputs) close(keep bool) error {
	var errs []error
	for _, f := range o.files {
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
		if !keep {
			_ = os.Remove(f.Name())
		}
	}
	return errors.Join(errs...)
}

// unnamedTask refuses a scenario that submits actions unless -params
// names the task they run (TaskSections or ConfigSection): a Fetch
// without one runs every task of the server, and a load of them queues
// thousands of real jobs (crawls, on this connector) that only a cancel
// of each can undo. It returns the message, or "" when the run may go.
func unnamedTask(cfg loadgen.Config) string {
	submits := cfg.Scenario.Submits() || cfg.Scenario == loadgen.ScenarioStatus ||
		(cfg.Scenario == loadgen.ScenarioStatusList && cfg.Prepare > 0)
	if !submits {
		return ""
	}
	vals, err := url.ParseQuery(cfg.Params)
	if err != nil {
		return "" // Run reports the bad -params with its own message
	}
	for k, v := range vals {
		if (strings.EqualFold(k, "TaskSections") || strings.EqualFold(k, "ConfigSection")) && strings.TrimSpace(strings.Join(v, "")) != "" {
			return ""
		}
	}
	what := "for every operation, thousands in a run"
	if !cfg.Scenario.Submits() {
		what = "for every action it prepares (-prepare)"
	}
	return fmt.Sprintf("-scenario %s queues a Fetch action (FetchAction=%s) on the server %s; "+
		"name the task it runs with -params, e.g. -params 'TaskSections=Small' "+
		"(without one the server runs every task it has). Pick a task whose action is cheap: see docs/bench-harness.md",
		cfg.Scenario, cmp.Or(cfg.FetchAction, loadgen.DefaultFetchAction), what)
}

func scenarioList() string {
	names := make([]string, len(loadgen.Scenarios))
	for i, s := range loadgen.Scenarios {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// errorRate is a fraction flag that also reads percentages ("1%").
type errorRate float64

func (e *errorRate) String() string {
	return strconv.FormatFloat(float64(*e)*100, 'f', -1, 64) + "%"
}

func (e *errorRate) Set(s string) error {
	f, err := loadgen.ParseFraction(s)
	if err != nil {
		return err
	}
	*e = errorRate(f)
	return nil
}
