package httpd

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/valyala/fasthttp"

	"github.com/connectorhq/connector/actors/queue"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/metrics"
)

// BenchmarkGuard measures what roles and metrics cost a request: Submit
// (Fetch) and GetStatus by token, through the whole handler, with the
// guard and the metrics (IDOL's default roles, the default Host
// allowlist, every metric) against the same server without either, in the
// same run. Throughput ratio = ns/op off ÷ ns/op on (bench/RESULTS.md,
// "Roles and metrics").
//
//	go test -run '^$' -bench BenchmarkGuard -count 5 -cpu 2 ./transport/httpd
func BenchmarkGuard(b *testing.B) {
	for _, req := range []struct{ name, uri string }{
		{"Submit", "/action=Fetch&FetchAction=Collect&ConfigSection=MyTask"},
		{"GetStatus", ""},
	} {
		for _, on := range []bool{false, true} {
			name := req.name + "/off"
			if on {
				name = req.name + "/on"
			}
			b.Run(name, func(b *testing.B) {
				srv, tok := guardBenchServer(b, on)
				uri := req.uri
				if uri == "" {
					uri = "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token=" + url.QueryEscape(tok)
				}
				client := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					var r fasthttp.Request
					r.SetRequestURI(uri)
					r.Header.SetHost("127.0.0.1:7000")
					var ctx fasthttp.RequestCtx
					for pb.Next() {
						ctx.Init(&r, client, nil)
						srv.handle(&ctx)
						if ctx.Response.StatusCode() != 200 {
							b.Fatal(string(ctx.Response.Body()))
						}
					}
				})
			})
		}
	}
}

// guardBenchServer is a front end over an in-memory queue whose Collects
// finish at once (retention keeps 1000), with the guard and metrics on or
// off, and the token of a running action.
func guardBenchServer(b *testing.B, on bool) (*Server, string) {
	b.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }))
	repo := newTestRepo()
	var m *metrics.Metrics
	qc := queue.Config{Name: "fetch", Repository: repo, MaximumThreads: 4, MaximumQueueSize: 1 << 30, MaximumFinishedActions: 1000}
	cfg := Config{System: sys, Repository: repo, RequestLogSize: -1}
	if on {
		m = metrics.New(metrics.Options{Queue: "fetch", FetchActions: repo.FetchActions()})
		qc.Observer = m
		cfg.Metrics = m
		cfg.AllowedHosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	q, err := queue.Start(sys, qc)
	if err != nil {
		b.Fatal(err)
	}
	cfg.Queue = q
	srv, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	srv.unguarded = !on
	tok, err := q.Submit(context.Background(), &messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE", Tasks: []string{"MYTASK"},
		Params: messages.Params{{Name: "ConfigSection", Value: "MyTask"}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		repo.ReleaseAll()
		sys.Shutdown()
	})
	return srv, tok
}

// BenchmarkGuardInterleaved is BenchmarkGuard made robust to a machine
// whose load drifts (shared cores): blocks of requests go to the server
// without guard and metrics and to the one with both, alternately, and
// each block pair gives one throughput ratio (on ÷ off); the reported
// ratio is the median of the pairs. InProcess calls the handler from two
// goroutines (the guard's share of a request at its largest); HTTP sends
// real requests over loopback from 8 connections (what a client sees).
//
//	go test -run '^$' -bench BenchmarkGuardInterleaved -benchtime 200x -cpu 2 ./transport/httpd
func BenchmarkGuardInterleaved(b *testing.B) {
	for _, mode := range []string{"InProcess", "HTTP"} {
		for _, name := range []string{"Submit", "GetStatus"} {
			b.Run(mode+"/"+name, func(b *testing.B) { guardInterleaved(b, mode == "HTTP", name) })
		}
	}
}

func guardInterleaved(b *testing.B, overHTTP bool, name string) {
	off, offTok := guardBenchServer(b, false)
	on, onTok := guardBenchServer(b, true)
	uri := func(tok string) string {
		if name == "Submit" {
			return "/action=Fetch&FetchAction=Collect&ConfigSection=MyTask"
		}
		return "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token=" + url.QueryEscape(tok)
	}
	workers, block := 2, 500
	if overHTTP {
		workers, block = 8, 800
	}
	client := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
	serve := func(srv *Server) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go func() { _ = srv.Serve(ln) }()
		b.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
		return ln.Addr().String()
	}
	var offAddr, onAddr string
	if overHTTP {
		offAddr, onAddr = serve(off), serve(on)
	}
	runBlock := func(srv *Server, addr, u string) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var r fasthttp.Request
				r.SetRequestURI(u)
				r.Header.SetHost("127.0.0.1:7000")
				if overHTTP {
					hc := &fasthttp.HostClient{Addr: addr, MaxConns: 1}
					var resp fasthttp.Response
					for range block / workers {
						if err := hc.Do(&r, &resp); err != nil || resp.StatusCode() != 200 {
							b.Error(err, resp.StatusCode())
							return
						}
					}
					hc.CloseIdleConnections()
					return
				}
				var ctx fasthttp.RequestCtx
				for range block / workers {
					ctx.Init(&r, client, nil)
					srv.handle(&ctx)
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	var ratios []float64
	var tOff, tOn time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var a, c time.Duration
		if i%2 == 0 { // alternate which goes first
			a, c = runBlock(off, offAddr, uri(offTok)), runBlock(on, onAddr, uri(onTok))
		} else {
			c, a = runBlock(on, onAddr, uri(onTok)), runBlock(off, offAddr, uri(offTok))
		}
		tOff, tOn = tOff+a, tOn+c
		ratios = append(ratios, float64(a)/float64(c))
	}
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "ratio")
	b.ReportMetric(float64(tOff.Nanoseconds())/float64(b.N*block), "ns/op-off")
	b.ReportMetric(float64(tOn.Nanoseconds())/float64(b.N*block), "ns/op-on")
}
