package httpd

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/connectorhq/connector/auth"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/transport/aci"
)

// The guard runs before every handler: it refuses requests a browser sent
// from another site, and requests whose Host header the server does not
// answer for (DNS rebinding), then asks the roles whether the client may
// send the action. ACI clients (curl, the Java client, scripts) send no
// Sec-Fetch-Site header, so only browsers are affected by the first check.

// callerKey is the request value (fasthttp user value) that holds the
// caller, for handlers that need it (callerOf).
type callerKey struct{}

// callerOf returns the caller of the request ctx, or nil (the benchmarks'
// unguarded server).
func callerOf(ctx context.Context) *caller {
	c, _ := ctx.Value(callerKey{}).(*caller)
	return c
}

// callers recycles the callers of finished requests (handle returns each):
// a request's guard then allocates nothing.
var callers = sync.Pool{New: func() any { return new(caller) }}

// caller is who sent a request and what its roles grant.
type caller struct {
	principal auth.Principal
	grant     auth.Grant
	host      string // the Host header, for links back to this server
	// name is principal.String() for a principal without certificate
	// identities at address nameAddr (client). It survives the caller's
	// recycling (identify): the next request from the same address, the
	// usual case on a pool that is per P, reuses it instead of printing
	// the address again (a Fetch records its client).
	name     string
	nameAddr netip.Addr
	// roleName is roleOf.Role(), kept across recycling as name is: a
	// Fetch records its client's roles, and with several (IDOL's default
	// roles give localhost all four) Role joins their names in a new
	// string, which the queued action would keep.
	roleName string
	roleOf   auth.Grant
}

// role returns the caller's grant's roles as a Fetch records them
// (auth.Grant.Role).
func (c *caller) role() string {
	if c.roleName == "" || c.roleOf != c.grant {
		c.roleName, c.roleOf = c.grant.Role(), c.grant
	}
	return c.roleName
}

// client returns the caller's principal as a Fetch records it
// (auth.Principal.String).
func (c *caller) client() string {
	if c.principal.HasIdentity() {
		return c.principal.String()
	}
	if c.name == "" || c.nameAddr != c.principal.Addr {
		c.name, c.nameAddr = c.principal.String(), c.principal.Addr
	}
	return c.name
}

// identify returns the caller of a request: its address, the identities
// of its verified TLS client certificate (an unverified certificate counts
// for nothing), and the grant of the policy.
func (s *Server) identify(ctx *fasthttp.RequestCtx) *caller {
	addr, _ := netip.AddrFromSlice(ctx.RemoteIP())
	var p auth.Principal
	if st := ctx.TLSConnectionState(); st != nil && len(st.VerifiedChains) > 0 && len(st.PeerCertificates) > 0 {
		p = auth.FromCertificate(addr, st.PeerCertificates[0])
	} else {
		p = auth.FromCertificate(addr, nil)
	}
	c := callers.Get().(*caller)
	*c = caller{principal: p, grant: s.policy.Grant(p), name: c.name, nameAddr: c.nameAddr, roleName: c.roleName, roleOf: c.roleOf}
	if s.cfg.Port == auth.ServicePort {
		c.host = string(ctx.Request.Header.Host()) // for the page's links
	}
	return c
}

var (
	secFetchSite = []byte("Sec-Fetch-Site")
	originHeader = []byte("Origin")
)

// checkOrigin refuses a request that a browser sent from another site, or
// whose Host header is not one the server answers for. A browser says
// where a request comes from in Sec-Fetch-Site; one too old to send it
// (Safari before 16.4, Firefox before 90) still sends Origin with a form's
// POST and with a script's request to another origin, and such a request
// whose Origin is not the server's own (the scheme and the Host header it
// was sent with; "null" from a sandboxed or file: page) is refused too.
// Programs send neither header. A browser's navigation to a page of the
// server (action, in upper case, is ADMIN: the dashboard, the service
// port's page) is answered from any site: the service port's page links
// to the dashboard on the ACI port, which is another site's (same-site)
// to the browser. The page changes nothing, is never framed
// (X-Frame-Options), and what its script sends comes from its own origin.
func (s *Server) checkOrigin(ctx *fasthttp.RequestCtx, action string) error {
	if site := ctx.Request.Header.PeekBytes(secFetchSite); len(site) > 0 {
		if (bytes.EqualFold(site, []byte("cross-site")) || bytes.EqualFold(site, []byte("same-site"))) && !pageNavigation(ctx, action) {
			return fmt.Errorf("%w: a browser sent this request from another site (Sec-Fetch-Site: %s); the server answers requests from its own pages and from programs only",
				messages.ErrRefusedOrigin, strings.ToLower(string(site)))
		}
	} else if origin := ctx.Request.Header.PeekBytes(originHeader); len(origin) > 0 && !ownOrigin(origin, ctx.Request.Header.Host()) {
		// Not quoted: the reply echoes no request header.
		return fmt.Errorf("%w: a browser sent this request from another site (its Origin is not this server); the server answers requests from its own pages and from programs only",
			messages.ErrRefusedOrigin)
	}
	if s.hosts == nil {
		return nil
	}
	host := ctx.Request.Header.Host()
	if len(host) == 0 {
		return nil // HTTP/1.0 clients send none
	}
	name := hostBytes(host)
	for _, h := range s.hostBytes {
		if bytes.EqualFold(h, fqdnless(name)) {
			return nil
		}
	}
	return fmt.Errorf("%w: the Host header names %q, which is not one of [Server] AllowedHosts (%s)",
		messages.ErrRefusedOrigin, name, strings.Join(s.hosts, ", "))
}

var (
	secFetchMode = []byte("Sec-Fetch-Mode")
	secFetchDest = []byte("Sec-Fetch-Dest")
)

// pageNavigation reports whether a request is a browser's GET of a page of
// the server as the document of a window (a link followed, an address
// typed), not a subresource, a frame, a script's request or a form's POST.
func pageNavigation(ctx *fasthttp.RequestCtx, action string) bool {
	return action == "ADMIN" && ctx.IsGet() &&
		bytes.EqualFold(ctx.Request.Header.PeekBytes(secFetchMode), []byte("navigate")) &&
		bytes.EqualFold(ctx.Request.Header.PeekBytes(secFetchDest), []byte("document"))
}

// ownOrigin reports whether origin (an Origin header: scheme://host[:port])
// names the host and port that host (the request's Host header) does, as a
// page of this server sends it.
func ownOrigin(origin, host []byte) bool {
	i := bytes.Index(origin, []byte("://"))
	return i > 0 && len(host) > 0 && bytes.EqualFold(origin[i+3:], host)
}

// hostBytes is the host of a Host header, without port or IPv6 brackets
// (hostName without a copy).
func hostBytes(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		if i := bytes.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h[1:]
	}
	if i := bytes.LastIndexByte(h, ':'); i >= 0 && bytes.IndexByte(h[:i], ':') < 0 {
		return h[:i] // host:port; more than one colon is a bare IPv6 address
	}
	return h
}

// fqdnless is host name h without the root's dot that ends a fully
// qualified name ("localhost." is "localhost"): one dot, and only after a
// label ("." and "localhost.." stay as they are, naming no host).
func fqdnless(h []byte) []byte {
	if n := len(h); n > 1 && h[n-1] == '.' && h[n-2] != '.' {
		return h[:n-1]
	}
	return h
}

// hostName is the host of a Host header, without port or IPv6 brackets.
func hostName(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}

// authorize refuses a request that no role of the caller allows, logging
// the refusal once.
func (s *Server) authorize(c *caller, req *aci.Request) error {
	action := actionName(req.Action)
	sub := ""
	if req.Action == "QUEUEINFO" {
		sub = strings.TrimSpace(req.Params.Value("QueueAction"))
	}
	if c.grant.Allows(s.cfg.Port, action, sub) {
		return nil
	}
	what := action
	if sub != "" {
		// The client's QueueAction, cut as the request log cuts a request:
		// it may be as long as the body, and a client without a role
		// would write that much to the log with each request.
		what += " QueueAction=" + head(sub, maxLogged)
	}
	need := auth.Need(s.cfg.Port, action, sub)
	s.logRefusal(c, what, need)
	return fmt.Errorf("%w: client %s (roles: %s) may not send %s: it needs the %s role",
		messages.ErrPermissionDenied, c.principal.String(), c.grant.Role(), what, need.String())
}

// refuseUnsupported refuses the standard parameters that ask for what this
// server never does: encrypt a reply (EncryptResponse), write it to a file
// on the server (Output, FileName), or transform it with a template stored
// on the server (Template).
func refuseUnsupported(req *aci.Request) error {
	var seen [4]bool // the first occurrence of a name counts (protocol.md)
	for _, p := range req.Params {
		n, v := p.GetName(), p.GetValue()
		switch {
		case !seen[0] && len(n) == len("EncryptResponse") && strings.EqualFold(n, "EncryptResponse"):
			seen[0] = true
			// Blank is absent (false), as for every Boolean parameter.
			if b, ok := aci.ParseBool(v); messages.TrimASCIISpace(v) != "" && (!ok || b) {
				return messages.Invalid("EncryptResponse", v, "this server does not encrypt replies (IDOL's ACI encryption); protect them with TLS ([Server] SSLConfig) and leave EncryptResponse out")
			}
		case !seen[1] && len(n) == len("Output") && strings.EqualFold(n, "Output"):
			seen[1] = true
			if messages.TrimASCIISpace(v) != "" {
				return messages.Invalid("Output", v, "this server never writes replies to files on the server; save the reply on the client")
			}
		case !seen[2] && len(n) == len("FileName") && strings.EqualFold(n, "FileName"):
			seen[2] = true
			if messages.TrimASCIISpace(v) != "" {
				return messages.Invalid("FileName", v, "this server never writes replies to files on the server; save the reply on the client")
			}
		case !seen[3] && len(n) == len("Template") && strings.EqualFold(n, "Template"):
			seen[3] = true
			if messages.TrimASCIISpace(v) != "" {
				return messages.Invalid("Template", v, "this server has no reply templates (IDOL's XSL output templates); transform the XML reply on the client")
			}
		}
	}
	return nil
}

// showPermissions serves ShowPermissions: who the server takes the client
// for (address, certificate identities), the roles it holds, and, for
// every action of this port, whether it may send it. IP (IDOL's parameter)
// asks the same about another address, without certificate identities;
// only a client with the port's administrative role (Admin, on the service
// port ServiceControl) may ask about an address other than its own.
func (s *Server) showPermissions(ctx context.Context, req *aci.Request) (*result, error) {
	c := callerOf(ctx)
	principal, grant, err := s.permissionsOf(c, req)
	if err != nil {
		return nil, err
	}
	ids := []aci.Node{}
	for _, d := range principal.DNS {
		ids = append(ids, aci.Node{Name: "identity", List: true, Text: "dns:" + d})
	}
	for _, e := range principal.Email {
		ids = append(ids, aci.Node{Name: "identity", List: true, Text: "email:" + e})
	}
	roles := []aci.Node{}
	for _, r := range grant.Roles() {
		roles = append(roles, aci.Node{Name: "role", List: true, Text: r})
	}
	std := []aci.Node{}
	for _, r := range grant.Standard.Names() {
		std = append(std, aci.Node{Name: "standardrole", List: true, Text: r})
	}
	perms := []aci.Node{}
	for _, r := range auth.Rules {
		if r.Port != s.cfg.Port || !s.serves(r.Action) {
			continue
		}
		if r.Sub != "" && !slices.ContainsFunc(queueActions, func(qa string) bool { return strings.EqualFold(qa, r.Sub) }) {
			continue // a QueueAction this server does not answer
		}
		attrs := []aci.Attr{{Name: "action", Value: r.Action}}
		if r.Sub != "" {
			attrs = append(attrs, aci.Attr{Name: "queueaction", Value: r.Sub})
		}
		attrs = append(attrs, aci.Attr{Name: "allowed", Value: strconv.FormatBool(grant.Allows(s.cfg.Port, r.Action, r.Sub))})
		perms = append(perms, aci.Node{Name: "permission", List: true, Attrs: attrs})
	}
	policy := "default"
	if s.policy.Configured() {
		policy = "configured"
	}
	return &result{data: []aci.Node{
		aci.TextNode("client", principal.Addr.String()),
		aci.Container("identities", ids...),
		aci.TextNode("policy", policy),
		aci.Container("roles", roles...),
		aci.Container("standardroles", std...),
		aci.Container("permissions", perms...),
	}}, nil
}

// permissionsOf returns whom ShowPermissions describes, and what the roles
// grant it: the caller, or the address its IP parameter names (refused
// unless the caller holds the port's administrative role, or it is the
// caller's own address).
func (s *Server) permissionsOf(c *caller, req *aci.Request) (auth.Principal, auth.Grant, error) {
	v, _ := req.Params.Get("IP")
	if strings.TrimSpace(v) == "" {
		return c.principal, c.grant, nil
	}
	addr, err := netip.ParseAddr(strings.TrimSpace(v))
	if err != nil {
		return auth.Principal{}, auth.Grant{}, messages.Invalid("IP", v, "must be an IPv4 or IPv6 address (ShowPermissions tells the permissions of a client by its address)")
	}
	addr = addr.Unmap()
	if addr == c.principal.Addr {
		return c.principal, c.grant, nil
	}
	need := auth.Admin
	if s.cfg.Port == auth.ServicePort {
		need = auth.ServiceControl
	}
	if c.grant.Standard&need == 0 {
		return auth.Principal{}, auth.Grant{}, fmt.Errorf("%w: client %s (roles: %s) may ask ShowPermissions about itself only: asking about another address (IP=%s) needs the %s role",
			messages.ErrPermissionDenied, c.principal.String(), c.grant.Role(), addr, need)
	}
	p := auth.Principal{Addr: addr}
	return p, s.policy.Grant(p), nil
}

// serves reports whether this server answers action (as the role table
// spells it) on its port.
func (s *Server) serves(action string) bool {
	if action == "Metrics" {
		return s.cfg.Metrics != nil
	}
	_, ok := s.routes[strings.ToUpper(action)]
	return ok
}

// refusalLines is how many refused requests (no role allows them) are
// logged a minute. Any client that reaches the port may send them as fast
// as it likes: with a line each, it wrote into the log (a LogFile on the
// data folder's disk, say) at network speed. Beyond it they are counted,
// and the next line logged says how many went unlogged since the last.
const refusalLines = 20

// refusals limits the lines logRefusal writes (refusalLines a minute of
// Config.Now), without a lock: a window that changes while requests are
// refused may let a line or two more through.
type refusals struct {
	minute   atomic.Int64 // of the current window, in Unix minutes
	logged   atomic.Int64 // lines in it
	unlogged atomic.Int64 // refusals not logged since the last line
}

// logRefusal logs a request no role allows (the client, the action, its
// roles, the role it needs), within refusalLines a minute.
func (s *Server) logRefusal(c *caller, what string, need auth.Standard) {
	r := &s.refusals
	if m := s.cfg.Now().Unix() / 60; r.minute.Load() != m {
		if old := r.minute.Load(); old != m && r.minute.CompareAndSwap(old, m) {
			r.logged.Store(0)
		}
	}
	if r.logged.Add(1) > refusalLines {
		r.unlogged.Add(1)
		return
	}
	attrs := []any{"client", c.principal.String(), "action", what, "role", c.grant.Role(), "needs", need.String()}
	if n := r.unlogged.Swap(0); n > 0 {
		attrs = append(attrs, "refused_unlogged_since_last_line", n)
	}
	s.log.Warn("request refused: no role allows it", attrs...)
}
