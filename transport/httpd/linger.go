package httpd

import (
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// A connection closed while the client's request is still coming, or
// waiting unread in the server's receive buffer, is reset by the kernel
// rather than closed: the client reads "connection reset by peer" after
// the reply, and one whose system drops what it had received when a reset
// comes (Windows), or whose reply was still on its way, loses the reply.
// That is the case of every request refused before all of it was read:
// its request line and headers over readBufferSize, its body over the
// action's limit, a malformed request followed by more, one refused
// instead of "100 Continue" whose client sent the body without waiting,
// a plain HTTP request on a TLS port (tlsConn), one with a body and a
// method ACI does not use (refuseMethod). Such a connection
// lingers: the server stops sending (the client sees the reply end), reads
// and drops what the client still sends, at most lingerBytes for at most
// lingerTime, then closes. net/http does the same for the same reason
// (closeWriteAndWait).
const (
	lingerBytes = 256 << 10
	lingerTime  = time.Second
)

// lingerListener wraps each connection in a lingerConn.
type lingerListener struct{ net.Listener }

func (l lingerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &lingerConn{Conn: c}, nil
}

// lingerConn is a connection that lingers when closed, once marked
// (lingerOnClose).
type lingerConn struct {
	net.Conn
	linger atomic.Bool
}

func (c *lingerConn) Close() error {
	if c.linger.Load() {
		if cw, ok := closeWriter(c.Conn); ok {
			_ = cw.CloseWrite()
		}
		_ = c.Conn.SetReadDeadline(time.Now().Add(lingerTime))
		_, _ = io.Copy(io.Discard, io.LimitReader(c.Conn, lingerBytes))
	}
	return c.Conn.Close()
}

// NetConn returns the connection it wraps (connClient, closeWriter).
func (c *lingerConn) NetConn() net.Conn { return c.Conn }

// closeWriter returns the TCP connection under c, which can stop sending
// alone.
func closeWriter(c net.Conn) (interface{ CloseWrite() error }, bool) {
	for {
		switch cc := c.(type) {
		case *net.TCPConn:
			return cc, true
		case interface{ NetConn() net.Conn }:
			c = cc.NetConn()
		default:
			return nil, false
		}
	}
}

// lingerOnClose marks the connection of ctx to linger when it is closed:
// its request was answered before all of it was read.
func lingerOnClose(ctx *fasthttp.RequestCtx) { lingerConnOnClose(ctx.Conn()) }

// lingerConnOnClose marks connection c (or the lingerConn it wraps) to
// linger when it is closed.
func lingerConnOnClose(c net.Conn) {
	for c != nil {
		switch cc := c.(type) {
		case *lingerConn:
			cc.linger.Store(true)
			return
		case interface{ NetConn() net.Conn }:
			c = cc.NetConn()
		default:
			return
		}
	}
}
