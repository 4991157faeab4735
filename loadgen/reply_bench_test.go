package loadgen

import (
	"context"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/connectorhq/connector/transport/aci"
)

// benchStatusXML is a GetStatus reply as the connector writes it.
var (
	benchStatusXML = []byte(`<?xml version='1.0' encoding='UTF-8' ?><autnresponse xmlns:autn="http://schemas.autonomy.com/aci/"><action>QUEUEINFO</action><response>SUCCESS</response><responsedata><actions><action><status>Processing</status><queued_time>2026-Jan-02 15:04:02</queued_time><time_in_queue>1</time_in_queue><process_start_time>2026-Jan-02 15:04:03</process_start_time><time_processing>2</time_processing><documentcounts><documentcount added="3" errors="0" seen="3" task="MYTASK"/></documentcounts><fetchaction>SYNCHRONIZE</fetchaction><priority>0</priority><token>MTI3LjAuMC4xOjcwMDA6RkVUQ0g6MTc2NDAwMDAwMDAwMDAxMjM0NTY3ODk=</token></action></actions></responsedata></autnresponse>`)
)

// BenchmarkExchange is the harness's own cost per request: build the
// request, send it over an in-memory connection to a fasthttp server that
// answers a fixed reply, read and parse the reply. The server's share is
// in the figure too, so it is an upper bound of the harness's cost.
func BenchmarkExchange(b *testing.B) {
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/xml; charset=UTF-8")
		ctx.SetBody(benchStatusXML)
	}}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Shutdown() }()
	for _, form := range []Form{FormPath, FormPost} {
		b.Run(string(form), func(b *testing.B) {
			s, err := Config{Form: form, Dial: func(string) (net.Conn, error) { return ln.Dial() }}.resolve()
			if err != nil {
				b.Fatal(err)
			}
			tg, err := checkTarget(context.Background(), s.Target, false, nil)
			if err != nil {
				b.Fatal(err)
			}
			cl := newClient(s, tg)
			q := buildQueries(s)
			k := cl.conn()
			var r reply
			query := aci.AppendQueryEscape(append([]byte(nil), q.status...), "MTI3LjAuMC4xOjcwMDA6RkVUQ0g6MTc2NDAwMDAwMDAwMDAxMjM0NTY3ODk=")
			b.ReportAllocs()
			for b.Loop() {
				if _, f := k.exchange(query, &r); f != nil {
					b.Fatal(f)
				}
			}
		})
	}
}
