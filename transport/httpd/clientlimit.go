package httpd

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectorhq/connector/auth"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/transport/aci"
)

// clientLimiter wraps a port's listener (under TLS, when the port has it)
// so that one client holds at most max of its connections: without it, one
// client could take every connection the port keeps ([Server] or [Service]
// MaxConnections), and every other client would wait in the kernel's
// listen queue until it let go. A client is an IPv4 address, or an IPv6
// /64: one host is given a /64 to pick its addresses from, and counted by
// address it would be as many clients as it likes.
//
// A client whose address holds Admin or ServiceControl is not limited:
// either can stop the server or its queue anyway (by default, the clients
// on the machine itself; the benchmarks and local tools open many
// connections).
//
// A connection beyond the limit is accepted and closed at once, after an
// ACI error (ERRORCLIENTLIMIT, ErrClientLimit) on a plain-HTTP port, so
// that it holds no connection slot and the client learns why. Refusals are
// logged at most once a minute, with the number refused since, and each
// is counted in the metrics (refused).
//
// The counts are kept by the goroutine calling Accept (fasthttp has one):
// the map is its own, and each connection holds a pointer to its client's
// counter, which it decrements (atomically) when it closes.
type clientLimiter struct {
	net.Listener
	max    int
	key    string // the setting, as replies and the log name it
	policy *auth.Policy
	tls    bool // the port speaks TLS over these connections: no plain-text reply
	log    *slog.Logger
	now    func() time.Time
	// refused, when set, counts each refusal (Metrics.ConnectionRefused).
	refused func()

	// Owned by the goroutine calling Accept.
	counts   map[netip.Prefix]*clientCount
	sweepAt  int // len(counts) at which idle clients are dropped from it
	lastLog  time.Time
	unlogged int

	// refusing bounds the refusals being written at once: each waits for
	// the client's request to arrive (and be discarded) so that closing
	// does not reset the connection before the client reads the reply.
	refusing chan struct{}
	wg       sync.WaitGroup
}

// maxRefusing is how many refused connections may be answered at once;
// beyond it they are closed without a reply.
const maxRefusing = 64

// refuseLinger is how long a refused connection is kept to answer it.
const refuseLinger = time.Second

func newClientLimiter(ln net.Listener, max int, key string, policy *auth.Policy, tls bool, log *slog.Logger, now func() time.Time) *clientLimiter {
	return &clientLimiter{Listener: ln, max: max, key: key, policy: policy, tls: tls, log: log, now: now,
		counts: map[netip.Prefix]*clientCount{}, sweepAt: 1024, refusing: make(chan struct{}, maxRefusing)}
}

// clientOf returns the client an address belongs to: the address itself
// (IPv4, or IPv4-mapped IPv6), or its IPv6 /64.
func clientOf(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// clientName is a client as the log and replies show it: the IPv4 address
// alone, the IPv6 prefix with its length.
func clientName(p netip.Prefix) string {
	if p.Addr().Is4() {
		return p.Addr().String()
	}
	return p.String()
}

// Accept returns the next connection of a client under its limit.
func (l *clientLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ta, ok := c.RemoteAddr().(*net.TCPAddr)
		if !ok {
			return c, nil
		}
		addr, _ := netip.AddrFromSlice(ta.IP)
		addr = addr.Unmap()
		if g := l.policy.Grant(auth.Principal{Addr: addr}); g.Standard&(auth.Admin|auth.ServiceControl) != 0 {
			return c, nil
		}
		client := clientOf(addr)
		n := l.counts[client]
		if n == nil {
			l.sweep()
			n = &clientCount{prefix: client}
			l.counts[client] = n
		}
		if int(n.conns.Load()) >= l.max {
			l.refuse(c, client)
			continue
		}
		n.conns.Add(1)
		return &clientConn{Conn: c, client: n}, nil
	}
}

// sweep drops the clients without connections once the map has grown to
// sweepAt, and sets the next sweep at twice what is left (at least 1024),
// so that the map holds the clients with connections and a bounded number
// of others, at a constant cost per accepted connection.
func (l *clientLimiter) sweep() {
	if len(l.counts) < l.sweepAt {
		return
	}
	for k, n := range l.counts {
		if n.conns.Load() == 0 {
			delete(l.counts, k)
		}
	}
	l.sweepAt = max(1024, 2*len(l.counts))
}

// refuse answers and closes a connection beyond its client's limit.
func (l *clientLimiter) refuse(c net.Conn, client netip.Prefix) {
	name := clientName(client)
	if l.refused != nil {
		l.refused()
	}
	if now := l.now(); now.Sub(l.lastLog) >= time.Minute {
		l.log.Warn("connection refused: the client has as many connections open as one client may",
			"client", name, "max_connections_per_client", l.max, "setting", l.key, "refused_unlogged_since_last_line", l.unlogged)
		l.lastLog, l.unlogged = now, 0
	} else {
		l.unlogged++
	}
	if l.tls {
		_ = c.Close() // a reply would need the handshake: the client sees the connection close
		return
	}
	select {
	case l.refusing <- struct{}{}:
	default:
		_ = c.Close()
		return
	}
	reply := refusalReply(fmt.Errorf("%w: client %s has %d connections open, as many as %s allows one client",
		messages.ErrClientLimit, name, l.max, l.key), l.now())
	l.wg.Add(1)
	go func() {
		defer func() { <-l.refusing; l.wg.Done() }()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(refuseLinger))
		if _, err := c.Write(reply); err != nil {
			return
		}
		// The client's request, if it sent one, is read and dropped, so
		// that closing with it unread does not reset the connection
		// before the client reads the reply.
		if tc, ok := c.(interface{ CloseWrite() error }); ok {
			_ = tc.CloseWrite()
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(c, readBufferSize))
	}()
}

// Close closes the listener and waits for the refusals being answered.
func (l *clientLimiter) Close() error {
	err := l.Listener.Close()
	l.wg.Wait()
	return err
}

// refusalReply is a whole HTTP response carrying err as an ACI error, for
// a connection whose request is not read.
func refusalReply(err error, now time.Time) []byte {
	body, ct := aci.Encode(nil, aci.FormatXML, &aci.Reply{Err: aci.ErrorFor("", err, now)})
	head := "HTTP/1.1 200 OK\r\nContent-Type: " + ct + "\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	return append([]byte(head), body...)
}

// clientCount is what one client holds: shared by its connections, which
// change it atomically.
type clientCount struct {
	prefix     netip.Prefix
	conns      atomic.Int32 // connections open
	replyBytes atomic.Int64 // bytes of replies waiting to be sent (setReply)
}

// clientConn gives its client's count back when closed.
type clientConn struct {
	net.Conn
	client *clientCount
	once   sync.Once
}

// NetConn returns the connection it wraps (closeWriter).
func (c *clientConn) NetConn() net.Conn { return c.Conn }

func (c *clientConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.client.conns.Add(-1) })
	return err
}

// connClient returns the client a connection counts against; nil for one
// that is not limited (its client holds Admin or ServiceControl, or the
// port has no MaxConnectionsPerClient).
func connClient(c net.Conn) *clientCount {
	for {
		switch cc := c.(type) {
		case *clientConn:
			return cc.client
		case interface{ NetConn() net.Conn }: // tlsConn, *tls.Conn, readCounter
			c = cc.NetConn()
		default:
			return nil
		}
	}
}
