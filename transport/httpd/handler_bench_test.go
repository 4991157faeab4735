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
	b.Cleanup(func() { sys.Shutdown() })
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
