package httpd

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"
)

// tlsListener serves TLS on the connections of a listener, as
// tls.NewListener does, and reports every handshake that does not
// complete. fasthttp only logs the errors of a connection whose text does
// not look like a timeout, a reset or an early EOF, so a failed handshake
// was seen (counted and logged) only when its error said "tls: ": a client
// that stopped half-way until ReadTimeout, reset the connection or closed
// it during the handshake was neither.
type tlsListener struct {
	net.Listener
	cfg    *tls.Config
	failed func(remote net.Addr, err error)
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	raw := &readCounter{Conn: c}
	return &tlsConn{Conn: tls.Server(raw, l.cfg), raw: raw, failed: l.failed}, nil
}

// tlsConn completes the handshake on its first Read or Write (fasthttp's
// worker goroutine makes both), under the deadline fasthttp has set
// (ReadTimeout). A handshake that fails is reported once, and the
// connection then reads as closed: fasthttp closes it without a word,
// since it was counted and logged here. A connection that ends before the
// client sent a byte began no handshake (a TCP health check, a port scan):
// it is not reported, whether it closed, reset or sent nothing until
// ReadTimeout (fasthttp ends such a connection without a word on a plain
// port too). It embeds *tls.Conn, so fasthttp sees a TLS
// connection (ConnectionState) as before.
type tlsConn struct {
	*tls.Conn
	raw    *readCounter
	failed func(remote net.Addr, err error)
	done   bool // the handshake ran; used by the worker goroutine only
	err    error
}

func (c *tlsConn) handshake() error {
	if c.done {
		return c.err
	}
	c.done = true
	err := c.Conn.Handshake()
	if err == nil {
		return nil
	}
	// Closed by the server (Shutdown) is no failure of the client's.
	if c.raw.n > 0 && !errors.Is(err, net.ErrClosed) {
		c.failed(c.Conn.RemoteAddr(), err)
	}
	// A client that spoke plain HTTP to the TLS port (http:// for
	// https://) is told so, as net/http tells it, instead of seeing the
	// connection close without a word ("Empty reply from server").
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) && rh.Conn != nil && looksLikeHTTP(rh.RecordHeader) {
		_ = rh.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(rh.Conn, plainHTTPReply)
		lingerConnOnClose(rh.Conn) // the rest of the request is unread
	}
	c.err = io.EOF
	return c.err
}

func (c *tlsConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *tlsConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// plainHTTPReply is the answer to a plain HTTP request on a TLS port:
// net/http's, word for word, so that clients and people who know it
// recognise it.
const plainHTTPReply = "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"

// looksLikeHTTP says whether the first five bytes a client sent, read as
// a TLS record header, are the start of a plain HTTP request (the
// methods a client sends first; net/http checks the same ones).
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// readCounter counts the bytes a connection has read.
type readCounter struct {
	net.Conn
	n int64 // read by the handshake, on the worker goroutine only
}

func (c *readCounter) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n += int64(n)
	return n, err
}

// NetConn returns the connection it wraps (connClient).
func (c *readCounter) NetConn() net.Conn { return c.Conn }
