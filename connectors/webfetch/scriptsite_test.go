package webfetch

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/httpfetch"
	"github.com/connectorhq/connector/store"
)

// scriptSite is a site whose pages as served contain no <a> and almost
// no text: a script creates every link and most of the text, some of it
// from a JSON answer. Page 0 is "/", page i is "/page/i". Page i links to
// pages 2i+1 and 2i+2 (created by the script) and to the pages its JSON
// lists (created after the fetch); the JSON also carries a sentence.
type scriptSite struct {
	*site
	n     int
	mu    sync.Mutex
	extra map[int][]int  // links the JSON adds
	words map[int]string // the JSON's sentence
}

func newScriptSite(t testing.TB, n int) *scriptSite {
	s := &scriptSite{site: newSite(t), n: n, extra: map[int][]int{}, words: map[int]string{}}
	for i := 0; i < n; i++ {
		// Every third page's JSON links further down (7i+3 mod n), which
		// reaches pages the tree links reach too: dedup is exercised.
		if i%3 == 0 {
			s.extra[i] = []int{(7*i + 3) % n}
		}
		s.words[i] = "sentence number " + strconv.Itoa(i) + " from the data"
	}
	s.handle("/", s.page)
	s.handle("/page/", s.page)
	s.handle("/data/", s.data)
	return s
}

func pagePath(i int) string {
	if i == 0 {
		return "/"
	}
	return "/page/" + strconv.Itoa(i)
}

func (s *scriptSite) index(path string) int {
	if path == "/" {
		return 0
	}
	i, err := strconv.Atoi(strings.TrimPrefix(path, "/page/"))
	if err != nil || i <= 0 || i >= s.n {
		return -1
	}
	return i
}

// links is the site's definition: the pages page i links to.
func (s *scriptSite) links(i int) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, c := range []int{2*i + 1, 2*i + 2} {
		if c < s.n {
			out = append(out, c)
		}
	}
	return append(out, s.extra[i]...)
}

// reachable counts the pages reachable from "/" by the definition.
func (s *scriptSite) reachable() int {
	seen := map[int]bool{0: true}
	queue := []int{0}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, c := range s.links(i) {
			if !seen[c] {
				seen[c] = true
				queue = append(queue, c)
			}
		}
	}
	return len(seen)
}

func (s *scriptSite) setWords(i int, w string) {
	s.mu.Lock()
	s.words[i] = w
	s.mu.Unlock()
}

// servedPage is the HTML as served: no link, a script.
func servedPage(i int) string {
	return `<!doctype html><html><head><title>Loading</title></head><body><div id="app">Loading…</div>
<script>
(function () {
  var i = ` + strconv.Itoa(i) + `, n = NPAGES;
  function path(k) { return k === 0 ? "/" : "/page/" + k; }
  function link(k) { var a = document.createElement("a"); a.href = path(k); a.textContent = "Page " + k; return a; }
  var app = document.getElementById("app");
  app.textContent = "";
  document.title = "Rendered page " + i;
  var h = document.createElement("h1"); h.textContent = "Rendered heading of page " + i; app.appendChild(h);
  var nav = document.createElement("nav"); app.appendChild(nav);
  [2*i+1, 2*i+2].forEach(function (k) { if (k < n) nav.appendChild(link(k)); });
  fetch("/data/" + i + ".json").then(function (r) { return r.json(); }).then(function (d) {
    var p = document.createElement("p"); p.textContent = d.words; app.appendChild(p);
    d.links.forEach(function (k) { nav.appendChild(link(k)); });
  });
})();
</script></body></html>`
}

func (s *scriptSite) page(w http.ResponseWriter, r *http.Request) {
	i := s.index(r.URL.Path)
	if i < 0 {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, strings.Replace(servedPage(i), "NPAGES", strconv.Itoa(s.n), 1))
}

func (s *scriptSite) data(w http.ResponseWriter, r *http.Request) {
	i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/data/"), ".json"))
	if err != nil || i < 0 || i >= s.n {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	words, extra := s.words[i], s.extra[i]
	s.mu.Unlock()
	links := make([]string, len(extra))
	for k, e := range extra {
		links[k] = strconv.Itoa(e)
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"words":%q,"links":[%s]}`, words, strings.Join(links, ","))
}

// TestScriptSite: on a site whose pages as served have no <a>, the Web
// connector finds every page (the count computed from the site's
// definition) and indexes the text scripts wrote; the HTTP connector
// finds one page. A second run reports every page unchanged; changing
// what one page's script writes (its JSON, the HTML as served staying
// the same) reports that page updated and no other.
func TestScriptSite(t *testing.T) {
	t.Parallel()
	s := newScriptSite(t, 23)
	want := s.reachable()
	require.Equal(t, 23, want, "the definition reaches every page")
	served := strings.Replace(servedPage(5), "NPAGES", "23", 1)
	require.NotContains(t, served, "<a", "pages as served have no link")
	require.NotContains(t, served, "sentence number", "nor the data's text")

	cfgText := taskConfig(s.URL+"/", "Depth=-1")
	b := setup(t, cfgText)
	job := b.sync(t)
	c := countsOf(job, "MYTASK")
	assert.Equal(t, cnt{Seen: uint64(want), Added: uint64(want)}, c)
	require.Len(t, b.target.refs(), want)
	for i := 0; i < s.n; i++ {
		d := b.target.doc(s.URL + pagePath(i))
		require.NotNil(t, d, "page %d delivered", i)
		assert.Equal(t, "Rendered page "+strconv.Itoa(i), field(d, "DRETITLE"))
		assert.Contains(t, d.Content, "Rendered heading of page "+strconv.Itoa(i))
		assert.Contains(t, d.Content, "sentence number "+strconv.Itoa(i)+" from the data", "text from the script's fetch")
		assert.Equal(t, "true", field(d, FieldRendered))
		assert.Equal(t, "true", field(d, FieldRenderSettled))
		assert.Equal(t, 1, s.hitsOf(pagePath(i)), "page %d fetched once: the browser renders the crawl's bytes", i)
	}

	// The HTTP connector on the same site: one page, no text of the data.
	hcfg, err := config.Parse("http.cfg", []byte(cfgText), httpfetch.TaskKeys)
	require.NoError(t, err)
	hst, err := store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	defer hst.Close()
	ht := &recTarget{}
	hrepo, err := httpfetch.New(httpfetch.Options{Config: hcfg, Store: hst, Target: ht, Logger: quietLogger()})
	require.NoError(t, err)
	hjob := runRepo(t, hrepo, "SYNCHRONIZE")
	assert.Equal(t, cnt{Seen: 1, Added: 1}, countsOf(hjob, "MYTASK"))
	assert.Equal(t, []string{s.URL + "/"}, ht.refs())
	assert.NotContains(t, ht.doc(s.URL+"/").Content, "sentence number")

	// Again: nothing changed.
	job = b.sync(t)
	assert.Equal(t, cnt{Seen: uint64(want), Unchanged: uint64(want)}, countsOf(job, "MYTASK"))

	// One page's script writes something else (its data changed; the
	// HTML as served did not).
	s.setWords(7, "a new sentence for page seven")
	job = b.sync(t)
	assert.Equal(t, cnt{Seen: uint64(want), Updated: 1, Unchanged: uint64(want - 1)}, countsOf(job, "MYTASK"))
	assert.Contains(t, b.target.doc(s.URL+"/page/7").Content, "a new sentence for page seven")
}
