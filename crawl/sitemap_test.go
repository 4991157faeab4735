package crawl

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sitemapSite serves HTML pages plus raw files (sitemaps, robots.txt)
// with the given content types.
type sitemapSite struct {
	html  pages
	files map[string]file
}

type file struct {
	ctype string
	body  []byte
}

func (s sitemapSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f, ok := s.files[r.URL.RequestURI()]; ok {
		w.Header().Set("Content-Type", f.ctype)
		_, _ = w.Write(f.body)
		return
	}
	s.html.ServeHTTP(w, r)
}

func urlset(base string, entries ...string) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">`)
	for _, e := range entries {
		loc, lastmod, _ := strings.Cut(e, "|")
		if !strings.HasPrefix(loc, "http") {
			loc = base + loc
		}
		fmt.Fprintf(&b, "<url><loc>%s</loc>", loc)
		if lastmod != "" {
			fmt.Fprintf(&b, "<lastmod>%s</lastmod>", lastmod)
		}
		b.WriteString("</url>\n")
	}
	b.WriteString("</urlset>")
	return []byte(b.String())
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return out.Bytes()
}

// Pages listed only in sitemaps are crawled, at depth 0: a sitemap index
// (robots.txt Sitemap: line) leading to a plain and a gzipped sitemap.
func TestSitemapsFromRobots(t *testing.T) {
	t.Parallel()
	ss := sitemapSite{html: pages{
		"/":            linksPage("Home", "/linked"),
		"/linked":      linksPage("Linked"),
		"/orphan-a":    linksPage("A", "/from-a"),
		"/orphan-b":    linksPage("B"),
		"/from-a":      linksPage("From A"),
		"/deep/orphan": linksPage("Deep"),
	}, files: map[string]file{}}
	s := newSite(t, ss)
	ss.files["/robots.txt"] = file{"text/plain", []byte("User-agent: *\nAllow: /\nSitemap: " + s.URL + "/index.xml\n")}
	ss.files["/index.xml"] = file{"application/xml", []byte(`<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">` +
		`<sitemap><loc>` + s.URL + `/one.xml</loc></sitemap><sitemap><loc>` + s.URL + `/two.xml.gz</loc></sitemap>` +
		`<sitemap><loc>http://elsewhere.invalid/x.xml</loc></sitemap></sitemapindex>`)}
	ss.files["/one.xml"] = file{"text/xml", urlset(s.URL, "/orphan-a|2024-01-02", "/linked", "http://other.invalid/page")}
	ss.files["/two.xml.gz"] = file{"application/gzip", gz(urlset(s.URL, "/orphan-b", "/deep/orphan"))}

	r := run(t, Config{StartURLs: []string{s.URL + "/"}, Depth: 1, StayOnSite: true, FollowRobots: true, FollowSitemaps: true})
	require.NoError(t, r.err)
	assert.Equal(t, []string{"/", "/deep/orphan", "/linked", "/orphan-a", "/orphan-b"}, r.paths(0), "sitemap URLs enter at depth 0")
	assert.Equal(t, []string{"/from-a"}, r.paths(1), "and their links are followed within Depth")
	assert.EqualValues(t, 3, r.stats.Sitemaps)
	assert.EqualValues(t, 4, r.stats.SitemapURLs, "/linked too: sitemaps are read before the start page's links")
	assert.EqualValues(t, 2, r.stats.Skipped.SitemapScope, "an index entry and a page on another origin")
	assert.Equal(t, 1, s.count("/index.xml"))
	assert.Zero(t, s.count("/sitemap.xml"), "robots.txt named the sitemaps: no probe")
}

// SitemapURLs alone is enough to crawl (no start URL), and a text sitemap
// works; FollowSitemaps off reads no robots.txt sitemap.
func TestSitemapURLsOnly(t *testing.T) {
	t.Parallel()
	ss := sitemapSite{html: pages{"/p1": linksPage("P1", "/p3"), "/p2": linksPage("P2"), "/p3": linksPage("P3")},
		files: map[string]file{}}
	s := newSite(t, ss)
	ss.files["/urls.txt"] = file{"text/plain", []byte(s.URL + "/p1\n\n" + s.URL + "/p2\n")}
	r := run(t, Config{SitemapURLs: []string{s.URL + "/urls.txt"}, Depth: 0, StayOnSite: true})
	require.NoError(t, r.err)
	assert.Equal(t, []string{"/p1", "/p2"}, r.paths(-1), "Depth 0: only the sitemap's pages")
	require.Error(t, Config{}.Validate())
	require.NoError(t, Config{SitemapURLs: []string{s.URL + "/urls.txt"}}.Validate())
	require.Error(t, Config{SitemapURLs: []string{"ftp://x/"}}.Validate())
}

// Without Sitemap: lines, /sitemap.xml is probed; a missing one is not an
// error. A named sitemap that fails is reported.
func TestSitemapProbeAndErrors(t *testing.T) {
	t.Parallel()
	ss := sitemapSite{html: pages{"/": linksPage("Home"), "/hidden": linksPage("Hidden")}, files: map[string]file{}}
	s := newSite(t, ss)
	ss.files["/sitemap.xml"] = file{"application/xml", urlset(s.URL, "/hidden")}
	r := run(t, Config{StartURLs: []string{s.URL + "/"}, Depth: 0, FollowSitemaps: true})
	require.NoError(t, r.err)
	assert.Equal(t, []string{"/", "/hidden"}, r.paths(0))

	s2 := newSite(t, pages{"/": linksPage("Home")})
	r = run(t, Config{StartURLs: []string{s2.URL + "/"}, FollowSitemaps: true, SitemapURLs: []string{s2.URL + "/named.xml"}})
	require.NoError(t, r.err)
	assert.Equal(t, []string{"/"}, r.paths(0))
	assert.Nil(t, r.errFor(s2.URL+"/sitemap.xml"), "a missing /sitemap.xml is not an error")
	var fe *FetchError
	require.ErrorAs(t, r.errFor(s2.URL+"/named.xml"), &fe, "a named sitemap that is missing is")
	assert.Equal(t, 404, fe.Status)

	ss3 := sitemapSite{html: pages{"/": linksPage("Home")}, files: map[string]file{"/bad.xml": {"text/html", []byte("<html><body>not a sitemap</body></html>")}}}
	s3 := newSite(t, ss3)
	r = run(t, Config{SitemapURLs: []string{s3.URL + "/bad.xml"}, StartURLs: []string{s3.URL + "/"}})
	require.True(t, errors.Is(r.errFor(s3.URL+"/bad.xml"), ErrSitemap))
}

// A sitemap's entries are bounded (50,000 per file), and indexes that nest
// deeper than SitemapMaxNesting are not followed.
func TestSitemapBounds(t *testing.T) {
	t.Parallel()
	ss := sitemapSite{html: pages{}, files: map[string]file{}}
	s := newSite(t, ss)
	var entries []string
	for i := range SitemapMaxEntries + 10 {
		entries = append(entries, fmt.Sprintf("/p%d", i))
	}
	ss.files["/big.xml"] = file{"application/xml", urlset(s.URL, entries...)}
	idx := func(next string) []byte {
		return []byte(`<sitemapindex><sitemap><loc>` + s.URL + next + `</loc></sitemap></sitemapindex>`)
	}
	ss.files["/i0.xml"] = file{"application/xml", idx("/i1.xml")}
	ss.files["/i1.xml"] = file{"application/xml", idx("/i2.xml")}
	ss.files["/i2.xml"] = file{"application/xml", idx("/i3.xml")}
	ss.files["/i3.xml"] = file{"application/xml", urlset(s.URL, "/never")}
	// The spider rule keeps the 50,000 pages from being fetched: only
	// admission is measured.
	r := run(t, Config{SitemapURLs: []string{s.URL + "/big.xml", s.URL + "/i0.xml"}, MaxSitemaps: 10,
		SpiderCantHave: regexp.MustCompile(`.*/p[0-9]+$`)})
	require.NoError(t, r.err)
	assert.EqualValues(t, SitemapMaxEntries, r.stats.SitemapURLs)
	assert.Zero(t, s.count("/i3.xml"), "nesting is bounded")
	assert.EqualValues(t, 4, r.stats.Sitemaps)
}

// A URL whose <lastmod> is not after its last fetch is delivered as not
// modified without a request; a newer one is fetched.
func TestSitemapLastmod(t *testing.T) {
	t.Parallel()
	ss := sitemapSite{html: pages{"/old": linksPage("Old", "/child"), "/new": linksPage("New"), "/child": linksPage("Child")}, files: map[string]file{}}
	s := newSite(t, ss)
	ss.files["/sitemap.xml"] = file{"application/xml", urlset(s.URL, "/old|2024-01-01", "/new|2024-06-01T10:00:00+00:00")}
	fetched := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	r := &result{}
	cfg := Config{SitemapURLs: []string{s.URL + "/sitemap.xml"}, Depth: -1, Logger: quietLogger()}
	hooks := r.hooks()
	hooks.Prior = func(u string) (Prior, bool) {
		if u == s.URL+"/old" || u == s.URL+"/new" {
			return Prior{FetchedAt: fetched, Links: []string{s.URL + "/child"}}, true
		}
		return Prior{}, false
	}
	_, err := Crawl(t.Context(), cfg, hooks)
	require.NoError(t, err)
	assert.Zero(t, s.count("/old"), "unchanged by its lastmod: no request")
	assert.True(t, r.page(t, s.URL+"/old").NotModified)
	assert.Equal(t, 1, s.count("/new"))
	assert.False(t, r.page(t, s.URL+"/new").NotModified)
	assert.Equal(t, 1, s.count("/child"), "the unchanged page's known links are followed")
}

// A <lastmod> without a time (a date, a month, a year) or without
// seconds stands for its whole period: a page fetched during it may have
// changed after the fetch, so it is fetched (conditionally). Before, the
// period's first instant was taken for the change: a page fetched on the
// morning of 2024-03-01 and changed that afternoon, listed with
// <lastmod>2024-03-01</lastmod>, was reported unchanged without a
// request, run after run, and the index kept its old version until the
// sitemap gave another date.
func TestSitemapLastmodPeriod(t *testing.T) {
	t.Parallel()
	ss := sitemapSite{html: pages{}, files: map[string]file{}}
	paths := []string{"/day", "/month", "/year", "/minute", "/dayzone", "/daybefore", "/second"}
	for _, p := range paths {
		ss.html[p] = linksPage(p)
	}
	s := newSite(t, ss)
	fetched := time.Date(2024, 3, 1, 9, 0, 30, 0, time.UTC)
	ss.files["/sitemap.xml"] = file{"application/xml", urlset(s.URL,
		"/day|2024-03-01", "/month|2024-03", "/year|2024", "/minute|2024-03-01T09:00Z",
		"/dayzone|2024-03-01T10:00+01:00", // 09:00 UTC, without seconds
		"/daybefore|2024-02-28", "/second|2024-03-01T09:00:29Z")}
	r := &result{}
	cfg := Config{SitemapURLs: []string{s.URL + "/sitemap.xml"}, Depth: 0, Logger: quietLogger()}
	hooks := r.hooks()
	hooks.Prior = func(u string) (Prior, bool) { return Prior{FetchedAt: fetched}, true }
	_, err := Crawl(t.Context(), cfg, hooks)
	require.NoError(t, err)
	for _, p := range []string{"/day", "/month", "/year", "/minute", "/dayzone"} {
		assert.Equal(t, 1, s.count(p), "%s may have changed after the fetch: fetched", p)
	}
	for _, p := range []string{"/daybefore", "/second"} {
		assert.Zero(t, s.count(p), "%s changed before the fetch: no request", p)
		assert.True(t, r.page(t, s.URL+p).NotModified, p)
	}
}

func TestParseSitemap(t *testing.T) {
	idx, e, err := parseSitemap([]byte("\xef\xbb\xbf<urlset><url><loc> http://a/x </loc><lastmod>2024-05</lastmod></url><url><lastmod>x</lastmod></url></urlset>"))
	require.NoError(t, err)
	assert.False(t, idx)
	require.Len(t, e, 1)
	assert.Equal(t, "http://a/x", e[0].loc)
	// The month's last instant, where it ends last (UTC-12).
	assert.Equal(t, time.Date(2024, 6, 1, 11, 59, 59, 999999999, time.UTC), e[0].lastmod)
	_, _, err = parseSitemap([]byte("<html></html>"))
	require.Error(t, err)
	// A gzip bomb stops at SitemapMaxBytes.
	bomb := gz(bytes.Repeat([]byte("http://a/"), (SitemapMaxBytes/9)+100))
	_, _, err = parseSitemap(bomb)
	require.ErrorContains(t, err, "larger than")
}

// Stats.SitemapsUnavailable counts the sitemaps a passing failure (5xx,
// 408, 429, network, timeout) kept from being read, the /sitemap.xml
// probe and a robots.txt whose Sitemap: lines are unknown included; a
// missing (404) or unusable sitemap is not one.
func TestSitemapsUnavailable(t *testing.T) {
	t.Parallel()
	status := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { http.Error(w, "status", code) }
	}
	for _, tc := range []struct {
		name  string
		files map[string]http.HandlerFunc
		cfg   func(base string) Config
		want  int64
	}{
		{"named 503", map[string]http.HandlerFunc{"/named.xml": status(503)},
			func(base string) Config { return Config{SitemapURLs: []string{base + "/named.xml"}} }, 1},
		{"named 429", map[string]http.HandlerFunc{"/named.xml": status(429)},
			func(base string) Config { return Config{SitemapURLs: []string{base + "/named.xml"}} }, 1},
		{"named 404", map[string]http.HandlerFunc{},
			func(base string) Config { return Config{SitemapURLs: []string{base + "/named.xml"}} }, 0},
		{"named not a sitemap", map[string]http.HandlerFunc{"/named.xml": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html><body>no</body></html>"))
		}}, func(base string) Config { return Config{SitemapURLs: []string{base + "/named.xml"}} }, 0},
		{"probe 502", map[string]http.HandlerFunc{"/sitemap.xml": status(502)},
			func(string) Config { return Config{FollowSitemaps: true} }, 1},
		{"probe 404", map[string]http.HandlerFunc{},
			func(string) Config { return Config{FollowSitemaps: true} }, 0},
		{"robots.txt 503, ignored", map[string]http.HandlerFunc{"/robots.txt": status(503)},
			func(string) Config { return Config{FollowSitemaps: true, FollowRobots: true, IgnoreRobotsErrors: true} }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := pages{"/": linksPage("Home")}
			s := newSite(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if h, ok := tc.files[r.URL.Path]; ok {
					h(w, r)
					return
				}
				p.ServeHTTP(w, r)
			}))
			cfg := tc.cfg(s.URL)
			cfg.StartURLs = []string{s.URL + "/"}
			r := run(t, cfg)
			require.NoError(t, r.err)
			assert.Equal(t, []string{"/"}, r.paths(0))
			assert.Equal(t, tc.want, r.stats.SitemapsUnavailable)
		})
	}
}
