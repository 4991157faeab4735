package crawl

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/net/html"
)

func manualBodies(b *testing.B) [][]byte {
	names, _ := filepath.Glob("/usr/share/doc/postgresql-doc-15/html/*.html")
	var bodies [][]byte
	for _, n := range names {
		body, _ := os.ReadFile(n)
		bodies = append(bodies, body)
	}
	return bodies
}

func ceilLinks(body []byte) []string {
	var out []string
	z := html.NewTokenizer(bytes.NewReader(body))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return out
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			if !hasAttr || !(string(name) == "a" || string(name) == "area") {
				continue
			}
			for {
				k, v, more := z.TagAttr()
				if string(k) == "href" {
					out = append(out, string(v))
					break
				}
				if !more {
					break
				}
			}
		}
	}
}

func BenchmarkZCeilManual(b *testing.B) {
	bodies := manualBodies(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ceilLinks(bodies[i%len(bodies)])
		i++
	}
}

func BenchmarkZShaManual(b *testing.B) {
	bodies := manualBodies(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sha256.Sum256(bodies[i%len(bodies)])
		i++
	}
}
