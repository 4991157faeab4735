package server

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
)

// BenchmarkScrape is one scrape of /metrics (the service port's handler
// work: gathering and writing the text format) with the queue empty and
// with 100,000 queued actions, in the same run: the queue's gauges come
// from the counts the QueueManager keeps, so the size of the queue should
// not matter (bench/RESULTS.md, "Roles and metrics").
//
//	go test -run '^$' -bench BenchmarkScrape -benchtime 2000x -count 5 ./server
func BenchmarkScrape(b *testing.B) {
	for _, n := range []int{0, 100000} {
		name := "empty"
		if n > 0 {
			name = "100k-queued"
		}
		b.Run(name, func(b *testing.B) {
			cfg := testConfig(b, "")
			cfg.Actions.UseInMemoryDatastore, cfg.Actions.MaximumQueueSize = true, 200000
			s, err := Start(cfg, Options{Port: -1, LogOutput: io.Discard, Repository: func(Deps) (fetch.Repository, error) { return newTestRepo(), nil }})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { stop(b, s) })
			if _, err := s.Queue().Pause(context.Background()); err != nil {
				b.Fatal(err)
			}
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < n; i += 8 {
						if _, err := s.Queue().Submit(context.Background(), &messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE", Tasks: []string{"T"}}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			qs, err := s.Queue().QueueStatus(context.Background())
			if err != nil || qs.Queued != uint64(n) {
				b.Fatalf("queued %d, want %d (%v)", qs.GetQueued(), n, err)
			}
			var ctx fasthttp.RequestCtx
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				ctx.Response.Reset()
				s.Metrics().Serve(&ctx)
			}
			b.ReportMetric(float64(len(ctx.Response.Body())), "bytes/scrape")
		})
	}
}
