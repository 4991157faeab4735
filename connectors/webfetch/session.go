package webfetch

import (
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// sessionJar is a task's cookie jar once it has logged in: the crawl's
// requests send and receive cookies through a net/http/cookiejar (RFC
// 6265's rules), and every cookie that jar accepted, the login's and
// those the site sets later in the crawl (a session rotated by a
// Set-Cookie), is also kept with its attributes, so that each render
// gives the browser the session as it is then, not as it was at the
// login.
type sessionJar struct {
	jar *cookiejar.Jar

	mu      sync.Mutex
	cookies map[cookieKey]*http.Cookie // in the browser's form (cookieParam)
}

// cookieKey identifies a cookie as RFC 6265 does: a cookie set again
// with the same name, domain and path replaces the first.
type cookieKey struct {
	domain string // host (host-only cookie) or "." + domain (domain cookie)
	path   string
	name   string
}

var _ http.CookieJar = (*sessionJar)(nil)

// newSessionJar is the jar of a session that starts with cookies (a
// login's, as the browser gave them: Domain is the host of a host-only
// cookie, "." + domain of a domain cookie).
func newSessionJar(cookies []*http.Cookie) (*sessionJar, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	j := &sessionJar{jar: jar, cookies: map[cookieKey]*http.Cookie{}}
	for _, c := range cookies {
		host := strings.TrimPrefix(c.Domain, ".")
		if host == "" {
			continue
		}
		cc := *c
		if !strings.HasPrefix(c.Domain, ".") {
			cc.Domain = "" // a host-only cookie stays host-only
		}
		scheme := "http"
		if c.Secure {
			scheme = "https"
		}
		path := c.Path
		if path == "" {
			path = "/"
		}
		jar.SetCookies(&url.URL{Scheme: scheme, Host: host, Path: path}, []*http.Cookie{&cc})
		bc := *c
		bc.Domain, bc.Path = strings.ToLower(c.Domain), path
		j.cookies[cookieKey{domain: bc.Domain, path: path, name: c.Name}] = &bc
	}
	return j, nil
}

// Cookies implements http.CookieJar.
func (j *sessionJar) Cookies(u *url.URL) []*http.Cookie { return j.jar.Cookies(u) }

// SetCookies implements http.CookieJar: the cookies go to the jar, and
// those it kept to the browser's copy; a cookie removed (Max-Age ≤ 0, an
// Expires in the past) is removed from both.
func (j *sessionJar) SetCookies(u *url.URL, cookies []*http.Cookie) {
	j.jar.SetCookies(u, cookies)
	now := time.Now()
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range cookies {
		k, ok := keyOf(u, c)
		if !ok {
			continue
		}
		if c.MaxAge < 0 || (!c.Expires.IsZero() && !c.Expires.After(now)) {
			delete(j.cookies, k)
			continue
		}
		if !j.kept(k, c, u.Scheme) {
			continue
		}
		bc := &http.Cookie{
			Name: c.Name, Value: c.Value, Domain: k.domain, Path: k.path,
			Secure: c.Secure, HttpOnly: c.HttpOnly, SameSite: c.SameSite, Expires: c.Expires,
		}
		if c.MaxAge > 0 {
			bc.Expires = now.Add(time.Duration(c.MaxAge) * time.Second)
		}
		j.cookies[k] = bc
	}
}

// kept reports whether the jar kept c (it refuses a cookie for a domain
// its URL's host is not in, and a Secure cookie from plain http): the
// jar sends it back, with its value, to a URL of its domain and path.
func (j *sessionJar) kept(k cookieKey, c *http.Cookie, scheme string) bool {
	if c.Secure && scheme != "https" {
		return false
	}
	s := "http"
	if c.Secure {
		s = "https"
	}
	for _, got := range j.jar.Cookies(&url.URL{Scheme: s, Host: strings.TrimPrefix(k.domain, "."), Path: k.path}) {
		if got.Name == c.Name && got.Value == c.Value {
			return true
		}
	}
	return false
}

// fromRender takes into the session the cookies a render's page set or
// changed (after, the tab's cookies when it was read; given, those it
// was given): the site's answers to the page's own requests (a session
// refreshed by a fetch()) and what its scripts set reach the crawl's
// later requests and renders. A cookie given and gone is not removed:
// a page that logs out, or a browser that refused one, does not end the
// session for the rest of the crawl.
func (j *sessionJar) fromRender(given, after []*http.Cookie) {
	was := make(map[cookieKey]string, len(given))
	for _, c := range given {
		was[cookieKey{domain: strings.ToLower(c.Domain), path: c.Path, name: c.Name}] = c.Value
	}
	for _, c := range after {
		k := cookieKey{domain: strings.ToLower(c.Domain), path: c.Path, name: c.Name}
		if v, ok := was[k]; ok && v == c.Value {
			continue
		}
		host := strings.TrimPrefix(k.domain, ".")
		if host == "" || k.path == "" || k.path[0] != '/' {
			continue
		}
		cc := *c
		cc.Domain = ""
		if strings.HasPrefix(k.domain, ".") {
			cc.Domain = host
		}
		scheme := "http"
		if c.Secure {
			scheme = "https"
		}
		j.SetCookies(&url.URL{Scheme: scheme, Host: host, Path: k.path}, []*http.Cookie{&cc})
	}
}

// browserCookies are the session's cookies now, for a render
// (browser.RenderOptions.Cookies): those expired are left out.
func (j *sessionJar) browserCookies() []*http.Cookie {
	now := time.Now()
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]*http.Cookie, 0, len(j.cookies))
	for k, c := range j.cookies {
		if !c.Expires.IsZero() && !c.Expires.After(now) {
			delete(j.cookies, k)
			continue
		}
		out = append(out, c)
	}
	// In a fixed order: the browser is given the same cookies the same
	// way every time.
	sort.Slice(out, func(a, b int) bool {
		x, y := out[a], out[b]
		if x.Domain != y.Domain {
			return x.Domain < y.Domain
		}
		if x.Path != y.Path {
			return x.Path < y.Path
		}
		return x.Name < y.Name
	})
	return out
}

// keyOf is c's identity as set from u (RFC 6265 section 5.3): its domain
// (u's host for a host-only cookie; a Domain attribute naming an IP
// address is host-only too, as net/http/cookiejar takes it) and its path
// (the default path of u when c has none).
func keyOf(u *url.URL, c *http.Cookie) (cookieKey, bool) {
	host := strings.ToLower(u.Hostname())
	if host == "" || c.Name == "" {
		return cookieKey{}, false
	}
	k := cookieKey{domain: host, path: c.Path, name: c.Name}
	if d := strings.ToLower(strings.TrimPrefix(c.Domain, ".")); d != "" && net.ParseIP(host) == nil {
		k.domain = "." + d
	}
	if k.path == "" || k.path[0] != '/' {
		k.path = defaultPath(u.Path)
	}
	return k, true
}

// defaultPath is RFC 6265's default-path of a request path.
func defaultPath(p string) string {
	if p == "" || p[0] != '/' {
		return "/"
	}
	i := strings.LastIndexByte(p, '/')
	if i == 0 {
		return "/"
	}
	return p[:i]
}
