package webfetch

import (
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docsifyVersion is the docsify the Makefile installs (npm, into the test
// cache folder): a documentation site framework that renders Markdown in
// the browser, a single-page application.
const docsifyVersion = "5.0.0"

// docsifyDir is where `make test` installs it (scripts/ensure-npm.sh).
func docsifyDir(t *testing.T) string {
	base := os.Getenv("CONNECTOR_TEST_CACHE")
	if base == "" {
		c, err := os.UserCacheDir()
		require.NoError(t, err)
		base = filepath.Join(c, "connector-test")
	}
	dir := filepath.Join(base, "docsify-"+docsifyVersion, "node_modules", "docsify", "dist")
	if _, err := os.Stat(filepath.Join(dir, "docsify.min.js")); err != nil {
		t.Fatalf("this test needs the npm package docsify@%s in %s (`make test` installs it: scripts/ensure-npm.sh): %v", docsifyVersion, dir, err)
	}
	return dir
}

// docsPages is the documentation the docsify site serves: Markdown files
// by path; the sidebar links some, the others are linked only from pages'
// text. Every file is reachable from the home page.
var docsPages = map[string]string{
	"README.md":             "# Handbook\n\nWelcome to the handbook. Start with the [introduction](guide/intro.md).\n",
	"guide/intro.md":        "# Introduction\n\nThe introduction. Then [install](guide/install.md) and read the [glossary](reference/glossary.md).\n",
	"guide/install.md":      "# Installing\n\nInstall it, then [configure](guide/configure.md) it.\n",
	"guide/configure.md":    "# Configuring\n\nSettings. See also [advanced settings](guide/advanced.md).\n",
	"guide/advanced.md":     "# Advanced settings\n\nOnly linked from the text of another page.\n",
	"reference/api.md":      "# API\n\nThe [errors](reference/errors.md) and the [glossary](reference/glossary.md).\n",
	"reference/errors.md":   "# Errors\n\nEvery error, linked only from the API page.\n",
	"reference/glossary.md": "# Glossary\n\nWords.\n",
	"faq.md":                "# Questions\n\nAsked often. [Changes](changes.md).\n",
	"changes.md":            "# Changes\n\nWhat changed, linked only from the questions.\n",
}

const docsSidebar = "- [Home](/)\n- [Introduction](guide/intro.md)\n- [Installing](guide/install.md)\n- [API](reference/api.md)\n- [Questions](faq.md)\n"

const docsIndex = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Handbook</title></head>
<body><div id="app">Loading…</div>
<script>window.$docsify = { name: "Handbook", routerMode: "history", loadSidebar: true, basePath: "/", relativePath: false };</script>
<script src="/lib/docsify.min.js"></script>
</body></html>`

// TestSinglePageApplication crawls a real single-page application end to
// end: a documentation site run by docsify (npm), in history mode, whose
// every route is the same index.html as served (no link, no text of the
// documents); the browser runs docsify, which fetches the Markdown and
// renders pages and links. The expected page count is the number of
// Markdown documents of the site (each is one route), the sidebar file
// aside; the HTTP connector finds one page.
func TestSinglePageApplication(t *testing.T) {
	t.Parallel()
	lib := docsifyDir(t)
	s := newSite(t)
	// The application's server: its files, the documents, and its
	// index.html for every other path (a route).
	s.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, "/")
		switch {
		case strings.HasPrefix(p, "lib/"):
			http.ServeFile(w, r, filepath.Join(lib, path.Base(p)))
		case p == "robots.txt":
			http.NotFound(w, r)
		case p == "_sidebar.md" || strings.HasSuffix(p, "/_sidebar.md"):
			w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
			_, _ = w.Write([]byte(docsSidebar))
		case strings.HasSuffix(p, ".md"):
			md, ok := docsPages[p]
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
			_, _ = w.Write([]byte(md))
		default: // every route of the application is its index.html
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(docsIndex))
		}
	})
	// The expected routes: one per document, README.md being "/".
	var want []string
	for p := range docsPages {
		route := "/" + strings.TrimSuffix(p, ".md")
		if p == "README.md" {
			route = "/"
		}
		want = append(want, s.URL+route)
	}
	sort.Strings(want)

	// docsify links every heading to itself with "?id=<heading>" (its
	// in-page anchors in history mode): the same page, which a task for
	// such a site leaves out as it would a session parameter. docsify
	// fetches the page's Markdown and the sidebar's separately and renders
	// each when it arrives, in either order: the page is read once both
	// are there (the sidebar's links and the document's heading), else a
	// fast document read before its sidebar misses the pages only the
	// sidebar links.
	b := setup(t, taskConfig(s.URL+"/", "Depth=-1", "RenderWaitSelector=body:has(.sidebar-nav a[href]) .markdown-section h1", "RenderDeadline=20s",
		`SpiderUrlCantHaveRegex=.*[?&]id=.*`))
	job := b.sync(t)
	assert.Equal(t, want, b.target.refs(), "failures: %v", job.Failures())
	c := countsOf(job, "MYTASK")
	assert.Equal(t, uint64(len(want)), c.Added)
	assert.Zero(t, c.Errors)
	for p, md := range docsPages {
		route := "/" + strings.TrimSuffix(p, ".md")
		if p == "README.md" {
			route = "/"
		}
		d := b.target.doc(s.URL + route)
		require.NotNil(t, d, route)
		title := strings.TrimPrefix(strings.SplitN(md, "\n", 2)[0], "# ")
		assert.Contains(t, d.Content, title, route)
		assert.Equal(t, "selector", field(d, FieldRenderSettledBy), route)
	}
}
