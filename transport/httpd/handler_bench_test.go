package httpd

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/valyala/fasthttp"

	"github.com/connectorhq/connector/actors/queue"
	"github.com/connectorhq/connector/messages"
)

// benchServer is a front end with an in-memory queue holding one running
// action, for measuring what one request costs in the handler.
func benchServer(b *testing.B) (*Server, string) {
	b.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }))
	repo := newTestRepo()
	q, err := queue.Start(sys, queue.Config{Name: "fetch", Repository: repo, MaximumThreads: 1})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Config{System: sys, Queue: q, Repository: repo})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := q.Submit(context.Background(), &messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE", Tasks: []string{"MYTASK"},
		Params: messages.Params{{Name: "ConfigSection", Value: "MyTask"}}})
	if err != nil {
		b.Fatal(err)
	}
	for {
		st, err := q.Status(context.Background(), tok)
		if err != nil {
			b.Fatal(err)
		}
		if st.State == messages.State_STATE_PROCESSING {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.Cleanup(func() {
		repo.ReleaseAll() // the running action's work ends (goleak)
		sys.Shutdown()
	})
	return srv, tok
}

func benchRequest(b *testing.B, srv *Server, uri string) {
	var req fasthttp.Request
	req.SetRequestURI(uri)
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		ctx.Init(&req, nil, nil)
		srv.handle(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatal(string(ctx.Response.Body()))
		}
	}
}

func BenchmarkHandleGetStatusByToken(b *testing.B) {
	srv, tok := benchServer(b)
	benchRequest(b, srv, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(tok))
}

func BenchmarkHandleQueueStatus(b *testing.B) {
	srv, _ := benchServer(b)
	benchRequest(b, srv, "/action=QueueInfo&QueueName=fetch&QueueAction=QueueStatus")
}

// BenchmarkHandleGetStatusList is the list of httpbench's list scenario
// (the 100 most recently finished of 1000 finished Collect actions) through the
// handler: "encoded", as the server runs it (queue.Config.ListEntry: the
// ended actions' entries kept encoded), and "asked", without list entries
// (every action asked for its status and encoded, as every list was before).
func BenchmarkHandleGetStatusList(b *testing.B) {
	for _, encoded := range []bool{true, false} {
		name := "asked"
		if encoded {
			name = "encoded"
		}
		b.Run(name, func(b *testing.B) {
			discard := slog.New(slog.NewTextHandler(io.Discard, nil))
			sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }))
			b.Cleanup(func() { sys.Shutdown() })
			repo := newTestRepo()
			qc := queue.Config{Name: "fetch", Repository: repo, MaximumThreads: 4}
			if encoded {
				qc.ListEntry = ListEntry
			}
			q, err := queue.Start(sys, qc)
			if err != nil {
				b.Fatal(err)
			}
			srv, err := New(Config{System: sys, Queue: q, Repository: repo})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for range 1000 {
				if _, err := q.Submit(ctx, &messages.ActionSpec{Action: "FETCH", FetchAction: "COLLECT", Tasks: []string{"MYTASK"},
					Params: messages.Params{{Name: "ConfigSection", Value: "MyTask"}}}); err != nil {
					b.Fatal(err)
				}
			}
			for {
				qs, err := q.QueueStatus(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if qs.Finished == 1000 {
					break
				}
				time.Sleep(time.Millisecond)
			}
			benchRequest(b, srv, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&State=Finished&Sort-By=finish-time&MaxResults=100")
		})
	}
}
