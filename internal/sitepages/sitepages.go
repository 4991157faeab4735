// Package sitepages computes which pages of a static site on disk a crawl
// should find: the reference that the real-site tests (crawl, httpfetch)
// and the crawl benchmark (bench/) check crawlers against. It shares no
// code with the crawler.
package sitepages

import (
	"fmt"
	neturl "net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/net/html"
)

// PostgresDocs is the PostgreSQL 15 HTML manual of the Debian package
// postgresql-doc-15: a real site nobody on the team wrote.
const PostgresDocs = "/usr/share/doc/postgresql-doc-15/html"

// PostgresPages returns the pages of the PostgreSQL manual reachable from
// its index.html, level by level up to maxDepth (Reachable). The error says
// so when the manual is missing: the real-site tests that need it fail
// then (`make test` installs postgresql-doc-15), they never skip.
func PostgresPages(maxDepth int) ([][]string, error) {
	if _, err := os.Stat(filepath.Join(PostgresDocs, "index.html")); err != nil {
		return nil, fmt.Errorf("%s not installed: this test needs the Debian package postgresql-doc-15 (`make test` installs it): %w", PostgresDocs, err)
	}
	return Reachable(PostgresDocs, "index.html", maxDepth)
}

// Reachable returns, level by level (index 0 is start itself), the
// .html files of the static site in dir that are reachable from start (a
// file name relative to dir, such as "index.html") through <a href>
// links, up to maxDepth links away. Each file appears once, at its
// minimum depth; each level is sorted. It uses only net/url and
// golang.org/x/net/html, independently of the crawl code, so that no
// crawler under test checks itself.
func Reachable(dir, start string, maxDepth int) ([][]string, error) {
	linksOf := func(name string) ([]string, error) {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return nil, fmt.Errorf("sitepages: %w", err)
		}
		defer f.Close()
		doc, err := html.Parse(f)
		if err != nil {
			return nil, fmt.Errorf("sitepages: parse %s: %w", name, err)
		}
		base := &neturl.URL{Scheme: "http", Host: "site", Path: "/" + name}
		var out []string
		var walk func(n *html.Node)
		walk = func(n *html.Node) {
			if n.Type == html.ElementNode && n.Data == "a" {
				for _, a := range n.Attr {
					if a.Key != "href" {
						continue
					}
					u, err := base.Parse(strings.TrimSpace(a.Val))
					if err != nil || u.Scheme != "http" || u.Host != "site" {
						continue
					}
					p := strings.TrimPrefix(path.Clean(u.Path), "/")
					if p == "" || p == "." {
						p = "index.html"
					}
					if st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); err == nil && !st.IsDir() {
						out = append(out, p)
					}
				}
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walk(c)
			}
		}
		walk(doc)
		return out, nil
	}
	seen := map[string]bool{start: true}
	levels := [][]string{{start}}
	for d := 1; d <= maxDepth; d++ {
		var next []string
		for _, name := range levels[d-1] {
			if !strings.HasSuffix(name, ".html") {
				continue
			}
			links, err := linksOf(name)
			if err != nil {
				return nil, err
			}
			for _, l := range links {
				if !seen[l] {
					seen[l] = true
					next = append(next, l)
				}
			}
		}
		levels = append(levels, next)
	}
	for d := range levels {
		var htmlOnly []string
		for _, n := range levels[d] {
			if strings.HasSuffix(n, ".html") {
				htmlOnly = append(htmlOnly, n)
			}
		}
		sort.Strings(htmlOnly)
		levels[d] = htmlOnly
	}
	return levels, nil
}
