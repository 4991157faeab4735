package crawl

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scriptRenderer stands for a browser in the crawl's own tests: the links
// and title of a page are in a "data-links" / "data-title" attribute that
// only it reads, as a browser would run a script that creates them.
type scriptRenderer struct {
	mu    sync.Mutex
	calls map[string]int
	fail  map[string]error
}

func (r *scriptRenderer) Render(_ context.Context, p *Page) ([]string, error) {
	r.mu.Lock()
	if r.calls == nil {
		r.calls = map[string]int{}
	}
	r.calls[p.URL]++
	err := r.fail[p.URL]
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	body := string(p.Body)
	attr := func(name string) string {
		i := strings.Index(body, name+`="`)
		if i < 0 {
			return ""
		}
		rest := body[i+len(name)+2:]
		return rest[:strings.IndexByte(rest, '"')]
	}
	p.Title = attr("data-title")
	p.Text = "rendered " + p.Title
	p.SetHash(sha256.Sum256([]byte(p.Text)))
	p.Rendered = "yes"
	if r := attr("data-robots"); r != "" {
		p.Meta = map[string][]string{"robots": {r}}
	}
	var links []string
	base, _ := url.Parse(p.FinalURL)
	for _, l := range strings.Fields(attr("data-links")) {
		u, _ := base.Parse(l)
		links = append(links, u.String())
	}
	return links, nil
}

func scriptPage(title, robots string, links ...string) string {
	return `<html><body data-title="` + title + `" data-robots="` + robots + `" data-links="` + strings.Join(links, " ") + `"><p>static</p></body></html>`
}

// TestRenderReplacesParsedPage: with Config.Render, a page's links, title,
// text, hash and robots directives are the renderer's; a failed render
// keeps the parsed page with RenderErr; an ErrAbort stops the crawl and is
// returned.
func TestRenderReplacesParsedPage(t *testing.T) {
	t.Parallel()
	s := newSite(t, pages{
		"/":        scriptPage("Home", "", "/a", "/b"),
		"/a":       scriptPage("A", "", "/c"),
		"/b":       scriptPage("B", "nofollow", "/hidden"),
		"/c":       scriptPage("C", "noindex"),
		"/hidden":  scriptPage("Hidden", ""),
		"/plain":   "plain text",
		"/unknown": "",
	})
	rd := &scriptRenderer{}
	r := run(t, Config{StartURLs: []string{s.URL + "/"}, Depth: -1, FollowRobots: true, Render: rd})
	require.NoError(t, r.err)
	assert.Equal(t, []string{"/", "/a", "/b"}, r.paths(-1), "links come from the renderer; /c is noindex, /b's links not followed")
	home := r.page(t, s.URL+"/")
	assert.Equal(t, "Home", home.Title)
	assert.Equal(t, "rendered Home", home.Text)
	assert.Equal(t, sha256.Sum256([]byte("rendered Home")), home.Hash())
	assert.Equal(t, "yes", home.Rendered)
	assert.Equal(t, []string{s.URL + "/a", s.URL + "/b"}, home.Links)
	assert.EqualValues(t, 4, r.stats.Rendered)
	assert.Zero(t, s.count("/hidden"))

	// A failed render: the parsed page, with the error.
	rd = &scriptRenderer{fail: map[string]error{s.URL + "/a": errors.New("renderer unresponsive")}}
	r = run(t, Config{StartURLs: []string{s.URL + "/"}, Depth: -1, Render: rd})
	require.NoError(t, r.err)
	a := r.page(t, s.URL+"/a")
	require.EqualError(t, a.RenderErr, "renderer unresponsive")
	assert.Nil(t, a.Rendered)
	assert.Empty(t, a.Links, "the served page has no link")
	assert.Equal(t, "static", a.Text)
	assert.EqualValues(t, 1, r.stats.RenderErrors)

	// ErrAbort: the crawl stops and returns it.
	abort := errors.Join(ErrAbort, errors.New("browser cannot start"))
	rd = &scriptRenderer{fail: map[string]error{s.URL + "/": abort}}
	r = run(t, Config{StartURLs: []string{s.URL + "/"}, Depth: -1, Render: rd})
	require.ErrorIs(t, r.err, ErrAbort)
	assert.ErrorContains(t, r.err, "browser cannot start")
	assert.Equal(t, StopAborted, r.stats.StoppedBy)
	assert.Empty(t, r.paths(-1))
}

// TestJarSendsCookies: Config.Jar's cookies go with every request, with
// the crawl's own client and with a caller's.
func TestJarSendsCookies(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	s := newSite(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("session")
		mu.Lock()
		if err == nil {
			got = append(got, r.URL.Path+"="+c.Value)
		}
		mu.Unlock()
		pages{"/": linksPage("Home", "/a"), "/a": linksPage("A")}.ServeHTTP(w, r)
	}))
	for _, client := range []*http.Client{nil, {}} {
		got = nil
		jar, _ := cookiejar.New(nil)
		u, _ := url.Parse(s.URL)
		jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: "s1"}})
		r := run(t, Config{StartURLs: []string{s.URL + "/"}, Depth: 1, Jar: jar, Client: client})
		require.NoError(t, r.err)
		mu.Lock()
		assert.ElementsMatch(t, []string{"/=s1", "/a=s1"}, got)
		mu.Unlock()
	}
}

// canonicalRenderer is a renderer whose page says its canonical URL
// as a browser reads it (absolute, as resolved, fragment and all).
type canonicalRenderer struct{ href string }

func (r canonicalRenderer) Render(_ context.Context, p *Page) ([]string, error) {
	base, _ := url.Parse(p.FinalURL)
	u, _ := base.Parse(r.href)
	p.CanonicalURL = u.String()
	return nil, nil
}

// TestRenderedCanonicalIsNormalised: a rendered page's canonical URL is
// normalised as a parsed page's is (no fragment, no session id), and one
// that is not http(s) is none, so that a page has the same CanonicalURL
// rendered or not.
func TestRenderedCanonicalIsNormalised(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ href, want string }{
		{"/Other?jsessionid=abc&x=1#top", "/Other?x=1"},
		{"javascript:void(0)", ""},
	} {
		s := newSite(t, pages{"/": `<html><head><link rel="canonical" href="` + c.href + `"></head><body>page</body></html>`})
		want := ""
		if c.want != "" {
			want = s.URL + c.want
		}
		r := run(t, Config{StartURLs: []string{s.URL + "/"}, Depth: 0})
		require.NoError(t, r.err)
		assert.Equal(t, want, r.page(t, s.URL+"/").CanonicalURL, "parsed: %s", c.href)
		r = run(t, Config{StartURLs: []string{s.URL + "/"}, Depth: 0, Render: canonicalRenderer{href: c.href}})
		require.NoError(t, r.err)
		assert.Equal(t, want, r.page(t, s.URL+"/").CanonicalURL, "rendered: %s", c.href)
	}
}

// watchingRenderer is a scriptRenderer that is also a RedirectWatcher:
// it records every redirect, and stops the crawl at one to stop.
type watchingRenderer struct {
	scriptRenderer
	stop string
	mu   sync.Mutex
	seen []string // "url -> to"
}

func (w *watchingRenderer) Redirect(_ context.Context, url, to string) error {
	w.mu.Lock()
	w.seen = append(w.seen, url+" -> "+to)
	w.mu.Unlock()
	if to == w.stop {
		return fmt.Errorf("%w: sent to %s", ErrAbort, to)
	}
	return nil
}

// TestRedirectWatcherSeesEveryHop: a Renderer that is a RedirectWatcher
// is told of every redirect hop, also of those the crawl's rules then
// drop (off the site, excluded, already seen), with the URL taken from
// the frontier; an error wrapping ErrAbort stops the crawl, which
// returns it.
func TestRedirectWatcherSeesEveryHop(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	page := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, body)
		}
	}
	mux.HandleFunc("/", page(`<html><body data-links="/a /off /excluded /seen"></body></html>`))
	mux.HandleFunc("/seen", page(`<html><body></body></html>`))
	mux.HandleFunc("/a", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/b", http.StatusFound) })
	mux.HandleFunc("/b", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/seen", http.StatusFound) })
	mux.HandleFunc("/off", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://elsewhere.invalid/login", http.StatusFound)
	})
	mux.HandleFunc("/excluded", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/skip/x", http.StatusFound) })
	s := newSite(t, mux)
	w := &watchingRenderer{}
	r := run(t, Config{StartURLs: []string{s.URL + "/"}, Depth: 1, StayOnSite: true, Render: w, SpiderCantHave: regexp.MustCompile("/skip/")})
	require.NoError(t, r.err)
	w.mu.Lock()
	seen := slices.Clone(w.seen)
	w.mu.Unlock()
	slices.Sort(seen)
	require.Subset(t, seen, []string{
		s.URL + "/a -> " + s.URL + "/b",
		s.URL + "/a -> " + s.URL + "/seen",
		s.URL + "/off -> http://elsewhere.invalid/login",
		s.URL + "/excluded -> " + s.URL + "/skip/x",
	})
	require.Zero(t, s.count("/skip/x"), "the rules still apply")

	w = &watchingRenderer{stop: "http://elsewhere.invalid/login"}
	r = run(t, Config{StartURLs: []string{s.URL + "/"}, Depth: 1, StayOnSite: true, Render: w, Concurrency: 1})
	require.ErrorIs(t, r.err, ErrAbort)
	require.ErrorContains(t, r.err, "sent to http://elsewhere.invalid/login")
	require.Equal(t, StopAborted, r.stats.StoppedBy)
}
