package browser

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each hostile page is rendered with a short deadline; the test checks
// that Render returns (no hang), what it read, and that the pool still
// renders a normal page afterwards (not exhausted). None of these tests
// asserts a duration.

func hostileOpts() RenderOptions {
	return RenderOptions{Deadline: 3 * time.Second, ReadTimeout: 10 * time.Second}
}

// stillWorks renders a plain page on p.
func stillWorks(t *testing.T, p *Pool) {
	t.Helper()
	pg := render(t, p, "http://127.0.0.1:9/fine", "<p>still fine</p>", RenderOptions{})
	require.Contains(t, pg.Text, "still fine")
}

func TestHostileDialogs(t *testing.T) {
	p := newPool(t, Config{Tabs: 1})
	body := `<html><body><p id="out">before</p><script>
alert("one");
var c = confirm("two?");
var v = prompt("three?", "default");
document.getElementById("out").textContent = "after confirm=" + c + " prompt=" + v;
setTimeout(function(){ alert("later") }, 50);
window.onbeforeunload = function(e){ e.preventDefault(); e.returnValue = "stay"; return "stay" };
</script></body></html>`
	pg := render(t, p, "http://127.0.0.1:9/dialogs", body, hostileOpts())
	assert.Contains(t, pg.Text, "after confirm=false prompt=null", "dismissed: confirm false, prompt null")
	assert.GreaterOrEqual(t, pg.Dialogs, 3)
	// The same tab leaves the page (beforeunload is accepted).
	stillWorks(t, p)
	assert.Equal(t, 1, p.Stats().TabsOpened)
}

func TestHostilePopups(t *testing.T) {
	p := newPool(t, Config{Tabs: 1})
	s := newSite(t)
	s.handle("/popup", "text/html", "<p>popup</p>")
	body := fmt.Sprintf(`<html><body><p id="out"></p><script>
var w = window.open(%q, "_blank");
var w2 = window.open(%q, "named", "width=100,height=100");
document.getElementById("out").textContent = "popup=" + (w === null) + "," + (w2 === null);
var a = document.createElement("a"); a.href = %q; a.target = "_blank"; document.body.appendChild(a); a.click();
</script></body></html>`, s.URL+"/popup", s.URL+"/popup?2", s.URL+"/popup?3")
	pg := render(t, p, s.URL+"/p", body, hostileOpts())
	assert.Contains(t, pg.Text, "popup=true,true", "window.open returns null")
	assert.Equal(t, 0, s.hitsOf("/popup"), "no popup loaded anything")
	p.mu.Lock()
	g := p.gen
	p.mu.Unlock()
	targets, err := chromedp.Targets(g.ctx)
	require.NoError(t, err)
	for _, tg := range targets {
		assert.NotContains(t, tg.URL, "/popup")
	}
	stillWorks(t, p)
}

func TestHostileNavigatesAway(t *testing.T) {
	p := newPool(t, Config{Tabs: 1})
	s := newSite(t)
	s.handle("/elsewhere", "text/html", "<p>elsewhere</p>")
	cases := map[string]string{
		"location": `<html><body><p>original</p><script>setTimeout(function(){ location.href = "/elsewhere" }, 50)</script></body></html>`,
		"replace":  `<html><body><p>original</p><script>location.replace("/elsewhere?r")</script></body></html>`,
		"refresh":  `<html><head><meta http-equiv="refresh" content="0;url=/elsewhere?m"></head><body><p>original</p></body></html>`,
		"form":     `<html><body><p>original</p><form id="f" method="post" action="/elsewhere?f"></form><script>document.getElementById("f").submit()</script></body></html>`,
		"top":      `<html><body><p>original</p><script>window.top.location = "/elsewhere?t"</script></body></html>`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			pg := render(t, p, s.URL+"/p", body, hostileOpts())
			assert.Contains(t, pg.Text, "original")
			assert.NotContains(t, pg.Text, "elsewhere")
			assert.GreaterOrEqual(t, pg.Requests.NavigationsBlocked, 1)
			// Where the page went is said, for the crawl to follow (a
			// form's POST is not a page to crawl).
			switch name {
			case "replace", "refresh", "top":
				query := map[string]string{"replace": "r", "refresh": "m", "top": "t"}[name]
				assert.Equal(t, []string{s.URL + "/elsewhere?" + query}, pg.Navigations)
			case "form":
				assert.Empty(t, pg.Navigations)
			}
		})
	}
	assert.Equal(t, 0, s.hitsOf("/elsewhere"))
	stillWorks(t, p)
}

func TestHostileInfiniteScroll(t *testing.T) {
	p := newPool(t, Config{Tabs: 1})
	s := newSite(t)
	var n int
	var mu sync.Mutex
	s.mux.HandleFunc("/more", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		k := n
		mu.Unlock()
		fmt.Fprintf(w, `{"items":["item %d a","item %d b","item %d c"]}`, k, k, k)
	})
	// A feed that loads more whenever its sentinel is visible, and scrolls
	// itself: it never ends.
	body := `<html><body><div id="feed"></div><div id="sentinel" style="height:10px"></div><script>
var feed = document.getElementById("feed");
function more() {
  fetch("/more").then(function(r){return r.json()}).then(function(d){
    d.items.forEach(function(t){ var p = document.createElement("p"); p.style.height = "200px"; p.textContent = t; feed.appendChild(p) });
    window.scrollTo(0, document.body.scrollHeight);
  });
}
new IntersectionObserver(function(es){ if (es.some(function(e){return e.isIntersecting})) more() }).observe(document.getElementById("sentinel"));
setInterval(function(){ window.scrollTo(0, document.body.scrollHeight); more() }, 20);
</script></body></html>`
	pg := render(t, p, s.URL+"/feed", body, hostileOpts())
	assert.False(t, pg.Settled)
	assert.Equal(t, SettledDeadline, pg.SettledBy)
	assert.Contains(t, pg.Text, "item 1 a")
	stillWorks(t, p)
}

func TestHostileEndlessLinks(t *testing.T) {
	p := newPool(t, Config{Tabs: 1})
	body := `<html><body><script>
var i = 0;
function add() { for (var k = 0; k < 500; k++) { var a = document.createElement("a"); a.href = "/l/" + (i++); a.textContent = "link " + i; document.body.appendChild(a) } }
add(); add(); add();
setInterval(add, 5);
</script></body></html>`
	opts := hostileOpts()
	// 1500 links before the first paint, more every 5 ms: more than
	// MaxLinks however slowly the machine runs the interval.
	opts.MaxLinks = 1000
	pg := render(t, p, "http://127.0.0.1:9/links", body, opts)
	assert.Len(t, pg.Links, 1000)
	assert.True(t, pg.Truncated.Links)
	assert.Equal(t, "http://127.0.0.1:9/l/0", pg.Links[0].URL)
	stillWorks(t, p)
}

func TestHostileNeverFiresLoad(t *testing.T) {
	p := newPool(t, Config{Tabs: 1})
	s, _ := hangingSite(t)
	// A script in the document that never arrives: the load event never
	// fires (and the parser waits for it).
	body := `<html><body><p>before the script</p><script>document.title = "set early"</script><script src="/hang"></script><p>after</p></body></html>`
	pg := render(t, p, s.URL+"/p", body, hostileOpts())
	assert.False(t, pg.Settled)
	assert.Equal(t, SettledDeadline, pg.SettledBy)
	assert.Equal(t, "set early", pg.Title)
	assert.Contains(t, pg.Text, "before the script")
	stillWorks(t, p)
}

func TestHostileHugeDOM(t *testing.T) {
	p := newPool(t, Config{Tabs: 1})
	// 50 MB of DOM text in 500,000 paragraphs, built by a script.
	build := func(hidden bool) string {
		style := ""
		if hidden {
			style = ` style="display:none"`
		}
		return `<html><body><p>head of the page</p><div id="x"` + style + `></div><script>
var line = "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore ";
var html = [];
for (var i = 0; i < 500000; i++) html.push("<p>" + line + "</p>");
document.getElementById("x").innerHTML = html.join("");
</script></body></html>`
	}
	opts := hostileOpts()
	opts.MaxTextBytes = 1 << 20
	opts.MaxHTMLBytes = 2 << 20

	// Not laid out (display:none): the read is bounded, and deterministic
	// (generous timeouts: building and serialising 50 MB takes seconds on
	// a loaded machine).
	hidden := opts
	hidden.Deadline, hidden.ReadTimeout = time.Minute, time.Minute
	pg := render(t, p, "http://127.0.0.1:9/huge-hidden", build(true), hidden)
	assert.LessOrEqual(t, len(pg.Text), 1<<20)
	assert.Equal(t, 2<<20, len(pg.HTML))
	assert.True(t, pg.Truncated.Text)
	assert.True(t, pg.Truncated.HTML)
	assert.True(t, pg.Truncated.TextBounded, "too many elements for innerText")
	assert.True(t, strings.HasPrefix(pg.Text, "head of the page lorem ipsum"), "starts with %.40q", pg.Text)

	// Visible: laying out 50 MB of text takes the renderer tens of seconds
	// on this machine, during which it answers nothing. The render ends
	// anyway, after Deadline + ReadTimeout at most: with a bounded page if
	// the layout finished, with ErrUnresponsive otherwise.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := p.Render(ctx, "http://127.0.0.1:9/huge", []byte(build(false)), "text/html", opts)
	if err != nil {
		require.ErrorIs(t, err, ErrUnresponsive)
	} else {
		assert.LessOrEqual(t, len(pg.Text), 1<<20)
		assert.LessOrEqual(t, len(pg.HTML), 2<<20)
	}
	stillWorks(t, p)
}

func TestHostileDownloads(t *testing.T) {
	p := newPool(t, Config{Tabs: 1})
	s := newSite(t)
	s.mux.HandleFunc("/file.bin", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="file.bin"`)
		w.Write([]byte("binary"))
	})
	body := fmt.Sprintf(`<html><body><p>downloads</p><script>
var a = document.createElement("a"); a.href = %q; a.download = "x.bin"; a.textContent = "get it"; document.body.appendChild(a); a.click();
var b = document.createElement("a"); b.href = %q; document.body.appendChild(b); b.click();
setTimeout(function(){ location.href = %q }, 50);
var f = document.createElement("iframe"); f.src = %q; document.body.appendChild(f);
</script></body></html>`, s.URL+"/file.bin?a", s.URL+"/file.bin?b", s.URL+"/file.bin?c", s.URL+"/file.bin?d")
	pg := render(t, p, s.URL+"/p", body, hostileOpts())
	assert.Contains(t, pg.Text, "downloads")
	assert.Equal(t, 0, s.hitsOf("/file.bin"), "no download request left the browser")
	assert.Contains(t, linkURLs(pg), s.URL+"/file.bin?a", "a download link is still a link")

	// A page whose own bytes came with Content-Disposition: attachment is
	// rendered like any page (Render gets the bytes; the header is the
	// crawl's business).
	pg = render(t, p, s.URL+"/attached", "<p>attached page</p>", hostileOpts())
	assert.Contains(t, pg.Text, "attached page")
	stillWorks(t, p)
}

func TestHostileBusyScript(t *testing.T) {
	p := newPool(t, Config{Tabs: 1})
	// A page stuck in a loop after writing its text: nothing can run in
	// its renderer until the loop is terminated.
	body := `<html><body><p>stuck page</p><script>setTimeout(function(){ for(;;){} }, 10)</script></body></html>`
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := hostileOpts()
	opts.QuietWindow = time.Second // the loop starts before the page is quiet
	opts.ReadTimeout = 4 * time.Second
	pg, err := p.Render(ctx, "http://127.0.0.1:9/busy", []byte(body), "text/html", opts)
	require.NoError(t, err)
	assert.Contains(t, pg.Text, "stuck page")
	stillWorks(t, p)
}

func TestHostilePagesDoNotExhaustThePool(t *testing.T) {
	p := newPool(t, Config{Tabs: 2})
	s, _ := hangingSite(t)
	bodies := []string{
		`<html><body><script>alert(1); for (;;) { if (Date.now() < 0) break }</script></body></html>`,
		`<html><body><script src="/hang"></script></body></html>`,
		`<html><body><script>setInterval(function(){ document.body.appendChild(document.createElement("a")).href = "/x" + Math.random() }, 1)</script></body></html>`,
		`<html><body><script>setTimeout(function(){ location.href = "/away" }, 1)</script></body></html>`,
	}
	var wg sync.WaitGroup
	var maxOpen int
	var mu sync.Mutex
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			n := p.Stats().TabsOpen
			mu.Lock()
			maxOpen = max(maxOpen, n)
			mu.Unlock()
		}
	}()
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			opts := hostileOpts()
			opts.Deadline = time.Second
			opts.ReadTimeout = 3 * time.Second
			_, _ = p.Render(ctx, fmt.Sprintf("%s/h%d", s.URL, i), []byte(bodies[i%len(bodies)]), "text/html", opts)
		}(i)
	}
	wg.Wait()
	close(stop)
	mu.Lock()
	assert.LessOrEqual(t, maxOpen, 2, "never more tabs than Config.Tabs")
	mu.Unlock()
	stillWorks(t, p)
}
