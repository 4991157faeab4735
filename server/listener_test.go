package server

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/internal/testlog"
)

func TestConnectionLimit(t *testing.T) {
	t.Parallel()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := func(threads, max, service int) *config.Config {
		c := &config.Config{}
		c.Actions.MaximumThreads, c.Server.MaxConnections = threads, max
		c.Service.Enabled, c.Service.MaxConnections = service > 0, service
		return c
	}
	for _, c := range []struct {
		threads, max int
		fds          uint64
		want         int
		service      int // [Service] MaxConnections; 0: no service port
	}{
		{4, 0, 1024, 1024 - 128 - 4*64, 0},
		{1, 0, 256, 64, 0}, // the reserve leaves less than a quarter: a quarter
		{4, 0, 256, 64, 0}, // the reserve is more than the limit: a quarter
		{4, 0, 1 << 20, 1<<20 - 384, 0},
		{4, 0, 0, 1 << 24, 0},   // no limit known
		{4, 5000, 256, 5000, 0}, // configured: kept (with a warning)
		{4, 100, 1 << 20, 100, 0},
		{4, 0, 1024, 1024 - 128 - 4*64 - 64, 64}, // the service port's connections are kept besides
	} {
		require.Equal(t, c.want, connectionLimit(cfg(c.threads, c.max, c.service), c.fds, discard), "%+v", c)
	}
}

// TestConnectionLimitLogsOncePerMinute: at the limit, each connection that
// closes lets a waiting one in and the limit is met again; the log says so
// once, not twice per connection (rev19e: 400 connections to a service
// port at its limit of 64 wrote 130 lines, so that a client cycling
// connections at the limit could grow the log file without bound).
func TestConnectionLimitLogsOncePerMinute(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var logs testlog.Buffer
	l := newConnLimiter(ln, 1, "[Server] MaxConnections", slog.New(slog.NewTextHandler(&logs, nil)))
	defer l.Close()
	parked := make(chan struct{}, 1)
	l.onFull = func() { parked <- struct{}{} }
	var clients []net.Conn
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	dial := func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		clients = append(clients, c)
	}
	dial()
	held, err := l.Accept()
	require.NoError(t, err)
	const cycles = 10
	for range cycles {
		dial()
		got := make(chan net.Conn, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				c = nil
			}
			got <- c
		}()
		<-parked // Accept met the limit and waits for a slot
		require.NoError(t, held.Close())
		held = <-got
		require.NotNil(t, held)
	}
	require.NoError(t, held.Close())
	require.Equal(t, 1, strings.Count(logs.String(), "connection limit reached"), logs.String())
	require.Equal(t, 1, strings.Count(logs.String(), "accepting connections again"), logs.String())
}

// TestLimitedConnUnwraps: a connection under [Server] MaxConnections shows
// the connection it wraps (NetConn), so that the front end, answering a
// request it refused unread, can stop sending on the TCP connection
// (CloseWrite) and the client sees the reply end at once. Without it the
// front end found no TCP connection under the wrapper: the client that
// reads to the end of the connection waited the whole linger (a second)
// for it.
func TestLimitedConnUnwraps(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	l := newConnLimiter(ln, 1, "[Server] MaxConnections", slog.New(slog.NewTextHandler(io.Discard, nil)))
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	c, err := l.Accept()
	require.NoError(t, err)
	defer c.Close()
	u, ok := c.(interface{ NetConn() net.Conn })
	require.True(t, ok, "%T shows what it wraps", c)
	_, ok = u.NetConn().(*net.TCPConn)
	require.True(t, ok, "the TCP connection: %T", u.NetConn())
}
