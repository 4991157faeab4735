package crawl

import (
	"errors"
	"strings"

	"github.com/nlnwa/whatwg-url/url"
)

// urlParser is a plain WHATWG URL parser (no lax options): the crawl parses
// every URL exactly as a browser would.
var urlParser = url.NewParser()

var errNotHTTP = errors.New("crawl: not an http or https URL")

// parseURL parses ref with the WHATWG basic URL parser, relative to base
// when base is not nil. It is the whole of the crawl's URL syntax: the
// conformance test runs it over the WHATWG test suite.
func parseURL(base *url.Url, ref string) (*url.Url, error) {
	if base == nil {
		return urlParser.Parse(ref)
	}
	return base.Parse(ref)
}

// parseStartURL parses an absolute http(s) start URL.
func parseStartURL(s string) (*url.Url, error) {
	u, err := parseURL(nil, strings.TrimSpace(s))
	if err != nil {
		return nil, err
	}
	if !isHTTPScheme(u.Scheme()) {
		return nil, errNotHTTP
	}
	return u, nil
}

func isHTTPScheme(s string) bool { return s == "http" || s == "https" }

// normURL is a URL as the crawl keeps it.
type normURL struct {
	s    string // normalised href: no fragment, session ids removed
	host string // WHATWG hostname (no port); "" unless http
	site string // scheme, host without "www." and port, for StayOnSite; "" unless http
	http bool   // scheme is http or https
}

// normalizer turns parsed URLs into the strings the crawl deduplicates and
// fetches. On top of the WHATWG serialisation (lower-case scheme and host,
// IDNA, default port removed, dot segments resolved, percent-encoding of
// what must be encoded) it drops the fragment and removes session ids.
type normalizer struct {
	names    []string // lower case, exact
	prefixes []string // lower case, from "name*"
	enabled  bool     // any session stripping at all
}

func newNormalizer(sessionParams []string) *normalizer {
	n := &normalizer{enabled: len(sessionParams) > 0}
	for _, p := range sessionParams {
		p = strings.ToLower(p)
		if strings.HasSuffix(p, "*") {
			n.prefixes = append(n.prefixes, strings.TrimSuffix(p, "*"))
		} else {
			n.names = append(n.names, p)
		}
	}
	return n
}

// resolve parses ref against base (nil: ref must be absolute) and
// normalises it.
func (n *normalizer) resolve(base *url.Url, ref string) (normURL, error) {
	u, err := parseURL(base, ref)
	if err != nil {
		return normURL{}, err
	}
	return n.normalize(u), nil
}

// normalize returns the crawl's form of u.
//
// An http(s) URL whose user information has a password (a link or a
// redirect to http://user:password@host/...) loses its user information:
// the crawl's form is every document's reference, in the datastore, the
// output, failures and logs, where a secret must never be in clear
// (docs/security.md); and credentials are the task's business, sent to its
// own origins only (BasicAuth), never ones a page chose. Start URLs cannot
// carry a password at all (the settings refuse one).
func (n *normalizer) normalize(u *url.Url) normURL {
	if u.Password() != "" && isHTTPScheme(u.Scheme()) {
		bare := *u // the caller's URL is not changed
		bare.SetUsername("")
		bare.SetPassword("")
		u = &bare
	}
	href := u.Href(true)
	if !isHTTPScheme(u.Scheme()) {
		return normURL{s: href}
	}
	if n.enabled {
		if stripped := n.stripSession(href); stripped != href {
			// Removing a path parameter can leave a dot segment
			// ("/x/..;jsessionid=1/y"): serialise again so that the result
			// is a fixed point of normalisation.
			href = stripped
			if again, err := urlParser.Parse(stripped); err == nil {
				href = again.Href(true)
			}
		}
	}
	return normURL{s: href, host: u.Hostname(), site: siteOf(u.Scheme(), u.Hostname(), u.Port()), http: true}
}

// siteOf is what StayOnSite compares: the scheme, the host without a
// leading "www." and the port (the scheme's default when none is given),
// so that another service on the same host is another site.
func siteOf(scheme, host, port string) string {
	if port == "" {
		port = "80"
		if scheme == "https" {
			port = "443"
		}
	}
	return scheme + "://" + siteHost(host) + ":" + port
}

// pathStart returns the index of the path of a serialised http(s) URL (the
// first '/' after "://"; userinfo and host cannot contain a raw '/').
func pathStart(href string) int {
	i := strings.Index(href, "://")
	if i < 0 {
		return len(href)
	}
	j := strings.IndexByte(href[i+3:], '/')
	if j < 0 {
		return len(href)
	}
	return i + 3 + j
}

// splitURL splits a serialised http(s) URL into origin, path and query
// (query without '?', hasQuery false when there is no '?').
func splitURL(href string) (origin, path, query string, hasQuery bool) {
	ps := pathStart(href)
	origin, rest := href[:ps], href[ps:]
	path, query, hasQuery = strings.Cut(rest, "?")
	return origin, path, query, hasQuery
}

// stripSession removes session-id path parameters, ASP.NET cookieless
// session segments and session-id query parameters from a serialised URL.
func (n *normalizer) stripSession(href string) string {
	origin, path, query, hasQuery := splitURL(href)
	changed := false
	if strings.IndexByte(path, ';') >= 0 || strings.IndexByte(path, '(') >= 0 {
		if p, ok := stripPathSession(path); ok {
			path, changed = p, true
		}
	}
	if hasQuery && query != "" {
		if q, ok := n.stripQuerySession(query); ok {
			query, changed = q, true
			hasQuery = q != ""
		}
	}
	if !changed {
		return href
	}
	var b strings.Builder
	b.Grow(len(href))
	b.WriteString(origin)
	b.WriteString(path)
	if hasQuery {
		b.WriteByte('?')
		b.WriteString(query)
	}
	return b.String()
}

// pathSessionParams are path parameters (";name=value") holding session ids.
var pathSessionParams = []string{"jsessionid", "phpsessid", "sid"}

// stripPathSession removes ";jsessionid=..." style parameters and
// "(S(...))" segments from a path.
func stripPathSession(path string) (string, bool) {
	changed := false
	segs := strings.Split(path, "/")
	out := segs[:0]
	for i, seg := range segs {
		if i > 0 && isCookielessSegment(seg) {
			changed = true
			continue
		}
		if strings.IndexByte(seg, ';') >= 0 {
			parts := strings.Split(seg, ";")
			kept := parts[:1]
			for _, p := range parts[1:] {
				name, _, _ := strings.Cut(p, "=")
				if containsFold(pathSessionParams, name) {
					changed = true
					continue
				}
				kept = append(kept, p)
			}
			seg = strings.Join(kept, ";")
		}
		out = append(out, seg)
	}
	if !changed {
		return path, false
	}
	p := strings.Join(out, "/")
	if p == "" {
		p = "/"
	}
	return p, true
}

// isCookielessSegment reports whether seg is an ASP.NET cookieless session
// segment such as "(S(lit3py55t21z5v55vlm25s55))" or "(S(x)F(y))".
func isCookielessSegment(seg string) bool {
	if len(seg) < 6 || seg[0] != '(' || seg[len(seg)-1] != ')' {
		return false
	}
	s := seg[1 : len(seg)-1]
	for s != "" {
		// Each part: one upper-case letter, '(', token, ')'.
		if len(s) < 4 || s[0] < 'A' || s[0] > 'Z' || s[1] != '(' {
			return false
		}
		end := strings.IndexByte(s, ')')
		if end < 3 {
			return false
		}
		for _, c := range []byte(s[2:end]) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
		s = s[end+1:]
	}
	return true
}

// stripQuerySession removes session-id parameters from a query string,
// keeping every other byte as it was.
func (n *normalizer) stripQuerySession(query string) (string, bool) {
	parts := strings.Split(query, "&")
	kept := parts[:0]
	for _, part := range parts {
		name, _, _ := strings.Cut(part, "=")
		if name != "" && n.isSessionName(name) {
			continue
		}
		kept = append(kept, part)
	}
	if len(kept) == len(parts) {
		return query, false
	}
	return strings.Join(kept, "&"), true
}

func (n *normalizer) isSessionName(name string) bool {
	if strings.IndexByte(name, '%') >= 0 {
		name = percentDecode(name)
	}
	if containsFold(n.names, name) {
		return true
	}
	for _, p := range n.prefixes {
		if len(name) >= len(p) && strings.EqualFold(name[:len(p)], p) {
			return true
		}
	}
	return false
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// percentDecode decodes %XX escapes, leaving malformed ones as they are.
func percentDecode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// siteHost is the host StayOnSite compares: without a leading "www.".
func siteHost(host string) string { return strings.TrimPrefix(host, "www.") }

// robotsPath returns the path, parameters and query of a normalised http(s)
// URL, the part robots.txt rules are matched against (always starting with
// '/').
//
// Its percent-encodings are upper-cased, as the rules' are when they are
// read (grobotstxt): the hex digits of an encoding are case-insensitive
// (RFC 3986 2.1), and a link written "/caf%c3%a9" is the page that
// "Disallow: /café" (/caf%C3%A9) forbids. The WHATWG serialisation keeps
// the case a page wrote.
func robotsPath(href string) string {
	p := href[pathStart(href):]
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	return upperEscapes(p)
}

// upperEscapes returns s with the hex digits of its %XX encodings in upper
// case (s itself when they are already).
func upperEscapes(s string) string {
	var b []byte
	for i := strings.IndexByte(s, '%'); i >= 0 && i+2 < len(s); {
		if isHex(s[i+1]) && isHex(s[i+2]) && (isLowerHex(s[i+1]) || isLowerHex(s[i+2])) {
			if b == nil {
				b = []byte(s)
			}
			b[i+1], b[i+2] = upperHex(s[i+1]), upperHex(s[i+2])
		}
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	if b == nil {
		return s
	}
	return string(b)
}

func isLowerHex(c byte) bool { return 'a' <= c && c <= 'f' }

func upperHex(c byte) byte {
	if isLowerHex(c) {
		return c - 'a' + 'A'
	}
	return c
}

// originOf returns scheme://host[:port] of a normalised http(s) URL, the
// key robots.txt files are cached under.
func originOf(href string) string {
	o := href[:pathStart(href)]
	if at := strings.LastIndexByte(o, '@'); at >= 0 {
		i := strings.Index(o, "://")
		o = o[:i+3] + o[at+1:]
	}
	return o
}

// Byte classes of fastResolve: what the WHATWG parser copies unchanged
// into the path, and into the query (or ignores, in the fragment), of an
// http(s) URL. Both are narrower than the standard's sets (no ', ^, |,
// [, ], {, }, backquote or non-ASCII), which only sends more references
// to the parser.
var fastPathByte, fastQueryByte = func() (p, q [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		p[c], p[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		p[c] = true
	}
	for _, c := range "-._~!$&()*+,;=:@%" {
		p[c] = true
	}
	q = p
	q['/'], q['?'] = true, true
	return p, q
}()

// fastResolve resolves, without the WHATWG parser, the references whose
// resolution against an http(s) base is a plain concatenation: a
// path-absolute "/p/q?x" (base's origin + the reference) or a relative
// path "p/q.html?x#f" (base's folder + the reference), made only of
// bytes the parser copies as they are, with no dot segment ("." or "..",
// plain or percent-encoded), the fragment dropped, and no session id to
// strip. ok is false for any other reference, which the caller resolves
// with resolve; where ok is true the result is what resolve returns
// (TestFastResolveMatchesResolve, FuzzFastResolve). On a site's pages
// most links are of this kind, and the parser was the largest cost of a
// page after tokenising it.
func (n *normalizer) fastResolve(base *url.Url, bk *baseKeys, ref string) (normURL, bool) {
	var prefix string
	switch {
	case strings.HasPrefix(ref, "http://") || strings.HasPrefix(ref, "https://"):
		return n.fastAbsolute(ref)
	case len(ref) >= 2 && ref[0] == '/' && ref[1] != '/' && ref[1] != '\\':
		if !bk.compute(base) {
			return normURL{}, false
		}
		prefix = bk.origin
	case plainRelative(ref):
		if !bk.compute(base) {
			return normURL{}, false
		}
		prefix = bk.dir
	default:
		return normURL{}, false
	}
	href, ok := fastPath(prefix, ref)
	if !ok || (n.enabled && n.stripSession(href) != href) {
		return normURL{}, false
	}
	return normURL{s: href, host: bk.host, site: bk.site, http: true}, true
}

// fastAbsolute is fastResolve's case of an absolute http(s) URL whose host
// is lower-case ASCII letters, digits, '-' and '.' in non-empty labels,
// none of them punycode ("xn--") and the last starting with a letter (so
// not read as IPv4), with no userinfo and no port.
func (n *normalizer) fastAbsolute(ref string) (normURL, bool) {
	scheme, rest, _ := strings.Cut(ref, "://")
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	host := rest[:end]
	if host == "" || !fastHost(host) {
		return normURL{}, false
	}
	path := rest[end:]
	prefix := ref[:len(scheme)+3+end]
	if path == "" {
		path = "/"
	} else if path[0] != '/' {
		return normURL{}, false
	}
	href, ok := fastPath(prefix, path)
	if !ok || (n.enabled && n.stripSession(href) != href) {
		return normURL{}, false
	}
	return normURL{s: href, host: host, site: siteOf(scheme, host, ""), http: true}, true
}

// fastHost reports whether host is one fastAbsolute takes.
func fastHost(host string) bool {
	last := ""
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || strings.HasPrefix(label, "xn--") {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
		last = label
	}
	// The parser reads a host whose last label is a number (decimal, or
	// hexadecimal after 0x; this parser reads "-0" as one too) as IPv4:
	// the last label must start with a letter.
	return 'a' <= last[0] && last[0] <= 'z'
}

// fastPath returns prefix + the path and query of ref (its fragment
// dropped) when ref's path and query are made only of bytes the parser
// copies as they are, with no dot segment ("." or "..", plain or
// percent-encoded).
func fastPath(prefix, ref string) (string, bool) {
	end := len(ref) // where the fragment starts
	segStart, inQuery := 0, false
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		if c == '#' {
			end = i
			break
		}
		if inQuery {
			if !fastQueryByte[c] {
				return "", false
			}
			continue
		}
		switch {
		case c == '/' || c == '?':
			if isDotSegment(ref[segStart:i]) {
				return "", false
			}
			segStart, inQuery = i+1, c == '?'
		case c == '%' && i+2 < len(ref) && ref[i+1] == '2' && (ref[i+2] == 'e' || ref[i+2] == 'E'):
			return "", false // maybe a dot segment: the parser decides
		case !fastPathByte[c]:
			return "", false
		}
	}
	if !inQuery && isDotSegment(ref[segStart:end]) {
		return "", false
	}
	for i := end + 1; i < len(ref); i++ {
		if !fastQueryByte[ref[i]] {
			return "", false
		}
	}
	return prefix + ref[:end], true
}

func isDotSegment(s string) bool { return s == "." || s == ".." }
