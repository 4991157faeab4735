package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// target is where the load goes.
type target struct {
	url   string // the base URL as given
	host  string // Host header: host[:port] as given
	addr  string // address to dial: a resolved loopback IP:port, or host:port with AllowRemote
	isTLS bool
}

// checkTarget parses base and applies the loopback guard: unless
// allowRemote, the host must be an IP literal or resolve to addresses that
// are all loopback, and the address dialled is then the first resolved
// one, so the name is not resolved again later (no DNS rebinding). It
// sends nothing to the target.
func checkTarget(ctx context.Context, base string, allowRemote bool,
	lookup func(context.Context, string) ([]netip.Addr, error)) (*target, error) {
	shown := redactTarget(base) // what the errors quote: never a password
	u, err := url.Parse(base)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL it quotes as given
		}
		return nil, invalid("target %q: %v", shown, err)
	}
	t := &target{url: base}
	switch strings.ToLower(u.Scheme) {
	case "http":
	case "https":
		t.isTLS = true
	default:
		return nil, invalid("target %q: scheme must be http or https", shown)
	}
	if u.Opaque != "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, invalid("target %q: must be scheme://host[:port] with no user, path, query or fragment", shown)
	}
	host := u.Hostname()
	if host == "" {
		return nil, invalid("target %q: no host", shown)
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if t.isTLS {
			port = "443"
		}
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, invalid("target %q: port %q is not a port number", shown, port)
	}
	t.host = u.Host
	if allowRemote {
		t.addr = net.JoinHostPort(host, port)
		return t, nil
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		if lookup == nil {
			lookup = func(ctx context.Context, h string) ([]netip.Addr, error) {
				return net.DefaultResolver.LookupNetIP(ctx, "ip", h)
			}
		}
		addrs, err = lookup(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("loadgen: resolve target host %q: %w", host, err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("loadgen: resolve target host %q: no address", host)
		}
	}
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() {
			return nil, fmt.Errorf("%w: %s is %s", ErrRemoteTarget, host, a)
		}
	}
	t.addr = net.JoinHostPort(addrs[0].Unmap().String(), port)
	return t, nil
}

// redactTarget returns base with the password of its user information, if
// any, replaced by "xxxxx" (as url.URL.Redacted does), also when base does
// not parse: the target is quoted in errors, which go to a terminal or a
// CI log.
func redactTarget(base string) string {
	if u, err := url.Parse(base); err == nil {
		return u.Redacted()
	}
	_, rest, ok := strings.Cut(base, "://")
	if !ok {
		rest = base
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	at := strings.LastIndexByte(authority, '@')
	if at < 0 {
		return base
	}
	user, _, hasPassword := strings.Cut(authority[:at], ":")
	if !hasPassword {
		return base
	}
	start := len(base) - len(rest)
	return base[:start] + user + ":xxxxx" + base[start+at:]
}
