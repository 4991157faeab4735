package crawl

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/jimsmart/grobotstxt"
	"github.com/stretchr/testify/require"
)

// robotsCase is one check ported from Google's robots_test.cc (as carried
// by github.com/jimsmart/grobotstxt robots_test.go, Apache-2.0).
type robotsCase struct {
	desc   string
	robots string
	agent  string
	url    string
	want   bool
}

// crawlAllows evaluates a case through the crawl's robots layer: the URL is
// normalised as the crawl does, then matched against rules parsed for the
// agent.
func crawlAllows(t *testing.T, robots, agent, rawURL string) bool {
	t.Helper()
	n, err := newNormalizer(nil).resolve(nil, rawURL)
	require.NoError(t, err, rawURL)
	return parseRobots(robots, agent).allowed(robotsPath(n.s))
}

func googleRobotsCases() []robotsCase {
	const groups = "allow: /foo/bar/\n\nuser-agent: FooBot\ndisallow: /\nallow: /x/\nuser-agent: BarBot\ndisallow: /\nallow: /y/\n\n\nallow: /w/\nuser-agent: BazBot\n\nuser-agent: FooBot\nallow: /z/\ndisallow: /\n"
	const caseUA = "User-Agent: FOO BAR\nAllow: /x/\nDisallow: /\n"
	const fish = "user-agent: FooBot\ndisallow: /\nallow: /fish\n"
	const fishSlash = "user-agent: FooBot\ndisallow: /\nallow: /fish/\n"
	const php = "user-agent: FooBot\ndisallow: /\nallow: /*.php\n"
	const phpEnd = "user-agent: FooBot\ndisallow: /\nallow: /*.php$\n"
	const index = "User-Agent: *\nAllow: /allowed-slash/index.html\nDisallow: /\n"
	const global = "user-agent: *\nallow: /\nuser-agent: FooBot\ndisallow: /\n"
	const onlySpecific = "user-agent: FooBot\nallow: /\nuser-agent: BarBot\ndisallow: /\nuser-agent: BazBot\ndisallow: /\n"
	const specificOverGlobal = "User-agent: *\nDisallow: /x/\nUser-agent: FooBot\nDisallow: /y/\n"
	longLine := "/x/" + strings.Repeat("a", 2083*8-len("/x/")-len("disallow: ")+1-3)
	cases := []robotsCase{
		// Line syntax.
		{"correct syntax", "user-agent: FooBot\ndisallow: /\n", "FooBot", "http://foo.bar/x/y", false},
		{"unknown keys ignored", "foo: FooBot\nbar: /\n", "FooBot", "http://foo.bar/x/y", true},
		{"missing colons accepted", "user-agent FooBot\ndisallow /\n", "FooBot", "http://foo.bar/x/y", false},
		// Groups.
		{"groups x", groups, "FooBot", "http://foo.bar/x/b", true},
		{"groups merged z", groups, "FooBot", "http://foo.bar/z/d", true},
		{"groups y", groups, "FooBot", "http://foo.bar/y/c", false},
		{"groups barbot y", groups, "BarBot", "http://foo.bar/y/c", true},
		{"groups barbot w", groups, "BarBot", "http://foo.bar/w/a", true},
		{"groups barbot z", groups, "BarBot", "http://foo.bar/z/d", false},
		{"groups bazbot", groups, "BazBot", "http://foo.bar/z/d", true},
		{"rules outside groups ignored foo", groups, "FooBot", "http://foo.bar/foo/bar/", false},
		{"rules outside groups ignored bar", groups, "BarBot", "http://foo.bar/foo/bar/", false},
		{"rules outside groups ignored baz", groups, "BazBot", "http://foo.bar/foo/bar/", false},
		{"sitemap does not close group", "User-agent: BarBot\nSitemap: https://foo.bar/sitemap\nUser-agent: *\nDisallow: /\n", "BarBot", "http://foo.bar/", false},
		{"unknown line does not close group", "User-agent: FooBot\nInvalid-Unknown-Line: unknown\nUser-agent: *\nDisallow: /\n", "FooBot", "http://foo.bar/", false},
		// Case.
		{"key case upper", "USER-AGENT: FooBot\nALLOW: /x/\nDISALLOW: /\n", "FooBot", "http://foo.bar/a/b", false},
		{"key case camel", "uSeR-aGeNt: FooBot\nAlLoW: /x/\ndIsAlLoW: /\n", "FooBot", "http://foo.bar/x/y", true},
		{"agent value case", caseUA, "foo", "http://foo.bar/x/y", true},
		{"agent value case disallowed", caseUA, "Foo", "http://foo.bar/a/b", false},
		{"rule values are case sensitive", "user-agent: FooBot\ndisallow: /X/\n", "FooBot", "http://foo.bar/x/y", true},
		// User-agent up to the first space; product token matching.
		{"agent up to first space", "User-Agent: *\nDisallow: /\nUser-Agent: Foo Bar\nAllow: /x/\nDisallow: /\n", "Foo", "http://foo.bar/x/y", true},
		{"agent with space never matches", "User-Agent: *\nDisallow: /\nUser-Agent: Foo Bar\nAllow: /x/\nDisallow: /\n", "Foo Bar", "http://foo.bar/x/y", false},
		{"line agent with version", "User-agent: FooBot/2.1\nDisallow: /\n", "FooBot", "http://foo.bar/a", false},
		// Global groups.
		{"empty robots", "", "FooBot", "http://foo.bar/x/y", true},
		{"specific beats global", global, "FooBot", "http://foo.bar/x/y", false},
		{"global for others", global, "BarBot", "http://foo.bar/x/y", true},
		{"no global, no match", onlySpecific, "QuxBot", "http://foo.bar/x/y", true},
		{"specific group ignores global x", specificOverGlobal, "FooBot", "http://foo.bar/x/page", true},
		{"specific group y", specificOverGlobal, "FooBot", "http://foo.bar/y/page", false},
		// Longest match.
		{"longest disallow", "user-agent: FooBot\ndisallow: /x/page.html\nallow: /x/\n", "FooBot", "http://foo.bar/x/page.html", false},
		{"longest allow", "user-agent: FooBot\nallow: /x/page.html\ndisallow: /x/\n", "FooBot", "http://foo.bar/x/page.html", true},
		{"longest allow dir", "user-agent: FooBot\nallow: /x/page.html\ndisallow: /x/\n", "FooBot", "http://foo.bar/x/", false},
		{"empty rules", "user-agent: FooBot\ndisallow: \nallow: \n", "FooBot", "http://foo.bar/x/page.html", true},
		{"equal length: allow wins", "user-agent: FooBot\ndisallow: /\nallow: /\n", "FooBot", "http://foo.bar/x/page.html", true},
		{"x vs x/ a", "user-agent: FooBot\ndisallow: /x\nallow: /x/\n", "FooBot", "http://foo.bar/x", false},
		{"x vs x/ b", "user-agent: FooBot\ndisallow: /x\nallow: /x/\n", "FooBot", "http://foo.bar/x/", true},
		{"same pattern: allow wins", "user-agent: FooBot\ndisallow: /x/page.html\nallow: /x/page.html\n", "FooBot", "http://foo.bar/x/page.html", true},
		{"wildcard longer", "user-agent: FooBot\nallow: /page\ndisallow: /*.html\n", "FooBot", "http://foo.bar/page.html", false},
		{"wildcard not matching", "user-agent: FooBot\nallow: /page\ndisallow: /*.html\n", "FooBot", "http://foo.bar/page", true},
		{"prefix longer than wildcard", "user-agent: FooBot\nallow: /x/page.\ndisallow: /*.html\n", "FooBot", "http://foo.bar/x/page.html", true},
		{"wildcard elsewhere", "user-agent: FooBot\nallow: /x/page.\ndisallow: /*.html\n", "FooBot", "http://foo.bar/x/y.html", false},
		// Encoding.
		{"query in rule", "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar?qux=taz&baz=http://foo.bar?tar&par\n", "FooBot", "http://foo.bar/foo/bar?qux=taz&baz=http://foo.bar?tar&par", true},
		{"3-byte char in rule, encoded URL", "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar/ツ\n", "FooBot", "http://foo.bar/foo/bar/%E3%83%84", true},
		{"3-byte char in rule and URL", "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar/ツ\n", "FooBot", "http://foo.bar/foo/bar/ツ", true},
		{"encoded rule, raw URL", "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar/%E3%83%84\n", "FooBot", "http://foo.bar/foo/bar/ツ", true},
		{"encoded unreserved not decoded", "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar/%62%61%7A\n", "FooBot", "http://foo.bar/foo/bar/baz", false},
		{"encoded unreserved literal", "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar/%62%61%7A\n", "FooBot", "http://foo.bar/foo/bar/%62%61%7A", true},
		// Special characters.
		{"star a", "User-agent: FooBot\nDisallow: /foo/bar/quz\nAllow: /foo/*/qux\n", "FooBot", "http://foo.bar/foo/bar/quz", false},
		{"star b", "User-agent: FooBot\nDisallow: /foo/bar/quz\nAllow: /foo/*/qux\n", "FooBot", "http://foo.bar/foo/quz", true},
		{"star c", "User-agent: FooBot\nDisallow: /foo/bar/quz\nAllow: /foo/*/qux\n", "FooBot", "http://foo.bar/foo//quz", true},
		{"dollar a", "User-agent: FooBot\nDisallow: /foo/bar$\nAllow: /foo/bar/qux\n", "FooBot", "http://foo.bar/foo/bar", false},
		{"dollar b", "User-agent: FooBot\nDisallow: /foo/bar$\nAllow: /foo/bar/qux\n", "FooBot", "http://foo.bar/foo/bar/", true},
		{"comment", "User-agent: FooBot\n# Disallow: /\nDisallow: /foo/quz#qux\nAllow: /\n", "FooBot", "http://foo.bar/foo/bar", true},
		{"comment cuts rule", "User-agent: FooBot\n# Disallow: /\nDisallow: /foo/quz#qux\nAllow: /\n", "FooBot", "http://foo.bar/foo/quz", false},
		// index.html.
		{"index.html allows dir", index, "foobot", "http://foo.com/allowed-slash/", true},
		{"index.htm not matched", index, "foobot", "http://foo.com/allowed-slash/index.htm", false},
		{"index.html exact", index, "foobot", "http://foo.com/allowed-slash/index.html", true},
		{"index.html other", index, "foobot", "http://foo.com/anyother-url", false},
		// Long lines are cut at 8*2083 bytes.
		{"long line no match", "user-agent: FooBot\ndisallow: " + longLine + "/qux\n", "FooBot", "http://foo.bar/fux", true},
		{"long line cut matches", "user-agent: FooBot\ndisallow: " + longLine + "/qux\n", "FooBot", "http://foo.bar" + longLine + "/fux", false},
		// Google documentation examples.
		{"fish", fish, "FooBot", "http://foo.bar/fish.html?id=anything", true},
		{"fish heads", fish, "FooBot", "http://foo.bar/fishheads/yummy.html", true},
		{"Fish case", fish, "FooBot", "http://foo.bar/Fish.asp", false},
		{"catfish", fish, "FooBot", "http://foo.bar/catfish", false},
		{"fish in query", fish, "FooBot", "http://foo.bar/?id=fish", false},
		{"fish/ salmon", fishSlash, "FooBot", "http://foo.bar/fish/?salmon", true},
		{"fish/ not fish", fishSlash, "FooBot", "http://foo.bar/fish", false},
		{"php folder", php, "FooBot", "http://foo.bar/folder/filename.php?parameters", true},
		{"php in query", php, "FooBot", "http://foo.bar/index?f=filename.php/", true},
		{"php case", php, "FooBot", "http://foo.bar/windows.PHP", false},
		{"php$ exact", phpEnd, "FooBot", "http://foo.bar/folder/filename.php", true},
		{"php$ params", phpEnd, "FooBot", "http://foo.bar/filename.php?parameters", false},
		{"php$ php5", phpEnd, "FooBot", "http://foo.bar/filename.php5", false},
		{"precedence /p", "user-agent: FooBot\nallow: /p\ndisallow: /\n", "FooBot", "http://example.com/page", true},
		{"precedence folder", "user-agent: FooBot\nallow: /folder\ndisallow: /folder\n", "FooBot", "http://example.com/folder/page", true},
		{"precedence htm", "user-agent: FooBot\nallow: /page\ndisallow: /*.htm\n", "FooBot", "http://example.com/page.htm", false},
		{"precedence $ root", "user-agent: FooBot\nallow: /$\ndisallow: /\n", "FooBot", "http://example.com/", true},
		{"precedence $ page", "user-agent: FooBot\nallow: /$\ndisallow: /\n", "FooBot", "http://example.com/page.html", false},
		// Line endings and BOM.
		{"CR line endings", "User-Agent: foo\rAllow: /some/path\rUser-Agent: bar\r\r\rDisallow: /\r", "bar", "http://foo.bar/x", false},
		{"CRLF line endings", "User-Agent: foo\r\nAllow: /some/path\r\nUser-Agent: bar\r\n\r\n\r\nDisallow: /\r\n", "bar", "http://foo.bar/x", false},
		{"BOM skipped", "\xEF\xBB\xBFUser-Agent: foo\nDisallow: /AnyValue\n", "foo", "http://foo.bar/AnyValue", false},
		{"broken BOM breaks first line", "\xEF\x11\xBFUser-Agent: foo\nDisallow: /AnyValue\n", "foo", "http://foo.bar/AnyValue", true},
	}
	return cases
}

// TestRobotsGoogleCases runs Google's robots.txt cases through the crawl's
// robots layer, and checks each against grobotstxt's own matcher as an
// oracle, so that a divergence from the library's semantics fails.
func TestRobotsGoogleCases(t *testing.T) {
	t.Parallel()
	for _, tt := range googleRobotsCases() {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			got := crawlAllows(t, tt.robots, tt.agent, tt.url)
			require.Equal(t, tt.want, got, "crawl robots layer")
			require.Equal(t, tt.want, grobotstxt.AgentAllowed(tt.robots, tt.agent, tt.url), "grobotstxt oracle")
		})
	}
}

// TestRobotsPercentEncodingCase: percent-encodings are case-insensitive
// (RFC 3986 2.1, and RFC 9309 matches encoded octets): a rule is
// upper-cased as it is read, and a URL is as it is matched. Before, a
// link written "/caf%c3%a9" was fetched although "Disallow: /café" (read
// as /caf%C3%A9) forbids it; and a rule written with a lower-case
// encoding ("Disallow: /a%2fb") matched nothing at all: grobotstxt
// upper-cases it by clearing bit 0x20 of each hex digit, which turns a
// digit into a control character ("%2f" became "%\x12F"). Google's
// library leaves the URL to its caller, which canonicalises URLs first,
// so these cases are not checked against it (TestRobotsGoogleCases).
func TestRobotsPercentEncodingCase(t *testing.T) {
	t.Parallel()
	for _, tt := range []robotsCase{
		{"lower-case encoded URL, raw rule", "User-agent: FooBot\nDisallow: /café\n", "FooBot", "http://foo.bar/caf%c3%a9", false},
		{"lower-case encoded URL and rule", "User-agent: FooBot\nDisallow: /a%2fb\n", "FooBot", "http://foo.bar/a%2fb", false},
		{"lower-case encoded query", "User-agent: FooBot\nDisallow: /*?q=%C3%A9\n", "FooBot", "http://foo.bar/s?q=%c3%a9", false},
		{"lower-case encoded rule, upper-case URL", "User-agent: FooBot\nDisallow: /a%2fb\n", "FooBot", "http://foo.bar/a%2Fb", false},
		{"lower-case encoded rule with digits", "User-agent: FooBot\nDisallow: /search%3fq%3d\n", "FooBot", "http://foo.bar/search%3Fq%3Dx", false},
		{"encoded case, other bytes", "User-agent: FooBot\nDisallow: /a%2Fb\n", "FooBot", "http://foo.bar/a%2Fc", true},
	} {
		require.Equal(t, tt.want, crawlAllows(t, tt.robots, tt.agent, tt.url), tt.desc)
	}
}

func TestProductToken(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"connector/1.0 (+https://x)": "connector",
		"FooBot":                     "FooBot",
		"Foo_Bar-2 rest":             "Foo_Bar-2",
		"(compatible)":               "",
		"ツbot":                       "",
	} {
		require.Equal(t, want, productToken(in), in)
	}
	cfg := Config{UserAgent: "MyCrawler/3.2 (+http://example.com/bot)"}.withDefaults()
	require.Equal(t, "MyCrawler", cfg.RobotsAgent)
}

// robotsSite serves robots.txt via robots (nil: 404) and every other path
// as a page linking to links.
func robotsSite(t *testing.T, robots http.HandlerFunc, body map[string]string) *site {
	t.Helper()
	return newSite(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" && robots != nil {
			robots(w, r)
			return
		}
		pages(body).ServeHTTP(w, r)
	}))
}

func robotsText(s string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, s)
	}
}

func TestRobotsInCrawl(t *testing.T) {
	t.Parallel()
	const robots = "User-agent: *\nDisallow: /private\nAllow: /private/ok\n\nUser-agent: testbot\nDisallow: /nobots\n"
	body := map[string]string{
		"/":           linksPage("root", "/private/secret", "/private/ok", "/nobots", "/public"),
		"/private/ok": linksPage("ok"), "/public": linksPage("public"), "/nobots": linksPage("nobots"),
		"/private/secret": linksPage("secret"),
	}
	s := robotsSite(t, robotsText(robots), body)

	t.Run("global group", func(t *testing.T) {
		t.Parallel()
		r := run(t, Config{StartURLs: []string{s.URL}, Depth: 1, FollowRobots: true, UserAgent: "otherbot/2.0", Concurrency: 8})
		require.NoError(t, r.err)
		require.Equal(t, []string{"/", "/nobots", "/private/ok", "/public"}, r.paths(-1))
		require.ErrorIs(t, r.errFor(s.URL+"/private/secret"), ErrRobotsDisallowed)
		require.Equal(t, int64(1), r.stats.Skipped.Robots)
	})
	t.Run("agent group replaces global", func(t *testing.T) {
		t.Parallel()
		r := run(t, Config{StartURLs: []string{s.URL}, Depth: 1, FollowRobots: true, UserAgent: "TestBot/1.0 (+x)"})
		require.NoError(t, r.err)
		require.Equal(t, []string{"/", "/private/ok", "/private/secret", "/public"}, r.paths(-1))
		require.ErrorIs(t, r.errFor(s.URL+"/nobots"), ErrRobotsDisallowed)
	})
	t.Run("robots off", func(t *testing.T) {
		t.Parallel()
		r := run(t, Config{StartURLs: []string{s.URL}, Depth: 1, UserAgent: "otherbot/2.0"})
		require.Len(t, r.paths(-1), 5)
	})
	t.Run("fetched once per origin", func(t *testing.T) {
		t.Parallel()
		s2 := robotsSite(t, robotsText(robots), body)
		r := run(t, Config{StartURLs: []string{s2.URL}, Depth: 1, FollowRobots: true, Concurrency: 8, UserAgent: "otherbot"})
		require.NoError(t, r.err)
		require.Equal(t, 1, s2.count("/robots.txt"))
		require.Zero(t, s2.count("/private/secret"))
		require.Equal(t, "otherbot", s2.requests()[0].Header.Get("User-Agent"))
	})
}

func TestRobotsRedirectHop(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/robots.txt", robotsText("User-agent: *\nDisallow: /private\n"))
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, linksPage("root", "/go")) })
	mux.HandleFunc("/go", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/private/x", http.StatusFound) })
	mux.HandleFunc("/private/x", func(w http.ResponseWriter, r *http.Request) { t.Error("disallowed hop fetched") })
	s := newSite(t, mux)
	r := run(t, Config{StartURLs: []string{s.URL}, Depth: 1, FollowRobots: true})
	require.NoError(t, r.err)
	err := r.errFor(s.URL + "/go")
	require.ErrorIs(t, err, ErrRobotsDisallowed)
	var fe *FetchError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, s.URL+"/private/x", fe.URL, "the error names the hop")
}

func TestRobotsFileStatus(t *testing.T) {
	t.Parallel()
	body := map[string]string{"/": linksPage("root", "/a"), "/a": linksPage("a")}
	status := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { http.Error(w, "x", code) }
	}
	tests := []struct {
		desc      string
		robots    http.HandlerFunc
		ignore    bool
		wantPages []string
		wantErr   error
	}{
		{"404: allow all", status(404), false, []string{"/", "/a"}, nil},
		{"403: allow all", status(403), false, []string{"/", "/a"}, nil},
		{"503: disallow all", status(503), false, nil, ErrRobotsUnavailable},
		{"500 ignored", status(500), true, []string{"/", "/a"}, nil},
		{"429: disallow all", status(429), false, nil, ErrRobotsUnavailable},
		{"redirect followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/real-robots.txt", http.StatusMovedPermanently)
		}, false, []string{"/"}, nil},
		{"garbage: parsed as the library does (nothing applies)", robotsText("\x00\x01<html>not robots</html>"), false, []string{"/", "/a"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			b := map[string]string{"/real-robots.txt": "User-agent: *\nDisallow: /a\n"}
			for k, v := range body {
				b[k] = v
			}
			s := newSite(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/robots.txt":
					tt.robots(w, r)
				case "/real-robots.txt":
					robotsText(b[r.URL.Path])(w, r)
				default:
					pages(b).ServeHTTP(w, r)
				}
			}))
			r := run(t, Config{StartURLs: []string{s.URL}, Depth: 1, FollowRobots: true, IgnoreRobotsErrors: tt.ignore})
			require.NoError(t, r.err)
			require.Equal(t, tt.wantPages, r.paths(-1))
			if tt.wantErr != nil {
				require.ErrorIs(t, r.errFor(s.URL+"/"), tt.wantErr)
				var fe *FetchError
				require.ErrorAs(t, r.errFor(s.URL+"/"), &fe)
				require.ErrorIs(t, fe.Cause, ErrStatus, "the cause says why robots.txt was unavailable")
				for _, rq := range s.requests() {
					require.Equal(t, "/robots.txt", rq.Path, "nothing else is requested")
				}
			}
		})
	}
}

func TestRobotsNetworkError(t *testing.T) {
	t.Parallel()
	dead := newSite(t, pages{})
	deadURL := dead.URL
	dead.Close()
	for _, ignore := range []bool{false, true} {
		r := run(t, Config{StartURLs: []string{deadURL + "/"}, FollowRobots: true, IgnoreRobotsErrors: ignore})
		require.NoError(t, r.err)
		if ignore {
			require.ErrorIs(t, r.errFor(deadURL+"/"), ErrNetwork, "robots ignored, then the page fails")
		} else {
			require.ErrorIs(t, r.errFor(deadURL+"/"), ErrRobotsUnavailable)
			require.ErrorIs(t, r.errFor(deadURL+"/"), ErrNetwork, "the cause is reachable")
		}
	}
}

func TestMetaRobots(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	page := func(path, head string, links ...string) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			html := linksPage(path, links...)
			_, _ = io.WriteString(w, strings.Replace(html, "<head>", "<head>"+head, 1))
		})
	}
	page("/{$}", "", "/noindex", "/nofollow", "/none", "/header", "/otherbot", "/mybot")
	page("/noindex", `<meta name="robots" content="noindex">`, "/from-noindex")
	page("/nofollow", `<meta name="ROBOTS" content="index, NoFollow">`, "/from-nofollow")
	page("/none", `<meta name="robots" content="none">`, "/from-none")
	page("/otherbot", `<meta name="otherbot" content="noindex">`)
	page("/mybot", `<meta name="testbot" content="noindex">`)
	mux.HandleFunc("/header", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("X-Robots-Tag", "otherbot: nofollow")
		w.Header().Add("X-Robots-Tag", "noindex")
		_, _ = io.WriteString(w, linksPage("header", "/from-header"))
	})
	for _, p := range []string{"/from-noindex", "/from-nofollow", "/from-none", "/from-header"} {
		page(p, "")
	}
	s := newSite(t, mux)

	r := run(t, Config{StartURLs: []string{s.URL}, Depth: 2, FollowRobots: true, UserAgent: "testbot/1"})
	require.NoError(t, r.err)
	require.Equal(t, []string{"/", "/from-header", "/from-noindex", "/nofollow", "/otherbot"}, r.paths(-1))
	require.Equal(t, int64(4), r.stats.Skipped.NoIndex, "noindex, none, header, mybot")
	nf := r.page(t, s.URL+"/nofollow")
	require.Equal(t, RobotsFlags{NoFollow: true}, nf.Robots)
	require.Equal(t, []string{s.URL + "/from-nofollow"}, nf.Links, "links are reported even when not followed")
	require.Empty(t, nf.Prior().Links, "a nofollow page's links are not replayed on 304")

	// Without FollowRobots the flags are reported and nothing is dropped.
	r = run(t, Config{StartURLs: []string{s.URL}, Depth: 2, UserAgent: "testbot/1"})
	require.Len(t, r.paths(-1), 11)
	require.Equal(t, RobotsFlags{NoIndex: true, NoFollow: true}, r.page(t, s.URL+"/none").Robots)
	require.Equal(t, RobotsFlags{NoIndex: true}, r.page(t, s.URL+"/header").Robots)
	require.Equal(t, RobotsFlags{}, r.page(t, s.URL+"/otherbot").Robots)
	require.Equal(t, RobotsFlags{NoIndex: true}, r.page(t, s.URL+"/mybot").Robots)

	// DeliverNoIndex delivers the noindex pages too, flagged, with the
	// same links followed as without it.
	r = run(t, Config{StartURLs: []string{s.URL}, Depth: 2, FollowRobots: true, DeliverNoIndex: true, UserAgent: "testbot/1"})
	require.NoError(t, r.err)
	require.Equal(t, []string{"/", "/from-header", "/from-noindex", "/header", "/mybot", "/nofollow", "/noindex", "/none", "/otherbot"}, r.paths(-1))
	require.Equal(t, int64(4), r.stats.Skipped.NoIndex)
	require.Equal(t, RobotsFlags{NoIndex: true}, r.page(t, s.URL+"/noindex").Robots)
	require.Equal(t, []string{s.URL + "/from-noindex"}, r.page(t, s.URL+"/noindex").Prior().Links)
	require.Empty(t, r.page(t, s.URL+"/none").Prior().Links, "none is nofollow too")
}

func TestParseXRobotsTag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		values []string
		want   RobotsFlags
	}{
		{[]string{"noindex"}, RobotsFlags{NoIndex: true}},
		{[]string{"noindex, nofollow"}, RobotsFlags{NoIndex: true, NoFollow: true}},
		{[]string{"none"}, RobotsFlags{NoIndex: true, NoFollow: true}},
		{[]string{"otherbot: noindex"}, RobotsFlags{}},
		{[]string{"MyBot: nofollow"}, RobotsFlags{NoFollow: true}},
		{[]string{"unavailable_after: 25 Jun 2010 15:00:00 PST"}, RobotsFlags{}},
		{[]string{"all", "nofollow"}, RobotsFlags{NoFollow: true}},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, parseXRobotsTag(tt.values, "mybot"), "%q", tt.values)
	}
}
