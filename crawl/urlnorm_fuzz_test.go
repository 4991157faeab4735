package crawl

import (
	"strings"
	"testing"
)

// FuzzNormalize: resolving never panics, and a normalised http(s) URL is a
// fixed point of normalisation that can be turned into a request.
func FuzzNormalize(f *testing.F) {
	f.Add("http://example.com/a/b", "../c?d=1#e")
	f.Add("https://example.com/", "/x/..;jsessionid=1/y?PHPSESSID=2&a")
	f.Add("http://example.com/", "//[::1]:80/%zz/(S(abc))/p")
	f.Add("http://example.com/", "mailto:x@y")
	n := newNormalizer(DefaultSessionParams)
	f.Fuzz(func(t *testing.T, base, ref string) {
		b, err := parseURL(nil, base)
		if err != nil {
			return
		}
		got, err := n.resolve(b, ref)
		if err != nil || !got.http {
			return
		}
		again, err := n.resolve(nil, got.s)
		if err != nil {
			t.Fatalf("normalised %q does not parse: %v", got.s, err)
		}
		if again.s != got.s {
			t.Fatalf("not idempotent: %q -> %q", got.s, again.s)
		}
		if _, err := toNetURL(got.s); err != nil {
			t.Fatalf("cannot request %q: %v", got.s, err)
		}
		if p := robotsPath(got.s); !strings.HasPrefix(p, "/") {
			t.Fatalf("robots path %q of %q", p, got.s)
		}
	})
}
