package httpd

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/valyala/fasthttp"

	"github.com/connectorhq/connector/actors/queue"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/metrics"
)

// BenchmarkFrontEnd is the front end's fixed cost per request, configured
// as the server runs it (cmd/connector): the guard (IDOL's default roles,
// the default Host allowlist, the refused standard parameters), the
// request log, every metric, and list entries kept encoded. The requests
// are httpbench's: GetStatus by token of a queued action (the queue
// paused), the list of the 100 most recently finished of 10,000 retained
// actions, and a Fetch submit into the paused queue. The handler is called
// directly (no sockets), so ns/op and allocs/op are the front end's and
// the queue's, without the transport that the ceiling pays too.
//
// cpu-ns/op is the process's CPU time per request (getrusage).
//
//	go test -run '^$' -bench BenchmarkFrontEnd -benchmem -count 5 ./transport/httpd
func BenchmarkFrontEnd(b *testing.B) {
	b.Run("GetStatusByToken", func(b *testing.B) {
		srv, q := frontEndServer(b, 0)
		var uris []string
		for range 64 {
			tok, err := q.Submit(context.Background(), collectSpec())
			if err != nil {
				b.Fatal(err)
			}
			uris = append(uris, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(tok))
		}
		frontEndLoop(b, srv, uris)
	})
	b.Run("List100of10000", func(b *testing.B) {
		srv, _ := frontEndServer(b, 10000)
		frontEndLoop(b, srv, []string{"/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&State=Finished&Sort-By=finish-time&MaxResults=100"})
	})
	b.Run("Submit", func(b *testing.B) {
		srv, _ := frontEndServer(b, 0)
		frontEndLoop(b, srv, []string{"/action=Fetch&FetchAction=Collect&ConfigSection=MyTask"})
	})
}

func collectSpec() *messages.ActionSpec {
	return &messages.ActionSpec{Action: "FETCH", FetchAction: "COLLECT", Tasks: []string{"MYTASK"},
		Params: messages.Params{{Name: "ConfigSection", Value: "MyTask"}}}
}

// frontEndServer is a front end configured as the server runs it, over an
// in-memory queue holding finished Collect actions and then paused.
func frontEndServer(b *testing.B, finished int) (*Server, *queue.Queue) {
	b.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }))
	repo := newTestRepo()
	m := metrics.New(metrics.Options{Queue: "fetch", FetchActions: repo.FetchActions()})
	q, err := queue.Start(sys, queue.Config{Name: "fetch", Repository: repo, MaximumThreads: 4, MaximumQueueSize: 1 << 30,
		MaximumFinishedActions: max(finished, 1000), Observer: m, ListEntry: ListEntry})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		repo.ReleaseAll()
		sys.Shutdown()
	})
	srv, err := New(Config{System: sys, Queue: q, Repository: repo, Metrics: m, Logger: discard,
		AllowedHosts: []string{"localhost", "127.0.0.1", "::1"}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for range finished {
		if _, err := q.Submit(ctx, collectSpec()); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		qs, err := q.QueueStatus(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if int(qs.Finished) >= finished {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d actions finished after a minute", qs.Finished, finished)
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := q.Pause(ctx); err != nil {
		b.Fatal(err)
	}
	return srv, q
}

// frontEndLoop sends the requests uris in turn from 127.0.0.1 through the
// handler, each checked for an ACI success.
func frontEndLoop(b *testing.B, srv *Server, uris []string) {
	reqs := make([]fasthttp.Request, len(uris))
	for i, u := range uris {
		reqs[i].SetRequestURI(u)
		reqs[i].Header.SetHost("127.0.0.1:7000")
	}
	client := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	i := 0
	cpu0 := processCPU(b)
	for b.Loop() {
		ctx.Init(&reqs[i%len(reqs)], client, nil)
		srv.handle(&ctx)
		if body := ctx.Response.Body(); ctx.Response.StatusCode() != 200 || !isSuccess(body) {
			b.Fatal(string(body))
		}
		i++
	}
	// The process's CPU time per request (the handler, the actors it asks,
	// the garbage collector): on a shared machine it moves far less than
	// ns/op, which counts the time other processes hold the cores.
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// isSuccess reports whether an ACI reply says SUCCESS (in its head).
func isSuccess(body []byte) bool {
	return bytes.Contains(body[:min(len(body), 300)], []byte("<response>SUCCESS</response>"))
}
