package webfetch

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
)

// rotatingSite is a site behind a form login whose session cookie (sid)
// the site replaces once (rotate): the login starts session "first",
// rotate ends it and starts "second".
type rotatingSite struct {
	*site
	mu    sync.Mutex
	valid map[string]bool
}

func newRotatingSite(t *testing.T) *rotatingSite {
	s := &rotatingSite{site: newSite(t), valid: map[string]bool{}}
	s.serveLogin(s.site, "/welcome")
	s.html("/welcome", `<html><body><div id="logout">logged in</div></body></html>`)
	return s
}

// serveLogin serves the site's login form at /login of on, which starts
// session "first" and sends the browser to welcome.
func (s *rotatingSite) serveLogin(on *site, welcome string) {
	on.html("/login", `<html><body><form method="post" action="/session"><input name="username"><input type="password" name="pw"><button id="go" type="submit">Log in</button></form></body></html>`)
	on.handle("/session", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.FormValue("pw") != password {
			http.Redirect(w, r, "/login?failed=1", http.StatusSeeOther)
			return
		}
		s.mu.Lock()
		s.valid["first"] = true
		s.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: "first", Path: "/", HttpOnly: true})
		http.Redirect(w, r, welcome, http.StatusSeeOther)
	})
}

// session is the valid session r carries, "" for none.
func (s *rotatingSite) session(r *http.Request) string {
	c, err := r.Cookie("sid")
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil || !s.valid[c.Value] {
		return ""
	}
	return c.Value
}

// rotate ends session "first" and starts "second" (once).
func (s *rotatingSite) rotate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.valid["first"] {
		s.valid["first"], s.valid["second"] = false, true
	}
}

func (s *rotatingSite) loginKeys() []string {
	return []string{"LoginUrl=" + s.URL + "/login", "LoginUsername=crawler", "LoginPassword=" + password,
		"LoginSubmit=#go", "LoginSuccessSelector=#logout"}
}

// TestRotatedSessionCookieReachesTheBrowser: a site that rotates its
// session cookie on a page the crawl fetches (Set-Cookie with a new
// value, the old one no longer valid) has the pages rendered after the
// rotation rendered with the new session: their scripts' data is
// members-only text, not the logged-out answer.
func TestRotatedSessionCookieReachesTheBrowser(t *testing.T) {
	t.Parallel()
	s := newRotatingSite(t)
	var mu sync.Mutex
	var seen []string // the session each request for data carried
	page := func(next string) string {
		return `<html><body><div id="app">-</div><script>
fetch("/data.json").then(function (r) { return r.text() }).then(function (t) {
  document.getElementById("app").textContent = t;
  var a = document.createElement("a"); a.href = "` + next + `"; a.textContent = "next"; document.body.appendChild(a);
});
</script></body></html>`
	}
	// The home page rotates the session: "first" ends, "second" starts.
	s.handle("/home", func(w http.ResponseWriter, r *http.Request) {
		if s.session(r) == "" {
			http.Redirect(w, r, "/login", http.StatusFound)
			return
		}
		s.rotate()
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: "second", Path: "/", HttpOnly: true})
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(page("/other")))
	})
	s.handle("/other", func(w http.ResponseWriter, r *http.Request) {
		if s.session(r) == "" {
			http.Redirect(w, r, "/login", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(page("/home")))
	})
	s.handle("/data.json", func(w http.ResponseWriter, r *http.Request) {
		sid := s.session(r)
		mu.Lock()
		seen = append(seen, sid)
		mu.Unlock()
		if sid == "" {
			http.Error(w, "logged out", http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte("members-only text"))
	})

	b := setup(t, taskConfig(s.URL+"/home", s.loginKeys()...))
	job := b.sync(t, "ConfigSection", "MyTask")
	for _, p := range []string{"/home", "/other"} {
		d := b.target.doc(s.URL + p)
		require.NotNil(t, d, "%s delivered: %v", p, b.target.refs())
		assert.Contains(t, d.Content, "members-only text", "%s: the page's script fetched with the session in force", p)
	}
	assert.Equal(t, cnt{Seen: 2, Added: 2}, countsOf(job, "MYTASK"))
	mu.Lock()
	defer mu.Unlock()
	for _, sid := range seen {
		assert.Equal(t, "second", sid, "every data request carried the rotated session: %q", seen)
	}
}

// TestSessionJarKeepsWhatTheCrawlKeeps: the browser is given the cookies
// the crawl's jar kept, with their attributes: a cookie set again
// replaces the first, one removed goes, one for a domain the site is not
// in, or a Secure one from plain http, is given to neither.
func TestSessionJarKeepsWhatTheCrawlKeeps(t *testing.T) {
	login := []*http.Cookie{
		{Name: "sid", Value: "one", Domain: "www.example.com", Path: "/"},
		{Name: "pref", Value: "dark", Domain: ".example.com", Path: "/"},
	}
	j, err := newSessionJar(login)
	require.NoError(t, err)
	www, _ := url.Parse("http://www.example.com/docs/page")
	j.SetCookies(www, []*http.Cookie{
		{Name: "sid", Value: "two", Path: "/", HttpOnly: true},                  // rotated
		{Name: "pref", Value: "", Domain: "example.com", Path: "/", MaxAge: -1}, // removed
		{Name: "evil", Value: "x", Domain: "other.org"},                         // not the site's domain
		{Name: "sec", Value: "x", Secure: true},                                 // Secure over http
		{Name: "cart", Value: "3"},                                              // default path /docs
		{Name: "api", Value: "k", Domain: ".example.com", Path: "/api", MaxAge: 60},
	})
	byName := map[string]*http.Cookie{}
	for _, c := range j.browserCookies() {
		byName[c.Name] = c
	}
	require.Len(t, byName, 3, "%v", byName)
	assert.Equal(t, "two", byName["sid"].Value)
	assert.Equal(t, "www.example.com", byName["sid"].Domain, "host-only")
	assert.True(t, byName["sid"].HttpOnly)
	assert.Equal(t, "/docs", byName["cart"].Path)
	assert.Equal(t, ".example.com", byName["api"].Domain)
	assert.False(t, byName["api"].Expires.IsZero(), "Max-Age becomes an expiry")
	// The crawl's own requests send the same session.
	got := map[string]string{}
	for _, c := range j.Cookies(www) {
		got[c.Name] = c.Value
	}
	assert.Equal(t, map[string]string{"sid": "two", "cart": "3"}, got)
}

// TestSessionRotatedByAPageScriptIsKept: a site whose pages' scripts
// refresh the session (a fetch() answered with a new session cookie, the
// old one no longer valid) has the pages fetched and rendered after that
// with the new session, not logged out.
func TestSessionRotatedByAPageScriptIsKept(t *testing.T) {
	t.Parallel()
	s := newRotatingSite(t)
	var mu sync.Mutex
	var pages []string // the session each page request carried
	private := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			sid := s.session(r)
			mu.Lock()
			pages = append(pages, r.URL.Path+"="+sid)
			mu.Unlock()
			if sid == "" {
				http.Redirect(w, r, "/login", http.StatusFound)
				return
			}
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte(body))
		}
	}
	// The home page's script refreshes the session, then links on.
	s.handle("/home", private(`<html><body><p>home</p><script>
fetch("/refresh", { method: "POST" }).then(function () {
  var a = document.createElement("a"); a.href = "/other"; a.textContent = "next"; document.body.appendChild(a);
});
</script></body></html>`))
	s.handle("/refresh", func(w http.ResponseWriter, r *http.Request) {
		if s.session(r) == "" {
			http.Error(w, "logged out", http.StatusForbidden)
			return
		}
		s.rotate()
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: "second", Path: "/", HttpOnly: true})
		w.WriteHeader(http.StatusNoContent)
	})
	s.handle("/other", private(`<html><body><p>members-only other</p></body></html>`))

	b := setup(t, taskConfig(s.URL+"/home", s.loginKeys()...))
	job := b.sync(t, "ConfigSection", "MyTask")
	other := b.target.doc(s.URL + "/other")
	require.NotNil(t, other, "delivered: %v", b.target.refs())
	assert.Contains(t, other.Content, "members-only other")
	assert.Equal(t, cnt{Seen: 2, Added: 2}, countsOf(job, "MYTASK"))
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"/home=first", "/other=second"}, pages)
}

// TestSessionJarTakesWhatAPageSet: after a render, a cookie its page
// changed or set is the session's; one given that the page no longer
// had stays.
func TestSessionJarTakesWhatAPageSet(t *testing.T) {
	j, err := newSessionJar([]*http.Cookie{
		{Name: "sid", Value: "one", Domain: "www.example.com", Path: "/"},
		{Name: "keep", Value: "k", Domain: "www.example.com", Path: "/"},
	})
	require.NoError(t, err)
	given := j.browserCookies()
	j.fromRender(given, []*http.Cookie{
		{Name: "sid", Value: "two", Domain: "www.example.com", Path: "/", HttpOnly: true},
		{Name: "consent", Value: "yes", Domain: ".example.com", Path: "/"},
	})
	got := map[string]string{}
	for _, c := range j.Cookies(&url.URL{Scheme: "http", Host: "www.example.com", Path: "/"}) {
		got[c.Name] = c.Value
	}
	assert.Equal(t, map[string]string{"sid": "two", "keep": "k", "consent": "yes"}, got)
	assert.Len(t, j.browserCookies(), 3)
}

// TestPageCookiesReachItsRender: a page whose response sets a cookie
// that its script needs (a CSRF token read from document.cookie, a
// session its data requests carry) is rendered with it, as a browser
// that loaded the page would have it, in a task without a login too;
// a cookie for another domain is not set.
func TestPageCookiesReachItsRender(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	var mu sync.Mutex
	var got []string
	s.handle("/", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "csrftoken", Value: "t0k3n", Path: "/"})
		http.SetCookie(w, &http.Cookie{Name: "visit", Value: "v1", Path: "/", HttpOnly: true})
		w.Header().Add("Set-Cookie", "evil=x; Domain=other.example; Path=/")
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<html><body><p id="out">-</p><script>
var m = document.cookie.match(/csrftoken=([^;]+)/);
fetch("/api", { headers: { "X-CSRFToken": m ? m[1] : "none" } }).then(function (r) { return r.text() }).then(function (t) { document.getElementById("out").textContent = t });
</script></body></html>`))
	})
	s.handle("/api", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("X-CSRFToken")+" "+r.Header.Get("Cookie"))
		mu.Unlock()
		c, err := r.Cookie("visit")
		if r.Header.Get("X-CSRFToken") != "t0k3n" || err != nil || c.Value != "v1" {
			http.Error(w, "refused", http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte("the api's answer"))
	})
	b := setup(t, taskConfig(s.URL+"/", "Depth=0"))
	b.sync(t, "ConfigSection", "MyTask")
	d := b.target.doc(s.URL + "/")
	require.NotNil(t, d)
	assert.Contains(t, d.Content, "the api's answer")
	mu.Lock()
	defer mu.Unlock()
	for _, g := range got {
		assert.NotContains(t, g, "evil", "a cookie for another domain is not set")
	}
}

// TestSessionEndedMidCrawlDeletesNothing: a session that ends during a
// crawl (it expired, the account logged in elsewhere, the site
// restarted) makes the site redirect every page after it to the login
// page. The crawl indexed the login form and ended as Success, every
// page it no longer reached deleted from the index: one expired session
// emptied the task's index. The crawl now stops at the first page sent
// to the login page, the action ends as Error saying so, and nothing is
// deleted; the next run logs in again.
func TestSessionEndedMidCrawlDeletesNothing(t *testing.T) {
	t.Parallel()
	base, err := sessionEndingMidCrawl(t, sessionEnding{})
	assert.Contains(t, err.Error(), "task MYTASK")
	assert.Contains(t, err.Error(), base+"/private/two")
	assert.NotContains(t, err.Error(), password)
}

// sessionEnding is how sessionEndingMidCrawl's site is set up.
type sessionEnding struct {
	publicHome bool     // /home is served to anyone
	sso        bool     // the login page is on another host (single sign-on)
	keys       []string // more task settings
	linkLogin  bool     // /home links to the login page
	// script: every page is served to anyone, its text and link written
	// by its script from /data, which the site answers 401 without a
	// session, and the script then sends the browser to the login page
	// (a single-page application).
	script bool
}

// sessionEndingMidCrawl runs two Synchronizes of a site behind a form
// login whose pages /home (served to anyone when publicHome),
// /private/one and /private/two link in a ring: the first indexes the
// three, and in the second the session ends once /private/one is served.
// It checks that the second ends as Error saying the session ended,
// having indexed no login page and deleted nothing, and returns the
// site's URL and that error.
func sessionEndingMidCrawl(t *testing.T, how sessionEnding) (string, error) {
	t.Helper()
	s := newRotatingSite(t)
	login, keys := s.URL, s.loginKeys()
	if how.sso {
		login, keys = s.ssoLogin(t)
	}
	var expire atomic.Bool
	s.handle("/data", func(w http.ResponseWriter, r *http.Request) {
		if s.session(r) == "" {
			http.Error(w, "log in", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte("text of " + r.URL.Query().Get("p")))
	})
	page := func(path, next string) {
		s.handle(path, func(w http.ResponseWriter, r *http.Request) {
			if how.script {
				if path == "/private/one" && expire.Load() {
					s.mu.Lock()
					s.valid["first"] = false // ends once this page is served
					s.mu.Unlock()
				}
				w.Header().Set("Content-Type", "text/html")
				_, _ = w.Write([]byte(`<html><body><div id="logout">in</div><p id="t"></p><script>
fetch("/data?p=` + path + `").then(function (r) {
  if (r.status === 401) { location.href = "` + login + `/login?expired=1"; return; }
  return r.text().then(function (t) {
    document.getElementById("t").textContent = t;
    var a = document.createElement("a"); a.href = "` + next + `"; a.textContent = "next"; document.body.appendChild(a);
  });
});
</script></body></html>`))
				return
			}
			if s.session(r) == "" && !(how.publicHome && path == "/home") {
				http.Redirect(w, r, login+"/login?expired=1", http.StatusFound)
				return
			}
			if path == "/private/one" && expire.Load() {
				s.mu.Lock()
				s.valid["first"] = false // ends once this page is served
				s.mu.Unlock()
			}
			more := ""
			if how.linkLogin && path == "/home" {
				more = `<a href="` + login + `/login?expired=1">log in again</a>`
			}
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte(`<html><body><div id="logout">in</div><p>text of ` + path + `</p><a href="` + next + `">next</a>` + more + `</body></html>`))
		})
	}
	page("/home", "/private/one")
	page("/private/one", "/private/two")
	page("/private/two", "/home")
	b := setup(t, taskConfig(s.URL+"/home", append(keys, how.keys...)...))
	all := []string{s.URL + "/home", s.URL + "/private/one", s.URL + "/private/two"}
	job := b.sync(t)
	require.Equal(t, all, b.target.refs(), "failures: %v", job.Failures())

	expire.Store(true)
	job, _, err := b.run(t, fetch.ActionSynchronize, params())
	require.Error(t, err, "deleted: %v", b.target.removed)
	require.ErrorContains(t, err, "the session ended")
	assert.Equal(t, all, b.target.refs(), "the login page is not indexed, no page is deleted")
	assert.Empty(t, b.target.removed)
	assert.Zero(t, countsOf(job, "MYTASK").Deleted)
	return s.URL, err
}

// ssoLogin serves the site's login on another host (a single sign-on
// service: another port of 127.0.0.1, so another site for StayOnSite,
// whose host cookie the site receives). It returns that host's URL and
// the task's login settings.
func (s *rotatingSite) ssoLogin(t *testing.T) (string, []string) {
	sso := newSite(t)
	s.serveLogin(sso, s.URL+"/welcome")
	return sso.URL, []string{"LoginUrl=" + sso.URL + "/login", "LoginUsername=crawler", "LoginPassword=" + password,
		"LoginSubmit=#go", "LoginSuccessSelector=#logout"}
}

// TestSessionEndedAtALoginPageTheCrawlDoesNotFetch: the session-end
// check ran on the login page the crawl fetched and rendered, so it
// missed a redirect to a login page the crawl does not fetch: on another
// host (a single sign-on service, off the site for StayOnSite), excluded
// by the spider regexes (as this page's docs advise for a login page), or
// already fetched in this run. Such a redirect was dropped in silence,
// the crawl ended as Success and every page after the session's end was
// deleted as no longer reached. The check is now made on every redirect
// hop, before the crawl's rules.
func TestSessionEndedAtALoginPageTheCrawlDoesNotFetch(t *testing.T) {
	t.Parallel()
	for name, how := range map[string]sessionEnding{
		"single sign-on":              {sso: true},
		"single sign-on, public home": {sso: true, publicHome: true},
		"excluded":                    {keys: []string{"SpiderUrlCantHaveRegex=.*/login.*"}},
		"already fetched":             {linkLogin: true, keys: []string{"UrlCantHaveRegex=.*/login.*"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sessionEndingMidCrawl(t, how)
		})
	}
}

// TestRestrictedPageDoesNotEndTheCrawl: a site also sends to its login
// page, with the session alive, a page the account logged in may not see
// (Django's permission_required, Spring Security's entry point, a
// members' area of a higher level). Taken for the end of the session, one
// link to such a page ended every Synchronize of the task as Error, the
// pages after it never crawled. The session is checked (the start URL
// fetched again with it): alive, the crawl goes on, and such a page is
// rendered as any other.
func TestRestrictedPageDoesNotEndTheCrawl(t *testing.T) {
	t.Parallel()
	restrictedPage(t, false)
}

// TestRestrictedPageBehindSingleSignOn: as
// TestRestrictedPageDoesNotEndTheCrawl, with the login page on another
// host (a single sign-on service), which the crawl does not follow a
// redirect to (StayOnSite).
func TestRestrictedPageBehindSingleSignOn(t *testing.T) {
	t.Parallel()
	restrictedPage(t, true)
}

// TestRestrictedPageBehindAPublicStartURLIsNamedSo: with a start URL the
// site serves without a session, a page the account may not see cannot
// be told from an ended session and ends the crawl (as docs/connectors/
// web.md says); the error said only "the session ended" and "the next
// run logs in again", which the next run, and every one after it,
// belied. It now says the page may be one the account may not see, and
// what to do.
func TestRestrictedPageBehindAPublicStartURLIsNamedSo(t *testing.T) {
	t.Parallel()
	s := newRotatingSite(t)
	s.html("/home", `<html><body><a href="/admin/">admin</a></body></html>`) // served to anyone
	s.handle("/admin/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/login?next=/admin/", http.StatusFound) // logged in, not allowed
	})
	b := setup(t, taskConfig(s.URL+"/home", s.loginKeys()...))
	_, _, err := b.run(t, fetch.ActionSynchronize, params())
	require.Error(t, err)
	assert.Contains(t, err.Error(), s.URL+"/admin/ was redirected to the login page")
	assert.Contains(t, err.Error(), "or it is a page the account may not see: the first start URL is served without a session and cannot tell; exclude that page with the spider regexes, or start at a page behind the login")
}

// TestSessionEndedInAPageScriptDeletesNothing: a single-page
// application serves every page to anyone, and its script, whose data
// requests the site answers 401 once the session ended, sends the browser
// to the login page. No redirect reached the session-end check: each page
// after the session's end was delivered as the empty shell its script
// left, without its links, and the pages no longer reached were deleted.
// A rendered page that navigated to the login page is now checked as a
// redirect to it is.
func TestSessionEndedInAPageScriptDeletesNothing(t *testing.T) {
	t.Parallel()
	sessionEndingMidCrawl(t, sessionEnding{script: true})
}

// restrictedPage crawls a site behind a form login (on another host with
// sso) whose home page links to a page the account may not see, and
// checks that the crawl goes on.
func restrictedPage(t *testing.T, sso bool) {
	s := newRotatingSite(t)
	login, keys := s.URL, s.loginKeys()
	if sso {
		login, keys = s.ssoLogin(t)
	}
	private := func(path, body string) {
		s.handle(path, func(w http.ResponseWriter, r *http.Request) {
			if s.session(r) == "" {
				http.Redirect(w, r, login+"/login?next="+path, http.StatusFound)
				return
			}
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte(body))
		})
	}
	private("/home", `<html><body><div id="logout">in</div><a href="/admin/">admin</a> <a href="/two">two</a></body></html>`)
	private("/two", `<html><body><p>page two</p></body></html>`)
	s.handle("/admin/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, login+"/login?next=/admin/", http.StatusFound) // logged in, not allowed
	})
	b := setup(t, taskConfig(s.URL+"/home", keys...))
	job, _, err := b.run(t, fetch.ActionSynchronize, params())
	require.NoError(t, err, "a page the account may not see is no end of the session")
	assert.Contains(t, b.target.refs(), s.URL+"/two", "failures: %v", job.Failures())
	if d := b.target.doc(s.URL + "/two"); assert.NotNil(t, d) {
		assert.Contains(t, d.Content, "page two")
	}
}

// TestSessionEndedBehindAPublicStartURL: a start URL the site serves
// without a session cannot tell a page the account may not see from an
// ended session; a page sent to the login page then ends the crawl, as
// TestSessionEndedMidCrawlDeletesNothing's does, and nothing is deleted
// (taken for a page the account may not see, the session's end made the
// crawl index the login form and delete every members' page).
func TestSessionEndedBehindAPublicStartURL(t *testing.T) {
	t.Parallel()
	sessionEndingMidCrawl(t, sessionEnding{publicHome: true})
}

// TestLoginPageComparesURLsAsTheCrawlWritesThem: the URLs a page is
// redirected to are in the crawl's WHATWG form (host in lower case and
// IDNA, default port removed, dot segments resolved), the login page as
// written in LoginUrl: a LoginUrl with ":443", a Unicode host or "/./"
// never matched, and the session's end was never seen.
func TestLoginPageComparesURLsAsTheCrawlWritesThem(t *testing.T) {
	t.Parallel()
	assertLoginPage(t, []loginPageCase{
		{"https://sso.example.com/login?next=/a", "https://SSO.example.com:443/login", true},
		{"http://intranet.example.com/login", "http://intranet.example.com:80/login", true},
		{"https://xn--bcher-kva.example/login", "https://bücher.example/login", true},
		{"https://x.example/login", "https://x.example/auth/../login", true},
		{"https://x.example/login/", "https://x.example/login", true},
		{"https://x.example:8443/login", "https://x.example/login", false},
		{"http://x.example/login", "https://x.example/login", false},
		{"https://x.example/logins", "https://x.example/login", false},
		{"https://x.example/Login", "https://x.example/login", false},
	})
}

// TestRestrictedPageOfASitemapOnlyTaskIsNamedSo: a task with SitemapUrl
// and no Url has no start URL to tell a page the account may not see
// from an ended session; the error said "the first start URL is served
// without a session", a URL the task does not have, and advised starting
// at another one. It now says the task has no start URL.
func TestRestrictedPageOfASitemapOnlyTaskIsNamedSo(t *testing.T) {
	t.Parallel()
	s := newRotatingSite(t)
	s.handle("/sitemap.xml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>` + s.URL + `/admin/</loc></url></urlset>`))
	})
	s.handle("/admin/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/login?next=/admin/", http.StatusFound)
	})
	b := setup(t, "[FetchTasks]\n0=MyTask\n[MyTask]\nSitemapUrl="+s.URL+"/sitemap.xml\n"+strings.Join(s.loginKeys(), "\n")+"\n")
	_, _, err := b.run(t, fetch.ActionSynchronize, params())
	require.Error(t, err)
	assert.Contains(t, err.Error(), s.URL+"/admin/ was redirected to the login page")
	assert.NotContains(t, err.Error(), "first start URL")
	assert.Contains(t, err.Error(), "or it is a page the account may not see: the task has no start URL (Url) to tell, only SitemapUrl")
}

// TestLoginPageTellsALoginPageByItsQuery: the login page was any page at
// LoginUrl's path, whatever the query, so on a site whose login page is
// told apart by its query (MediaWiki's index.php?title=Special:UserLogin,
// DokuWiki's doku.php?do=login, Joomla's, phpBB's ucp.php?mode=login) a
// redirect to any of its pages (index.php?title=Old_name to
// index.php?title=New_name) was taken for the end of the session, and
// with a start URL served to anyone every run ended there as Error. The
// parameters of LoginUrl's query must now be in the page's, with the same
// values; a return address (a value that is a path or a URL, or a
// parameter named as return addresses are: next, returnto, redirect_to,
// ...) may differ, as may any parameter LoginUrl does not have.
func TestLoginPageTellsALoginPageByItsQuery(t *testing.T) {
	t.Parallel()
	assertLoginPage(t, []loginPageCase{
		{"https://w.example/index.php?title=New_name", "https://w.example/index.php?title=Special:UserLogin", false},
		{"https://w.example/index.php?title=Special:UserLogin&returnto=Secret", "https://w.example/index.php?title=Special:UserLogin", true},
		{"https://w.example/index.php?title=Special%3AUserLogin&returnto=Secret", "https://w.example/index.php?title=Special:UserLogin&returnto=Main_Page", true},
		{"https://w.example/index.php", "https://w.example/index.php?title=Special:UserLogin", false},
		{"https://d.example/doku.php?id=start", "https://d.example/doku.php?do=login", false},
		{"https://d.example/doku.php?id=private:page&do=login", "https://d.example/doku.php?do=login", true},
		{"https://j.example/index.php?option=com_content&view=article&id=3", "https://j.example/index.php?option=com_users&view=login", false},
		{"https://j.example/index.php?option=com_users&view=login&return=b3RoZXI=", "https://j.example/index.php?option=com_users&view=login&return=aW5kZXgucGhw", true},
		// A return address in LoginUrl, by its value or its name.
		{"https://x.example/login?next=/other", "https://x.example/login?next=/x", true},
		{"https://x.example/login", "https://x.example/login?next=/x", true},
		{"https://x.example/Account/Login?ReturnUrl=%2Fy", "https://x.example/Account/Login?ReturnUrl=%2F", true},
		{"https://x.example/wp-login.php?redirect_to=https%3A%2F%2Fx.example%2Fb", "https://x.example/wp-login.php?redirect_to=https%3A%2F%2Fx.example%2Fa", true},
		{"https://x.example/user/login?destination=node/2", "https://x.example/user/login?destination=node/1", true},
		// No query in LoginUrl: any query, as before.
		{"https://x.example/login?expired=1", "https://x.example/login", true},
	})
}

// TestRedirectOnAWikiWhoseLoginPageSharesItsPath: a wiki whose pages and
// login page are all index.php?title=...; a page renamed (its old title
// redirects to the new one) ended every run as Error, "the session
// ended", the start page being served to anyone.
func TestRedirectOnAWikiWhoseLoginPageSharesItsPath(t *testing.T) {
	t.Parallel()
	s := newRotatingSite(t)
	s.handle("/index.php", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		switch r.URL.Query().Get("title") {
		case "Special:UserLogin":
			_, _ = w.Write([]byte(`<html><body><form method="post" action="/session"><input name="username"><input type="password" name="pw"><button id="go" type="submit">Log in</button></form></body></html>`))
		case "Old_name":
			http.Redirect(w, r, "/index.php?title=New_name", http.StatusMovedPermanently)
		case "New_name":
			_, _ = w.Write([]byte(`<html><body><p>the renamed page</p></body></html>`))
		default:
			_, _ = w.Write([]byte(`<html><body><div id="logout">in</div><a href="/index.php?title=Old_name">old</a></body></html>`))
		}
	})
	keys := s.loginKeys()
	keys[0] = "LoginUrl=" + s.URL + "/index.php?title=Special:UserLogin"
	b := setup(t, taskConfig(s.URL+"/index.php?title=Main_Page", keys...))
	job, _, err := b.run(t, fetch.ActionSynchronize, params())
	require.NoError(t, err)
	assert.Contains(t, b.target.refs(), s.URL+"/index.php?title=New_name", "failures: %v", job.Failures())
}

// loginPageCase is a page's URL, a LoginUrl, and whether the page is the
// login page.
type loginPageCase struct {
	u, login string
	want     bool
}

func assertLoginPage(t *testing.T, cases []loginPageCase) {
	t.Helper()
	for _, c := range cases {
		assert.Equal(t, c.want, loginPage(c.u, c.login), "%s at %s", c.u, c.login)
	}
}
