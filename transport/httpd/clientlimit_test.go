package httpd

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/auth"
	"github.com/connectorhq/connector/internal/testlog"
	"github.com/connectorhq/connector/internal/testwait"
)

// TestConnectionsPerClient: a client holding neither Admin nor
// ServiceControl keeps at most MaxConnectionsPerClient connections open;
// one more is answered with an ACI error (ERRORCLIENTLIMIT, valid against
// the schema) and closed, without taking a connection slot, and refusals
// are logged once a minute, not once each. Once one of its connections
// closes, the client connects again. Before, one client could hold every
// connection the port keeps ([Server] MaxConnections, or the service
// port's 64, which a client with no role could fill), and every other
// client waited in the listen queue.
func TestConnectionsPerClient(t *testing.T) {
	t.Parallel()
	for _, port := range []auth.Port{auth.ACIPort, auth.ServicePort} {
		logs := &testlog.Buffer{}
		// The test's client (localhost) holds Query and ServiceStatus.
		e := startWith(t, setup{logger: slog.New(slog.NewTextHandler(logs, nil)), front: func(c *Config) {
			c.Port = port
			c.Policy = queryOnlyPolicy(t)
			c.MaxConnectionsPerClient = 3
		}})
		addr := strings.TrimPrefix(e.base, "http://")
		request := "GET /action=GetStatus HTTP/1.1\r\nHost: x\r\n\r\n"
		var held []net.Conn
		for range 3 {
			c, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer c.Close()
			require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
			_, err = io.WriteString(c, request)
			require.NoError(t, err)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			require.Equal(t, 200, resp.StatusCode)
			held = append(held, c)
		}
		refused := func() []byte {
			t.Helper()
			c, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer c.Close()
			require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
			_, _ = io.WriteString(c, request)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			require.NoError(t, err, "the refusal is a reply")
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.True(t, resp.Close)
			x := parseX(t, b)
			require.Equal(t, "ERROR", x.Response)
			require.Equal(t, "ERRORCLIENTLIMIT", x.ResponseData.Code, x.ResponseData.Desc)
			setting := "[Server]"
			if port == auth.ServicePort {
				setting = "[Service]"
			}
			require.Contains(t, x.ResponseData.Desc, "client 127.0.0.1 has 3 connections open, as many as "+setting+" MaxConnectionsPerClient allows one client")
			return b
		}
		first := refused()
		for range 5 {
			refused()
		}
		require.Equal(t, 1, strings.Count(logs.String(), "connection refused: the client has as many connections open"), logs.String())
		f := filepath.Join(t.TempDir(), "refusal.xml")
		require.NoError(t, os.WriteFile(f, first, 0o600))
		xmllint(t, autnResponseXSD, f)
		xmllint(t, errorReplyXSD, f)

		// One closes: the client connects again.
		require.NoError(t, held[0].Close())
		testwait.For(t, 10*time.Second, func() bool {
			resp, err := http.Get(e.base + "/action=GetStatus")
			if err != nil {
				return false
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return !strings.Contains(string(b), "ERRORCLIENTLIMIT")
		}, "a connection after one of the client's closed")
	}
}

// TestConnectionsPerClientSpareAdmins: a client whose address holds Admin
// (IDOL's default roles give it to localhost) is not limited: it can stop
// the server anyway, and local tools and benchmarks open many connections.
func TestConnectionsPerClientSpareAdmins(t *testing.T) {
	t.Parallel()
	e := startWith(t, setup{front: func(c *Config) { c.MaxConnectionsPerClient = 2 }})
	addr := strings.TrimPrefix(e.base, "http://")
	for i := range 6 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		_, err = fmt.Fprintf(c, "GET /action=GetPid HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		require.Equal(t, "SUCCESS", parseX(t, b).Response, "connection %d", i)
	}
}

// TestClientOfIPv6IsItsPrefix: a client is an IPv4 address (also when
// IPv4-mapped) or an IPv6 /64, whose addresses are one host's to choose
// from.
func TestClientOfIPv6IsItsPrefix(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ a, b string }{
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2:ffff:1:2:3"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
	} {
		require.Equal(t, clientOf(netip.MustParseAddr(c.a)), clientOf(netip.MustParseAddr(c.b)), "%s and %s", c.a, c.b)
	}
	for _, c := range []struct{ a, b string }{
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"192.0.2.7", "192.0.2.8"},
	} {
		require.NotEqual(t, clientOf(netip.MustParseAddr(c.a)), clientOf(netip.MustParseAddr(c.b)), "%s and %s", c.a, c.b)
	}
	require.Equal(t, "2001:db8:1:2::/64", clientName(clientOf(netip.MustParseAddr("2001:db8:1:2:aaaa::1"))))
	require.Equal(t, "192.0.2.7", clientName(clientOf(netip.MustParseAddr("::ffff:192.0.2.7"))))
}
