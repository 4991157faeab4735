// Command peers measures the queue libraries we compare with, in process,
// on servers the caller started (bench/Makefile starts them), and prints
// result JSON with the same metric names as cmd/inproc:
//
//   - asynq v0.26.0 on Redis (-redis ADDR; durability is whatever that
//     Redis is configured with: appendfsync everysec or always, read
//     back with CONFIG GET and recorded);
//   - River v0.51.1 with riverpgxv5 on PostgreSQL (-pg DSN;
//     synchronous_commit read back and recorded).
//
// Rows: enqueue throughput from -conc goroutines for -dur with no worker
// running; burn-down of -n no-op jobs (enqueue all, then start -workers
// workers, until every one is complete); status by id (GetTaskInfo,
// JobGet) from -conc goroutines for -dur; cancel of a queued job
// (DeleteTask, JobCancel); cancel of a running job (CancelProcessing,
// JobCancel): time until the handler's context is done and until the
// status reads final.
//
// The data of each run is removed first (FLUSHDB; TRUNCATE river_job), so
// point it only at the servers the Makefile started.
//
// Usage: peers -system asynq -redis 127.0.0.1:6390 | -system river -pg postgres://...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/connectorhq/connector/bench/internal/latency"
	"github.com/connectorhq/connector/bench/internal/loop"
	"github.com/connectorhq/connector/bench/internal/probe"
	"github.com/connectorhq/connector/bench/internal/result"
)

type options struct {
	system, redis, pg           string
	dur                         time.Duration
	conc, n, workers, prepare   int
	cancelQueued, cancelRunning int
	rows                        map[string]bool
}

func main() {
	var o options
	flag.StringVar(&o.system, "system", "asynq", "asynq or river")
	flag.StringVar(&o.redis, "redis", "127.0.0.1:6390", "asynq: Redis address (its data is flushed)")
	flag.StringVar(&o.pg, "pg", "", "river: PostgreSQL DSN (river_job is truncated)")
	flag.DurationVar(&o.dur, "dur", 3*time.Second, "duration of enqueue and status")
	flag.IntVar(&o.conc, "conc", 16, "goroutines enqueuing or asking")
	flag.IntVar(&o.n, "n", 100_000, "jobs of the burn-down")
	flag.IntVar(&o.workers, "workers", 16, "worker concurrency of the burn-down")
	flag.IntVar(&o.prepare, "prepare", 1000, "jobs the status row cycles over")
	flag.IntVar(&o.cancelQueued, "cancel-queued", 200, "iterations of cancel of a queued job")
	flag.IntVar(&o.cancelRunning, "cancel-running", 100, "iterations of cancel of a running job")
	rows := flag.String("rows", "submit,status,cancel,stop,burn", "rows to measure")
	skipBurn := flag.Bool("skip-burn", false, "leave out the burn-down (same as -rows without burn)")
	flag.Parse()
	o.rows = map[string]bool{}
	for _, r := range strings.Split(*rows, ",") {
		o.rows[strings.TrimSpace(r)] = true
	}
	if *skipBurn {
		delete(o.rows, "burn")
	}
	var sys system
	switch o.system {
	case "asynq":
		sys = &asynqSystem{addr: o.redis}
	case "river":
		sys = &riverSystem{dsn: o.pg}
	default:
		result.Fatal("peers", fmt.Errorf("unknown -system %q", o.system))
	}
	out := result.New("peers", o.system)
	out.Info["gomaxprocs"] = fmt.Sprint(runtime.GOMAXPROCS(0))
	if err := run(o, sys, out); err != nil {
		result.Fatal("peers", err)
	}
	if err := out.Write(os.Stdout); err != nil {
		result.Fatal("peers", err)
	}
}

// system is one peer, driven the same way as the others.
type system interface {
	// open connects, records the durability settings and resets the data.
	open(ctx context.Context, out *result.Output) error
	reset(ctx context.Context) error
	close()
	// enqueue adds one no-op job (block: one that runs until cancelled)
	// and returns its id.
	enqueue(ctx context.Context, block bool) (string, error)
	// startWorkers starts n workers; h is told about each job.
	startWorkers(ctx context.Context, n int, h *hooks) error
	stopWorkers(ctx context.Context) error
	// waitDrained returns once every job enqueued has completed and the
	// store says so.
	waitDrained(ctx context.Context, n int) error
	status(ctx context.Context, id string) (string, error)
	// cancelQueued cancels a queued job; it returns once the call has.
	cancelQueued(ctx context.Context, id string) error
	// queuedGone reports whether a cancelled queued job reads final.
	queuedFinal(ctx context.Context, id string) (bool, error)
	cancelRunning(ctx context.Context, id string) error
	// runningFinal reports whether a cancelled running job reads final,
	// and the state it read.
	runningFinal(ctx context.Context, id string) (bool, string, error)
}

// hooks tell the benchmark about the jobs the workers run.
type hooks struct {
	done atomic.Int64
	*probe.Probe
}

func newHooks() *hooks { return &hooks{Probe: probe.New()} }

// work is what every worker runs: a no-op, or (block) wait until the
// context ends.
func (h *hooks) work(ctx context.Context, id string, block bool) error {
	if !block {
		h.done.Add(1)
		return nil
	}
	close(h.Started(id))
	<-ctx.Done()
	h.Observed(id) <- time.Now()
	return ctx.Err()
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func run(o options, sys system, out *result.Output) error {
	ctx := context.Background()
	if err := sys.open(ctx, out); err != nil {
		return err
	}
	defer sys.close()

	if o.rows["submit"] {
		if err := submitRow(ctx, o, sys, out); err != nil {
			return err
		}
	}
	if o.rows["status"] {
		if err := statusRow(ctx, o, sys, out); err != nil {
			return err
		}
	}
	if o.rows["cancel"] {
		if err := cancelRow(ctx, o, sys, out); err != nil {
			return err
		}
	}
	if o.rows["stop"] {
		if err := stopRow(ctx, o, sys, out); err != nil {
			return err
		}
	}
	if o.rows["burn"] {
		return burnRow(ctx, o, sys, out)
	}
	return nil
}

// submitRow: enqueue throughput, no worker running.
func submitRow(ctx context.Context, o options, sys system, out *result.Output) error {
	h := latency.New()
	n, el, err := loop.Run(o.conc, o.dur, func(int, int) error {
		t0 := time.Now()
		_, err := sys.enqueue(ctx, false)
		h.Record(time.Since(t0))
		return err
	})
	if err != nil {
		return fmt.Errorf("peers: enqueue: %w", err)
	}
	out.Add("submit_per_s", float64(n)/el.Seconds(), "/s")
	h.AddTo(out, "submit")
	return nil
}

// statusRow: status by id over prepared jobs.
func statusRow(ctx context.Context, o options, sys system, out *result.Output) error {
	if err := sys.reset(ctx); err != nil {
		return err
	}
	ids := make([]string, o.prepare)
	for i := range ids {
		var err error
		if ids[i], err = sys.enqueue(ctx, false); err != nil {
			return fmt.Errorf("peers: prepare: %w", err)
		}
	}
	h := latency.New()
	n, el, err := loop.Run(o.conc, o.dur, func(g, i int) error {
		t0 := time.Now()
		_, err := sys.status(ctx, ids[(g*7919+i)%len(ids)])
		h.Record(time.Since(t0))
		return err
	})
	if err != nil {
		return fmt.Errorf("peers: status: %w", err)
	}
	out.Add("status_per_s", float64(n)/el.Seconds(), "/s")
	h.AddTo(out, "status")
	return nil
}

// cancelRow: cancel of queued jobs.
func cancelRow(ctx context.Context, o options, sys system, out *result.Output) error {
	if err := sys.reset(ctx); err != nil {
		return err
	}
	reply, final := latency.New(), latency.New()
	for i := range o.cancelQueued {
		id, err := sys.enqueue(ctx, false)
		if err != nil {
			return fmt.Errorf("peers: cancel queued %d: %w", i, err)
		}
		t0 := time.Now()
		if err := sys.cancelQueued(ctx, id); err != nil {
			return fmt.Errorf("peers: cancel queued %d: %w", i, err)
		}
		reply.Record(time.Since(t0))
		if err := poll(func() (bool, error) { return sys.queuedFinal(ctx, id) }); err != nil {
			return fmt.Errorf("peers: cancel queued %d: %w", i, err)
		}
		final.Record(time.Since(t0))
	}
	reply.AddTo(out, "cancel_reply")
	final.AddTo(out, "cancel_final")
	return nil
}

// stopRow: cancel of running jobs.
func stopRow(ctx context.Context, o options, sys system, out *result.Output) error {
	if err := sys.reset(ctx); err != nil {
		return err
	}
	hk := newHooks()
	if err := sys.startWorkers(ctx, 1, hk); err != nil {
		return err
	}
	reply, observed, final := latency.New(), latency.New(), latency.New()
	states := map[string]int{}
	for i := range o.cancelRunning {
		id, err := sys.enqueue(ctx, true)
		if err != nil {
			return fmt.Errorf("peers: cancel running %d: %w", i, err)
		}
		select {
		case <-hk.Started(id):
		case <-time.After(30 * time.Second):
			return fmt.Errorf("peers: cancel running %d: job %s did not start in 30 s", i, id)
		}
		t0 := time.Now()
		if err := sys.cancelRunning(ctx, id); err != nil {
			return fmt.Errorf("peers: cancel running %d: %w", i, err)
		}
		reply.Record(time.Since(t0))
		select {
		case at := <-hk.Observed(id):
			observed.Record(at.Sub(t0))
		case <-time.After(30 * time.Second):
			return fmt.Errorf("peers: cancel running %d: the handler's context was not done 30 s after the cancel", i)
		}
		var state string
		if err := poll(func() (bool, error) {
			ok, st, err := sys.runningFinal(ctx, id)
			state = st
			return ok, err
		}); err != nil {
			return fmt.Errorf("peers: cancel running %d: %w (last state %q)", i, err, state)
		}
		final.Record(time.Since(t0))
		states[state]++
	}
	if err := sys.stopWorkers(ctx); err != nil {
		return err
	}
	reply.AddTo(out, "stop_reply")
	observed.AddTo(out, "stop_observed")
	final.AddTo(out, "stop_final")
	out.Info["stop_final_states"] = fmt.Sprint(states)
	return nil
}

// burnRow: enqueue n, then work them all.
func burnRow(ctx context.Context, o options, sys system, out *result.Output) error {
	if err := sys.reset(ctx); err != nil {
		return err
	}
	t0 := time.Now()
	var next atomic.Int64
	_, _, err := loop.Run(o.conc, time.Hour, func(int, int) error {
		if next.Add(1) > int64(o.n) {
			return loop.ErrStop
		}
		_, err := sys.enqueue(ctx, false)
		return err
	})
	if err != nil {
		return fmt.Errorf("peers: burn-down enqueue: %w", err)
	}
	enq := time.Since(t0)
	hk := newHooks()
	t1 := time.Now()
	if err := sys.startWorkers(ctx, o.workers, hk); err != nil {
		return err
	}
	if err := sys.waitDrained(ctx, o.n); err != nil {
		return err
	}
	drain := time.Since(t1)
	if err := sys.stopWorkers(ctx); err != nil {
		return err
	}
	out.Add("enqueue_per_s", float64(o.n)/enq.Seconds(), "/s")
	out.Add("drain_per_s", float64(o.n)/drain.Seconds(), "/s")
	out.Add("total_per_s", float64(o.n)/(enq+drain).Seconds(), "/s")
	out.Add("total_s", (enq + drain).Seconds(), "s")
	out.Info["n"] = fmt.Sprint(o.n)
	out.Info["workers"] = fmt.Sprint(o.workers)
	return nil
}

// poll calls f until it reports true, for up to a minute.
func poll(f func() (bool, error)) error {
	deadline := time.Now().Add(time.Minute)
	for {
		ok, err := f()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("not final after a minute")
		}
		time.Sleep(100 * time.Microsecond)
	}
}
