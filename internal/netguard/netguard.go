// Package netguard keeps the connector's outgoing connections away from
// addresses it must never reach on a client's behalf: by default the
// link-local range and the cloud metadata services, where a request that
// points a crawl at http://169.254.169.254/ would read a machine's
// credentials.
//
// A Guard holds a deny list of IP addresses, CIDR prefixes and host names.
// It is enforced where a connection is dialled: DialContext refuses a
// denied host name before resolving it, and the dialer's Control function
// refuses every resolved address that a denied prefix contains, so neither
// a DNS name that resolves to a metadata address nor a redirect to one
// gets through. IPv4-mapped IPv6 addresses (::ffff:169.254.169.254), and
// the IPv6 addresses that reach an IPv4 address through NAT64's
// well-known prefix (64:ff9b::169.254.169.254) or 6to4 (2002:a9fe:a9fe::),
// are compared as the IPv4 address they carry; a NAT64 gateway's own
// prefix (64:ff9b:1::/48 and others) must be denied by name.
//
// A request sent through an HTTP proxy is dialled to the proxy: then only
// CheckHost (the URL's host, by name or literal address) applies, and the
// proxy must enforce the rest.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// DefaultDenied is the deny list used when the configuration gives none:
// link-local addresses (IPv4 and IPv6, where every cloud's metadata
// service listens: 169.254.169.254, AWS's fd00:ec2::254, Alibaba's
// 100.100.100.200), and the metadata host names of Google Cloud.
var DefaultDenied = []string{
	"169.254.0.0/16", "fe80::/10", "169.254.169.254", "fd00:ec2::254", "100.100.100.200",
	"metadata.google.internal", "metadata.goog",
}

// ErrDenied is wrapped by every refusal.
var ErrDenied = errors.New("address denied by [Security] DeniedAddresses")

// Guard is a parsed deny list. The zero value and nil deny nothing.
type Guard struct {
	prefixes []netip.Prefix
	names    map[string]bool
}

// Parse reads a deny list: each entry an IP address, a CIDR prefix or a
// host name (compared case-insensitively, without a trailing dot).
func Parse(entries []string) (*Guard, error) {
	g := &Guard{names: map[string]bool{}}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if p, err := netip.ParsePrefix(e); err == nil {
			g.prefixes = append(g.prefixes, unmapPrefix(p.Masked()))
			continue
		}
		if a, err := netip.ParseAddr(strings.Trim(e, "[]")); err == nil {
			a = a.Unmap()
			g.prefixes = append(g.prefixes, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		if !validHostName(e) {
			return nil, fmt.Errorf("%q is not an IP address, a CIDR prefix or a host name", e)
		}
		g.names[normName(e)] = true
	}
	return g, nil
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

func normName(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

func validHostName(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c == '-' || c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				return false
			}
		}
	}
	return true
}

// Empty reports whether the guard denies nothing.
func (g *Guard) Empty() bool { return g == nil || len(g.prefixes) == 0 && len(g.names) == 0 }

// DeniesAddr reports whether a is in a denied prefix.
func (g *Guard) DeniesAddr(a netip.Addr) bool {
	if g == nil {
		return false
	}
	a = a.Unmap()
	for _, p := range g.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	if v4, ok := embeddedIPv4(a); ok {
		return g.DeniesAddr(v4)
	}
	return false
}

// nat64 is NAT64's well-known prefix (RFC 6052): 64:ff9b::a.b.c.d is
// a.b.c.d through a NAT64 gateway.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// sixToFour is 6to4's prefix (RFC 3056): 2002:AABB:CCDD::/48 is routed to
// the IPv4 address AA.BB.CC.DD.
var sixToFour = netip.MustParsePrefix("2002::/16")

// embeddedIPv4 is the IPv4 address an IPv6 address reaches through
// NAT64's well-known prefix or 6to4.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case !a.Is6():
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}

// CheckHost refuses a host (name or literal address, with or without a
// port or brackets) that the deny list names. A name is not resolved
// here; Control checks what it resolves to.
func (g *Guard) CheckHost(host string) error {
	if g.Empty() {
		return nil
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if i := strings.IndexByte(host, '%'); i >= 0 { // zone
		host = host[:i]
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if g.DeniesAddr(a) {
			return fmt.Errorf("%w: %s", ErrDenied, a.Unmap())
		}
		return nil
	}
	if g.names[normName(host)] {
		return fmt.Errorf("%w: %s", ErrDenied, normName(host))
	}
	return nil
}

// Control is a net.Dialer Control function: it refuses to connect to a
// denied address, after name resolution.
func (g *Guard) Control(_, address string, _ syscall.RawConn) error {
	if g.Empty() {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot check %q", ErrDenied, address)
	}
	if g.DeniesAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrDenied, ap.Addr().Unmap())
	}
	return nil
}

// Dialer returns a net.Dialer whose Control enforces the guard.
func (g *Guard) Dialer(timeout, keepAlive time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: keepAlive, Control: g.Control}
}

// DialContext returns a dial function for an http.Transport: it refuses a
// denied host name or literal address before resolving, and d (whose
// Control should be g.Control) refuses denied resolved addresses.
func (g *Guard) DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if err := g.CheckHost(addr); err != nil {
			return nil, err
		}
		return d.DialContext(ctx, network, addr)
	}
}
