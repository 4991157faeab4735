package queue

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// BenchmarkSubmit measures one submission on a paused queue (the actions
// stay queued, as in bench/cmd/inproc -mode submit), in memory and on a
// bbolt store: CPU and allocations per submitted action. Run with
// -benchmem (cpu-ns/op is the process's CPU time per submission, the
// figure to compare on a shared machine):
//
//	go test -run '^$' -bench Submit -benchmem -cpuprofile cpu.out ./actors/queue/
func BenchmarkSubmit(b *testing.B) {
	for _, kind := range []string{"memory", "durable"} {
		b.Run(kind, func(b *testing.B) {
			discard := slog.New(slog.NewTextHandler(io.Discard, nil))
			sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }))
			commits := &commitCounter{}
			cfg := Config{Name: "fetch", Repository: newTestRepo(), MaximumQueueSize: 1 << 30, TokenPort: 7000, Observer: commits}
			var st store.Store
			if kind == "durable" {
				var err error
				if st, err = store.Open(store.Config{Dir: b.TempDir()}); err != nil {
					b.Fatal(err)
				}
				cfg.Store = st
			}
			q, err := Start(sys, cfg)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := q.Pause(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_ = q.Shutdown(ctx)
				sys.Shutdown()
				if st != nil {
					_ = st.Close()
				}
			})
			b.ReportAllocs()
			b.SetParallelism(16) // 16 goroutines per GOMAXPROCS, like inproc -conc 16 on one core
			cpu0 := processCPU(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, err := q.Submit(context.Background(), &messages.ActionSpec{
						Action: "FETCH", FetchAction: "SYNCHRONIZE",
						Params: messages.Params{{Name: "ConfigSection", Value: "MyTask"}, {Name: "Mode", Value: "ok"}},
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			// CPU of the whole process per submission: what the wall
			// clock of ns/op hides on a machine shared with others.
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
			if n := commits.n.Load(); n > 0 {
				b.ReportMetric(float64(b.N)/float64(n), "submits/commit")
			}
		})
	}
}

// commitCounter counts group commits.
type commitCounter struct {
	noObserver
	n atomic.Int64
}

func (c *commitCounter) Committed(int, time.Duration, error) { c.n.Add(1) }

// processCPU returns the CPU time (user and system) the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
