package crawl

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	wurl "github.com/nlnwa/whatwg-url/url"
	"github.com/stretchr/testify/require"
)

// whatwgCase is one entry of the web-platform-tests urltestdata.json.
type whatwgCase struct {
	Input   string  `json:"input"`
	Base    *string `json:"base"`
	Href    string  `json:"href"`
	Failure bool    `json:"failure"`
}

// loadWHATWGCases reads urltestdata.json from the whatwg-url module in the
// module cache, or skips the test.
func loadWHATWGCases(t *testing.T) []whatwgCase {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/nlnwa/whatwg-url").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Skipf("whatwg-url module not in the module cache (go list: %v); run go mod download", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "testdata", "urltestdata.json"))
	if err != nil {
		t.Skipf("urltestdata.json not found in %s: %v", dir, err)
	}
	var raw []json.RawMessage
	require.NoError(t, json.Unmarshal(data, &raw))
	var cases []whatwgCase
	for _, r := range raw {
		if len(r) > 0 && r[0] == '"' {
			continue // comment
		}
		var c whatwgCase
		require.NoError(t, json.Unmarshal(r, &c))
		cases = append(cases, c)
	}
	require.Greater(t, len(cases), 700, "suspiciously few WHATWG cases")
	return cases
}

// TestWHATWGConformance runs the crawl's URL parser over every case of the
// WHATWG URL test suite: the serialisation must equal the expected href,
// or parsing must fail where the suite expects failure. For http(s)
// results, the crawl's normalised form must be the href without its
// fragment.
func TestWHATWGConformance(t *testing.T) {
	t.Parallel()
	cases := loadWHATWGCases(t)
	plain := newNormalizer(nil)
	var failures, httpChecked int
	for _, c := range cases {
		name := c.Input
		if c.Base != nil {
			name += " @ " + *c.Base
		}
		got, err := func() (string, error) {
			if c.Base == nil {
				u, err := parseURL(nil, c.Input)
				if err != nil {
					return "", err
				}
				return u.Href(false), nil
			}
			base, err := parseURL(nil, *c.Base)
			if err != nil {
				return "", err
			}
			u, err := parseURL(base, c.Input)
			if err != nil {
				return "", err
			}
			if isHTTPScheme(u.Scheme()) {
				n := plain.normalize(u)
				want, _, _ := strings.Cut(c.Href, "#")
				if u.Password() != "" {
					// The one departure from WHATWG's serialisation:
					// user information with a password is dropped.
					bare := *u
					bare.SetUsername("")
					bare.SetPassword("")
					want = bare.Href(true)
				}
				if !c.Failure && n.s != want {
					t.Errorf("normalize %q: got %q, want %q", name, n.s, want)
				}
				httpChecked++
			}
			return u.Href(false), nil
		}()
		if c.Failure {
			if err == nil {
				t.Errorf("%q: parsed as %q, want failure", name, got)
				failures++
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v, want %q", name, err, c.Href)
			failures++
			continue
		}
		if got != c.Href {
			t.Errorf("%q: got %q, want %q", name, got, c.Href)
			failures++
		}
	}
	require.Zero(t, failures)
	require.Greater(t, httpChecked, 100)
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	n := newNormalizer(DefaultSessionParams)
	tests := []struct {
		desc, base, ref, want string
		wantHTTP              bool
	}{
		{"case and default port", "", "HTTP://Example.COM:80/a", "http://example.com/a", true},
		{"https default port", "", "https://example.com:443", "https://example.com/", true},
		{"other port kept", "", "http://example.com:8080/", "http://example.com:8080/", true},
		{"fragment dropped", "", "http://example.com/a#top", "http://example.com/a", true},
		{"dot segments", "http://example.com/a/b/c", "../d/./e", "http://example.com/a/d/e", true},
		{"relative query", "http://example.com/a/b?x=1", "?y=2", "http://example.com/a/b?y=2", true},
		{"protocol-relative", "https://example.com/a", "//other.org/p", "https://other.org/p", true},
		{"IDNA host", "", "http://bücher.example/", "http://xn--bcher-kva.example/", true},
		{"spaces encoded", "", "http://example.com/a b?c d", "http://example.com/a%20b?c%20d", true},
		{"backslashes", "", `http:\\example.com\a\b`, "http://example.com/a/b", true},
		{"jsessionid path param", "", "http://example.com/shop;jsessionid=ABC123?x=1", "http://example.com/shop?x=1", true},
		{"jsessionid mid path", "", "http://example.com/a;JSESSIONID=1/b", "http://example.com/a/b", true},
		{"other path params kept", "", "http://example.com/a;v=2", "http://example.com/a;v=2", true},
		{"PHPSESSID query", "", "http://example.com/?PHPSESSID=abc&page=2", "http://example.com/?page=2", true},
		{"only session query", "", "http://example.com/p?sid=1", "http://example.com/p", true},
		{"aspsessionid prefix", "", "http://example.com/p?a=1&ASPSESSIONIDQQ=x&b=2", "http://example.com/p?a=1&b=2", true},
		{"encoded name", "", "http://example.com/p?%73id=1&b=2", "http://example.com/p?b=2", true},
		{"query bytes kept", "", "http://example.com/p?b=%2f+x&sid=1", "http://example.com/p?b=%2f+x", true},
		{"cookieless segment", "", "http://example.com/(S(lit3py55t21z5v55vlm25s55))/default.aspx", "http://example.com/default.aspx", true},
		{"not cookieless", "", "http://example.com/(see)/x", "http://example.com/(see)/x", true},
		{"empty query kept", "", "http://example.com/p?", "http://example.com/p?", true},
		{"mailto", "http://example.com/", "mailto:a@b.c", "mailto:a@b.c", false},
		{"javascript", "http://example.com/", "javascript:void(0)", "javascript:void(0)", false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			base := mustParseBase(t, tt.base)
			got, err := n.resolve(base, tt.ref)
			require.NoError(t, err)
			require.Equal(t, tt.want, got.s)
			require.Equal(t, tt.wantHTTP, got.http)
		})
	}
}

// mustParseBase parses an absolute URL; "" gives nil (no base).
func mustParseBase(t *testing.T, s string) *wurl.Url {
	t.Helper()
	if s == "" {
		return nil
	}
	u, err := parseURL(nil, s)
	require.NoError(t, err)
	return u
}

func TestNormalizeInvalid(t *testing.T) {
	t.Parallel()
	n := newNormalizer(nil)
	for _, ref := range []string{"http://", "http://exa mple.com/", "http://[::1/", "relative/without/base", "http://example.com:99999/"} {
		_, err := n.resolve(nil, ref)
		require.Error(t, err, ref)
	}
}

func TestSessionStrippingDisabled(t *testing.T) {
	t.Parallel()
	n := newNormalizer([]string{})
	got, err := n.resolve(nil, "http://example.com/a;jsessionid=1?sid=2")
	require.NoError(t, err)
	require.Equal(t, "http://example.com/a;jsessionid=1?sid=2", got.s)
}

func TestURLParts(t *testing.T) {
	t.Parallel()
	require.Equal(t, "/a/b?c", robotsPath("http://example.com/a/b?c"))
	require.Equal(t, "/", robotsPath("http://example.com/"))
	require.Equal(t, "http://example.com:8080", originOf("http://example.com:8080/x"))
	require.Equal(t, "http://example.com", originOf("http://user:pw@example.com/x"))
	require.Equal(t, "example.com", siteHost("www.example.com"))
	require.Equal(t, "wwwexample.com", siteHost("wwwexample.com"))
	o, p, q, hq := splitURL("https://h:1/p/q?x=1&y")
	require.Equal(t, []any{"https://h:1", "/p/q", "x=1&y", true}, []any{o, p, q, hq})
}

func TestToNetURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, wantRequestURI, wantHost string }{
		{"http://example.com/a?b=1", "/a?b=1", "example.com"},
		{"http://example.com/%zz/x", "/%zz/x", "example.com"},
		{"http://example.com:81/%/x?%zz", "/%/x?%zz", "example.com:81"},
		{"http://example.com//%zz", "http://example.com//%zz", "example.com"},
	} {
		u, err := toNetURL(tt.in)
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.wantRequestURI, u.RequestURI(), tt.in)
		require.Equal(t, tt.wantHost, u.Host, tt.in)
	}
}

// TestLinkCacheMatchesResolve: a worker's resolved-link cache returns what
// resolving afresh returns, whatever the page the reference is on.
func TestLinkCacheMatchesResolve(t *testing.T) {
	t.Parallel()
	c := newCrawler(Config{StartURLs: []string{"http://example.com/"}}.withDefaults(), Hooks{})
	defer c.close()
	w := &worker{c: c, links: make(map[string]normURL)}
	bases := []string{
		"http://example.com/a/b/c.html?q=1",
		"http://example.com/",
		"http://user:pw@example.com:8080/x/",
		"https://example.com/deep/er/",
		"http://other.org/z",
	}
	refs := []string{"/p", "/p?x=1#f", "/\t/evil.org/x", "/\n\\x", "/../up", "http://example.com/abs", "https://x.y/",
		"//proto.rel/x", "rel", "?q=2", "#frag", "/a;jsessionid=1", "", " /spaced "}
	for round := 0; round < 2; round++ { // the second round hits the cache
		for _, b := range bases {
			base := mustParseBase(t, b)
			all, _ := w.resolveLinks(base, refs)
			var want []normURL
			seen := map[string]bool{}
			for _, r := range refs {
				n, err := c.norm.resolve(base, r)
				if err != nil || seen[n.s] {
					continue
				}
				seen[n.s] = true
				want = append(want, n)
			}
			require.Equal(t, want, all, "base %s round %d", b, round)
		}
	}
	require.NotEmpty(t, w.links)
}
