// Command httpbench loads ACI servers over HTTP on loopback with the
// project's load generator (package loadgen) and prints result JSON. The
// servers run as separate processes: the real connector binary
// (-connector, a durable or in-memory store) or the bare ceiling server
// (-ceiling). One -mode per run:
//
//	load      -target ceiling|durable|memory: closed-loop submit, status
//	          by token and status-list at -conc, then (connector only)
//	          mixed (submit and poll until the action has finished) and
//	          stop (an action crawling a site that never answers, stopped
//	          once it runs), each for -dur; then (connector only)
//	          submitrun: submits alone to a fresh connector whose queue
//	          runs (actions start as they arrive, as users submit); with
//	          the server's CPU time per request
//	submitonly -target durable|memory: submits alone (the load's submit
//	          scenario) to a fresh connector whose queue is paused, or
//	          runs with -running, for -dur, with the server's CPU time
//	          per request: the short run to alternate two binaries with
//	          when only the submit path changed
//	recovery  a durable connector with MaximumThreads=1 and a first
//	          action that never ends gets -n more actions that stay
//	          queued, is killed with SIGKILL and restarted: time until it
//	          answers GetStatus and until QueueStatus shows every action
//	unended   -target durable|memory: lists of unfinished actions. A
//	          connector with -threads actions running (Synchronize of a
//	          site that never answers; MaximumThreads=-threads, or a
//	          paused queue with -threads 0) and the rest of -n queued
//	          behind them answers lists by -filter (e.g.
//	          State=Queued&MaxResults=1000) at -list-conc for -dur (ulist),
//	          then submits alone and beside -list-rate lists
//	          (submitpaused, submitlist), as load's rows
//	soak      a durable connector runs mixed at -conc for -dur while RSS
//	          and the store file size are sampled every -sample; with
//	          -crawlsite, Synchronize of a generated site whose pages all
//	          move to new URLs every second runs back to back beside it
//	          (each crawl adds -crawl-pages records to its datastore and
//	          deletes the previous crawl's)
//
// A first SIGINT or SIGTERM ends the run: the servers it started are
// stopped, its temporary folder removed, and it exits 1 without a result
// (a second one exits at once; its servers die with it).
//
// Usage: httpbench -mode load -target durable -connector ../bin/connector [-dur 3s] [-conc 32]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/connectorhq/connector/bench/internal/procstat"
	"github.com/connectorhq/connector/bench/internal/result"
	"github.com/connectorhq/connector/bench/internal/server"
	"github.com/connectorhq/connector/loadgen"
	"github.com/connectorhq/connector/store"
)

type options struct {
	mode, target, connector, ceiling, dir string
	dur, sample                           time.Duration
	conc, n, stops, prepare, threads      int
	listConc                              int
	filter, format                        string
	listRate                              float64
	verbose, running                      bool
	reports                               string
	crawlsite                             string // soak: crawlsite binary ("": no crawl)
	crawlPages                            int
	// ctx ends at the first SIGINT or SIGTERM: the loads and the waits
	// end, run returns, and its deferred calls stop the servers and
	// remove the temporary folder.
	ctx context.Context
}

// context returns o.ctx, or the background context when none is set.
func (o options) context() context.Context {
	if o.ctx == nil {
		return context.Background()
	}
	return o.ctx
}

// interrupted returns an error when o's context has ended (a signal): the
// run stops there, cleaning up, and reports no figure.
func (o options) interrupted() error {
	if err := o.context().Err(); err != nil {
		return errors.New("httpbench: interrupted")
	}
	return nil
}

// sleep waits d, or less when the run is interrupted (then its error).
func (o options) sleep(d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-o.context().Done():
		return o.interrupted()
	}
}

// The actions the connector is given: Identifiers of a task that was never
// crawled is the cheapest action it completes; Synchronize of SLOW runs
// until stopped.
const (
	cheapAction = "Identifiers"
	cheapParams = "ConfigSection=EMPTY"
	slowParams  = "FetchAction=Synchronize&TaskSections=SLOW"
)

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "load", "load, submitonly, recovery or soak")
	flag.BoolVar(&o.running, "running", false, "submitonly: leave the queue running (actions start as they arrive) instead of pausing it")
	flag.StringVar(&o.target, "target", "durable", "load: ceiling, durable or memory")
	flag.StringVar(&o.connector, "connector", "../bin/connector", "connector binary")
	flag.StringVar(&o.ceiling, "ceiling", "out/bin/ceiling", "ceiling binary")
	flag.StringVar(&o.dir, "dir", "", "data folder for the connector (default: a new temporary folder, removed after)")
	flag.DurationVar(&o.dur, "dur", 3*time.Second, "load: duration of each scenario; soak: total duration")
	flag.DurationVar(&o.sample, "sample", 5*time.Second, "soak: sampling interval")
	flag.StringVar(&o.crawlsite, "crawlsite", "", "soak: crawlsite binary; when given, Synchronize of a site whose pages move every second runs back to back beside the load")
	flag.IntVar(&o.crawlPages, "crawl-pages", 2000, "soak: pages of the crawled site")
	flag.IntVar(&o.conc, "conc", 32, "closed-loop workers (stop always uses 1)")
	flag.IntVar(&o.n, "n", 100_000, "recovery: queued actions")
	flag.IntVar(&o.listConc, "list-conc", 0, "unended: closed-loop workers of the lists (0: -conc); lists that take long are better measured with few: at the end of -dur the lists in flight have used CPU that no finished list counts")
	flag.IntVar(&o.threads, "threads", 0, "unended: actions running (MaximumThreads; 0: the queue paused, every action queued)")
	flag.IntVar(&o.stops, "stops", 200, "load: stop operations")
	flag.IntVar(&o.prepare, "prepare", 1000, "load: actions the status scenario cycles over")
	flag.Float64Var(&o.listRate, "list-rate", 50, "load: lists per second beside submits (submitlist)")
	flag.StringVar(&o.filter, "filter", "State=Finished&Sort-By=finish-time&MaxResults=100", "status-list filter")
	flag.StringVar(&o.format, "format", "xml", "the status lists' ResponseFormat: xml, simplejson or json")
	flag.BoolVar(&o.verbose, "v", false, "connector log and loadgen progress to standard error")
	flag.StringVar(&o.reports, "reports", "", "load: also write each scenario's loadgen report (JSON, with its HDR histograms) to PREFIX.NAME.json")
	flag.Parse()
	variant := o.mode
	if o.mode == "load" || o.mode == "submitonly" || o.mode == "unended" {
		variant += "/" + o.target
	}
	if o.mode == "submitonly" && o.running {
		variant += "/running"
	}
	out := result.New("http", variant)
	out.Info["gomaxprocs"] = fmt.Sprint(runtime.GOMAXPROCS(0))
	out.Info["conc"] = fmt.Sprint(o.conc)
	// The first SIGINT or SIGTERM ends the run cleanly (its servers
	// stopped, its temporary folder removed) and it exits 1 without a
	// result; a second one exits at once.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		fmt.Fprintln(os.Stderr, "httpbench: interrupted: stopping its servers and removing its data (again to exit at once)")
		stop()
	}()
	o.ctx = ctx
	if err := run(o, out); err != nil {
		result.Fatal("httpbench", err)
	}
	if err := o.interrupted(); err != nil {
		result.Fatal("httpbench", err)
	}
	if err := out.Write(os.Stdout); err != nil {
		result.Fatal("httpbench", err)
	}
}

func run(o options, out *result.Output) error {
	if o.dir == "" {
		d, err := os.MkdirTemp("", "httpbench-")
		if err != nil {
			return fmt.Errorf("httpbench: %w", err)
		}
		defer os.RemoveAll(d)
		o.dir = d
	}
	switch o.mode {
	case "load":
		if o.target == "ceiling" {
			return loadCeiling(o, out)
		}
		if err := loadConnector(o, out); err != nil {
			return err
		}
		return submitRunning(o, out)
	case "submitonly":
		return submitOnly(o, out)
	case "recovery":
		return recovery(o, out)
	case "unended":
		return unended(o, out)
	case "soak":
		return soak(o, out)
	}
	return fmt.Errorf("httpbench: unknown -mode %q", o.mode)
}

func (o options) connectorSpec(sub string, inMemory bool) server.Connector {
	c := server.Connector{Bin: o.connector, Dir: filepath.Join(o.dir, sub), InMemory: inMemory}
	if o.verbose {
		c.Stderr = os.Stderr
		c.LogLevel = "info"
	}
	return c
}

// measure runs one loadgen scenario against p and records its figures
// under name, with the server's CPU time per request.
func measure(o options, out *result.Output, p *server.Proc, name string, cfg loadgen.Config) (*loadgen.Report, error) {
	return measureAt(o, out, p.URL, func() (time.Duration, error) { return procstat.CPU(p.Pid()) }, name, cfg)
}

// measureAt is measure of the server at url whose CPU time cpu reads
// (read as the load starts and once it has ended: the setup, such as the
// status scenario's prepared submits, is not in the CPU per request).
func measureAt(o options, out *result.Output, url string, cpu func() (time.Duration, error), name string, cfg loadgen.Config) (*loadgen.Report, error) {
	cfg.Target = url
	if cfg.Duration == 0 {
		cfg.Duration = o.dur
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = o.conc
	}
	if cfg.FetchAction == "" {
		cfg.FetchAction = cheapAction
		cfg.Params = cheapParams
	}
	if o.verbose {
		cfg.Progress = os.Stderr
	}
	// The server's CPU time over the load alone: read around Run it would
	// include the setup (the status scenario's prepared submits), which
	// the report's request count leaves out.
	var cpu0, cpu1 time.Duration
	var cpuErr error
	cfg.OnLoad = func(start bool) {
		v, err := cpu()
		cpuErr = errors.Join(cpuErr, err)
		if start {
			cpu0 = v
		} else {
			cpu1 = v
		}
	}
	rep, err := loadgen.Run(o.context(), cfg)
	if err != nil {
		return nil, fmt.Errorf("httpbench: %s: %w", name, err)
	}
	if err := o.interrupted(); err != nil {
		return nil, err
	}
	if cpuErr != nil {
		return nil, fmt.Errorf("httpbench: %s: server CPU: %w", name, cpuErr)
	}
	if !rep.Passed {
		return nil, fmt.Errorf("httpbench: %s: failed (error rate %.4f): %v; samples %v", name, rep.ErrorRate, rep.Errors.Total, rep.Errors.Samples)
	}
	for _, w := range rep.Warnings {
		out.Note("%s: %s", name, w)
	}
	// Throughput is the operations that succeeded (the report's
	// per_second counts the failed ones too); failures within the
	// harness's error budget are counted and said, not hidden.
	out.Add(name+"_per_s", perSecond(rep, rep.Operations.OK), "/s")
	if f := rep.Operations.Failed; f > 0 {
		out.Add(name+"_failed", float64(f), "")
		out.Note("%s: %d of %d operations failed (%.2f%%), left out of %s_per_s: %v", name, f, f+rep.Operations.OK, 100*rep.ErrorRate, name, rep.Errors.Samples)
	}
	// The load generator's own CPU: what one loadgen process pushes, and
	// whether it (not the server) was the limit.
	out.Add(name+"_gen_cpu_share", rep.Generator.CPUShare, "")
	if rep.Generator.MachineCPUShare >= 0 {
		out.Add(name+"_machine_cpu_share", rep.Generator.MachineCPUShare, "")
	}
	if o.reports != "" {
		f, err := os.Create(o.reports + "." + name + ".json")
		if err == nil {
			err = errors.Join(loadgen.WriteJSON(f, rep), f.Close())
		}
		if err != nil {
			return nil, fmt.Errorf("httpbench: %s: %w", name, err)
		}
	}
	out.Add(name+"_p50_us", float64(rep.OperationLatency.P50Us), "µs")
	out.Add(name+"_p99_us", float64(rep.OperationLatency.P99Us), "µs")
	if rep.Requests.Count > 0 {
		out.Add(name+"_cpu_us_per_req", float64((cpu1-cpu0)/time.Microsecond)/float64(rep.Requests.Count), "µs")
	}
	return rep, nil
}

// perSecond is n over the report's measurement window.
func perSecond(rep *loadgen.Report, n int64) float64 {
	if rep.ElapsedUs <= 0 {
		return 0
	}
	return float64(n) / (float64(rep.ElapsedUs) / 1e6)
}

func loadCeiling(o options, out *result.Output) error {
	p, err := server.StartCeiling(o.ceiling)
	if err != nil {
		return err
	}
	defer p.Stop(10 * time.Second)
	if _, err := measure(o, out, p, "submit", loadgen.Config{Scenario: loadgen.ScenarioSubmit}); err != nil {
		return err
	}
	if _, err := measure(o, out, p, "status", loadgen.Config{Scenario: loadgen.ScenarioStatus, Prepare: o.prepare}); err != nil {
		return err
	}
	_, err = measure(o, out, p, "list", loadgen.Config{Scenario: loadgen.ScenarioStatusList, Filter: o.filter, Format: loadgen.Format(o.format)})
	return err
}

// startTarget starts a site that never answers and a connector for
// -target (durable or memory; want lists the targets of the mode, for its
// error) using it, its data folder named name, its spec changed by tweak.
// The caller closes slow.
func startTarget(o options, name, want string, tweak ...func(*server.Connector)) (p *server.Proc, slow *server.SlowSite, inMemory bool, err error) {
	switch o.target {
	case "durable":
	case "memory":
		inMemory = true
	default:
		return nil, nil, false, fmt.Errorf("httpbench: -target %q: want %s", o.target, want)
	}
	slow, err = server.StartSlowSite()
	if err != nil {
		return nil, nil, false, err
	}
	spec := o.connectorSpec(name, inMemory)
	spec.SlowURL = slow.URL
	for _, t := range tweak {
		t(&spec)
	}
	p, err = server.StartConnector(spec, 30*time.Second)
	if err != nil {
		slow.Close()
		return nil, nil, false, err
	}
	return p, slow, inMemory, nil
}

func loadConnector(o options, out *result.Output) error {
	// Phase 1: a paused queue, so that submitted actions stay queued and
	// the submit figure is pure enqueue (as the peers' enqueue rows).
	p, slow, inMemory, err := startTarget(o, "a", "ceiling, durable or memory")
	if err != nil {
		return err
	}
	defer slow.Close()
	if err := p.Control("Pause"); err != nil {
		p.Kill()
		return err
	}
	if _, err := measure(o, out, p, "submit", loadgen.Config{Scenario: loadgen.ScenarioSubmit}); err != nil {
		p.Kill()
		return err
	}
	if _, err := measure(o, out, p, "status", loadgen.Config{Scenario: loadgen.ScenarioStatus, Prepare: o.prepare}); err != nil {
		p.Kill()
		return err
	}
	if err := p.Stop(60 * time.Second); err != nil {
		return err
	}

	// Phase 2: a fresh connector, running: actions complete (mixed),
	// then the list of finished ones, then Stop of running actions.
	spec := o.connectorSpec("b", inMemory)
	spec.SlowURL = slow.URL
	p, err = server.StartConnector(spec, 30*time.Second)
	if err != nil {
		return err
	}
	defer p.Stop(60 * time.Second)
	rep, err := measure(o, out, p, "mixed", loadgen.Config{Scenario: loadgen.ScenarioMixed, Poll: 2 * time.Millisecond})
	if err != nil {
		return err
	}
	if rep.Actions != nil {
		// Submitted and finished: an action that ended otherwise (Error)
		// is a failed operation, not one finished.
		out.Add("mixed_completed_per_s", perSecond(rep, rep.Actions.Final["Finished"]), "/s")
	}
	if _, err := measure(o, out, p, "list", loadgen.Config{Scenario: loadgen.ScenarioStatusList, Filter: o.filter, Format: loadgen.Format(o.format)}); err != nil {
		return err
	}
	rep, err = measure(o, out, p, "stopop", loadgen.Config{
		Scenario: loadgen.ScenarioStop, Concurrency: 1, Requests: int64(o.stops), Duration: 10 * time.Minute,
		FetchAction: "Synchronize", Params: "TaskSections=SLOW", Poll: 100 * time.Microsecond,
	})
	if err != nil {
		return err
	}
	if err := submitBesideLists(o, out, p, true); err != nil {
		return err
	}
	if s := rep.StopLatency; s != nil {
		out.Add("stop_final_p50_us", float64(s.P50Us), "µs")
		out.Add("stop_final_p99_us", float64(s.P99Us), "µs")
		out.Add("stop_final_max_us", float64(s.MaxUs), "µs")
		out.Add("stop_final_n", float64(s.Count), "")
	}
	for _, l := range rep.RequestLatency {
		if l.Name == "stop" {
			out.Add("stop_reply_p50_us", float64(l.P50Us), "µs")
			out.Add("stop_reply_p99_us", float64(l.P99Us), "µs")
			out.Add("stop_reply_max_us", float64(l.MaxUs), "µs")
		}
	}
	return nil
}

// submitBesideLists measures whether lists hold submits up: on the same
// server, its finished actions retained, the queue paused (pure enqueue),
// submits alone (submitpaused), then the same submits while lists of
// finished actions run beside them at a fixed rate (submitlist; the
// lists' own figures as submitlist_list_*). Without pause the queue is
// left as it is (unended: its threads are busy, so submits stay queued,
// and pausing it would pause the running actions the lists show).
func submitBesideLists(o options, out *result.Output, p *server.Proc, pause bool) error {
	if pause {
		if err := p.Control("Pause"); err != nil {
			return err
		}
	}
	if _, err := measure(o, out, p, "submitpaused", loadgen.Config{Scenario: loadgen.ScenarioSubmit}); err != nil {
		return err
	}
	lead := o.dur / 10 // the lists start first and end last
	type listRun struct {
		rep *loadgen.Report
		err error
	}
	done := make(chan listRun, 1)
	go func() {
		rep, err := loadgen.Run(o.context(), loadgen.Config{
			Target: p.URL, Scenario: loadgen.ScenarioStatusList, Filter: o.filter, Format: loadgen.Format(o.format),
			Rate: o.listRate, Duration: o.dur + 2*lead,
		})
		done <- listRun{rep, err}
	}()
	err := o.sleep(lead)
	if err == nil {
		_, err = measure(o, out, p, "submitlist", loadgen.Config{Scenario: loadgen.ScenarioSubmit})
	}
	lr := <-done
	if err != nil {
		return err
	}
	if lr.err != nil {
		return fmt.Errorf("httpbench: lists beside submits: %w", lr.err)
	}
	if !lr.rep.Passed {
		return fmt.Errorf("httpbench: lists beside submits: failed (error rate %.4f): %v", lr.rep.ErrorRate, lr.rep.Errors.Samples)
	}
	out.Add("submitlist_list_per_s", perSecond(lr.rep, lr.rep.Operations.OK), "/s")
	out.Add("submitlist_list_p99_us", float64(lr.rep.OperationLatency.P99Us), "µs")
	out.Info["list_rate"] = fmt.Sprint(o.listRate)
	return nil
}

// submitRunning measures submits alone to a fresh connector whose queue
// runs (submitrun): every action starts as soon as a thread is free while
// the submits go on, which is how users submit; the paused-queue submit
// row is pure enqueue.
func submitRunning(o options, out *result.Output) error {
	slow, err := server.StartSlowSite()
	if err != nil {
		return err
	}
	defer slow.Close()
	spec := o.connectorSpec("c", o.target == "memory")
	spec.SlowURL = slow.URL
	p, err := server.StartConnector(spec, 30*time.Second)
	if err != nil {
		return err
	}
	defer p.Stop(60 * time.Second)
	_, err = measure(o, out, p, "submitrun", loadgen.Config{Scenario: loadgen.ScenarioSubmit})
	return err
}

// submitOnly measures submits alone to a fresh connector, its queue paused
// (pure enqueue, as the load's submit row) or running (-running).
func submitOnly(o options, out *result.Output) error {
	p, slow, _, err := startTarget(o, "s", "durable or memory")
	if err != nil {
		return err
	}
	defer slow.Close()
	defer p.Stop(60 * time.Second)
	if !o.running {
		if err := p.Control("Pause"); err != nil {
			return err
		}
	}
	_, err = measure(o, out, p, "submit", loadgen.Config{Scenario: loadgen.ScenarioSubmit})
	return err
}

// unended measures lists of unfinished actions: -threads running, the
// rest of -n queued, lists by -filter (ulist), then submits alone and
// beside lists (submitBesideLists).
func unended(o options, out *result.Output) error {
	if o.threads < 0 || o.threads > o.n {
		return fmt.Errorf("httpbench: -threads %d: want 0 to -n (%d)", o.threads, o.n)
	}
	p, slow, _, err := startTarget(o, "u", "durable or memory", func(c *server.Connector) {
		c.Threads, c.SlowTasks = o.threads, o.threads
	})
	if err != nil {
		return err
	}
	defer slow.Close()
	defer p.Stop(60 * time.Second)
	fill := func(n int, action, params string) error {
		if n == 0 {
			return nil
		}
		rep, err := loadgen.Run(o.context(), loadgen.Config{
			Target: p.URL, Scenario: loadgen.ScenarioSubmit, Requests: int64(n), Duration: 30 * time.Minute,
			Concurrency: o.conc, FetchAction: action, Params: params, MaxErrorRate: -1,
		})
		if err != nil {
			return fmt.Errorf("httpbench: submit %d: %w", n, err)
		}
		if !rep.Passed || rep.Operations.OK != int64(n) {
			return fmt.Errorf("httpbench: submitted %d of %d actions (errors %v)", rep.Operations.OK, n, rep.Errors.Samples)
		}
		return nil
	}
	if o.threads == 0 {
		if err := p.Control("Pause"); err != nil {
			return err
		}
	} else {
		// One task each: Synchronize holds its task exclusively.
		errs := make(chan error, o.threads)
		sem := make(chan struct{}, o.conc)
		for i := 1; i <= o.threads; i++ {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				_, err := p.Submit(fmt.Sprintf("FetchAction=Synchronize&TaskSections=SLOW%d", i))
				errs <- err
			}()
		}
		for range o.threads {
			if err := <-errs; err != nil {
				return err
			}
		}
		deadline := time.Now().Add(5 * time.Minute)
		for {
			qc, err := p.QueueStatus()
			if err != nil {
				return err
			}
			if qc.Running == int64(o.threads) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("httpbench: %d of %d actions running after 5m", qc.Running, o.threads)
			}
			if err := o.sleep(10 * time.Millisecond); err != nil {
				return err
			}
		}
	}
	if err := fill(o.n-o.threads, cheapAction, cheapParams); err != nil {
		return err
	}
	qc, err := p.QueueStatus()
	if err != nil {
		return err
	}
	if qc.Pending+qc.Running != int64(o.n) {
		return fmt.Errorf("httpbench: %d pending + %d running, want %d", qc.Pending, qc.Running, o.n)
	}
	if _, err := measure(o, out, p, "ulist", loadgen.Config{Scenario: loadgen.ScenarioStatusList, Filter: o.filter, Format: loadgen.Format(o.format), Concurrency: o.listConc}); err != nil {
		return err
	}
	out.Info["n"], out.Info["threads"], out.Info["filter"] = fmt.Sprint(o.n), fmt.Sprint(o.threads), o.filter
	return submitBesideLists(o, out, p, o.threads == 0)
}

func recovery(o options, out *result.Output) error {
	slow, err := server.StartSlowSite()
	if err != nil {
		return err
	}
	defer slow.Close()
	spec := o.connectorSpec("r", false)
	spec.SlowURL = slow.URL
	spec.Threads = 1
	spec.QueueSize = o.n + 1000
	port, err := server.FreePort()
	if err != nil {
		return err
	}
	spec.Port = port
	p, err := server.StartConnector(spec, 30*time.Second)
	if err != nil {
		return err
	}
	defer func() { p.Kill() }()
	first, err := p.Submit(slowParams)
	if err != nil {
		return err
	}
	if err := waitStatus(p, first, "Processing", 30*time.Second); err != nil {
		return err
	}
	t0 := time.Now()
	rep, err := loadgen.Run(o.context(), loadgen.Config{
		Target: p.URL, Scenario: loadgen.ScenarioSubmit, Requests: int64(o.n), Duration: 30 * time.Minute,
		Concurrency: o.conc, FetchAction: cheapAction, Params: cheapParams, MaxErrorRate: -1,
	})
	if err != nil {
		return fmt.Errorf("httpbench: submit %d: %w", o.n, err)
	}
	if !rep.Passed || rep.Operations.OK != int64(o.n) {
		return fmt.Errorf("httpbench: submitted %d of %d actions (errors %v)", rep.Operations.OK, o.n, rep.Errors.Samples)
	}
	out.Add("fill_per_s", float64(o.n)/time.Since(t0).Seconds(), "/s")
	qc, err := p.QueueStatus()
	if err != nil {
		return err
	}
	want := int64(o.n) + 1
	if qc.Pending+qc.Running != want {
		return fmt.Errorf("httpbench: before the kill: %d pending + %d running, want %d", qc.Pending, qc.Running, want)
	}
	if fi, err := os.Stat(filepath.Join(spec.Dir, store.DefaultFile)); err == nil {
		out.Add("store_file_mib", float64(fi.Size())/(1<<20), "MiB")
	}
	p.Kill()
	start := time.Now()
	p, err = server.Exec(spec, filepath.Join(spec.Dir, "bench.cfg"), port)
	if err != nil {
		return err
	}
	if _, err := p.WaitReady(5*time.Minute, "action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+first); err != nil {
		return err
	}
	ready := time.Since(start)
	for {
		qc, err := p.QueueStatus()
		if err == nil && qc.Pending+qc.Running == want {
			break
		}
		if time.Since(start) > 5*time.Minute {
			return fmt.Errorf("httpbench: after restart: %+v (err %v), want %d pending+running", qc, err, want)
		}
		if err := o.sleep(time.Millisecond); err != nil {
			return err
		}
	}
	all := time.Since(start)
	out.Add("ready_s", ready.Seconds(), "s")
	out.Add("all_s", all.Seconds(), "s")
	out.Info["n"] = fmt.Sprint(o.n)
	return nil
}

func waitStatus(p *server.Proc, tok, want string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		st, err := p.Status(tok)
		if err != nil {
			return err
		}
		if strings.EqualFold(st, want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("httpbench: action %s is %s after %v, want %s", tok, st, limit, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func soak(o options, out *result.Output) error {
	const retention = 10000 // MaximumFinishedActions, the product's default
	spec := o.connectorSpec("s", false)
	spec.Finished = retention
	if o.crawlsite != "" {
		site, err := startSite(o.crawlsite, "-gen", fmt.Sprint(o.crawlPages), "-fanout", "50", "-churn", "1s")
		if err != nil {
			return err
		}
		defer site.stop()
		spec.CrawlURL = "http://" + site.addr + "/"
	}
	p, err := server.StartConnector(spec, 30*time.Second)
	if err != nil {
		return err
	}
	defer p.Stop(60 * time.Second)
	file := filepath.Join(spec.Dir, store.DefaultFile)
	type sample struct {
		t         time.Duration
		rss, size int64
		completed int64
	}
	var samples []sample
	take := func(t time.Duration) error {
		rss, err := procstat.RSS(p.Pid())
		if err != nil {
			return err
		}
		var size int64
		if fi, err := os.Stat(file); err == nil {
			size = fi.Size()
		}
		qc, err := p.QueueStatus()
		if err != nil {
			return err
		}
		samples = append(samples, sample{t, rss, size, qc.Completed})
		return nil
	}
	if err := take(0); err != nil {
		return err
	}
	type res struct {
		rep *loadgen.Report
		err error
	}
	done := make(chan res, 1)
	start := time.Now()
	crawlCtx, stopCrawls := context.WithCancel(o.context())
	defer stopCrawls()
	crawled := make(chan crawlCount, 1)
	if o.crawlsite != "" {
		go func() { crawled <- crawlLoop(crawlCtx, p) }()
	} else {
		crawled <- crawlCount{}
	}
	go func() {
		rep, err := loadgen.Run(o.context(), loadgen.Config{
			Target: p.URL, Scenario: loadgen.ScenarioMixed, Duration: o.dur, Concurrency: o.conc,
			FetchAction: cheapAction, Params: cheapParams, Poll: 2 * time.Millisecond,
		})
		done <- res{rep, err}
	}()
	tick := time.NewTicker(o.sample)
	defer tick.Stop()
	var r res
loop:
	for {
		select {
		case <-tick.C:
			if err := take(time.Since(start)); err != nil {
				return err
			}
		case r = <-done:
			break loop
		}
	}
	stopCrawls()
	cc := <-crawled
	if r.err != nil {
		return fmt.Errorf("httpbench: soak load: %w", r.err)
	}
	if err := o.interrupted(); err != nil {
		return err
	}
	if o.crawlsite != "" {
		if cc.err != nil {
			return fmt.Errorf("httpbench: soak crawl: %w", cc.err)
		}
		out.Add("crawls_finished", float64(cc.finished), "")
		out.Add("crawls_failed", float64(cc.failed), "")
		out.Add("crawl_pages", float64(o.crawlPages), "")
		if cc.lastFailure != "" {
			out.Info["crawl_failure"] = cc.lastFailure
		}
	}
	if err := take(time.Since(start)); err != nil {
		return err
	}
	if !r.rep.Passed {
		return fmt.Errorf("httpbench: soak load failed: %v", r.rep.Errors.Samples)
	}
	if len(samples) < 4 {
		return errors.New("httpbench: soak too short for a curve (raise -dur or lower -sample)")
	}
	// Start is the first sample taken under load; middle and end as named.
	s0, sm, se := samples[1], samples[len(samples)/2], samples[len(samples)-1]
	mib := func(v int64) float64 { return float64(v) / (1 << 20) }
	out.Add("rss_start_mib", mib(s0.rss), "MiB")
	out.Add("rss_mid_mib", mib(sm.rss), "MiB")
	out.Add("rss_end_mib", mib(se.rss), "MiB")
	out.Add("file_start_mib", mib(s0.size), "MiB")
	out.Add("file_mid_mib", mib(sm.size), "MiB")
	out.Add("file_end_mib", mib(se.size), "MiB")
	// The first sample at which retention was removing finished actions
	// (QueueStatus completed stopped growing at the cap): from then on the
	// number of actions kept is constant, so the file should be too.
	for _, s := range samples {
		if s.completed >= int64(retention) {
			out.Add("retention_at_s", s.t.Seconds(), "s")
			out.Add("file_at_retention_mib", mib(s.size), "MiB")
			out.Add("rss_at_retention_mib", mib(s.rss), "MiB")
			break
		}
	}
	finished := r.rep.Actions.Final["Finished"] // ended otherwise (Error): a failed operation
	out.Add("completed_per_s", perSecond(r.rep, finished), "/s")
	out.Add("completed_total", float64(finished), "")
	out.Add("duration_s", o.dur.Seconds(), "s")
	var series []string
	for _, s := range samples {
		series = append(series, fmt.Sprintf("%.0fs rss=%.1fMiB file=%.1fMiB completed=%d", s.t.Seconds(), mib(s.rss), mib(s.size), s.completed))
	}
	out.Info["series"] = strings.Join(series, "; ")
	return nil
}

// crawlCount is what the soak's crawls did.
type crawlCount struct {
	finished, failed int
	lastFailure      string
	err              error // the connector stopped answering
}

// crawlLoop runs Synchronize of task CRAWL back to back until ctx ends
// (the one running then is left to the connector's shutdown).
func crawlLoop(ctx context.Context, p *server.Proc) (c crawlCount) {
	for ctx.Err() == nil {
		tok, err := p.Submit("FetchAction=Synchronize&TaskSections=CRAWL")
		if err != nil {
			c.err = err
			return c
		}
		for {
			select {
			case <-ctx.Done():
				return c
			case <-time.After(200 * time.Millisecond):
			}
			st, err := p.Status(tok)
			if err != nil {
				c.err = err
				return c
			}
			if st == "Finished" {
				c.finished++
				break
			}
			if st == "Error" || st == "Stopped" || st == "Cancelled" {
				c.failed++
				c.lastFailure = st
				break
			}
		}
	}
	return c
}

// site is a crawlsite process.
type site struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

// startSite starts crawlsite with args and waits for its "listening ADDR"
// line.
func startSite(prog string, args ...string) (*site, error) {
	cmd := exec.Command(prog, args...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // it dies with httpbench, as the servers (internal/server)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("httpbench: start %s: %w", prog, err)
	}
	s := &site{cmd: cmd, done: make(chan struct{})}
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			first <- sc.Text()
		}
		close(first)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { _ = cmd.Wait(); close(s.done) }()
	select {
	case l := <-first:
		if a, ok := strings.CutPrefix(l, "listening "); ok {
			s.addr = strings.TrimSpace(a)
			return s, nil
		}
	case <-time.After(30 * time.Second):
	}
	s.stop()
	return nil, fmt.Errorf("httpbench: %s did not say where it listens", prog)
}

// stop ends the site (SIGINT, then SIGKILL after 10 s), by its PID.
func (s *site) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}
