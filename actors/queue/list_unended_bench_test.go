package queue

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/connectorhq/connector/fetch/fetchtest"
	"github.com/connectorhq/connector/messages"
)

// BenchmarkListUnended measures a list of k unfinished actions out of n
// in memory (httpbench -mode unended in process): k queued ones on a
// paused queue, or k running ones (MaximumThreads=k, the rest queued
// behind them). List is what the JSON front end asks, ListEntries what
// the XML one asks. cpu-ns/op is the process's CPU time per list.
//
//	go test -run '^$' -bench ListUnended -benchmem ./actors/queue/
func BenchmarkListUnended(b *testing.B) {
	for _, c := range []struct {
		n, k    int
		running bool
	}{{10_000, 100, false}, {100_000, 1000, false}, {10_000, 100, true}, {10_000, 1000, true}} {
		discard := slog.New(slog.NewTextHandler(io.Discard, nil))
		sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }))
		threads := 4
		if c.running {
			threads = c.k
		}
		q, err := Start(sys, Config{Name: "fetch", Repository: &fetchtest.Repo{Untracked: true}, MaximumQueueSize: 1 << 30,
			MaximumThreads: threads, TokenPort: 7000, StopTimeout: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		submit := func(n int, mode string) {
			for range n {
				if _, err := q.Submit(ctx, &messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE",
					Params: messages.Params{{Name: "ConfigSection", Value: "MyTask"}, {Name: "Mode", Value: mode}}}); err != nil {
					b.Fatal(err)
				}
			}
		}
		state := messages.State_STATE_QUEUED
		if c.running {
			state = messages.State_STATE_PROCESSING
			submit(c.k, "untilstop")
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
				qs, err := q.QueueStatus(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if qs.Processing == uint64(c.k) {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("%d of %d running", qs.Processing, c.k)
				}
			}
			submit(c.n-c.k, "instant")
		} else {
			if _, err := q.Pause(ctx); err != nil {
				b.Fatal(err)
			}
			submit(c.n, "instant")
		}
		f := &messages.ListActions{States: []messages.State{state}, MaxResults: uint32(c.k)}
		for _, kind := range []string{"list", "entries"} {
			b.Run(fmt.Sprintf("%s/%s/n=%d/k=%d", messages.StatusName(state), kind, c.n, c.k), func(b *testing.B) {
				b.ReportAllocs()
				cpu0 := processCPU(b)
				for range b.N {
					var got int
					if kind == "list" {
						l, err := q.List(ctx, f)
						if err != nil {
							b.Fatal(err)
						}
						got = len(l)
					} else {
						l, err := q.ListEntries(ctx, f)
						if err != nil {
							b.Fatal(err)
						}
						got = len(l)
					}
					if got != c.k {
						b.Fatalf("listed %d, want %d", got, c.k)
					}
				}
				b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
		// A submit's latency while two goroutines list in a loop: what
		// the lists hold the QueueManager for (beside: ns per submit,
		// one submitter; compare alone, the same without lists).
		for _, beside := range []string{"alone", "beside"} {
			b.Run(fmt.Sprintf("%s/submit-%s/n=%d/k=%d", messages.StatusName(state), beside, c.n, c.k), func(b *testing.B) {
				stop := make(chan struct{})
				var wg sync.WaitGroup
				if beside == "beside" {
					for range 2 {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for {
								select {
								case <-stop:
									return
								default:
								}
								if _, err := q.ListEntries(ctx, f); err != nil {
									b.Error(err)
									return
								}
							}
						}()
					}
				}
				b.ResetTimer()
				submit(b.N, "instant")
				b.StopTimer()
				close(stop)
				wg.Wait()
			})
		}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_ = q.Shutdown(sctx)
		cancel()
		sys.Shutdown()
	}
}
