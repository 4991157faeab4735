package netguard

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseAndDeny(t *testing.T) {
	g, err := Parse(DefaultDenied)
	require.NoError(t, err)
	for _, a := range []string{"169.254.169.254", "169.254.1.1", "fe80::1", "fd00:ec2::254", "::ffff:169.254.169.254", "100.100.100.200"} {
		require.True(t, g.DeniesAddr(netip.MustParseAddr(a)), a)
		require.ErrorIs(t, g.CheckHost(a), ErrDenied, a)
	}
	for _, a := range []string{"127.0.0.1", "10.0.0.1", "::1", "fd00:ec2::253", "8.8.8.8"} {
		require.False(t, g.DeniesAddr(netip.MustParseAddr(a)), a)
		require.NoError(t, g.CheckHost(a), a)
	}
	for _, h := range []string{"metadata.google.internal", "METADATA.google.internal.", "metadata.goog:80", "[fe80::1]:80", "169.254.169.254:80"} {
		require.ErrorIs(t, g.CheckHost(h), ErrDenied, h)
	}
	require.NoError(t, g.CheckHost("example.com:443"))

	// An IPv4 address in an IPv6 form that reaches it (NAT64's
	// well-known prefix, 6to4) is compared as that IPv4 address.
	private, err := Parse([]string{"10.0.0.0/8"})
	require.NoError(t, err)
	for _, a := range []string{"64:ff9b::a00:1", "64:ff9b::10.1.2.3", "2002:a00:1::1", "[64:ff9b::a00:1]:80"} {
		require.ErrorIs(t, private.CheckHost(a), ErrDenied, a)
	}
	for _, a := range []string{"64:ff9b::b00:1", "2002:b00:1::1", "64:ff9b:1::a00:1"} {
		require.NoError(t, private.CheckHost(a), a)
	}
	require.ErrorIs(t, private.Control("tcp", "[64:ff9b::a00:1]:443", nil), ErrDenied)

	_, err = Parse([]string{"not a host!"})
	require.Error(t, err)
	empty, err := Parse(nil)
	require.NoError(t, err)
	require.True(t, empty.Empty())
	require.NoError(t, empty.Control("tcp", "169.254.169.254:80", nil))
	var none *Guard
	require.NoError(t, none.CheckHost("169.254.169.254"))
}

// TestDialRefusesResolvedAddress dials a name that resolves to a denied
// address: the check happens on the resolved address, so a DNS name cannot
// get around it; and a redirect from an allowed server to a denied one is
// dialled the same way, and refused.
func TestDialRefusesResolvedAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	require.NoError(t, err)
	internal := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("internal")) }))
	internal.Listener = ln
	internal.Start()
	defer internal.Close()
	open := httptest.NewServer(http.RedirectHandler(internal.URL+"/", http.StatusFound))
	defer open.Close()

	g, err := Parse([]string{"127.0.0.2/32"})
	require.NoError(t, err)
	tr := &http.Transport{DialContext: g.DialContext(g.Dialer(5*time.Second, 0))}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}

	_, err = c.Get(internal.URL)
	require.ErrorIs(t, err, ErrDenied, "a literal address")
	_, err = c.Get(open.URL)
	require.ErrorIs(t, err, ErrDenied, "a redirect to a denied address")

	// "localhost" is a name: only what it resolves to can be denied.
	_, port, _ := net.SplitHostPort(open.Listener.Addr().String())
	lo, err := Parse([]string{"127.0.0.0/8", "::1"})
	require.NoError(t, err)
	d := lo.Dialer(5*time.Second, 0)
	_, err = lo.DialContext(d)(context.Background(), "tcp", net.JoinHostPort("localhost", port))
	require.ErrorIs(t, err, ErrDenied, "a name resolving to a denied address")

	// The allowed server itself is reachable: it is its redirect that is refused.
	direct := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := direct.Get(open.URL)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
}
