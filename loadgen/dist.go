package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/loadgen/wire"
)

// WorkerPath is the URL path a load generator serves plans on;
// WorkerStopPath ends the load of the plan in progress (the coordinator's
// Ctrl-C), whose result then comes back as an interrupted run.
const (
	WorkerPath     = "/v1/run"
	WorkerStopPath = "/v1/stop"
)

// workerStartDelay is how long after its plan arrives a generator starts
// the load, so that the generators of a run start together.
const workerStartDelay = 300 * time.Millisecond

// maxMessage bounds a plan or a result read from the network.
const maxMessage = 256 << 20

// ErrWorker wraps the failure of a load generator of a distributed run.
var ErrWorker = errors.New("loadgen: load generator failed")

// distribute sends each generator its share of the load, waits for what
// they measured and merges it. The coordinator (this runner) has run the
// setup: the pools it filled go with the plans.
func (r *runner) distribute(ctx context.Context, t *target) (*measurements, []WorkerInfo, error) {
	s := r.s
	n := len(s.Workers)
	if s.workers < n {
		return nil, nil, fmt.Errorf("%w: concurrency %d: at least one worker per load generator (%d)", ErrInvalidConfig, s.workers, n)
	}
	runID := make([]byte, 8)
	_, _ = rand.Read(runID)
	pools := map[string]*wire.PoolValues{}
	for name, p := range s.pg.pools {
		p.mu.Lock()
		pools[name] = &wire.PoolValues{Values: slices.Clone(p.vals)}
		p.mu.Unlock()
	}
	results := make([]*wire.Result, n)
	errs := make([]error, n)
	// The plans' requests outlive a cancelled ctx: on Ctrl-C the
	// generators are told to stop, and their (interrupted) results still
	// come back. Each generator ends by itself after Duration anyway.
	reqCtx, cancelReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReqs()
	stopAll := context.AfterFunc(ctx, func() {
		var sw sync.WaitGroup
		for _, addr := range s.Workers {
			sw.Go(func() {
				if err := r.stopWorker(addr); err != nil {
					r.log.Warn("could not stop a load generator", "generator", addr, "err", err)
				}
			})
		}
		sw.Wait()
		// A generator that does not answer within the timeout is given up.
		time.AfterFunc(s.Timeout+5*time.Second, cancelReqs)
	})
	defer stopAll()
	var wg sync.WaitGroup
	for i, addr := range s.Workers {
		plan := &wire.Plan{
			RunId: hex.EncodeToString(runID), WorkerIndex: int32(i), Workers: int32(n), Target: s.Target,
			AllowRemote: s.AllowRemote, WorkloadFile: s.pg.w.File, Workload: s.pg.w.Source, Vars: s.vars,
			DataFiles: s.pg.files, Pools: pools, DurationNs: int64(s.Duration), Requests: share(s.Requests, n, i),
			Concurrency: int32(share(int64(s.workers), n, i)), Rate: s.Rate, Form: string(s.Form), Format: string(s.Format),
			TimeoutNs: int64(s.Timeout), IntervalNs: int64(s.Interval), StartDelayNs: int64(workerStartDelay),
		}
		wg.Go(func() {
			results[i], errs[i] = r.sendPlan(reqCtx, addr, plan)
		})
	}
	r.log.Info("load sent to the generators", "generators", n)
	wg.Wait()
	var ms []*measurements
	var infos []WorkerInfo
	for i, res := range results {
		if errs[i] == nil && res.GetError() != "" {
			errs[i] = errors.New(res.GetError())
		}
		if errs[i] != nil {
			return nil, nil, fmt.Errorf("%w: %s: %w", ErrWorker, s.Workers[i], errs[i])
		}
		m, err := fromWire(res.GetMeasurements())
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %w", ErrWorker, s.Workers[i], err)
		}
		ms = append(ms, m)
		info := WorkerInfo{Address: s.Workers[i], Environment: envFromWire(res.GetEnvironment()),
			Operations: Operations{OK: m.ok, Failed: m.failed, Unfinished: m.unfinished}}
		info.Generator = generatorOf(m)
		infos = append(infos, info)
	}
	return mergeMeasurements(ms), infos, nil
}

// share is the i-th of n near-equal parts of total (the first ones take
// the remainder).
func share(total int64, n, i int) int64 {
	q, rem := total/int64(n), total%int64(n)
	if int64(i) < rem {
		return q + 1
	}
	return q
}

// sendPlan posts a plan to a generator and reads its result. The request
// lasts the run; cancelling ctx closes it, which ends the generator's
// load.
func (r *runner) sendPlan(ctx context.Context, addr string, plan *wire.Plan) (*wire.Result, error) {
	body, err := proto.Marshal(plan)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+WorkerPath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if r.s.WorkerSecret != "" {
		req.Header.Set("Authorization", "Bearer "+r.s.WorkerSecret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMessage))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, clip(string(b), 300))
	}
	var res wire.Result
	if err := proto.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("read result: %w", err)
	}
	return &res, nil
}

// stopWorker asks a generator to end the load in progress.
func (r *runner) stopWorker(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+WorkerStopPath, nil)
	if err != nil {
		return err
	}
	if r.s.WorkerSecret != "" {
		req.Header.Set("Authorization", "Bearer "+r.s.WorkerSecret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// WorkerOptions configure a load generator.
type WorkerOptions struct {
	// Secret, when not empty, must come as the bearer token of every
	// plan; a generator listening beyond loopback must have one.
	Secret string
	// AllowRemote lets a plan load a target that is not a loopback
	// address, when the coordinator allows it too.
	AllowRemote bool
	Logger      *slog.Logger
}

// ServeWorker serves plans on ln until ctx ends: a load generator of
// distributed runs (`connector bench worker`). It runs one plan at a
// time; a second one meanwhile is refused (HTTP 409).
func ServeWorker(ctx context.Context, ln net.Listener, opts WorkerOptions) error {
	if opts.Secret == "" {
		if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
			return fmt.Errorf("%w: a load generator listening on %s (beyond loopback) needs a secret", ErrInvalidConfig, ln.Addr())
		}
	}
	srv := &http.Server{Handler: WorkerHandler(opts), ReadHeaderTimeout: 10 * time.Second}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// WorkerHandler is the HTTP handler of a load generator.
func WorkerHandler(opts WorkerOptions) http.Handler {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("component", "loadgen-worker")
	var busy sync.Mutex
	var curMu sync.Mutex
	var cur context.CancelFunc // ends the load in progress
	authorized := func(w http.ResponseWriter, req *http.Request) bool {
		if opts.Secret == "" {
			return true
		}
		got, _ := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(opts.Secret)) != 1 {
			http.Error(w, "missing or wrong secret", http.StatusUnauthorized)
			return false
		}
		return true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+WorkerStopPath, func(w http.ResponseWriter, req *http.Request) {
		if !authorized(w, req) {
			return
		}
		curMu.Lock()
		if cur != nil {
			cur()
			log.Info("stop received: ending the load")
		}
		curMu.Unlock()
	})
	mux.HandleFunc("POST "+WorkerPath, func(w http.ResponseWriter, req *http.Request) {
		if !authorized(w, req) {
			return
		}
		if !busy.TryLock() {
			http.Error(w, "a run is in progress", http.StatusConflict)
			return
		}
		defer busy.Unlock()
		b, err := io.ReadAll(io.LimitReader(req.Body, maxMessage))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var plan wire.Plan
		if err := proto.Unmarshal(b, &plan); err != nil {
			http.Error(w, "not a plan: "+err.Error(), http.StatusBadRequest)
			return
		}
		log.Info("plan received", "run", plan.GetRunId(), "share", plan.GetWorkerIndex()+1, "of", plan.GetWorkers(),
			"target", redactTarget(plan.GetTarget()), "workload", plan.GetWorkloadFile(), "concurrency", plan.GetConcurrency())
		ctx, cancel := context.WithCancel(req.Context())
		curMu.Lock()
		cur = cancel
		curMu.Unlock()
		res := runPlan(ctx, &plan, opts, log)
		curMu.Lock()
		cur = nil
		curMu.Unlock()
		cancel()
		if res.Error != "" {
			log.Warn("plan refused", "run", plan.GetRunId(), "err", res.Error)
		} else {
			log.Info("plan done", "run", plan.GetRunId(), "ok", res.GetMeasurements().GetOk(), "failed", res.GetMeasurements().GetFailed())
		}
		out, err := proto.Marshal(res)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	})
	return mux
}

// runPlan runs one generator's share: the load only (the coordinator
// runs setup and cleanup).
func runPlan(ctx context.Context, plan *wire.Plan, opts WorkerOptions, log *slog.Logger) *wire.Result {
	fail := func(err error) *wire.Result { return &wire.Result{Error: err.Error()} }
	// Data files come with the plan: a plan never reads this machine's
	// files.
	files := plan.GetDataFiles()
	if files == nil {
		files = map[string][]byte{}
	}
	w, err := parseWorkloadInto(&Workload{files: files}, plan.GetWorkloadFile(), plan.GetWorkload())
	if err != nil {
		return fail(err)
	}
	cfg := Config{Target: plan.GetTarget(), AllowRemote: plan.GetAllowRemote() && opts.AllowRemote, Workload: w,
		Vars: plan.GetVars(), Duration: time.Duration(plan.GetDurationNs()), Requests: plan.GetRequests(),
		Concurrency: int(plan.GetConcurrency()), Rate: plan.GetRate(), Form: Form(plan.GetForm()), Format: Format(plan.GetFormat()),
		Timeout: time.Duration(plan.GetTimeoutNs()), Interval: time.Duration(plan.GetIntervalNs()), Logger: log}
	if plan.GetWorkers() < 1 || plan.GetWorkerIndex() < 0 || plan.GetWorkerIndex() >= plan.GetWorkers() || cfg.Concurrency < 1 {
		return fail(fmt.Errorf("%w: share %d of %d with %d workers", ErrInvalidConfig, plan.GetWorkerIndex(), plan.GetWorkers(), cfg.Concurrency))
	}
	s, err := cfg.resolve()
	if err != nil {
		return fail(err)
	}
	s.slotStride, s.slotOffset = int64(plan.GetWorkers()), int64(plan.GetWorkerIndex())
	t, err := checkTarget(ctx, s.Target, s.AllowRemote, s.lookup)
	if err != nil {
		return fail(err)
	}
	r := newRunner(s, t)
	defer r.cl.hc.CloseIdleConnections()
	r.keepIntervals = true
	for name, vals := range plan.GetPools() {
		p := s.pg.pools[name]
		if p == nil {
			return fail(fmt.Errorf("%w: pool %s is not in the workload", ErrInvalidConfig, name))
		}
		for _, v := range vals.GetValues() {
			p.add(v)
		}
	}
	env := environment()
	// A stop during the delay lets the load end at once, interrupted.
	select {
	case <-time.After(time.Duration(plan.GetStartDelayNs())):
	case <-ctx.Done():
	}
	m := r.load(ctx)
	env.LoadAverageEnd = loadAverage()
	// No GetVersion here: the coordinator asked it once for the run.
	return &wire.Result{Measurements: toWire(m), Environment: envToWire(env)}
}

func toWire(m *measurements) *wire.Measurements {
	out := &wire.Measurements{StartUnixNano: m.start.UnixNano(), ElapsedNs: int64(m.elapsed), EndReason: m.endReason,
		IntervalNs: int64(m.interval), Ok: m.ok, Failed: m.failed, Unfinished: m.unfinished, Requests: m.requests,
		Started: m.started, Actions: m.actions, Late: m.late, Final: maps.Clone(m.final), CpuNs: int64(m.cpu),
		Cpus: int32(m.cpus), PeakShare: m.peakShare, MachineBusy: m.machine.busy, MachineTotal: m.machine.total}
	for _, r := range m.rows {
		row := &wire.Row{Name: r.name, Kind: int32(r.kind), Errors: r.errors}
		if r.h.TotalCount() > 0 {
			row.Histogram = encodeHist(r.h)
		}
		out.Rows = append(out.Rows, row)
	}
	for c, counts := range m.errors {
		for _, k := range slices.Sorted(maps.Keys(counts)) {
			out.Errors = append(out.Errors, &wire.ErrorCount{Class: int32(c), Key: k, Count: counts[k], Sample: m.samples[classNames[c]+"/"+k]})
		}
	}
	for _, iv := range m.intervals {
		w := &wire.IntervalData{StartNs: iv.startNs, LengthNs: iv.lengthNs, Ok: iv.ok, Failed: iv.failed, Requests: iv.requests,
			FailedByClass: iv.failedBy[:], CpuNs: int64(iv.cpu), MachineBusy: iv.machine.busy, MachineTotal: iv.machine.total}
		for i := range iv.rows {
			var enc []byte
			if i < len(iv.enc) {
				enc = iv.enc[i]
			}
			w.Histograms = append(w.Histograms, enc)
		}
		out.Intervals = append(out.Intervals, w)
	}
	return out
}

func fromWire(w *wire.Measurements) (*measurements, error) {
	if w == nil {
		return nil, errors.New("no measurements")
	}
	m := &measurements{start: time.Unix(0, w.GetStartUnixNano()), elapsed: time.Duration(w.GetElapsedNs()), endReason: w.GetEndReason(),
		interval: time.Duration(w.GetIntervalNs()), ok: w.GetOk(), failed: w.GetFailed(), unfinished: w.GetUnfinished(),
		requests: w.GetRequests(), started: w.GetStarted(), actions: w.GetActions(), late: w.GetLate(),
		final: maps.Clone(w.GetFinal()), cpu: time.Duration(w.GetCpuNs()), cpus: int(w.GetCpus()), peakShare: w.GetPeakShare(),
		machine: cpuTicks{w.GetMachineBusy(), w.GetMachineTotal()}, samples: map[string]string{}}
	if m.final == nil {
		m.final = map[string]int64{}
	}
	for c := range m.errors {
		m.errors[c] = map[string]int64{}
	}
	for _, r := range w.GetRows() {
		h := newHDR()
		if len(r.GetHistogram()) > 0 {
			d, err := hdrhistogram.Decode(r.GetHistogram())
			if err != nil {
				return nil, fmt.Errorf("row %s: %w", r.GetName(), err)
			}
			h.Merge(d)
		}
		m.rows = append(m.rows, rowTotal{name: r.GetName(), kind: rowKind(r.GetKind()), errors: r.GetErrors(), h: h})
	}
	for _, e := range w.GetErrors() {
		c := errClass(e.GetClass())
		if int(c) >= len(m.errors) {
			return nil, fmt.Errorf("error class %d", e.GetClass())
		}
		m.errors[c][e.GetKey()] += e.GetCount()
		k := classNames[c] + "/" + e.GetKey()
		if _, ok := m.samples[k]; !ok {
			m.samples[k] = e.GetSample()
		}
	}
	for _, iv := range w.GetIntervals() {
		d := intervalData{startNs: iv.GetStartNs(), lengthNs: iv.GetLengthNs(), ok: iv.GetOk(), failed: iv.GetFailed(),
			requests: iv.GetRequests(), cpu: time.Duration(iv.GetCpuNs()), machine: cpuTicks{iv.GetMachineBusy(), iv.GetMachineTotal()}}
		copy(d.failedBy[:], iv.GetFailedByClass())
		for i, enc := range iv.GetHistograms() {
			if i >= len(m.rows) {
				break
			}
			d.enc = append(d.enc, enc)
			sum := IntervalLatency{Name: m.rows[i].name}
			if len(enc) > 0 {
				h, err := hdrhistogram.Decode(enc)
				if err != nil {
					return nil, fmt.Errorf("interval histogram: %w", err)
				}
				sum = intervalSummary(m.rows[i].name, h)
			}
			d.rows = append(d.rows, sum)
		}
		m.intervals = append(m.intervals, d)
	}
	return m, nil
}

// mergeMeasurements merges the measurements of the generators of one
// run: counts add, histograms merge (exactly: the merged percentiles are
// those of all the values together, not an average of percentiles), the
// timelines merge interval by interval.
func mergeMeasurements(ms []*measurements) *measurements {
	out := &measurements{final: map[string]int64{}, samples: map[string]string{}, interval: ms[0].interval, start: ms[0].start, endReason: ms[0].endReason}
	for c := range out.errors {
		out.errors[c] = map[string]int64{}
	}
	for _, r := range ms[0].rows {
		out.rows = append(out.rows, rowTotal{name: r.name, kind: r.kind, h: newHDR()})
	}
	type bin struct {
		d    intervalData
		hist []*hdrhistogram.Histogram
	}
	bins := map[int64]*bin{}
	for _, m := range ms {
		if m.start.Before(out.start) {
			out.start = m.start
		}
		out.elapsed = max(out.elapsed, m.elapsed)
		if m.endReason == "interrupted" {
			out.endReason = m.endReason
		}
		out.ok += m.ok
		out.failed += m.failed
		out.unfinished += m.unfinished
		out.requests += m.requests
		out.started += m.started
		out.actions += m.actions
		out.late += m.late
		for k, v := range m.final {
			out.final[k] += v
		}
		for i, r := range m.rows {
			if i < len(out.rows) && out.rows[i].name == r.name {
				out.rows[i].h.Merge(r.h)
				out.rows[i].errors += r.errors
			}
		}
		for c := range m.errors {
			for k, v := range m.errors[c] {
				out.errors[c][k] += v
			}
		}
		for k, v := range m.samples {
			if _, ok := out.samples[k]; !ok {
				out.samples[k] = v
			}
		}
		out.cpu += m.cpu
		out.cpus += m.cpus
		out.peakShare = max(out.peakShare, m.peakShare)
		out.machine = out.machine.add(m.machine)
		// Each generator's intervals go to the bin of their nominal
		// start (the generators start together, within a few ms).
		iv := int64(out.interval)
		for _, d := range m.intervals {
			k := (d.startNs + iv/2) / max(iv, 1)
			b := bins[k]
			if b == nil {
				b = &bin{d: intervalData{startNs: k * iv}, hist: make([]*hdrhistogram.Histogram, len(out.rows))}
				bins[k] = b
			}
			b.d.ok += d.ok
			b.d.failed += d.failed
			b.d.requests += d.requests
			for c := range d.failedBy {
				b.d.failedBy[c] += d.failedBy[c]
			}
			b.d.cpu += d.cpu
			b.d.machine = b.d.machine.add(d.machine)
			for i, enc := range d.enc {
				if i >= len(b.hist) || len(enc) == 0 {
					continue
				}
				h, err := hdrhistogram.Decode(enc)
				if err != nil {
					continue // checked by fromWire
				}
				if b.hist[i] == nil {
					b.hist[i] = newHDR()
				}
				b.hist[i].Merge(h)
			}
		}
	}
	keys := slices.Collect(maps.Keys(bins))
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	var ivs []intervalData
	for _, k := range keys {
		b := bins[k]
		b.d.rows = make([]IntervalLatency, len(out.rows))
		b.d.enc = make([][]byte, len(out.rows))
		for i, h := range b.hist {
			if h == nil {
				b.d.rows[i] = IntervalLatency{Name: out.rows[i].name}
				continue
			}
			b.d.rows[i] = intervalSummary(out.rows[i].name, h)
			b.d.enc[i] = encodeHist(h)
		}
		ivs = append(ivs, b.d)
	}
	out.intervals = clipIntervals(ivs, out.elapsed)
	return out
}

// generatorOf is the CPU figures of one generator's measurements.
func generatorOf(m *measurements) Generator {
	g := Generator{CPUs: m.cpus, CPUSeconds: round3(m.cpu.Seconds()), MachineCPUShare: round3(m.machine.share()), PeakCPUShare: round3(m.peakShare)}
	if m.elapsed > 0 && m.cpus > 0 {
		g.CPUShare = round3(float64(m.cpu) / float64(m.elapsed) / float64(m.cpus))
	}
	g.Saturated = g.CPUShare >= SaturatedShare
	return g
}

func envToWire(e Environment) *wire.Environment {
	return &wire.Environment{Host: e.Host, Os: e.OS, Arch: e.Arch, Kernel: e.Kernel, CpuModel: e.CPUModel, Cpus: int32(e.CPUs),
		Gomaxprocs: int32(e.GOMAXPROCS), LoadAverageStart: e.LoadAverageStart, LoadAverageEnd: e.LoadAverageEnd,
		GoVersion: e.GoVersion, HarnessVersion: e.HarnessVersion, HarnessRevision: e.HarnessRevision}
}

func envFromWire(w *wire.Environment) Environment {
	return Environment{Host: w.GetHost(), OS: w.GetOs(), Arch: w.GetArch(), Kernel: w.GetKernel(), CPUModel: w.GetCpuModel(),
		CPUs: int(w.GetCpus()), GOMAXPROCS: int(w.GetGomaxprocs()), LoadAverageStart: w.GetLoadAverageStart(),
		LoadAverageEnd: w.GetLoadAverageEnd(), GoVersion: w.GetGoVersion(), HarnessVersion: w.GetHarnessVersion(),
		HarnessRevision: w.GetHarnessRevision()}
}
