package crawl

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fastResolveRefs are references for the fast path's tests: the kinds it
// takes, and near misses it must leave to the parser.
var fastResolveRefs = []string{
	"x.html", "sub/x.html", "x.html#frag", "x.html?q=1", "x.html?q=1#f", "x.html?", "x.html#", "a//b", "X.HTML", "%41.html",
	"%7e.html", "%zz", "%", "%2e/x", "%2E%2E/x", ".%2e/x", "./x", "../x", "a/./b", "a/../b", "a/.", "a/..", ".", "..", ".x", "x.",
	"...", "a;b=1", "a;jsessionid=1", "x?PHPSESSID=2&a=1", "x?a=1&sid=3", "(S(abcdef))/x", "x?q=%2e%2e", "x?q=a/../b",
	"/abs", "/abs/x.html?q#f", "/", "//h2/x", "/\\x", "/a b", "/a\tb", "/é", "/a'b", "/a^b", "/a|b", "/a{b}", "/a`b", "/a\"b",
	"/a<b>", "/a[b]", "/a:b", "/a@b", "/a!$&()*+,;=b", "/a?b'c", "/a?b c", "/a?b\"c", "/a#b c", "/a#b#c", "/a#é",
	"?q", "#f", "", " x", "x ", "x\n", "mailto:a@b", "a:b", "C:/x", "C|/x", "\\x", "http://h/x",
	"http://h", "https://h", "http://h/", "http://h?q", "http://h#f", "http://h/a/../b", "http://h/%2e/", "http://H/x", "HTTP://h/x",
	"http://h:80/x", "https://h:443/", "http://h:8080/", "http://u@h/", "http://1.2.3.4/", "http://127.1/", "http://0x7f.1/",
	"http://a.0x1/", "http://a.1b/", "http://a..b/", "http://a.b./", "http://.a/", "http://xn--caf-dma.com/", "http://xn--a/",
	"http://-a-.b-/", "http://a_b/", "http://a%41/", "http://a b/", "https://www.postgresql.org/docs/15/x.html#f",
	"http://" + strings.Repeat("a", 70) + ".com/", "http://" + strings.Repeat("ab.", 100) + "com/", "http://h/x?PHPSESSID=1",
	"http://h/x;jsessionid=2", "http://h\\x", "http://h/x y", "https://h/é",
}

// TestFastResolveMatchesResolve: wherever fastResolve answers, its answer
// is resolve's, over the WHATWG suite's inputs and bases and the
// references above, with session stripping on and off.
func TestFastResolveMatchesResolve(t *testing.T) {
	t.Parallel()
	cases := loadWHATWGCases(t)
	bases := []string{
		"http://h/a/b.html", "http://h/a/c.html?q=1", "http://h/a/", "http://h/a/d.html#frag", "http://h:80/a/e",
		"https://h/a/b.html", "http://u:p@h/a/b.html", "http://h/", "http://h", "http://www.h:8080/x;y/z",
		"https://[::1]:8443/a/b", "http://xn--caf-dma.example/é/", "http://h/a%2e/b", "mailto:x@y", "file:///a/b",
	}
	refs := append([]string{}, fastResolveRefs...)
	for _, c := range cases {
		if c.Base != nil {
			bases = append(bases, *c.Base)
		}
		refs = append(refs, c.Input)
	}
	fast := 0
	for _, params := range [][]string{DefaultSessionParams, {}} {
		n := newNormalizer(params)
		for _, b := range bases {
			base, err := parseURL(nil, b)
			if err != nil {
				continue
			}
			var bk baseKeys
			for _, r := range refs {
				got, ok := n.fastResolve(base, &bk, r)
				if !ok {
					continue
				}
				fast++
				want, err := n.resolve(base, r)
				require.NoError(t, err, "base %q ref %q", b, r)
				require.Equal(t, want, got, "base %q ref %q", b, r)
			}
		}
	}
	require.Greater(t, fast, 500, "the fast path was exercised")
}

// FuzzFastResolve is TestFastResolveMatchesResolve over fuzzed bases and
// references.
func FuzzFastResolve(f *testing.F) {
	for _, r := range fastResolveRefs {
		f.Add("http://example.com/a/b.html", r)
	}
	n := newNormalizer(DefaultSessionParams)
	f.Fuzz(func(t *testing.T, b, ref string) {
		base, err := parseURL(nil, b)
		if err != nil {
			return
		}
		var bk baseKeys
		got, ok := n.fastResolve(base, &bk, ref)
		if !ok {
			return
		}
		want, err := n.resolve(base, ref)
		if err != nil {
			t.Fatalf("base %q ref %q: fast path resolved to %q, the parser fails: %v", b, ref, got.s, err)
		}
		if want != got {
			t.Fatalf("base %q ref %q: fast path %+v, parser %+v", b, ref, got, want)
		}
	})
}
