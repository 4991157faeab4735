package auth

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"strconv"
	"strings"
)

// Clients matches client addresses: IDOL's Clients list.
type Clients struct {
	prefixes []netip.Prefix
	any      bool
}

// ParseClients reads a Clients value: comma-separated IPv4 or IPv6
// addresses, IPv4 wildcards (187.*.*.*, where * stands for one whole
// octet), CIDR prefixes (10.0.0.0/8, fd00::/8; an IPv4-mapped one such as
// ::ffff:10.0.0.0/104 stands for its IPv4 prefix), localhost (127.0.0.0/8 and
// ::1) and * (every client). IDOL also takes host names; they are refused
// here, since matching them would mean trusting reverse DNS.
func ParseClients(v string) (*Clients, error) {
	c := &Clients{}
	for _, f := range splitCSV(v) {
		switch {
		case f == "*" || f == "*.*.*.*":
			c.any = true
		case strings.EqualFold(f, "localhost"):
			c.prefixes = append(c.prefixes, netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
		case strings.Contains(f, "/"):
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR prefix (expected an address/bits, e.g. 10.0.0.0/8)", f)
			}
			if p = p.Masked(); p.Addr().Is4In6() && p.Bits() >= 96 {
				// Match compares clients unmapped: so must the prefix.
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			c.prefixes = append(c.prefixes, p)
		case strings.Contains(f, "*"):
			p, err := wildcard(f)
			if err != nil {
				return nil, err
			}
			c.prefixes = append(c.prefixes, p)
		default:
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("%q is not an IP address, wildcard, CIDR prefix, localhost or * (host names are not taken: list the addresses)", f)
			}
			a = a.Unmap()
			c.prefixes = append(c.prefixes, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	if !c.any && len(c.prefixes) == 0 {
		return nil, errors.New("lists no client")
	}
	return c, nil
}

// wildcard reads an IPv4 wildcard: leading octets given, the rest *.
func wildcard(f string) (netip.Prefix, error) {
	parts := strings.Split(f, ".")
	bad := fmt.Errorf("%q is not an IPv4 wildcard (expected whole octets then * for the rest, e.g. 187.*.*.* or 10.1.*.*)", f)
	if len(parts) != 4 {
		return netip.Prefix{}, bad
	}
	var b [4]byte
	bits, star := 0, false
	for i, p := range parts {
		if p == "*" {
			star = true
			continue
		}
		if star {
			return netip.Prefix{}, bad
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 255 {
			return netip.Prefix{}, bad
		}
		b[i] = byte(n)
		bits += 8
	}
	return netip.PrefixFrom(netip.AddrFrom4(b), bits), nil
}

// Match reports whether addr is one of the clients. IPv4-mapped IPv6
// addresses compare as IPv4.
func (c *Clients) Match(addr netip.Addr) bool {
	if c == nil {
		return false
	}
	if c.any {
		return true
	}
	addr = addr.Unmap()
	for _, p := range c.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Identities matches certificate identities: IDOL's SSLIdentities.
type Identities struct {
	dns, email []string // ASCII letters in lower case; may hold * wildcards
}

// ParseIdentities reads an SSLIdentities value: comma-separated identities,
// each a DNS name (dns:admin.example.com, or without prefix) or an email
// address (email:user@example.com), with * wildcards (dns:*.example.com),
// each standing for any characters, dots included: *.example.com matches
// a.b.example.com too.
func ParseIdentities(v string) (*Identities, error) {
	id := &Identities{}
	for _, f := range splitCSV(v) {
		kind, name, ok := strings.Cut(f, ":")
		if !ok {
			kind, name = "dns", f
		}
		name = lowerASCII(strings.TrimSpace(name))
		if name == "" {
			return nil, fmt.Errorf("%q names no identity", f)
		}
		if _, err := path.Match(name, ""); err != nil || strings.ContainsAny(name, "[]\\?") {
			return nil, fmt.Errorf("%q is not an identity (only * may be a wildcard)", f)
		}
		switch strings.ToLower(kind) {
		case "dns":
			id.dns = append(id.dns, name)
		case "email":
			id.email = append(id.email, name)
		default:
			return nil, fmt.Errorf("%q has the prefix %q (expected dns: or email:, or no prefix for a DNS name)", f, kind)
		}
	}
	if len(id.dns) == 0 && len(id.email) == 0 {
		return nil, errors.New("lists no identity")
	}
	return id, nil
}

// Match reports whether one of the principal's certificate identities is
// listed.
func (id *Identities) Match(p Principal) bool {
	if id == nil {
		return false
	}
	return matchAny(id.dns, p.DNS) || matchAny(id.email, p.Email)
}

func matchAny(patterns, names []string) bool {
	for _, n := range names {
		n = lowerASCII(n)
		for _, pat := range patterns {
			if ok, _ := path.Match(pat, n); ok {
				return true
			}
		}
	}
	return false
}

// lowerASCII lowers the ASCII letters of s and keeps every other
// character: strings.ToLower would turn some non-ASCII letters into ASCII
// ones (the Kelvin sign U+212A into k), so that a certificate's Common
// Name, which may hold any Unicode, could spell a listed identity it is
// not.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
