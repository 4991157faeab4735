package browser

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpproxy"

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
//
// Where the environment names an HTTP proxy (HTTP_PROXY, HTTPS_PROXY,
// NO_PROXY, as the crawl's requests use it), it sends the requests on
// through that proxy, after checking their host name: the proxy is then
// the only address it dials itself.
type guardProxy struct {
	deny     *netguard.Guard
	upstream func(*url.URL) (*url.URL, error) // the environment's proxy for a URL; nil: none
	ln       net.Listener
	srv      *http.Server
	rp       *httputil.ReverseProxy
	tr       *http.Transport
	dialer   *net.Dialer
	log      *slog.Logger

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
	g := &guardProxy{deny: deny, ln: ln, log: log, conns: map[net.Conn]struct{}{}, upstream: environmentProxy()}
	g.dialer = deny.Dialer(30*time.Second, 30*time.Second)
	g.tr = &http.Transport{
		Proxy: func(r *http.Request) (*url.URL, error) {
			if g.upstream == nil {
				return nil, nil
			}
			return g.upstream(r.URL)
		},
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

// environmentProxy is the proxy the environment names for a URL
// (HTTP_PROXY, HTTPS_PROXY, NO_PROXY and their lower-case forms, read
// when the proxy starts); nil when it names none.
func environmentProxy() func(*url.URL) (*url.URL, error) {
	cfg := httpproxy.FromEnvironment()
	if cfg.HTTPProxy == "" && cfg.HTTPSProxy == "" {
		return nil
	}
	return cfg.ProxyFunc()
}

// connect opens a tunnel (https, wss) to r.Host, dialled through the
// guard, or through the environment's proxy.
func (g *guardProxy) connect(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	up, err := g.dialTunnel(ctx, r.Host)
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

// dialTunnel connects to hostport: directly, or through the
// environment's proxy with a CONNECT of its own (the proxy is chosen as
// for an https URL, or an http one on port 80).
func (g *guardProxy) dialTunnel(ctx context.Context, hostport string) (net.Conn, error) {
	dial := g.deny.DialContext(g.dialer)
	if err := g.deny.CheckHost(hostport); err != nil {
		return nil, err
	}
	var via *url.URL
	if g.upstream != nil {
		scheme := "https"
		if _, port, _ := net.SplitHostPort(hostport); port == "80" {
			scheme = "http"
		}
		u, err := g.upstream(&url.URL{Scheme: scheme, Host: hostport})
		if err != nil {
			return nil, fmt.Errorf("the environment's proxy: %w", err)
		}
		via = u
	}
	if via == nil {
		return dial(ctx, "tcp", hostport)
	}
	addr := via.Host
	if via.Port() == "" {
		port := "80"
		if via.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(via.Hostname(), port)
	}
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if via.Scheme == "https" {
		tc := tls.Client(conn, &tls.Config{ServerName: via.Hostname(), MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return nil, err
		}
		conn = tc
	}
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: hostport}, Host: hostport, Header: http.Header{}}
	if via.User != nil {
		pass, _ := via.User.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(via.User.Username()+":"+pass)))
	}
	br := bufio.NewReader(conn)
	resp, err := func() (*http.Response, error) {
		if err := req.Write(conn); err != nil {
			return nil, err
		}
		return http.ReadResponse(br, req)
	}()
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("the environment's proxy: %w", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_ = conn.Close()
		return nil, fmt.Errorf("the environment's proxy answered %s to CONNECT", resp.Status)
	}
	_ = conn.SetDeadline(time.Time{})
	return &bufferedConn{Conn: conn, r: br}, nil
}

// bufferedConn is a connection whose first bytes were read into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

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
