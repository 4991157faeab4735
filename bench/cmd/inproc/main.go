// Command inproc measures the action queue in process (actors/queue with
// a no-op repository, no HTTP), durable (a bbolt store in -dir) or in
// memory (no store: [Actions] UseInMemoryDatastore), and prints result
// JSON. One -mode per run:
//
//	submit    Submit from -conc goroutines for -dur on a paused queue
//	          (pure enqueue): throughput and latency
//	status    Status by token from -conc goroutines over -prepare actions
//	complete  burn-down: Submit -n actions on a paused queue, Resume, wait
//	          until every one has run (-threads at once); rates of both
//	memory    Submit -n actions that stay queued (MaximumThreads 1, the
//	          first blocks until stopped): heap and RSS per queued action
//	stop      -iters times: submit an action that runs until stopped, wait
//	          until it runs, Stop it: time to the Stop reply, to the
//	          repository seeing its context end, to Status reading Stopped
//	cancel    -iters times on a paused queue: submit, Cancel: time to the
//	          reply and to Status reading Cancelled
//
// Usage: inproc -mode submit -store durable [-dir DIR] [-dur 3s] [-conc 16]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/connectorhq/connector/actors/queue"
	"github.com/connectorhq/connector/bench/internal/benchrepo"
	"github.com/connectorhq/connector/bench/internal/latency"
	"github.com/connectorhq/connector/bench/internal/loop"
	"github.com/connectorhq/connector/bench/internal/probe"
	"github.com/connectorhq/connector/bench/internal/procstat"
	"github.com/connectorhq/connector/bench/internal/result"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

type options struct {
	mode, storeKind, dir string
	dur                  time.Duration
	conc, n, iters       int
	threads, prepare     int
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "submit", "submit, status, complete, memory, stop or cancel")
	flag.StringVar(&o.storeKind, "store", "durable", "durable (bbolt in -dir) or memory")
	flag.StringVar(&o.dir, "dir", "", "data folder of the durable store (default: a new temporary folder, removed after)")
	flag.DurationVar(&o.dur, "dur", 3*time.Second, "duration of submit and status")
	flag.IntVar(&o.conc, "conc", 16, "goroutines submitting or asking")
	flag.IntVar(&o.n, "n", 100_000, "actions for complete and memory")
	flag.IntVar(&o.iters, "iters", 300, "iterations of stop and cancel")
	flag.IntVar(&o.threads, "threads", 16, "MaximumThreads for complete")
	flag.IntVar(&o.prepare, "prepare", 1000, "actions the status mode asks about")
	flag.Parse()
	out := result.New("inproc", o.mode+"/"+o.storeKind)
	out.Info["gomaxprocs"] = fmt.Sprint(runtime.GOMAXPROCS(0))
	if err := run(o, out); err != nil {
		result.Fatal("inproc", err)
	}
	if err := out.Write(os.Stdout); err != nil {
		result.Fatal("inproc", err)
	}
}

// bench is one started queue and what it runs on.
type bench struct {
	sys  *actor.ActorSystem
	st   store.Store
	q    *queue.Queue
	repo *benchrepo.Repo
	dir  string
	tmp  bool
}

func start(o options, repo *benchrepo.Repo, threads, maxQueue int) (*bench, error) {
	b := &bench{repo: repo, dir: o.dir}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.sys = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }),
		actor.WithDeadLetterRequestLogging(false))
	cfg := queue.Config{
		Name: "fetch", Repository: repo, TokenPort: 7000,
		MaximumThreads: threads, MaximumQueueSize: maxQueue, Logger: discard,
	}
	switch o.storeKind {
	case "durable":
		if b.dir == "" {
			d, err := os.MkdirTemp("", "inproc-")
			if err != nil {
				return nil, fmt.Errorf("inproc: %w", err)
			}
			b.dir, b.tmp = d, true
		}
		st, err := store.Open(store.Config{Dir: b.dir})
		if err != nil {
			return nil, fmt.Errorf("inproc: open store: %w", err)
		}
		b.st, cfg.Store = st, st
	case "memory":
	default:
		return nil, fmt.Errorf("inproc: -store %q: want durable or memory", o.storeKind)
	}
	q, err := queue.Start(b.sys, cfg)
	if err != nil {
		b.close()
		return nil, err
	}
	b.q = q
	return b, nil
}

func (b *bench) close() {
	if b.q != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = b.q.Shutdown(ctx)
		cancel()
	}
	b.sys.Shutdown()
	if b.st != nil {
		_ = b.st.Close()
	}
	if b.tmp {
		_ = os.RemoveAll(b.dir)
	}
}

func (b *bench) fileSize() int64 {
	if b.st == nil {
		return 0
	}
	fi, err := os.Stat(filepath.Join(b.dir, store.DefaultFile))
	if err != nil {
		return 0
	}
	return fi.Size()
}

func run(o options, out *result.Output) error {
	switch o.mode {
	case "submit":
		return submit(o, out)
	case "status":
		return status(o, out)
	case "complete":
		return complete(o, out)
	case "memory":
		return memory(o, out)
	case "stop":
		return stop(o, out)
	case "cancel":
		return cancel(o, out)
	}
	return fmt.Errorf("inproc: unknown -mode %q", o.mode)
}

// submitMany submits n actions from conc goroutines and returns their
// tokens (when keep) and the elapsed time.
func submitMany(q *queue.Queue, n, conc int, keep bool, h *latency.Hist) ([]string, time.Duration, error) {
	var toks []string
	if keep {
		toks = make([]string, n)
	}
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				t0 := time.Now()
				tok, err := q.Submit(context.Background(), benchrepo.Spec())
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("inproc: submit %d: %w", i, err) })
					next.Store(int64(n))
					return
				}
				if h != nil {
					h.Record(time.Since(t0))
				}
				if keep {
					toks[i] = tok
				}
			}
		})
	}
	wg.Wait()
	return toks, time.Since(start), firstErr
}

func submit(o options, out *result.Output) error {
	b, err := start(o, benchrepo.New(benchrepo.Options{}), 4, 50_000_000)
	if err != nil {
		return err
	}
	defer b.close()
	if _, err := b.q.Pause(context.Background()); err != nil {
		return fmt.Errorf("inproc: pause: %w", err)
	}
	h := latency.New()
	n, el, err := loop.Run(o.conc, o.dur, func(int, int) error {
		t0 := time.Now()
		if _, err := b.q.Submit(context.Background(), benchrepo.Spec()); err != nil {
			return err
		}
		h.Record(time.Since(t0))
		return nil
	})
	if err != nil {
		return fmt.Errorf("inproc: submit: %w", err)
	}
	out.Add("submit_per_s", float64(n)/el.Seconds(), "/s")
	h.AddTo(out, "submit")
	return nil
}

func status(o options, out *result.Output) error {
	b, err := start(o, benchrepo.New(benchrepo.Options{}), 4, 50_000_000)
	if err != nil {
		return err
	}
	defer b.close()
	if _, err := b.q.Pause(context.Background()); err != nil {
		return fmt.Errorf("inproc: pause: %w", err)
	}
	toks, _, err := submitMany(b.q, o.prepare, o.conc, true, nil)
	if err != nil {
		return err
	}
	h := latency.New()
	// Goroutine g cycles through the tokens from the g-th on.
	n, el, err := loop.Run(o.conc, o.dur, func(g, i int) error {
		t0 := time.Now()
		if _, err := b.q.Status(context.Background(), toks[(g+i)%len(toks)]); err != nil {
			return err
		}
		h.Record(time.Since(t0))
		return nil
	})
	if err != nil {
		return fmt.Errorf("inproc: status: %w", err)
	}
	out.Add("status_per_s", float64(n)/el.Seconds(), "/s")
	h.AddTo(out, "status")
	return nil
}

func complete(o options, out *result.Output) error {
	repo := benchrepo.New(benchrepo.Options{})
	b, err := start(o, repo, o.threads, o.n+1000)
	if err != nil {
		return err
	}
	defer b.close()
	if _, err := b.q.Pause(context.Background()); err != nil {
		return fmt.Errorf("inproc: pause: %w", err)
	}
	_, enq, err := submitMany(b.q, o.n, o.conc, false, nil)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if _, err := b.q.Resume(context.Background()); err != nil {
		return fmt.Errorf("inproc: resume: %w", err)
	}
	deadline := t0.Add(10 * time.Minute)
	for {
		if repo.Ran() >= int64(o.n) {
			qs, err := b.q.QueueStatus(context.Background())
			if err != nil {
				return fmt.Errorf("inproc: queue status: %w", err)
			}
			if qs.Queued == 0 && qs.Processing == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("inproc: only %d of %d actions ran in 10 minutes", repo.Ran(), o.n)
		}
		time.Sleep(time.Millisecond)
	}
	drain := time.Since(t0)
	out.Add("enqueue_per_s", float64(o.n)/enq.Seconds(), "/s")
	out.Add("drain_per_s", float64(o.n)/drain.Seconds(), "/s")
	out.Add("total_per_s", float64(o.n)/(enq+drain).Seconds(), "/s")
	out.Add("total_s", (enq + drain).Seconds(), "s")
	if sz := b.fileSize(); sz > 0 {
		out.Add("store_file_mib", float64(sz)/(1<<20), "MiB")
	}
	out.Info["n"] = fmt.Sprint(o.n)
	out.Info["threads"] = fmt.Sprint(o.threads)
	return nil
}

func memory(o options, out *result.Output) error {
	repo := benchrepo.New(benchrepo.Options{Block: true})
	b, err := start(o, repo, 1, o.n+1000)
	if err != nil {
		return err
	}
	defer b.close()
	heap0, _ := procstat.HeapInUse()
	rss0, err := procstat.RSS(0)
	if err != nil {
		return err
	}
	if _, _, err := submitMany(b.q, o.n, o.conc, false, nil); err != nil {
		return err
	}
	qs, err := b.q.QueueStatus(context.Background())
	if err != nil {
		return fmt.Errorf("inproc: queue status: %w", err)
	}
	if int(qs.Queued+qs.Processing) != o.n {
		return fmt.Errorf("inproc: %d queued and %d processing, want %d in all", qs.Queued, qs.Processing, o.n)
	}
	heap1, _ := procstat.HeapInUse()
	rss1, err := procstat.RSS(0)
	if err != nil {
		return err
	}
	out.Add("heap_per_action_b", float64(int64(heap1)-int64(heap0))/float64(o.n), "B")
	out.Add("rss_per_action_b", float64(rss1-rss0)/float64(o.n), "B")
	out.Add("heap_total_mib", float64(heap1)/(1<<20), "MiB")
	out.Add("rss_total_mib", float64(rss1)/(1<<20), "MiB")
	if sz := b.fileSize(); sz > 0 {
		out.Add("store_file_mib", float64(sz)/(1<<20), "MiB")
	}
	out.Info["n"] = fmt.Sprint(o.n)
	return nil
}

// waitState polls Status until it reads want, and returns when it did.
func waitState(q *queue.Queue, tok string, want messages.State, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for {
		st, err := q.Status(context.Background(), tok)
		if err != nil {
			return time.Time{}, err
		}
		if st.GetState() == want {
			return time.Now(), nil
		}
		if messages.Terminal(st.GetState()) || time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("inproc: action %s is %s, waiting for %s", tok, messages.StatusName(st.GetState()), messages.StatusName(want))
		}
		runtime.Gosched()
	}
}

func stop(o options, out *result.Output) error {
	p := probe.New()
	repo := benchrepo.New(benchrepo.Options{Block: true,
		Started:  func(tok string) { close(p.Started(tok)) },
		Observed: func(tok string, at time.Time) { p.Observed(tok) <- at },
	})
	b, err := start(o, repo, 1, 100_000)
	if err != nil {
		return err
	}
	defer b.close()
	reply, observed, final := latency.New(), latency.New(), latency.New()
	for i := range o.iters {
		tok, err := b.q.Submit(context.Background(), benchrepo.Spec())
		if err != nil {
			return fmt.Errorf("inproc: submit %d: %w", i, err)
		}
		select {
		case <-p.Started(tok):
		case <-time.After(30 * time.Second):
			return fmt.Errorf("inproc: action %d did not start in 30 s", i)
		}
		sent := time.Now()
		r, err := b.q.Stop(context.Background(), tok)
		if err != nil {
			return fmt.Errorf("inproc: stop %d: %w", i, err)
		}
		reply.Record(time.Since(sent))
		var at time.Time
		select {
		case at = <-p.Observed(tok):
		case <-time.After(30 * time.Second):
			return fmt.Errorf("inproc: the work of action %d never saw its context end", i)
		}
		observed.Record(at.Sub(sent))
		if r.GetStatus().GetState() == messages.State_STATE_STOPPED {
			final.Record(time.Since(sent))
		} else {
			end, err := waitState(b.q, tok, messages.State_STATE_STOPPED, 30*time.Second)
			if err != nil {
				return err
			}
			final.Record(end.Sub(sent))
		}
		p.Forget(tok)
	}
	reply.AddTo(out, "stop_reply")
	observed.AddTo(out, "stop_observed")
	final.AddTo(out, "stop_final")
	return nil
}

func cancel(o options, out *result.Output) error {
	b, err := start(o, benchrepo.New(benchrepo.Options{}), 4, 100_000)
	if err != nil {
		return err
	}
	defer b.close()
	if _, err := b.q.Pause(context.Background()); err != nil {
		return fmt.Errorf("inproc: pause: %w", err)
	}
	reply, final := latency.New(), latency.New()
	for i := range o.iters {
		tok, err := b.q.Submit(context.Background(), benchrepo.Spec())
		if err != nil {
			return fmt.Errorf("inproc: submit %d: %w", i, err)
		}
		sent := time.Now()
		r, err := b.q.Cancel(context.Background(), tok)
		if err != nil {
			return fmt.Errorf("inproc: cancel %d: %w", i, err)
		}
		reply.Record(time.Since(sent))
		if r.GetStatus().GetState() != messages.State_STATE_CANCELLED {
			if _, err := waitState(b.q, tok, messages.State_STATE_CANCELLED, 30*time.Second); err != nil {
				return err
			}
		}
		final.Record(time.Since(sent))
	}
	reply.AddTo(out, "cancel_reply")
	final.AddTo(out, "cancel_final")
	return nil
}
