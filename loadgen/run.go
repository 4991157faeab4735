package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
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
	s       *settings
	cl      *client
	q       *queries
	sc      scenario
	st      *stats
	log     *slog.Logger
	claimed atomic.Int64 // operations claimed (bound and schedule slots)
	started atomic.Int64 // operations started
	// schedOut is set when an open-loop worker claimed a slot due at or
	// after Duration: the schedule, not the Requests bound, ran out.
	schedOut atomic.Bool
}

// worker sends operations one after another. It is owned by one
// goroutine.
type worker struct {
	r     *runner
	k     *conn
	rep   reply
	q     []byte
	timer *time.Timer
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
	log := s.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("component", "loadgen")
	cl := newClient(s, t)
	defer cl.hc.CloseIdleConnections()
	r := &runner{s: s, cl: cl, q: buildQueries(s), sc: newScenario(s), log: log}
	r.st = newStats(r.sc.kinds(), s.Rate > 0, s.Scenario == ScenarioStop)

	rep = &Report{Schema: SchemaVersion, Config: s.report(t), Warnings: []string{}}
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
		if cerr := r.sc.cleanup(cctx, r); cerr != nil {
			log.Error("cleanup failed", "err", cerr)
			if rep != nil {
				rep.Warnings = append(rep.Warnings, cerr.Error())
			}
			err = errors.Join(err, cerr)
		}
	}()
	if err := r.sc.setup(ctx, r); err != nil {
		if !errors.Is(err, ErrSetup) {
			err = fmt.Errorf("%w: %w", ErrSetup, err)
		}
		return nil, err
	}
	r.load(ctx, rep)
	return rep, nil
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
	tg.Product, tg.Version = rep.product, rep.version
	if tg.Product == "" && tg.Version == "" {
		tg.Error = "the reply names no product or version"
	}
	return tg
}

// load runs the workers until the duration, the request bound or ctx
// ends the run, and fills rep.
//
// At a fixed rate the workers are done before the deadline when the
// schedule runs out (its last slot is due at most 1/Rate before
// Duration); that run still ends by duration and its window and rates
// are over Duration, the span the schedule covers, not the wall time up
// to the last operation's end.
func (r *runner) load(ctx context.Context, rep *Report) {
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

	progressDone := make(chan struct{})
	var progressWG sync.WaitGroup
	if s.Progress != nil {
		progressWG.Go(func() { r.progress(progressDone) })
	}
	var wg sync.WaitGroup
	for range s.workers {
		w := &worker{r: r, k: r.cl.conn(), timer: time.NewTimer(time.Hour)}
		w.timer.Stop()
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
	close(progressDone)
	progressWG.Wait()

	var elapsed time.Duration
	switch {
	case interrupted.Load():
		rep.EndReason = "interrupted"
		elapsed = time.Duration(st.windowNs.Load())
	case wall >= s.Duration || runCtx.Err() != nil || r.schedOut.Load():
		rep.EndReason = "duration"
		elapsed = s.Duration
	default:
		rep.EndReason = "requests"
		elapsed = wall
		st.closeWindow(wall)
	}
	r.log.Info("load ended", "reason", rep.EndReason, "elapsed", elapsed)
	r.fill(rep, elapsed)
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
		intended := start.Add(time.Duration(float64(i-1) * float64(time.Second) / r.s.Rate))
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
	f := w.r.sc.op(ctx, w, &o)
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

// do sends one request of kind k and records it.
func (w *worker) do(k kind, query []byte) *failure {
	took, f := w.k.exchange(query, &w.rep)
	w.r.st.request(k, took, time.Now(), f == nil)
	return f
}

// doToken sends prefix followed by the encoded token.
func (w *worker) doToken(k kind, prefix []byte, tok string) *failure {
	w.q = appendEscape(append(w.q[:0], prefix...), tok)
	return w.do(k, w.q)
}

// submit sends a Fetch and returns its token.
func (w *worker) submit() (string, *failure) {
	if f := w.do(kindFetch, w.r.q.submit); f != nil {
		return "", f
	}
	if w.rep.token == "" {
		return "", &failure{class: classProtocol, key: "no-token", detail: "Fetch: SUCCESS reply without <token>"}
	}
	return w.rep.token, nil
}

// poll sends GetStatus for tok at once and then every Poll until done
// accepts the status read. It returns that status and when its reply
// arrived; when the run ends first it sets o.aborted.
func (w *worker) poll(ctx context.Context, tok string, o *outcome, done func(status) bool) (status, time.Time, *failure) {
	for {
		if f := w.doToken(kindGetStatus, w.r.q.status, tok); f != nil {
			return statusNone, time.Time{}, f
		}
		at := time.Now()
		st := w.rep.status
		if st == statusNone {
			return st, at, &failure{class: classProtocol, key: "no-status", detail: "GetStatus by token: no <action><status> in the reply"}
		}
		if done(st) {
			return st, at, nil
		}
		if !w.sleep(ctx, w.r.s.Poll) {
			o.aborted = true
			return st, at, nil
		}
	}
}

// statusText names a status read, with the raw spelling of one this
// package does not know.
func (w *worker) statusText(st status) string {
	if st == statusOther {
		return "with status " + w.rep.statusRaw
	}
	return st.String()
}

// progress writes a line a second until done closes.
func (r *runner) progress(done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lastReq, last := int64(0), r.st.start
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			req := r.st.requests.Load()
			n, p99 := r.st.interval.p99AndReset()
			p := "-"
			if n > 0 {
				p = fmtUs(p99)
			}
			rate := float64(req-lastReq) / now.Sub(last).Seconds()
			fmt.Fprintf(r.s.Progress, "%6.1fs  %d requests  %s req/s  %d errors  p99 %s\n",
				now.Sub(r.st.start).Seconds(), req, num(rate), r.st.opsFailed.Load(), p)
			lastReq, last = req, now
		}
	}
}

// fill writes the measurements into rep.
func (r *runner) fill(rep *Report, elapsed time.Duration) {
	st := r.st
	secs := elapsed.Seconds()
	per := func(n int64) float64 {
		if secs <= 0 {
			return 0
		}
		return math.Round(float64(n)/secs*100) / 100
	}
	rep.Start = st.start.UTC().Round(0)
	rep.ElapsedUs = int64(elapsed / time.Microsecond)
	ok, failed := st.opsOK.Load(), st.opsFailed.Load()
	rep.Operations = Operations{OK: ok, Failed: failed, Unfinished: st.opsUnfinished.Load(), PerSecond: per(ok + failed)}
	rep.Requests = Requests{Count: st.requests.Load(), PerSecond: per(st.requests.Load())}
	if r.s.Scenario == ScenarioMixed || r.s.Scenario == ScenarioStop {
		st.finalMu.Lock()
		final := make(map[string]int64, len(st.final))
		for k, v := range st.final {
			final[k] = v
		}
		st.finalMu.Unlock()
		rep.Actions = &Actions{Completed: st.actions.Load(), PerSecond: per(st.actions.Load()), Final: final}
	}
	rep.RequestLatency = []Latency{}
	for _, k := range r.sc.kinds() {
		l := st.req[k].summary(kindNames[k])
		l.Errors = st.reqErrors[k].Load()
		rep.RequestLatency = append(rep.RequestLatency, l)
	}
	rep.OperationLatency = st.op.summary("operation")
	if st.corrected != nil {
		c := st.corrected.summary("operation-corrected")
		rep.CorrectedLatency = &c
		lag := st.lag.summary("lag")
		started := r.started.Load()
		sch := &Schedule{TargetRate: r.s.Rate, AchievedRate: per(started), Late: st.late.Load(),
			LagP99Us: lag.P99Us, LagMaxUs: lag.MaxUs}
		sch.KeptUp = lag.Count == 0 || float64(sch.Late) <= 0.01*float64(lag.Count)
		rep.Schedule = sch
		if !sch.KeptUp {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf(
				"the fixed rate was not kept: %d of %d operations started more than %s late (max lag %s); raise -concurrency (%d) or lower -rate",
				sch.Late, lag.Count, LateThreshold, fmtUs(sch.LagMaxUs), r.s.workers))
		}
	}
	if r.s.Scenario == ScenarioStop {
		l := st.derived.summary("stop-to-stopped")
		rep.StopLatency = &l
	}
	e := st.errs
	e.mu.Lock()
	rep.Errors = Errors{Total: failed,
		Transport: clone(e.counts[classTransport]), HTTP: clone(e.counts[classHTTP]), ACI: clone(e.counts[classACI]),
		Protocol: clone(e.counts[classProtocol]), Check: clone(e.counts[classCheck]), Samples: map[string]string{}}
	for k, v := range e.samples {
		rep.Errors.Samples[k] = v
	}
	e.mu.Unlock()
	if ok+failed > 0 {
		rep.ErrorRate = float64(failed) / float64(ok+failed)
	}
	rep.Passed = ok > 0 && rep.ErrorRate <= r.s.maxErrors
	if ok == 0 {
		rep.Warnings = append(rep.Warnings, "no operation succeeded")
	}
}

func clone(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// report returns the settings as the report shows them.
func (s *settings) report(t *target) Settings {
	return Settings{
		Target: s.Target, Address: t.addr, AllowRemote: s.AllowRemote, Scenario: string(s.Scenario),
		DurationUs: int64(s.Duration / time.Microsecond), Requests: s.Requests, Concurrency: s.workers,
		Rate: s.Rate, Form: string(s.Form), Format: string(s.Format), FetchAction: s.FetchAction,
		Params: s.Params, Prepare: s.Prepare, Filter: s.Filter, PollUs: int64(s.Poll / time.Microsecond),
		Queue: s.Queue, TimeoutUs: int64(s.Timeout / time.Microsecond), MaxErrorRate: s.maxErrors,
	}
}
