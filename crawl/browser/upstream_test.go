package browser

import (
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/netguard"
)

// upstreamProxy is an HTTP proxy of the test's "network": the only way to
// the host intranet.test, which it maps to a site on 127.0.0.1.
type upstreamProxy struct {
	*http.Server
	url  string
	mu   sync.Mutex
	seen []string
}

func newUpstreamProxy(t *testing.T, site string) *upstreamProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	target, _ := url.Parse(site)
	u := &upstreamProxy{url: "http://" + ln.Addr().String()}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
	u.Server = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.URL.Hostname()
		if r.Method == http.MethodConnect {
			host, _, _ = net.SplitHostPort(r.Host)
		}
		u.mu.Lock()
		u.seen = append(u.seen, r.Method+" "+host)
		u.mu.Unlock()
		if host != "intranet.test" {
			http.Error(w, "unknown host", http.StatusBadGateway)
			return
		}
		if r.Method != http.MethodConnect {
			rp.ServeHTTP(w, r)
			return
		}
		up, err := net.Dial("tcp", target.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		down, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			_ = up.Close()
			return
		}
		_, _ = io.WriteString(down, "HTTP/1.1 200 Connection Established\r\n\r\n")
		go func() { _, _ = io.Copy(up, down); _ = up.Close() }()
		go func() { _, _ = io.Copy(down, up); _ = down.Close() }()
	})}
	go func() { _ = u.Serve(ln) }()
	t.Cleanup(func() { _ = u.Close() })
	return u
}

func (u *upstreamProxy) saw() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

// TestBrowserUsesTheEnvironmentsProxy: where the network is reached
// through an HTTP proxy named by the environment (HTTP_PROXY,
// HTTPS_PROXY), as the crawl's requests are, the browser's requests go
// through it too, the deny list's proxy in between: a page's script and
// WebSocket load from a host only that proxy reaches, and a denied host
// is still refused before it.
func TestBrowserUsesTheEnvironmentsProxy(t *testing.T) {
	var handshakes atomic.Int64
	s := newSite(t)
	s.handle("/app.js", "text/javascript", `document.body.setAttribute("data-app", "loaded")`)
	s.mux.HandleFunc("/ws", wsHello(&handshakes))
	up := newUpstreamProxy(t, s.URL)
	t.Setenv("HTTP_PROXY", up.url)
	t.Setenv("HTTPS_PROXY", up.url)
	t.Setenv("NO_PROXY", "")

	deny, err := netguard.Parse(append([]string{"denied.test"}, netguard.DefaultDenied...))
	require.NoError(t, err)
	p := newPool(t, Config{Tabs: 1, Deny: deny})
	page := `<html><body><p id="out">-</p><script src="/app.js"></script><script src="http://denied.test/x.js"></script><script>
var ws = new WebSocket("ws://intranet.test/ws");
ws.onmessage = function (e) { document.getElementById("out").textContent = "ws " + e.data; var d = document.createElement("div"); d.id = "done"; document.body.appendChild(d) };
ws.onerror = function () { document.getElementById("out").textContent = "ws failed"; var d = document.createElement("div"); d.id = "done"; document.body.appendChild(d) };
</script></body></html>`
	allow := append(append([]ResourceType{}, DefaultAllowTypes...), ResourceWebSocket)
	pg := render(t, p, "http://intranet.test/page", page, RenderOptions{WaitSelector: "#done", Subresources: Subresources{AllowTypes: allow}})
	assert.Contains(t, pg.HTML, `data-app="loaded"`, "the script came through the proxy")
	assert.Contains(t, pg.Text, "ws hello", "the WebSocket too")
	assert.Equal(t, 1, pg.Requests.Denied)
	saw := strings.Join(up.saw(), ",")
	assert.Contains(t, saw, "GET intranet.test")
	assert.Contains(t, saw, "CONNECT intranet.test")
	assert.NotContains(t, saw, "denied.test")
}
