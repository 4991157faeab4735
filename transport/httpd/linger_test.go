package httpd

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRefusedUnreadRequestClosesCleanly: a request refused before all of
// it was read (its request line and headers over 16 KiB, its body
// announced over the action's limit, its request line refused instead of
// "100 Continue"), from a client that wrote it all before reading, gets
// its reply and then the end of the connection, not a reset. The server closed the connection with the
// rest of the request unread, which makes the kernel reset it: the client
// read "connection reset by peer" after the reply, and one whose system
// drops what it received on a reset (Windows), or whose reply was still
// on its way, lost the reply itself. The server now stops sending, reads
// and drops what the client still sends (bounded), then closes.
func TestRefusedUnreadRequestClosesCleanly(t *testing.T) {
	t.Parallel()
	head := "GET /action=GetVersion HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 64) + "\r\n"
	body := "POST /action=GetVersion HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 2000000\r\n\r\nx=" +
		strings.Repeat("b", 100<<10)
	// Refused by its request line, instead of "100 Continue", from a
	// client that did not wait for either before sending the body.
	expect := "POST /action=GetVersion HTTP/1.1\r\nHost: localhost\r\nSec-Fetch-Site: cross-site\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
		"Content-Length: 102402\r\nExpect: 100-continue\r\n\r\nx=" + strings.Repeat("b", 100<<10)
	check := func(t *testing.T, dial func() net.Conn) {
		t.Helper()
		for _, raw := range []string{head, body, expect} {
			c := dial()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			_, err := io.WriteString(c, raw)
			require.NoError(t, err)
			reply, err := io.ReadAll(c)
			c.Close()
			require.NoError(t, err, "the connection ends without a reset: %.40q", raw)
			require.True(t, bytes.HasPrefix(reply, []byte("HTTP/1.1 200 OK")), "%s", reply)
			require.Regexp(t, "ERRORREQUESTTOOLARGE|from another site", string(reply))
		}
	}
	t.Run("plain", func(t *testing.T) {
		t.Parallel()
		e := start(t, nil)
		check(t, func() net.Conn {
			c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
			require.NoError(t, err)
			return c
		})
	})
	t.Run("TLS", func(t *testing.T) {
		t.Parallel()
		te := startTLS(t, false, nil)
		check(t, func() net.Conn {
			c, err := tls.Dial("tcp", te.addr, &tls.Config{RootCAs: te.serverCA.Pool(), ServerName: "localhost"})
			require.NoError(t, err)
			return c
		})
	})
	t.Run("limited clients", func(t *testing.T) {
		t.Parallel()
		e := startWith(t, setup{front: func(c *Config) { c.MaxConnectionsPerClient = 4; c.Policy = queryOnlyPolicy(t) }})
		check(t, func() net.Conn {
			c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
			require.NoError(t, err)
			return c
		})
	})
}

// TestPlainHTTPOnTheTLSPortIsToldSoWhateverItsSize: the answer to a plain
// HTTP request on the TLS port reaches a client whose request is longer
// than the first bytes the handshake read (a browser's, with its
// User-Agent, Accept and cookies; a POST with its body): the connection
// closed with the rest unread, and the client read "connection reset by
// peer", or lost the answer, instead of being told it spoke plain HTTP.
func TestPlainHTTPOnTheTLSPortIsToldSoWhateverItsSize(t *testing.T) {
	t.Parallel()
	te := startTLS(t, false, nil)
	for _, req := range []string{
		"GET /action=Admin HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Mozilla/5.0\r\nCookie: " + strings.Repeat("c", 4000) + "\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100010\r\n\r\naction=Fetch&x=" + strings.Repeat("b", 100000),
	} {
		requirePlainHTTPAnswer(t, te.addr, req)
	}
}

// TestRefusedMethodWithABodyClosesCleanly: a request with a method ACI
// does not use (PUT, DELETE...) is answered 405 from its request line,
// its body never read, and the connection closed: with the body unread
// the kernel reset the connection under the reply, as for the requests
// above, and a client that wrote it all before reading read "connection
// reset by peer" (or lost the 405). It lingers as they do.
func TestRefusedMethodWithABodyClosesCleanly(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	for _, raw := range []string{
		// Within the action's body limit, and over it.
		"PUT /action=GetVersion HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 102402\r\n\r\nx=" + strings.Repeat("b", 100<<10),
		"DELETE /action=GetVersion HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 2000000\r\n\r\nx=" + strings.Repeat("b", 100<<10),
	} {
		c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
		require.NoError(t, err)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = io.WriteString(c, raw)
		require.NoError(t, err)
		reply, err := io.ReadAll(c)
		c.Close()
		require.NoError(t, err, "the connection ends without a reset: %.20q", raw)
		require.True(t, bytes.HasPrefix(reply, []byte("HTTP/1.1 405 ")), "%s", reply)
		require.Contains(t, string(reply), "is not one of ACI's")
	}
}
