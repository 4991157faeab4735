package loadgen

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// transportBackoff is how long a closed-loop worker waits after a
// transport failure (refused, reset, ...) before its next operation, so
// that a dead target is not spun on at full CPU.
const transportBackoff = 10 * time.Millisecond

// runner holds the state of one run.
type runner struct {
	s   *settings
	cl  *client
	q   *queries
	pg  *program
	eng *engine
	st  *stats
	log *slog.Logger
	// keepIntervals keeps each interval's histograms (for the HDR log).
	keepIntervals bool
	claimed       atomic.Int64 // operations claimed (bound and schedule slots)
	started       atomic.Int64 // operations started
	// schedOut is set when an open-loop worker claimed a slot due at or
	// after Duration: the schedule, not the Requests bound, ran out.
	schedOut atomic.Bool
}

// worker sends operations one after another. It is owned by one
// goroutine.
type worker struct {
	r      *runner
	k      *conn
	rep    reply
	q      []byte
	timer  *time.Timer
	id     int
	rng    *rand.Rand
	seq    uint64      // the current operation's number ({{seq}})
	slots  []string    // the operation's saved variables
	clocks []time.Time // the operation's marks
}

// Run loads the target described by cfg and returns the report. It
// applies the loopback guard before sending anything, fetches the
// target's GetVersion once, runs the scenario's setup, the load, and its
// cleanup, which runs whenever setup was attempted, even when ctx is
// cancelled or the load fails.
//
// Cancelling ctx ends the load early (EndReason "interrupted"); Run then
// waits for requests in flight (at most Timeout), cleans up and still
// returns the report with a nil error. Run returns a nil Report and an
// error wrapping ErrInvalidConfig or ErrRemoteTarget for a configuration
// it refuses, and one wrapping ErrSetup when setup fails. When only the
// cleanup fails it returns the Report and an error wrapping ErrCleanup.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	s, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	t, err := checkTarget(ctx, s.Target, s.AllowRemote, s.lookup)
	if err != nil {
		return nil, err
	}
	if s.Plan != nil {
		if _, err := io.WriteString(s.Plan, s.plan(t).String()); err != nil {
			return nil, fmt.Errorf("loadgen: write plan: %w", err)
		}
	}
	r := newRunner(s, t)
	defer r.cl.hc.CloseIdleConnections()
	log := r.log

	rep = &Report{Schema: SchemaVersion, Config: s.report(t), Warnings: []string{}, Environment: environment()}
	rep.Target = r.version(ctx, t)
	if rep.Target.Error != "" {
		rep.Warnings = append(rep.Warnings, "GetVersion failed: "+rep.Target.Error)
	}

	// Cleanup must run however the rest ends (the cancel scenario has
	// paused the target's queue), on a context the caller's cancellation
	// does not cut short.
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.Timeout)
		defer cancel()
		if cerr := r.eng.cleanup(cctx, r); cerr != nil {
			log.Error("cleanup failed", "err", cerr)
			if rep != nil {
				rep.Warnings = append(rep.Warnings, cerr.Error())
			}
			err = errors.Join(err, cerr)
		}
	}()
	if err := r.eng.setup(ctx, r); err != nil {
		if !errors.Is(err, ErrSetup) {
			err = fmt.Errorf("%w: %w", ErrSetup, err)
		}
		return nil, err
	}
	var m *measurements
	if s.OnLoad != nil {
		s.OnLoad(true)
	}
	if len(s.Workers) > 0 {
		m, rep.Generators, err = r.distribute(ctx, t)
	} else {
		m = r.load(ctx)
	}
	if s.OnLoad != nil {
		s.OnLoad(false)
	}
	if err != nil {
		return nil, err
	}
	rep.Environment.LoadAverageEnd = loadAverage()
	m.report(s, rep)
	if s.HDRLog != nil {
		if err := m.writeHDRLog(s.HDRLog, rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// newRunner makes the runner of s against t: its client, engine and
// statistics.
func newRunner(s *settings, t *target) *runner {
	log := s.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("component", "loadgen")
	r := &runner{s: s, cl: newClient(s, t), q: buildQueries(s), pg: s.pg, eng: &engine{pg: s.pg}, log: log, keepIntervals: s.HDRLog != nil}
	var opNames []string
	for _, op := range s.pg.ops {
		opNames = append(opNames, op.name)
	}
	r.st = newStats(s.pg.reqRows, s.pg.meas, opNames, s.Rate > 0)
	return r
}

// version asks the target's GetVersion, once, outside the measurements.
func (r *runner) version(ctx context.Context, t *target) Target {
	tg := Target{URL: t.url}
	if err := ctx.Err(); err != nil {
		tg.Error = err.Error()
		return tg
	}
	var rep reply
	if _, f := r.cl.conn().exchange(r.q.version, &rep); f != nil {
		tg.Error = f.Error()
		return tg
	}
	tg.Product, tg.Version = rep.Product, rep.Version
	if tg.Product == "" && tg.Version == "" {
		tg.Error = "the reply names no product or version"
	}
	return tg
}

// load runs the workers until the duration, the request bound or ctx
// ends the run, and returns the measurements.
//
// At a fixed rate the workers are done before the deadline when the
// schedule runs out (its last slot is due at most 1/Rate before
// Duration); that run still ends by duration and its window and rates
// are over Duration, the span the schedule covers, not the wall time up
// to the last operation's end.
func (r *runner) load(ctx context.Context) *measurements {
	s := r.s
	st := r.st
	st.start = time.Now()
	st.closeWindow(s.Duration)
	runCtx, cancel := context.WithDeadline(ctx, st.start.Add(s.Duration))
	defer cancel()
	var interrupted atomic.Bool
	afterDone := make(chan struct{})
	stopAfter := context.AfterFunc(ctx, func() {
		defer close(afterDone)
		if d := time.Since(st.start); d < s.Duration {
			st.closeWindow(d)
			interrupted.Store(true)
		}
	})
	r.log.Info("load started", "scenario", s.Scenario, "workers", s.workers, "rate", s.Rate, "duration", s.Duration)

	tickDone := make(chan struct{})
	var ivs []intervalData
	var tickWG sync.WaitGroup
	tickWG.Go(func() { ivs = r.ticker(tickDone) })
	var wg sync.WaitGroup
	for i := range s.workers {
		w := r.newWorker(i)
		wg.Go(func() {
			if s.Rate > 0 {
				r.openLoop(runCtx, w)
			} else {
				r.closedLoop(runCtx, w)
			}
		})
	}
	wg.Wait()
	wall := time.Since(st.start)
	if !stopAfter() {
		<-afterDone // it ran or is running: let it finish marking the interruption
	}
	close(tickDone)
	tickWG.Wait()

	var elapsed time.Duration
	var reason string
	switch {
	case interrupted.Load():
		reason = "interrupted"
		elapsed = time.Duration(st.windowNs.Load())
	case wall >= s.Duration || runCtx.Err() != nil || r.schedOut.Load():
		reason = "duration"
		elapsed = s.Duration
	default:
		reason = "requests"
		elapsed = wall
		st.closeWindow(wall)
	}
	r.log.Info("load ended", "reason", reason, "elapsed", elapsed)
	return st.snapshot(elapsed, reason, s.Interval, r.started.Load(), runtime.GOMAXPROCS(0), ivs)
}

// ticker ends an interval at every multiple of Interval after the start,
// and a last one when done closes, and returns them. An interval runs
// from one rotation to the next as they happened: when the goroutine is
// late (a starved machine), its interval is longer, not mislabelled. It
// writes the progress line.
func (r *runner) ticker(done <-chan struct{}) []intervalData {
	st := r.st
	iv := r.s.Interval
	cpu := newCPUSampler()
	timer := time.NewTimer(time.Until(st.start.Add(iv)))
	defer timer.Stop()
	var out []intervalData
	var from time.Duration // the start of the current interval, after st.start
	for {
		last := false
		select {
		case <-done:
			last = true
		case <-timer.C:
		}
		now := time.Since(st.start)
		d := st.rotate(int64(from), r.keepIntervals)
		d.cpu, d.machine = cpu.sample()
		allP99, _ := st.all.rotate("", false)
		out = append(out, d)
		if r.s.Progress != nil && !last {
			r.progress(now, d, allP99)
		}
		if last {
			return out
		}
		from = now
		next := (now/iv + 1) * iv
		timer.Reset(time.Until(st.start.Add(next)))
	}
}

// closedLoop starts the next operation as soon as the previous one ends.
func (r *runner) closedLoop(ctx context.Context, w *worker) {
	for ctx.Err() == nil {
		if r.s.Requests > 0 && r.claimed.Add(1) > r.s.Requests {
			return
		}
		start := time.Now()
		f := w.operation(ctx, start, start)
		if f != nil && f.class == classTransport && !w.sleep(ctx, transportBackoff) {
			return
		}
	}
}

// openLoop starts operations on the fixed schedule start + i/Rate: each
// worker claims the next slot, waits for its time, and runs it; when
// every worker is busy, the slot starts late and its corrected latency
// still counts from the intended time. The schedule holds the slots due
// before Duration (ceil(Duration*Rate) of them), so it covers the
// interval [0, Duration), which is the interval its rates are over.
func (r *runner) openLoop(ctx context.Context, w *worker) {
	start := r.st.start
	for {
		i := r.claimed.Add(1)
		if r.s.Requests > 0 && i > r.s.Requests {
			return
		}
		// This generator's i-th slot is the run's slot (i-1)*stride+offset:
		// several generators share one schedule, interleaved.
		slot := (i-1)*max(r.s.slotStride, 1) + r.s.slotOffset
		intended := start.Add(time.Duration(float64(slot) * float64(time.Second) / r.s.Rate))
		if intended.Sub(start) >= r.s.Duration {
			r.schedOut.Store(true)
			return // the schedule ends with the window
		}
		if d := time.Until(intended); d > 0 && !w.sleep(ctx, d) {
			return
		}
		if ctx.Err() != nil {
			return
		}
		w.operation(ctx, intended, time.Now())
	}
}

// operation runs one operation and records it.
func (w *worker) operation(ctx context.Context, intended, started time.Time) *failure {
	w.r.started.Add(1)
	var o outcome
	f := w.r.eng.op(ctx, w, &o)
	w.r.st.operation(intended, started, time.Now(), f, &o)
	return f
}

// sleep waits d, or until ctx ends (false).
func (w *worker) sleep(ctx context.Context, d time.Duration) bool {
	w.timer.Reset(d)
	select {
	case <-w.timer.C:
		return true
	case <-ctx.Done():
		w.timer.Stop()
		return false
	}
}

// do sends one request of request row i and records it.
func (w *worker) do(i int, query []byte) *failure {
	took, f := w.k.exchange(query, &w.rep)
	w.r.st.request(i, took, time.Now(), f == nil)
	return f
}

// statusText names a status read, with the raw spelling of one this
// package does not know.
func (w *worker) statusText(st status) string {
	if st == statusOther {
		return "with status " + w.rep.StateRaw
	}
	return st.String()
}

// progress writes the progress line of the interval d, which ended at
// since after the start: the requests so far, the interval's request
// rate, the errors so far and the p99 of the interval's successful
// requests.
func (r *runner) progress(since time.Duration, d intervalData, all IntervalLatency) {
	p := "-"
	if all.Count > 0 {
		p = fmtUs(all.P99Us)
	}
	rate := float64(d.requests) / (since - time.Duration(d.startNs)).Seconds()
	fmt.Fprintf(r.s.Progress, "%6.1fs  %d requests  %s req/s  %d errors  p99 %s\n",
		since.Seconds(), r.st.requests.Load(), num(rate), r.st.opsFailed.Load(), p)
}

// report returns the settings as the report shows them: secrets among
// the parameters and variables redacted (redactQuery, redactVars).
func (s *settings) report(t *target) Settings {
	return Settings{
		Target: s.Target, Address: t.addr, AllowRemote: s.AllowRemote, Scenario: string(s.Scenario),
		DurationUs: int64(s.Duration / time.Microsecond), Requests: s.Requests, Concurrency: s.workers,
		Rate: s.Rate, Form: string(s.Form), Format: string(s.Format), FetchAction: s.FetchAction,
		Params: redactQuery(s.Params), Prepare: s.Prepare, Filter: redactQuery(s.Filter), PollUs: int64(s.Poll / time.Microsecond),
		Queue: s.Queue, TimeoutUs: int64(s.Timeout / time.Microsecond), MaxErrorRate: s.maxErrors,
		Workload: s.workloadInfo(),
	}
}

// workloadInfo identifies a workload file's run, nil for a scenario.
func (s *settings) workloadInfo() *WorkloadInfo {
	if s.Workload == nil {
		return nil
	}
	sum := sha256.Sum256(s.Workload.Source)
	return &WorkloadInfo{Name: s.Workload.Name, File: s.Workload.File, SHA256: hex.EncodeToString(sum[:]), Vars: redactVars(s.vars)}
}
