package browser

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wsHello answers a WebSocket handshake and sends one text message,
// "hello", then keeps the connection until the client goes.
func wsHello(handshakes *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		handshakes.Add(1)
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "not a handshake", http.StatusBadRequest)
			return
		}
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
		_, _ = buf.Write([]byte{0x81, 5, 'h', 'e', 'l', 'l', 'o'}) // FIN, text, 5 bytes
		_ = buf.Flush()
		_, _ = bufio.NewReader(conn).ReadByte() // until the client closes
	}
}

// TestWebSocketsFollowRenderResourceTypes: a page's WebSockets are
// subresources like the others: without WebSocket in AllowTypes (the
// default) none is opened, not by the page, not through a frame it
// makes, not by a worker; with it, they open.
func TestWebSocketsFollowRenderResourceTypes(t *testing.T) {
	t.Parallel()
	var handshakes atomic.Int64
	s := newSite(t)
	s.mux.HandleFunc("/ws", wsHello(&handshakes))
	wsURL := "ws" + strings.TrimPrefix(s.URL, "http") + "/ws"
	page := `<html><body><p id="log"></p><script>
var log = document.getElementById("log"), n = 0;
function note(s) { log.textContent += s + " "; if (++n === 3) { var d = document.createElement("div"); d.id = "done"; document.body.appendChild(d) } }
function open(WS, tag) {
  try { var ws = new WS("` + wsURL + `"); ws.onmessage = function (e) { note(tag + ":" + e.data) }; ws.onerror = function () { note(tag + ":error") } }
  catch (e) { note(tag + ":threw") }
}
open(WebSocket, "page");
var f = document.createElement("iframe"); document.body.appendChild(f); open(f.contentWindow.WebSocket, "frame");
try {
  var w = new Worker(URL.createObjectURL(new Blob(["try { var ws = new WebSocket('` + wsURL + `'); ws.onmessage = function (e) { postMessage('worker:' + e.data) }; ws.onerror = function () { postMessage('worker:error') } } catch (e) { postMessage('worker:threw') }"], { type: "text/javascript" })));
  w.onmessage = function (e) { note(e.data) }; w.onerror = function () { note("worker:failed") };
} catch (e) { note("worker:none") }
</script></body></html>`
	p := newPool(t, Config{Tabs: 1})

	pg := render(t, p, s.URL+"/page", page, RenderOptions{WaitSelector: "#done"})
	assert.True(t, pg.Settled, "every attempt reported: %q", pg.Text)
	assert.NotContains(t, pg.Text, "hello")
	assert.Zero(t, handshakes.Load(), "no WebSocket handshake reached the site: %q", pg.Text)

	// Frames and workers loaded from the site, with policies of their
	// own, allowed by their types (Document, Other): no WebSocket.
	s.handle("/worker.js", "text/javascript", "try { var ws = new WebSocket('"+wsURL+"'); ws.onmessage = function (e) { postMessage('worker:' + e.data) }; ws.onerror = function () { postMessage('worker:error') } } catch (e) { postMessage('worker:threw') }")
	s.handle("/frame", "text/html", `<script>try { var ws = new WebSocket("`+wsURL+`"); ws.onmessage = function (e) { parent.postMessage("frame:" + e.data, "*") }; ws.onerror = function () { parent.postMessage("frame:error", "*") } } catch (e) { parent.postMessage("frame:threw", "*") }</script>`)
	loaded := `<html><body><p id="log"></p><script>
var log = document.getElementById("log"), n = 0;
function note(s) { log.textContent += s + " "; if (++n === 3) { var d = document.createElement("div"); d.id = "done"; document.body.appendChild(d) } }
onmessage = function (e) { note(e.data) };
var w = new Worker("/worker.js"); w.onmessage = function (e) { note(e.data) }; w.onerror = function () { note("worker:failed") };
</script><iframe src="/frame"></iframe><iframe src="` + strings.Replace(s.URL, "127.0.0.1", "localhost", 1) + `/frame"></iframe></body></html>`
	others := append(append([]ResourceType{}, DefaultAllowTypes...), ResourceDocument, ResourceOther)
	pg = render(t, p, s.URL+"/loaded", loaded, RenderOptions{WaitSelector: "#done", Subresources: Subresources{AllowTypes: others}})
	assert.True(t, pg.Settled, "every attempt reported: %q", pg.Text)
	assert.Equal(t, 1, s.hitsOf("/worker.js"), "the worker loaded")
	assert.Equal(t, 2, s.hitsOf("/frame"), "the frames loaded (one of another site)")
	assert.NotContains(t, pg.Text, "hello")
	assert.Zero(t, handshakes.Load(), "no WebSocket handshake reached the site: %q", pg.Text)

	allow := append(append([]ResourceType{}, DefaultAllowTypes...), ResourceWebSocket)
	pg = render(t, p, s.URL+"/page", page, RenderOptions{WaitSelector: "#done", Subresources: Subresources{AllowTypes: allow}})
	require.True(t, pg.Settled, "every attempt reported: %q", pg.Text)
	assert.Contains(t, pg.Text, "page:hello")
	assert.Contains(t, pg.Text, "frame:hello")
	pg = render(t, p, s.URL+"/loaded", loaded, RenderOptions{WaitSelector: "#done", Subresources: Subresources{AllowTypes: append(others, ResourceWebSocket)}})
	assert.Contains(t, pg.Text, "worker:hello")
	assert.Contains(t, pg.Text, "frame:hello")
	assert.Positive(t, handshakes.Load())
}
