package loadgen

import (
	"fmt"
	"maps"
	"math"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// measurements are the raw results of a load: counters, whole
// histograms and the timeline. The report is computed from them; the
// measurements of several generators merge exactly (counts add,
// histograms merge) into those of one run.
type measurements struct {
	start     time.Time
	elapsed   time.Duration // the window
	endReason string
	interval  time.Duration

	ok, failed, unfinished, requests int64
	started, actions, late           int64
	final                            map[string]int64

	rows    []rowTotal
	errors  [numClasses]map[string]int64
	samples map[string]string

	intervals []intervalData

	cpu       time.Duration // generator CPU time over the window
	cpus      int           // CPUs the generators could use
	machine   cpuTicks      // the machine's CPU ticks over the window (summed over generators)
	peakShare float64       // highest interval CPU share of one generator
}

// rowTotal is one latency row over the whole window.
type rowTotal struct {
	name   string
	kind   rowKind
	errors int64
	h      *hdrhistogram.Histogram
}

// snapshot returns the measurements of st once the load has ended;
// elapsed is the window.
func (st *stats) snapshot(elapsed time.Duration, endReason string, interval time.Duration, started int64, cpus int, ivs []intervalData) *measurements {
	m := &measurements{start: st.start, elapsed: elapsed, endReason: endReason, interval: interval, cpus: cpus,
		ok: st.opsOK.Load(), failed: st.opsFailed.Load(), unfinished: st.opsUnfinished.Load(),
		requests: st.requests.Load(), started: started, actions: st.actions.Load(), late: st.late.Load()}
	st.finalMu.Lock()
	m.final = maps.Clone(st.final)
	st.finalMu.Unlock()
	for _, r := range st.rows {
		m.rows = append(m.rows, rowTotal{name: r.name, kind: r.kind, errors: r.errors.Load(), h: r.h.total})
	}
	st.errs.mu.Lock()
	for c := range m.errors {
		m.errors[c] = maps.Clone(st.errs.counts[c])
	}
	m.samples = maps.Clone(st.errs.samples)
	st.errs.mu.Unlock()
	m.intervals = clipIntervals(ivs, elapsed)
	for _, iv := range m.intervals {
		m.cpu += iv.cpu
		m.machine = m.machine.add(iv.machine)
		if iv.lengthNs > 0 && cpus > 0 {
			m.peakShare = max(m.peakShare, float64(iv.cpu)/float64(iv.lengthNs)/float64(cpus))
		}
	}
	return m
}

// clipIntervals fits the intervals into the window: an interval that
// starts after its end (the ticker can fire once more while the load
// winds down) is folded into the one before, and the last one ends with
// the window.
func clipIntervals(ivs []intervalData, elapsed time.Duration) []intervalData {
	var out []intervalData
	for _, iv := range ivs {
		if len(out) > 0 && iv.startNs >= int64(elapsed) {
			last := &out[len(out)-1]
			last.ok += iv.ok
			last.failed += iv.failed
			last.requests += iv.requests
			for c := range last.failedBy {
				last.failedBy[c] += iv.failedBy[c]
			}
			last.cpu += iv.cpu
			last.machine = last.machine.add(iv.machine)
			// Latencies of a folded interval: none can be recorded
			// after the window closes, so its rows are empty.
			continue
		}
		out = append(out, iv)
	}
	for i := range out {
		end := int64(elapsed)
		if i+1 < len(out) {
			end = out[i+1].startNs
		}
		out[i].lengthNs = max(end-out[i].startNs, 0)
	}
	return out
}

// rowByName returns the row named name, or nil.
func (m *measurements) rowByName(name string) *rowTotal {
	for i := range m.rows {
		if m.rows[i].name == name {
			return &m.rows[i]
		}
	}
	return nil
}

// report computes the report of m into rep (whose Config, Target,
// Environment and Warnings are already set); s is the run's settings.
func (m *measurements) report(s *settings, rep *Report) {
	secs := m.elapsed.Seconds()
	per := func(n int64) float64 {
		if secs <= 0 {
			return 0
		}
		return math.Round(float64(n)/secs*100) / 100
	}
	rep.Start = m.start.UTC().Round(0)
	rep.ElapsedUs = int64(m.elapsed / time.Microsecond)
	rep.EndReason = m.endReason
	rep.Operations = Operations{OK: m.ok, Failed: m.failed, Unfinished: m.unfinished, PerSecond: per(m.ok + m.failed)}
	rep.Requests = Requests{Count: m.requests, PerSecond: per(m.requests)}
	if s.pg.polls {
		final := maps.Clone(m.final)
		if final == nil {
			final = map[string]int64{}
		}
		rep.Actions = &Actions{Completed: m.actions, PerSecond: per(m.actions), Final: final}
	}
	rep.RequestLatency = []Latency{}
	rep.Histograms = map[string]string{}
	for _, r := range m.rows {
		if r.h.TotalCount() > 0 {
			rep.Histograms[r.name] = string(encodeHist(r.h))
		}
		l := summarize(r.name, r.h)
		switch r.kind {
		case rowRequest:
			l.Errors = r.errors
			rep.RequestLatency = append(rep.RequestLatency, l)
		case rowOp:
			rep.OperationLatency = l
		case rowCorr:
			rep.CorrectedLatency = &l
		case rowMeasured:
			if r.name == rowStop {
				rep.StopLatency = &l
			} else {
				rep.MeasuredLatency = append(rep.MeasuredLatency, l)
			}
		case rowPerOp:
			rep.PerOperationLatency = append(rep.PerOperationLatency, l)
		}
	}
	if lagRow := m.rowByName(rowLag); lagRow != nil {
		lag := summarize(rowLag, lagRow.h)
		sch := &Schedule{TargetRate: s.Rate, AchievedRate: per(m.started), Late: m.late,
			LagP99Us: lag.P99Us, LagMaxUs: lag.MaxUs}
		sch.KeptUp = lag.Count == 0 || float64(sch.Late) <= 0.01*float64(lag.Count)
		rep.Schedule = sch
		if !sch.KeptUp {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf(
				"the fixed rate was not kept: %d of %d operations started more than %s late (max lag %s); raise -concurrency (%d) or lower -rate",
				sch.Late, lag.Count, LateThreshold, fmtUs(sch.LagMaxUs), s.workers))
		}
	}
	rep.Errors = Errors{Total: m.failed,
		Transport: cloneCounts(m.errors[classTransport]), HTTP: cloneCounts(m.errors[classHTTP]), ACI: cloneCounts(m.errors[classACI]),
		Protocol: cloneCounts(m.errors[classProtocol]), Check: cloneCounts(m.errors[classCheck]), Samples: map[string]string{}}
	maps.Copy(rep.Errors.Samples, m.samples)
	if m.ok+m.failed > 0 {
		rep.ErrorRate = float64(m.failed) / float64(m.ok+m.failed)
	}
	rep.Passed = m.ok > 0 && rep.ErrorRate <= s.maxErrors
	if m.ok == 0 {
		rep.Warnings = append(rep.Warnings, "no operation succeeded")
	}

	rep.IntervalUs = int64(m.interval / time.Microsecond)
	rep.Timeline = []Interval{}
	for _, iv := range m.intervals {
		startUs := iv.startNs / 1000
		e := Interval{StartUs: startUs, LengthUs: (iv.startNs+iv.lengthNs)/1000 - startUs, OK: iv.ok, Failed: iv.failed,
			Requests: iv.requests, Latency: []IntervalLatency{}, GeneratorCPU: -1, MachineCPU: iv.machine.share()}
		for c, n := range iv.failedBy {
			if n > 0 {
				if e.Errors == nil {
					e.Errors = map[string]int64{}
				}
				e.Errors[classNames[c]] = n
			}
		}
		for i, l := range iv.rows {
			if m.rows[i].kind != rowLagKind {
				e.Latency = append(e.Latency, l)
			}
		}
		if iv.lengthNs > 0 && m.cpus > 0 {
			e.GeneratorCPU = round3(float64(iv.cpu) / float64(iv.lengthNs) / float64(m.cpus))
		}
		e.MachineCPU = round3(e.MachineCPU)
		rep.Timeline = append(rep.Timeline, e)
	}

	g := Generator{CPUs: m.cpus, CPUSeconds: round3(m.cpu.Seconds()), MachineCPUShare: round3(m.machine.share()),
		PeakCPUShare: round3(m.peakShare)}
	if m.elapsed > 0 && m.cpus > 0 {
		g.CPUShare = round3(float64(m.cpu) / float64(m.elapsed) / float64(m.cpus))
	}
	g.Saturated = g.CPUShare >= SaturatedShare
	rep.Generator = g
	if g.Saturated {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf(
			"the load generator was saturated: it used %.0f%% of its %d CPUs over the run, so it, not the server, may have been the bottleneck; "+
				"run fewer workers, give it more CPUs, or spread the load over several generators (-workers)",
			100*g.CPUShare, g.CPUs))
	}
}

func round3(f float64) float64 {
	if f < 0 {
		return f
	}
	return math.Round(f*1000) / 1000
}

func cloneCounts(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	maps.Copy(out, m)
	return out
}
