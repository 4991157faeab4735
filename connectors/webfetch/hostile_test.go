package webfetch

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHostileSite crawls, in one action, a site of pages that try to hang
// or exhaust the crawl: dialogs, popups, a page that navigates away by
// itself, infinite scrolling, a script that adds links without end, a
// page whose load event never fires, a large DOM (10,000 elements here, read with
// three other tabs busy on a loaded machine; crawl/browser renders a 50 MB one), a download link, and a
// page whose script reaches for a denied address. The action ends by
// itself; every page is delivered (read at its deadline when it never
// settles); the links the endless script added are bounded; no download
// and no denied request happens. (crawl/browser's tests take each case
// apart; this is the connector's view of them together.)
func TestHostileSite(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "http://"))
	pages := map[string]string{
		"/dialogs":  `<p>dialogs</p><script>alert("a"); confirm("b"); prompt("c"); document.body.append(" after dialogs");</script>`,
		"/popup":    `<p>popup</p><script>var w = window.open("/popup-target"); document.body.append(w === null ? " popup refused" : " popup opened");</script>`,
		"/navigate": `<p>navigates away</p><script>setTimeout(function(){ location.href = "/elsewhere"; }, 100);</script>`,
		"/scroll":   `<div id="feed"></div><script>var n = 0; setInterval(function(){ for (var i = 0; i < 20; i++) { var p = document.createElement("p"); p.textContent = "item " + (n++); document.getElementById("feed").appendChild(p); } window.scrollTo(0, document.body.scrollHeight); }, 30);</script>`,
		"/links":    `<div id="l"></div><script>var k = 0; setInterval(function(){ for (var i = 0; i < 500; i++) { var a = document.createElement("a"); a.href = "/gen/" + (k++); a.textContent = "g"; document.getElementById("l").appendChild(a); } }, 20);</script>`,
		"/noload":   `<p>never loads</p><script src="/hang.js"></script>`,
		"/bigdom":   `<div id="big"></div><script>var b = document.getElementById("big"), f = document.createDocumentFragment(); for (var i = 0; i < 10000; i++) { var d = document.createElement("div"); d.textContent = "row " + i; f.appendChild(d); } b.appendChild(f);</script>`,
		"/download": `<a id="dl" href="/file.bin" download>file</a><script>document.getElementById("dl").click();</script>`,
		"/denied":   `<p>denied</p><script>fetch("http://localhost:` + port + `/secret").then(function(){ document.body.append(" reached") }, function(){ document.body.append(" refused") });</script>`,
	}
	var index strings.Builder
	for p, body := range pages {
		s.html(p, "<html><head><title>"+p+"</title></head><body>"+body+"</body></html>")
		index.WriteString(`<a href="` + p + `">` + p + `</a> `)
	}
	s.html("/", "<html><body>"+index.String()+"</body></html>")
	s.hold("/hang.js")
	s.handle("/file.bin", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(make([]byte, 1<<20))
	})
	s.html("/secret", "secret")
	s.html("/elsewhere", "<html><body>elsewhere</body></html>")

	b := setup(t, taskConfig(s.URL+"/", "Depth=1", "RenderDeadline=4s", "Concurrency=4")+
		"[Security]\nDeniedAddresses=localhost,169.254.0.0/16\n")
	start := time.Now()
	job := b.sync(t)
	t.Logf("hostile site crawled in %s", time.Since(start))
	c := countsOf(job, "MYTASK")
	// "/" and its nine pages; /gen/* links are at depth 2, /file.bin is
	// not a page type the task takes, /elsewhere is not linked.
	assert.Equal(t, uint64(10), c.Seen, "failures: %v", job.Failures())
	assert.Equal(t, uint64(10), c.Added)
	doc := func(p string) string {
		d := b.target.doc(s.URL + p)
		require.NotNil(t, d, p)
		return d.Content
	}
	assert.Contains(t, doc("/dialogs"), "after dialogs")
	assert.Contains(t, doc("/popup"), "popup refused")
	assert.Contains(t, doc("/navigate"), "navigates away", "the page stays the one rendered")
	assert.Contains(t, doc("/scroll"), "item 0")
	assert.Contains(t, doc("/bigdom"), "row 9999")
	assert.Contains(t, doc("/noload"), "never loads")
	assert.Equal(t, "false", field(b.target.doc(s.URL+"/noload"), FieldRenderSettled))
	assert.Contains(t, doc("/denied"), "refused")
	assert.Zero(t, s.hitsOf("/secret"), "the denied address was never reached")
	assert.Zero(t, s.hitsOf("/elsewhere"), "the navigation was not followed by the browser")
	assert.Zero(t, s.hitsOf("/popup-target"))
	assert.LessOrEqual(t, s.hitsOf("/file.bin"), 1, "at most the crawl's own request (refused by type)")
	assert.NotNil(t, b.target.doc(s.URL+"/links"), "the page adding links without end is read at its deadline, its links cut at the read limit")
	if fl := job.Failures(); fl != nil {
		assert.Zero(t, fl.Total, "no page failed: %v", fl.Items)
	}
}
