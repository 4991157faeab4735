package server

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// connLimiter wraps the ACI port's listener so that running out of file
// descriptors never stops the server:
//
//   - at most max connections are open at once: when they are, Accept
//     waits for one to close, and new clients wait in the kernel's listen
//     queue (their connect succeeds; their request is read once a
//     connection closes);
//   - when accepting fails for want of resources (EMFILE, ENFILE: no file
//     descriptor; ENOBUFS, ENOMEM: no kernel memory), the connections
//     already open go on being served while Accept backs off (5 ms,
//     doubling to 1 s) and tries again, until descriptors free up. It
//     never returns those errors: fasthttp would take them for a broken
//     listener and stop serving.
//
// Each episode of descriptors running out is logged once when it starts
// and once when it ends. Reaching the limit is logged the same way, but at
// most once a minute (with the times it was reached unlogged since): at
// the limit, every connection that closes lets a waiting one in, and the
// limit is met again, so that a client cycling connections would otherwise
// have the server write two lines for each.
type connLimiter struct {
	net.Listener
	log    *slog.Logger
	key    string        // the setting that sets max, as the log names it
	slots  chan struct{} // one per open connection
	closed chan struct{}
	once   sync.Once
	open   atomic.Int64 // connections accepted and not closed yet (the metrics' gauge)

	// Owned by the goroutine calling Accept (fasthttp has one).
	full      time.Time // when the limit was reached, zero if it is not or that was not logged
	lastFull  time.Time // when reaching the limit was last logged
	unlogged  int       // times the limit was reached since, not logged
	exhausted time.Time // when accepting began to fail, zero if it does not
	failures  int

	// onFull, when set (tests), is called when Accept has met the limit,
	// before it waits for a slot.
	onFull func()
}

func newConnLimiter(ln net.Listener, max int, key string, log *slog.Logger) *connLimiter {
	return &connLimiter{Listener: ln, log: log, key: key, slots: make(chan struct{}, max), closed: make(chan struct{})}
}

// Accept waits for a free slot, then accepts a connection, retrying while
// resources are exhausted.
func (l *connLimiter) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	default:
		if now := time.Now(); now.Sub(l.lastFull) >= time.Minute {
			l.full, l.lastFull = now, now
			l.log.Warn("connection limit reached: new connections wait until one closes",
				"max_connections", cap(l.slots), "setting", l.key, "reached_unlogged_since_last_line", l.unlogged)
			l.unlogged = 0
		} else {
			l.unlogged++
		}
		if l.onFull != nil {
			l.onFull()
		}
		select {
		case l.slots <- struct{}{}:
		case <-l.closed:
			return nil, net.ErrClosed
		}
	}
	if !l.full.IsZero() {
		l.log.Info("accepting connections again", "max_connections", cap(l.slots), "waited", time.Since(l.full).Round(time.Millisecond))
		l.full = time.Time{}
	}
	delay := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			if !l.exhausted.IsZero() {
				l.log.Info("file descriptors available again: accepting connections",
					"after", time.Since(l.exhausted).Round(time.Millisecond), "failed_accepts", l.failures)
				l.exhausted, l.failures = time.Time{}, 0
			}
			l.open.Add(1)
			return &limitedConn{Conn: c, slots: l.slots, open: &l.open}, nil
		}
		if !resourceExhausted(err) {
			<-l.slots
			return nil, err
		}
		if l.exhausted.IsZero() {
			l.exhausted = time.Now()
			l.log.Warn("out of file descriptors: new connections wait, the open ones are served; "+
				"raise the descriptor limit or lower "+l.key,
				"err", err, "max_connections", cap(l.slots), "open_connections", len(l.slots)-1)
		}
		l.failures++
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-l.closed:
			t.Stop()
			<-l.slots
			return nil, net.ErrClosed
		}
		delay = min(2*delay, time.Second)
	}
}

// Open returns the number of connections accepted and not closed yet.
func (l *connLimiter) Open() float64 { return float64(l.open.Load()) }

// Close closes the listener and ends a waiting Accept.
func (l *connLimiter) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// resourceExhausted reports whether an Accept failed for want of file
// descriptors or kernel memory, which frees up as connections close.
func resourceExhausted(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// limitedConn gives its slot back when closed.
type limitedConn struct {
	net.Conn
	slots chan struct{}
	open  *atomic.Int64
	once  sync.Once
}

// NetConn returns the connection it wraps: the front end stops sending on
// it alone (CloseWrite) before it closes a connection whose request it
// refused unread.
func (c *limitedConn) NetConn() net.Conn { return c.Conn }

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.open.Add(-1)
		<-c.slots
	})
	return err
}
