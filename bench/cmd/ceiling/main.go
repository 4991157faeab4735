// Command ceiling is the HTTP reference: a bare fasthttp server whose
// handler does no work and answers every ACI request with a fixed,
// realistic autnresponse encoded once at start by transport/aci:
//
//   - action=Fetch: the token reply of an asynchronous action;
//   - action=QueueInfo&QueueAction=GetStatus&Token=...: one finished
//     Synchronize action;
//   - QueueInfo GetStatus without a token: MaxResults (default 100) such
//     actions, so that a list reply has the size the connector's would;
//   - any other QueueInfo (Pause, Resume, ...) and GetVersion: a short
//     SUCCESS reply.
//
// It listens on -addr (127.0.0.1, any free port by default), prints
// "listening ADDR" on standard output once it accepts connections, and
// serves until SIGINT or SIGTERM. The benchmarks drive it with the same
// load generator and concurrency as the connector, so the ratio
// connector/ceiling is the share of the bare HTTP stack the connector
// keeps.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/valyala/fasthttp"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/transport/aci"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (keep it on loopback)")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ceiling:", err)
		os.Exit(1)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	h := newHandler(port)
	srv := &fasthttp.Server{
		Handler:            h.serve,
		Name:               "ceiling",
		MaxRequestBodySize: 64 << 20,
		ReadTimeout:        30 * time.Second,
		WriteTimeout:       30 * time.Second,
		IdleTimeout:        120 * time.Second,
		ReadBufferSize:     16 << 10,
		CloseOnShutdown:    true,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Printf("listening %s\n", ln.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
		_ = srv.Shutdown()
	case err := <-done:
		if err != nil {
			fmt.Fprintln(os.Stderr, "ceiling:", err)
			os.Exit(1)
		}
	}
}

type handler struct {
	token, status, other []byte
	port                 int
	now                  time.Time
	lists                sync.Map // int → []byte
}

func newHandler(port int) *handler {
	h := &handler{port: port, now: time.Now()}
	tok := messages.NewToken("127.0.0.1", port, "FETCH", uuid.Must(uuid.NewV7()))
	h.token = encode("FETCH", aci.TokenNode(tok))
	h.status = encode("QUEUEINFO", aci.Container("actions", h.action(tok)))
	h.other = encode("QUEUEINFO")
	return h
}

func encode(action string, data ...aci.Node) []byte {
	b, _ := aci.Encode(nil, aci.FormatXML, &aci.Reply{Action: action, Data: data})
	return b
}

// action is a finished Synchronize that found 12 pages and added 3.
func (h *handler) action(tok string) aci.Node {
	ms := h.now.UnixMilli()
	st := &messages.ActionStatus{
		Token: tok, State: messages.State_STATE_FINISHED, FetchAction: "SYNCHRONIZE",
		QueuedUnixMs: ms - 3000, StartedUnixMs: ms - 2000, EndedUnixMs: ms - 1000,
		Counts: []*messages.DocumentCount{{Task: "MYTASK", Seen: 12, Added: 3, Unchanged: 9}},
	}
	return aci.ActionNode(st, h.now)
}

func (h *handler) list(n int) []byte {
	if b, ok := h.lists.Load(n); ok {
		return b.([]byte)
	}
	nodes := make([]aci.Node, n)
	for i := range nodes {
		nodes[i] = h.action(messages.NewToken("127.0.0.1", h.port, "FETCH", uuid.Must(uuid.NewV7())))
	}
	b := encode("QUEUEINFO", aci.Container("actions", nodes...))
	h.lists.Store(n, b)
	return b
}

var (
	fetchKey  = []byte("action=fetch")
	statusKey = []byte("queueaction=getstatus")
	tokenKey  = []byte("token=")
	maxKey    = []byte("maxresults=")
)

func (h *handler) serve(ctx *fasthttp.RequestCtx) {
	// Lower-case a copy of the request line's target (and body, for POST
	// forms) to route: the cheapest dispatch that still reads the request.
	var buf [512]byte
	q := append(buf[:0], ctx.RequestURI()...)
	q = append(q, '&')
	q = append(q, ctx.PostBody()...)
	lower(q)
	ctx.SetContentType(aci.ContentTypeXML)
	switch {
	case bytes.Contains(q, fetchKey):
		ctx.SetBody(h.token)
	case bytes.Contains(q, statusKey) && bytes.Contains(q, tokenKey):
		ctx.SetBody(h.status)
	case bytes.Contains(q, statusKey):
		n := 100
		if i := bytes.Index(q, maxKey); i >= 0 {
			v := q[i+len(maxKey):]
			if j := bytes.IndexAny(v, "&\r\n "); j >= 0 {
				v = v[:j]
			}
			if m, err := strconv.Atoi(string(v)); err == nil && m > 0 && m <= 100000 {
				n = m
			}
		}
		ctx.SetBody(h.list(n))
	default:
		ctx.SetBody(h.other)
	}
}

func lower(b []byte) {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
}
