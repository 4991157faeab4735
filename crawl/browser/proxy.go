package browser

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectorhq/connector/internal/netguard"
)

// guardProxy is a forward HTTP proxy on 127.0.0.1 through which the
// browser sends every request it makes itself: a page's subresources,
// XHR and fetch(), WebSockets, a login's pages. It dials with the deny
// list (Config.Deny) checked on the host name and, after name
// resolution, on every address it connects to, so no name, redirect or
// script gets the browser to a denied address (a cloud metadata
// service). The browser is started with --proxy-server pointing at it
// and --proxy-bypass-list=<-loopback> (loopback goes through it too).
type guardProxy struct {
	deny   *netguard.Guard
	ln     net.Listener
	srv    *http.Server
	rp     *httputil.ReverseProxy
	tr     *http.Transport
	dialer *net.Dialer
	log    *slog.Logger

	mu      sync.Mutex
	conns   map[net.Conn]struct{} // both ends of every CONNECT tunnel
	closed  bool
	tunnels sync.WaitGroup

	denied atomic.Uint64
}

func startGuardProxy(deny *netguard.Guard, log *slog.Logger) (*guardProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &guardProxy{deny: deny, ln: ln, log: log, conns: map[net.Conn]struct{}{}}
	g.dialer = deny.Dialer(30*time.Second, 30*time.Second)
	g.tr = &http.Transport{
		DialContext:           deny.DialContext(g.dialer),
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		DisableCompression:    true, // the browser's Accept-Encoding goes through as it is
	}
	g.rp = &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.Out.URL = pr.In.URL; pr.Out.Host = "" },
		Transport: g.tr,
		ErrorLog:  nil,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, netguard.ErrDenied) {
				g.denied.Add(1)
				http.Error(w, "denied by [Security] DeniedAddresses", http.StatusForbidden)
				return
			}
			http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	g.srv = &http.Server{Handler: g, ReadHeaderTimeout: 30 * time.Second, ErrorLog: nil}
	go func() { _ = g.srv.Serve(ln) }()
	return g, nil
}

// addr is the proxy's address (host:port).
func (g *guardProxy) addr() string { return g.ln.Addr().String() }

func (g *guardProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		g.connect(w, r)
		return
	}
	if !r.URL.IsAbs() || (r.URL.Scheme != "http" && r.URL.Scheme != "https") {
		http.Error(w, "proxy: an absolute http(s) URL is required", http.StatusBadRequest)
		return
	}
	if err := g.deny.CheckHost(r.URL.Host); err != nil {
		g.denied.Add(1)
		http.Error(w, "denied by [Security] DeniedAddresses", http.StatusForbidden)
		return
	}
	r.Header.Del("Proxy-Connection")
	r.Header.Del("Proxy-Authorization")
	g.rp.ServeHTTP(w, r)
}

// connect opens a tunnel (https, wss) to r.Host, dialled through the
// guard.
func (g *guardProxy) connect(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	dial := g.deny.DialContext(g.dialer)
	up, err := dial(ctx, "tcp", r.Host)
	if err != nil {
		if errors.Is(err, netguard.ErrDenied) {
			g.denied.Add(1)
			http.Error(w, "denied by [Security] DeniedAddresses", http.StatusForbidden)
			return
		}
		http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		_ = up.Close()
		http.Error(w, "proxy: cannot tunnel", http.StatusInternalServerError)
		return
	}
	down, rw, err := hj.Hijack()
	if err != nil {
		_ = up.Close()
		return
	}
	if !g.track(down, up) {
		return
	}
	_, _ = io.WriteString(down, "HTTP/1.1 200 Connection Established\r\n\r\n")
	g.tunnels.Add(2)
	pipe := func(dst, src net.Conn, r io.Reader) {
		defer g.tunnels.Done()
		_, _ = io.Copy(dst, r)
		// One direction ended: the tunnel is over.
		g.untrack(down, up)
	}
	go pipe(up, down, rw.Reader) // bytes the browser sent after the CONNECT are buffered in rw
	go pipe(down, up, up)
}

func (g *guardProxy) track(cs ...net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		for _, c := range cs {
			_ = c.Close()
		}
		return false
	}
	for _, c := range cs {
		g.conns[c] = struct{}{}
	}
	return true
}

func (g *guardProxy) untrack(cs ...net.Conn) {
	g.mu.Lock()
	for _, c := range cs {
		if _, ok := g.conns[c]; ok {
			delete(g.conns, c)
			_ = c.Close()
		}
	}
	g.mu.Unlock()
}

// close stops the proxy: its listener, its connections and tunnels; it
// returns when every goroutine of it has exited.
func (g *guardProxy) close() {
	g.mu.Lock()
	g.closed = true
	for c := range g.conns {
		_ = c.Close()
	}
	g.conns = map[net.Conn]struct{}{}
	g.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.srv.Shutdown(ctx); err != nil {
		_ = g.srv.Close()
	}
	g.tunnels.Wait()
	g.tr.CloseIdleConnections()
}
