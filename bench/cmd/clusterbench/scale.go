package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectorhq/connector/bench/internal/procstat"
	"github.com/connectorhq/connector/messages"
)

// target is what a throughput measurement drives: submission endpoints,
// the processes whose CPU is counted, and the shared PostgreSQL.
type target struct {
	urls    []string
	river   bool
	tasks   int
	pids    []int
	pgPID   int
	stat    *pgx.Conn
	dbname  string
	queries *int64 // transactions the benchmark itself made in dbname
	// rate, when above 0, paces the submitters (load "rate"): each
	// endpoint is offered rate submissions a second on a fixed schedule
	// (submission k due k/rate after the start), taken by whichever of
	// its submitters is free; behind the schedule they submit at once.
	rate     float64
	finished func() (int64, error)
}

func (t *target) submitOne(u string, i int) error {
	if t.river {
		_, err := get(u, "submit")
		return err
	}
	_, err := submit(u, cheapSubmit(i, t.tasks))
	return err
}

func (e *env) target(tasks int) *target {
	return &target{urls: e.urls(), tasks: tasks, pids: e.pids(), pgPID: e.c.PG.PID(), stat: e.stat, dbname: "connector", queries: &e.queries,
		finished: func() (int64, error) { return e.count(messages.State_STATE_FINISHED) }}
}

type measured struct {
	n          int64   // finished actions
	rate       float64 // finished actions per second
	cpuMs      float64 // CPU of the target processes per action
	netCPUMs   float64 // the same less what the processes use when idle
	idleMs     float64 // CPU per second of the target processes, idle
	pgCPUMs    float64 // PostgreSQL CPU per action
	commits    float64 // xact_commit per action
	walSyncs   float64 // WAL fsyncs per action
	throttled  float64 // share of quota periods throttled (quota runs)
	vcs, ivcs  float64 // voluntary and involuntary context switches of the target processes per action
	elapsed    time.Duration
	submitters int
	// windowRate is finished actions per second between a second in and
	// the end of submitting (no ramp, no drain); windowThrottled each
	// group's share of throttled periods in that window.
	windowRate      float64
	windowThrottled []float64
}

// throttleOf returns each group's nr_periods and nr_throttled.
func throttleOf(groups []*cgroup) [][2]int64 {
	r := make([][2]int64, len(groups))
	for i, g := range groups {
		r[i][0], r[i][1] = g.throttled()
	}
	return r
}

// waitFinished polls until at least want actions are finished.
func (t *target) waitFinished(want int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n, err := t.finished()
		if err != nil {
			return err
		}
		if n >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d actions finished after %s", n, want, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// measure submits closed-loop from conc goroutines for dur, submitter g
// always to endpoint g mod len(urls), and waits until every submission is
// finished: rate is submissions / (first submission → last finished).
// Each submitter keeps to one node (to one River client): submitters that
// went round the nodes in turn tied the nodes together, as each of them
// waited on a throttled node before it could submit to the next, so that
// three capped nodes were throttled in only 77–97 % of their periods at
// 16 submitters per node, against 100 % when each keeps to its node
// (clus16).
func (t *target) measure(o options, conc int, groups []*cgroup) (measured, error) {
	// warm up: connections, prepared statements, first claims
	for i := 0; i < 10*len(t.urls); i++ {
		if err := t.submitOne(t.urls[i%len(t.urls)], i); err != nil {
			return measured{}, err
		}
	}
	if err := t.waitFinished(int64(10*len(t.urls)), 2*time.Minute); err != nil {
		return measured{}, err
	}
	// what the processes use with nothing to do (membership, ticks):
	// a fixed cost per node, not per action
	i0 := cpuOf(t.pids)
	time.Sleep(3 * time.Second)
	idle := float64(cpuOf(t.pids)-i0) / float64(time.Millisecond) / 3
	logf("warmed up (idle: %.1f ms CPU per second); measuring", idle)
	f0, err := t.finished()
	if err != nil {
		return measured{}, err
	}
	c0, err := settledCommits(t.stat, t.dbname)
	if err != nil {
		return measured{}, err
	}
	q0 := *t.queries
	w0, err := walSyncs(t.stat)
	if err != nil {
		return measured{}, err
	}
	var per0, thr0 int64
	for _, g := range groups {
		p, th := g.throttled()
		per0, thr0 = per0+p, thr0+th
	}
	cpu0, pg0 := cpuOf(t.pids), treeCPU(t.pgPID)
	v0, iv0 := ctxSwitchesOf(t.pids)
	start := time.Now()
	var submitted atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	tickets := make([]atomic.Int64, len(t.urls)) // load "rate": the next submission due, per endpoint
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; time.Since(start) < o.dur; i++ {
				if t.rate > 0 {
					k := tickets[g%len(t.urls)].Add(1) - 1
					due := start.Add(time.Duration(float64(k) / t.rate * float64(time.Second)))
					if due.Sub(start) >= o.dur {
						return
					}
					time.Sleep(time.Until(due))
				}
				if err := t.submitOne(t.urls[g%len(t.urls)], i*conc+g); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				submitted.Add(1)
			}
		}(g)
	}
	// The steady window: from a second in (the groups' commits have
	// grown to their size) to the end of submitting, before the drain.
	// Each end is timed right after its count is read, and the groups'
	// counters are read right after that, the same way at both ends: a
	// count query that takes long under load then shifts the window
	// instead of stretching one end of it (review16 F11).
	ramp := min(time.Second, o.dur/4)
	time.Sleep(time.Until(start.Add(ramp)))
	wf0, werr0 := t.finished()
	wt0 := time.Now()
	wp0 := throttleOf(groups)
	time.Sleep(time.Until(start.Add(o.dur)))
	wf1, werr1 := t.finished()
	wt1 := time.Now()
	wp1 := throttleOf(groups)
	if werr0 != nil || werr1 != nil {
		logf("no steady window: counting the finished actions failed: %v", errors.Join(werr0, werr1))
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return measured{}, err
	}
	n := submitted.Load()
	if err := t.waitFinished(f0+n, 10*time.Minute); err != nil {
		return measured{}, err
	}
	elapsed := time.Since(start)
	cpu1, pg1 := cpuOf(t.pids), treeCPU(t.pgPID)
	v1, iv1 := ctxSwitchesOf(t.pids)
	var per1, thr1 int64
	for _, g := range groups {
		p, th := g.throttled()
		per1, thr1 = per1+p, thr1+th
	}
	q1 := *t.queries
	c1, err := settledCommits(t.stat, t.dbname)
	if err != nil {
		return measured{}, err
	}
	w1, err := walSyncs(t.stat)
	if err != nil {
		return measured{}, err
	}
	m := measured{n: n, elapsed: elapsed, submitters: conc}
	if werr0 == nil && werr1 == nil && wt1.After(wt0) {
		m.windowRate = float64(wf1-wf0) / wt1.Sub(wt0).Seconds()
	}
	for i := range groups {
		if p := wp1[i][0] - wp0[i][0]; p > 0 {
			m.windowThrottled = append(m.windowThrottled, float64(wp1[i][1]-wp0[i][1])/float64(p))
		}
	}
	m.walSyncs = float64(w1-w0) / float64(n)
	m.rate = float64(n) / elapsed.Seconds()
	m.cpuMs = float64(cpu1-cpu0) / float64(time.Millisecond) / float64(n)
	m.idleMs = idle
	m.vcs, m.ivcs = float64(v1-v0)/float64(n), float64(iv1-iv0)/float64(n)
	m.netCPUMs = (float64(cpu1-cpu0)/float64(time.Millisecond) - idle*elapsed.Seconds()) / float64(n)
	m.pgCPUMs = float64(pg1-pg0) / float64(time.Millisecond) / float64(n)
	m.commits = float64(c1-c0-(q1-q0)) / float64(n)
	if per1 > per0 {
		m.throttled = float64(thr1-thr0) / float64(per1-per0)
	}
	return m, nil
}

// submitters is the number of submitters for n nodes (or n River
// clients) under load ("total", "per-node" or "rate"), and the suffix of
// the metrics measured with it ("" for total, the original figures).
func (o options) submitters(load string, n int) (int, string) {
	switch load {
	case "per-node":
		return o.conc * n, "_pn"
	case "rate":
		return o.conc * n, "_r"
	}
	return o.conc, ""
}

// paced sets t's rate per endpoint when load is "rate" (and returns t).
func (o options) paced(t *target, load string) *target {
	if load == "rate" {
		t.rate = o.rate
	}
	return t
}

// scale: CPU and commits per finished action at each N, no quotas; River
// with 3 clients as the peer. Once per load of -load.
func (r *report) scale() error {
	for run := 1; run <= r.o.runs; run++ {
		for _, load := range r.o.loads {
			if err := r.scaleRun(run, load); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *report) scaleRun(run int, load string) error {
	ref := map[string]float64{}
	for _, n := range r.o.nodes {
		conc, sfx := r.o.submitters(load, n)
		e, err := r.o.startCluster(n, r.o.tthreads, "warn", "")
		if err != nil {
			return err
		}
		m, err := r.o.paced(e.target(r.o.tasks), load).measure(r.o, conc, nil)
		e.stop()
		if err != nil {
			return fmt.Errorf("N=%d, %d submitters: %w", n, conc, err)
		}
		logf("scale run %d N=%d, %d submitters: %d actions in %.1fs = %.0f/s; node CPU %.3f ms (%.3f ms less idle), PostgreSQL CPU %.3f ms, %.2f commits and %.2f WAL fsyncs per action; %.1f voluntary and %.1f involuntary context switches of the nodes per action", run, n, conc, m.n, m.elapsed.Seconds(), m.rate, m.cpuMs, m.netCPUMs, m.pgCPUMs, m.commits, m.walSyncs, m.vcs, m.ivcs)
		r.add(fmt.Sprintf("cpu_per_action_ms_n%d%s", n, sfx), m.cpuMs, "ms")
		r.add(fmt.Sprintf("net_cpu_per_action_ms_n%d%s", n, sfx), m.netCPUMs, "ms")
		r.add(fmt.Sprintf("idle_cpu_ms_per_s_n%d%s", n, sfx), m.idleMs, "ms/s")
		r.add(fmt.Sprintf("commits_per_action_n%d%s", n, sfx), m.commits, "")
		r.add(fmt.Sprintf("pg_cpu_per_action_ms_n%d%s", n, sfx), m.pgCPUMs, "ms")
		r.add(fmt.Sprintf("wal_syncs_per_action_n%d%s", n, sfx), m.walSyncs, "")
		r.add(fmt.Sprintf("free_rate_n%d%s", n, sfx), m.rate, "/s")
		r.add(fmt.Sprintf("vcs_per_action_n%d%s", n, sfx), m.vcs, "")
		r.add(fmt.Sprintf("ivcs_per_action_n%d%s", n, sfx), m.ivcs, "")
		if n == 1 {
			ref["cpu"], ref["commits"], ref["pg"], ref["rate"], ref["net"] = m.cpuMs, m.commits, m.pgCPUMs, m.rate, m.netCPUMs
			ref["vcs"] = m.vcs
		} else if ref["cpu"] > 0 {
			r.add(fmt.Sprintf("cpu_ratio_n%d%s", n, sfx), m.cpuMs/ref["cpu"], "x")
			r.add(fmt.Sprintf("net_cpu_ratio_n%d%s", n, sfx), m.netCPUMs/ref["net"], "x")
			r.add(fmt.Sprintf("commits_ratio_n%d%s", n, sfx), m.commits/ref["commits"], "x")
			r.add(fmt.Sprintf("pgcpu_ratio_n%d%s", n, sfx), m.pgCPUMs/ref["pg"], "x")
			r.add(fmt.Sprintf("free_ratio_n%d%s", n, sfx), m.rate/ref["rate"], "x")
			if ref["vcs"] > 0 {
				r.add(fmt.Sprintf("vcs_ratio_n%d%s", n, sfx), m.vcs/ref["vcs"], "x")
			}
		}
		if n == 3 {
			ref["n3"] = m.rate
		}
	}
	conc, sfx := r.o.submitters(load, 3)
	re, err := startRiver(r.o, 3, r.o.tthreads)
	if err != nil {
		return err
	}
	m, err := r.o.paced(re.target(), load).measure(r.o, conc, nil)
	re.stop()
	if err != nil {
		return fmt.Errorf("river, %d submitters: %w", conc, err)
	}
	logf("scale run %d River ×3, %d submitters: %d jobs in %.1fs = %.0f/s; client CPU %.3f ms, PostgreSQL CPU %.3f ms, %.2f commits and %.2f WAL fsyncs per job", run, conc, m.n, m.elapsed.Seconds(), m.rate, m.cpuMs, m.pgCPUMs, m.commits, m.walSyncs)
	r.add("river_free_cpu_per_action_ms"+sfx, m.cpuMs, "ms")
	r.add("river_free_commits_per_action"+sfx, m.commits, "")
	r.add("river_free_wal_syncs_per_action"+sfx, m.walSyncs, "")
	r.add("river_free_pg_cpu_per_action_ms"+sfx, m.pgCPUMs, "ms")
	r.add("river_free_rate"+sfx, m.rate, "/s")
	if ref["n3"] > 0 {
		r.add("free_vs_river"+sfx, ref["n3"]/m.rate, "x")
	}
	return nil
}

// quotas: finished actions/s at each N with every node in a cgroup of the
// same CPU quota; the load generator (this process), PostgreSQL and etcd
// in a group of their own without a quota. Then River's 3 clients under
// the same quotas. Once per load of -load.
func (r *report) quotas() error {
	r.note("CPU quotas: cgroup v1 cpu controller (%s, cpu.cfs_quota_us = %.2f core per node, cpu.shares %d for each node, %d for the services and load generator); systemd-run --scope is not usable here (systemd is not PID 1) and cgroup v2 has no cpu controller on this machine", cgroupRoot, r.o.quota, shares, serviceShares)
	for run := 1; run <= r.o.runs; run++ {
		for _, load := range r.o.loads {
			if load == "rate" {
				continue // the rate, not the quota, would set the pace
			}
			if err := r.quotaLoad(run, load); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *report) quotaLoad(run int, load string) error {
	var ref, wref, n3 float64
	for _, n := range r.o.nodes {
		conc, sfx := r.o.submitters(load, n)
		e, err := r.o.startCluster(n, r.o.tthreads, "warn", "")
		if err != nil {
			return err
		}
		m, err := r.quotaRun(r.o.paced(e.target(r.o.tasks), load), conc, append(e.etcdPIDs(), e.c.PG.PID()))
		e.stop()
		if err != nil {
			return fmt.Errorf("N=%d, %d submitters: %w", n, conc, err)
		}
		logf("quota run %d N=%d, %d submitters: %d actions in %.1fs = %.0f/s (%.0f%% of periods throttled; node CPU %.3f ms per action); steady window %.0f/s, throttled %s", run, n, conc, m.n, m.elapsed.Seconds(), m.rate, 100*m.throttled, m.cpuMs, m.windowRate, pcts(m.windowThrottled))
		r.add(fmt.Sprintf("quota_rate_n%d%s", n, sfx), m.rate, "/s")
		r.add(fmt.Sprintf("quota_throttled_n%d%s", n, sfx), m.throttled, "")
		r.add(fmt.Sprintf("quota_cpu_per_action_ms_n%d%s", n, sfx), m.cpuMs, "ms")
		if m.windowRate > 0 {
			r.add(fmt.Sprintf("quota_window_rate_n%d%s", n, sfx), m.windowRate, "/s")
		}
		if len(m.windowThrottled) > 0 {
			r.add(fmt.Sprintf("quota_window_throttled_min_n%d%s", n, sfx), slices.Min(m.windowThrottled), "")
		}
		if n == 1 {
			ref, wref = m.rate, m.windowRate
		} else {
			if ref > 0 {
				r.add(fmt.Sprintf("quota_ratio_n%d%s", n, sfx), m.rate/ref, "x")
			}
			if wref > 0 && m.windowRate > 0 {
				r.add(fmt.Sprintf("quota_window_ratio_n%d%s", n, sfx), m.windowRate/wref, "x")
			}
		}
		if n == 3 {
			n3 = m.rate
		}
	}
	conc, sfx := r.o.submitters(load, 3)
	re, err := startRiver(r.o, 3, r.o.tthreads)
	if err != nil {
		return err
	}
	m, err := r.quotaRun(r.o.paced(re.target(), load), conc, []int{re.pg.PID()})
	re.stop()
	if err != nil {
		return fmt.Errorf("river, %d submitters: %w", conc, err)
	}
	logf("quota run %d River ×3, %d submitters: %d jobs in %.1fs = %.0f/s (%.0f%% throttled); steady window %.0f/s, throttled %s", run, conc, m.n, m.elapsed.Seconds(), m.rate, 100*m.throttled, m.windowRate, pcts(m.windowThrottled))
	r.add("river_quota_rate"+sfx, m.rate, "/s")
	r.add("river_quota_throttled"+sfx, m.throttled, "")
	if n3 > 0 {
		r.add("quota_vs_river"+sfx, n3/m.rate, "x")
	}
	return nil
}

// shares is cpu.shares of every group the benchmark makes (the default
// is 1024): on a machine other work keeps busy, a capped node should get
// its quota, and the services what they need.
const shares = 4096

// serviceShares is cpu.shares of the services group (PostgreSQL, etcd, the
// load generator): high, so that on a machine other work keeps busy the
// capped nodes, not the services they share, are what limits (with about
// 30 other runnable tasks, 4096 left them a sixth of a core).
const serviceShares = 32768

func (e *env) etcdPIDs() []int {
	var p []int
	for _, m := range e.c.Etcd.Members {
		p = append(p, m.PID())
	}
	return p
}

// quotaRun puts each of t's processes in a cgroup of its own with the
// quota, the services (with their children) and this process in one
// without, measures, and moves everything back.
func (r *report) quotaRun(t *target, conc int, services []int) (measured, error) {
	tag := fmt.Sprintf("clusterbench-%d", os.Getpid())
	var groups []*cgroup
	defer func() {
		for _, g := range groups {
			g.remove()
		}
	}()
	svc, err := newCgroup(tag+"-services", 0, serviceShares)
	if err != nil {
		return measured{}, err
	}
	groups = append(groups, svc)
	for _, p := range services {
		for _, q := range append([]int{p}, procstat.Children(p)...) {
			if err := svc.add(q); err != nil {
				return measured{}, err
			}
		}
	}
	if err := svc.add(os.Getpid()); err != nil {
		return measured{}, err
	}
	var capped []*cgroup
	for i, p := range t.pids {
		g, err := newCgroup(fmt.Sprintf("%s-node%d", tag, i+1), r.o.quota, shares)
		if err != nil {
			return measured{}, err
		}
		groups = append(groups, g)
		capped = append(capped, g)
		if err := g.add(p); err != nil {
			return measured{}, err
		}
	}
	m, err := t.measure(r.o, conc, capped)
	return m, err
}

// pcts formats shares as percentages ("97% 100% 88%").
func pcts(v []float64) string {
	s := ""
	for i, x := range v {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%.0f%%", 100*x)
	}
	return s
}
