package httpd

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/actors/queue"
	"github.com/connectorhq/connector/internal/testwait"
)

var update = flag.Bool("update", false, "rewrite the examples in docs/protocol.md")

const protocolDoc = "../../docs/protocol.md"

// TestProtocolDocExamples runs a scripted session against the real front
// end and queue, with a fixed clock and predictable ids, and checks that
// every example reply in docs/protocol.md is exactly what the server sends
// (pretty-printed). go test ./transport/httpd -run ProtocolDoc -update
// rewrites them.
func TestProtocolDocExamples(t *testing.T) {
	doc, err := os.ReadFile(protocolDoc)
	require.NoError(t, err)

	var clock atomic.Int64
	setClock := func(hms string) {
		tm, err := time.Parse("15:04:05", hms)
		require.NoError(t, err)
		clock.Store(time.Date(2026, 1, 15, tm.Hour(), tm.Minute(), tm.Second(), 0, time.UTC).UnixMilli())
	}
	setClock("10:00:00")
	now := func() time.Time { return time.UnixMilli(clock.Load()).UTC() }
	var seq atomic.Uint64
	newID := func() (uuid.UUID, error) {
		var id uuid.UUID
		binary.BigEndian.PutUint64(id[:8], 0x019bc1d2_e000_7000|seq.Add(1)<<16)
		id[6] = 0x70 | id[6]&0x0f
		binary.BigEndian.PutUint64(id[8:], 0x8000_0000_0000_0000|seq.Load())
		return id, nil
	}

	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond))
	repo := newTestRepo()
	q, err := queue.Start(sys, queue.Config{Name: "fetch", Repository: repo, MaximumThreads: 1,
		TokenHost: "127.0.0.1", TokenPort: 7000, Now: now, NewID: newID})
	require.NoError(t, err)
	srv, err := New(Config{System: sys, Queue: q, Repository: repo, Now: now, Version: Version{Version: "1.0.0"}})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = q.Shutdown(ctx)
		sys.Shutdown()
		http.DefaultClient.CloseIdleConnections()
	}()
	base := "http://" + ln.Addr().String()
	esc := url.QueryEscape

	examples := map[string]string{}
	get := func(path string) string {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	ex := func(name, path string) string {
		body := get(path)
		if strings.Contains(path, "simplejson") {
			examples[name] = "GET " + path + "\n\n" + body
		} else {
			examples[name] = "GET " + path + "\n\n" + indentXML(t, body)
		}
		return body
	}
	tokenOf := func(body string) string { return between(body, "<token>", "</token>") }
	waitFor := func(tok, status string) {
		testwait.For(t, 10*time.Second, func() bool {
			return strings.Contains(get("/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+esc(tok)), "<status>"+status+"</status>")
		}, "status %s", status)
	}

	sync1 := tokenOf(ex("fetch", "/action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask"))
	waitFor(sync1, "Processing")
	// The status turns Processing before the worker has counted and set its
	// progress (it counts first): wait for the progress the examples show.
	testwait.For(t, 10*time.Second, func() bool {
		return strings.Contains(get("/action=QueueInfo&QueueName=fetch&QueueAction=Progress&Token="+esc(sync1)), "<stage>crawl</stage>")
	}, "the worker's progress")
	setClock("10:00:05")
	col2 := tokenOf(get("/action=Fetch&FetchAction=Collect&ConfigSection=MyTask&Identifiers=id1,id2"))
	col3 := tokenOf(get("/action=Fetch&FetchAction=Collect&ConfigSection=MyTask&Identifiers=id3"))
	boom := tokenOf(get("/action=Fetch&FetchAction=Boom&ConfigSection=MyTask&Priority=9"))
	setClock("10:00:07")
	ex("getstatus-token", "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+esc(sync1))
	ex("changepriority", "/action=QueueInfo&QueueName=fetch&QueueAction=ChangePriority&Priority=5&Token="+esc(col3))
	ex("cancel-running", "/action=QueueInfo&QueueName=fetch&QueueAction=Cancel&Token="+esc(sync1))
	ex("pause-action", "/action=QueueInfo&QueueName=fetch&QueueAction=Pause&Token="+esc(col2))
	ex("resume-action", "/action=QueueInfo&QueueName=fetch&QueueAction=Resume&Token="+esc(col2))
	ex("progress", "/action=QueueInfo&QueueName=fetch&QueueAction=Progress&Token="+esc(sync1))
	ex("getactionparameters", "/action=QueueInfo&QueueName=fetch&QueueAction=GetActionParameters&Token="+esc(col2))
	dup := tokenOf(ex("duplicate", "/action=QueueInfo&QueueName=fetch&QueueAction=Duplicate&Token="+esc(col2)))
	ex("cancel", "/action=QueueInfo&QueueName=fetch&QueueAction=Cancel&Token="+esc(dup))
	ex("queuestatus", "/action=QueueInfo&QueueName=fetch&QueueAction=QueueStatus")
	ex("pause-queue", "/action=QueueInfo&QueueName=fetch&QueueAction=Pause")
	waitFor(sync1, "Paused")
	ex("resume-queue", "/action=QueueInfo&QueueName=fetch&QueueAction=Resume")
	waitFor(sync1, "Processing")
	setClock("10:00:20")
	ex("stop", "/action=QueueInfo&QueueName=fetch&QueueAction=Stop&Token="+esc(sync1))
	for _, tok := range []string{boom, col3, col2} {
		waitFor(tok, map[bool]string{true: "Error", false: "Finished"}[tok == boom])
	}
	setClock("10:01:00")
	ex("getstatus-all", "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus")
	ex("getstatus-filtered", "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&State=finished&Sort-By=finish-time&Sort-Order=descending&MaxResults=1")
	ex("simplejson", "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&ResponseFormat=simplejson&Token="+esc(col3))
	ex("unknown-token", "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+esc("bm90IGEgdG9rZW4="))

	// CancelQueued, on actions queued while the queue is paused.
	get("/action=QueueInfo&QueueName=fetch&QueueAction=Pause")
	get("/action=Fetch&FetchAction=Collect&ConfigSection=MyTask&Identifiers=id4&Priority=1")
	get("/action=Fetch&FetchAction=Collect&ConfigSection=MyTask&Identifiers=id5&Priority=2")
	setClock("10:02:00")
	ex("cancelqueued-dryrun", "/action=QueueInfo&QueueName=fetch&QueueAction=CancelQueued&Max-Priority=1")
	ex("cancelqueued", "/action=QueueInfo&QueueName=fetch&QueueAction=CancelQueued&Max-Priority=1&Confirm=true")
	get("/action=QueueInfo&QueueName=fetch&QueueAction=Resume")
	ex("showpermissions", "/action=ShowPermissions")

	out := replaceExamples(t, string(doc), examples)
	if *update {
		require.NoError(t, os.WriteFile(protocolDoc, []byte(out), 0o644))
		return
	}
	require.Equal(t, string(doc), out, "docs/protocol.md examples are stale: go test ./transport/httpd -run ProtocolDoc -update")
}

var exampleRE = regexp.MustCompile("(?s)<!-- example:([a-z0-9-]+) -->\n.*?<!-- /example -->")

// replaceExamples fills every <!-- example:NAME --> block; a block without
// an example, or an example without a block, fails the test.
func replaceExamples(t *testing.T, doc string, examples map[string]string) string {
	used := map[string]bool{}
	out := exampleRE.ReplaceAllStringFunc(doc, func(block string) string {
		name := exampleRE.FindStringSubmatch(block)[1]
		body, ok := examples[name]
		require.True(t, ok, "docs/protocol.md has a block for unknown example %q", name)
		used[name] = true
		lang := "xml"
		if strings.Contains(body, "simplejson") {
			lang = "json"
		}
		return fmt.Sprintf("<!-- example:%s -->\n```%s\n%s\n```\n<!-- /example -->", name, lang, strings.TrimSpace(body))
	})
	for name := range examples {
		require.True(t, used[name], "example %q has no block in docs/protocol.md", name)
	}
	return out
}

// indentXML pretty-prints a reply: one element per line, text kept inline.
func indentXML(t *testing.T, s string) string {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	var b bytes.Buffer
	depth := 0
	type open struct {
		hasChild bool
		text     string
		gt       int // offset of the start tag's '>'
	}
	var stack []*open
	writeIndent := func() { b.WriteString("\n" + strings.Repeat("  ", depth)) }
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		switch tk := tok.(type) {
		case xml.ProcInst:
			fmt.Fprintf(&b, "<?%s %s?>", tk.Target, tk.Inst)
		case xml.StartElement:
			if len(stack) > 0 {
				stack[len(stack)-1].hasChild = true
			}
			writeIndent()
			b.WriteString("<" + qname(tk.Name))
			for _, a := range tk.Attr {
				b.WriteString(" " + qname(a.Name) + `="`)
				xml.EscapeText(&b, []byte(a.Value))
				b.WriteString(`"`)
			}
			stack = append(stack, &open{gt: b.Len()})
			b.WriteString(">")
			depth++
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tk)
			}
		case xml.EndElement:
			depth--
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			switch {
			case top.hasChild:
				writeIndent()
			case top.text == "": // <x/> as sent
				b.Truncate(top.gt)
				b.WriteString("/>")
				continue
			default:
				xml.EscapeText(&b, []byte(top.text))
			}
			b.WriteString("</" + qname(tk.Name) + ">")
		}
	}
	return b.String()
}

func qname(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	if j := strings.Index(s, b); j >= 0 {
		return s[:j]
	}
	return ""
}
