package crawl

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseHTML: any body and Content-Type parse without panicking into
// valid UTF-8 text without stray whitespace.
func FuzzParseHTML(f *testing.F) {
	f.Add([]byte(`<html lang=en><title>t</title><base href="/b/"><a href="x">y</a><script>z</script></html>`), "text/html")
	f.Add([]byte("<title>caf\xe9</title><p>\xff\xfe</p>"), "text/html; charset=iso-8859-1")
	f.Add([]byte("<template><template></template><p>x"), "")
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		d := parseHTML(body, contentType, "connector")
		for name, s := range map[string]string{"text": d.text, "title": d.title} {
			if !utf8.ValidString(s) {
				t.Fatalf("%s is not valid UTF-8: %q", name, s)
			}
			if s != strings.TrimSpace(s) || strings.Contains(s, "  ") {
				t.Fatalf("%s is not whitespace-normalised: %q", name, s)
			}
		}
	})
}
