package crawl

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLinkCacheKeySound: whenever two (base, reference) pairs get the same
// cache key, resolving them gives the same URL, over the WHATWG suite's
// cases (each input resolved against every http(s) base in the suite) and
// pairs of pages sharing a folder.
func TestLinkCacheKeySound(t *testing.T) {
	t.Parallel()
	cases := loadWHATWGCases(t)
	n := newNormalizer(DefaultSessionParams)
	bases := []string{
		"http://h/a/b.html", "http://h/a/c.html?q=1", "http://h/a/", "http://h/a/d.html#frag", "http://h:80/a/e",
		"https://h/a/b.html", "http://u:p@h/a/b.html", "http://h/", "http://h", "http://other/a/b.html",
	}
	refs := []string{"x.html", "../y.html", "./z/../w", "x.html?q#f", "%7e.html", "é.html", "a b.html", "/abs", "//h2/x",
		"?only", "#only", "mailto:x", "javascript:void(0)", "a:b", "C:/x", "\\\\x", "\tx.html", "x.html\n", ".", "..", ""}
	for _, c := range cases {
		if c.Base != nil {
			bases = append(bases, *c.Base)
		}
		refs = append(refs, c.Input)
	}
	type res struct {
		s   string
		err bool
	}
	seen := map[string]res{}
	keyed := 0
	for _, b := range bases {
		base, err := parseURL(nil, b)
		if err != nil {
			continue
		}
		for _, r := range refs {
			var bk baseKeys
			key := linkCacheKey(base, &bk, r)
			if key == "" {
				continue
			}
			keyed++
			u, err := n.resolve(base, r)
			got := res{s: u.s, err: err != nil}
			if prev, ok := seen[key]; ok {
				require.Equal(t, prev, got, "key %q: base %q ref %q", key, b, r)
			} else {
				seen[key] = got
			}
		}
	}
	require.Greater(t, keyed, 1000, "the test exercised the cache keys")
}
