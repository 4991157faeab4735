package browser

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scriptPage is a page whose HTML as served has no <a> and almost no
// text: its script sets the title, writes the text, creates two links,
// then fetches a JSON list and creates one link per entry.
const scriptPage = `<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>static title</title>
<meta name="description" content="A page built by scripts">
<meta property="og:type" content="article">
<link rel="canonical" href="/canonical-page">
</head><body><div id="app"></div>
<script>
document.title = "Rendered page";
var app = document.getElementById("app");
var p = document.createElement("p");
p.textContent = "Text written by a script.";
app.appendChild(p);
var hidden = document.createElement("p");
hidden.style.display = "none";
hidden.textContent = "invisible words";
app.appendChild(hidden);
function link(href, text) {
  var a = document.createElement("a");
  a.href = href; a.textContent = text;
  app.appendChild(a);
}
link("/one", "First   link");
link("two?x=1", "Second link");
fetch("/data.json").then(function(r){return r.json()}).then(function(list){
  list.forEach(function(e){ link(e.href, e.text) });
  document.body.setAttribute("data-ready", "1");
});
</script></body></html>`

func scriptSite(t testing.TB) *site {
	s := newSite(t)
	s.handle("/dir/page", "text/html", scriptPage)
	s.handle("/data.json", "application/json", `[{"href":"/three","text":"Third"},{"href":"https://other.example/four","text":"Fourth"}]`)
	return s
}

func TestRenderReadsTheRenderedDOM(t *testing.T) {
	p := newPool(t, Config{})
	s := scriptSite(t)
	pg := render(t, p, s.URL+"/dir/page#frag", scriptPage, RenderOptions{})

	assert.Equal(t, "Rendered page", pg.Title)
	assert.Contains(t, pg.Text, "Text written by a script.")
	assert.NotContains(t, pg.Text, "invisible words", "innerText leaves hidden elements out")
	assert.Equal(t, "fr", pg.Lang)
	assert.Equal(t, s.URL+"/canonical-page", pg.Canonical)
	assert.Contains(t, pg.Meta, Meta{Name: "description", Content: "A page built by scripts"})
	assert.Contains(t, pg.Meta, Meta{Name: "og:type", Content: "article"})
	assert.Contains(t, pg.Meta, Meta{Name: "charset", Content: "utf-8"})
	assert.Equal(t, []Link{
		{URL: s.URL + "/one", Text: "First link", Tag: "a"},
		{URL: s.URL + "/dir/two?x=1", Text: "Second link", Tag: "a"},
		{URL: s.URL + "/three", Text: "Third", Tag: "a"},
		{URL: "https://other.example/four", Text: "Fourth", Tag: "a"},
	}, pg.Links)
	assert.Contains(t, pg.HTML, `<!DOCTYPE html>`)
	assert.Contains(t, pg.HTML, `data-ready="1"`)
	assert.True(t, pg.Settled)
	assert.Equal(t, SettledQuiet, pg.SettledBy)
	assert.Equal(t, 1, pg.Attempts)
	assert.Equal(t, s.URL+"/dir/page#frag", pg.URL)

	// Fetched once: the browser rendered the given bytes and never asked
	// the server for the page; the page's own XHR went to the server.
	assert.True(t, pg.MainFromBody)
	assert.Equal(t, 0, s.hitsOf("/dir/page"), "the browser must not fetch the main document")
	assert.Equal(t, 1, s.hitsOf("/data.json"))
	assert.Equal(t, 1, pg.Requests.Allowed)
}

func TestRenderReusesTabsAndRecyclesThem(t *testing.T) {
	p := newPool(t, Config{Tabs: 1, TabMaxPages: 3})
	s := scriptSite(t)
	for i := 0; i < 7; i++ {
		pg := render(t, p, fmt.Sprintf("%s/dir/page?n=%d", s.URL, i), scriptPage, RenderOptions{})
		require.Len(t, pg.Links, 4)
	}
	st := p.Stats()
	assert.Equal(t, 3, st.TabsOpened, "7 renders, 3 per tab")
	assert.Equal(t, uint64(7), st.Rendered)
	assert.LessOrEqual(t, st.TabsOpen, 1)
	assert.Equal(t, 0, s.hitsOf("/dir/page"))
}

func TestRenderWaitSelectorAndDeadline(t *testing.T) {
	p := newPool(t, Config{})
	s := newSite(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	// A request that never ends keeps the network busy.
	s.mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	body := `<html><body><script>
fetch("/hang");
setTimeout(function(){ var d = document.createElement("div"); d.id = "ready"; d.textContent = "ready now"; document.body.appendChild(d) }, 200);
</script></body></html>`
	pg := render(t, p, s.URL+"/p", body, RenderOptions{WaitSelector: "#ready", Deadline: time.Minute})
	assert.True(t, pg.Settled)
	assert.Equal(t, SettledSelector, pg.SettledBy)
	assert.Contains(t, pg.Text, "ready now")

	pg = render(t, p, s.URL+"/p", body, RenderOptions{Deadline: 3 * time.Second})
	assert.False(t, pg.Settled, "the network never goes quiet")
	assert.Equal(t, SettledDeadline, pg.SettledBy)
	assert.Contains(t, pg.Text, "ready now", "read at the deadline anyway")

	_, err := p.Render(context.Background(), s.URL+"/p", []byte(body), "text/html", RenderOptions{WaitSelector: "div[", Deadline: time.Minute})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a valid CSS selector")
}

func TestRenderSubresourcePolicy(t *testing.T) {
	p := newPool(t, Config{})
	s := newSite(t)
	s.handle("/ok.js", "text/javascript", `document.body.appendChild(document.createTextNode(" script-ran "));`)
	s.handle("/ads/ad.js", "text/javascript", `document.body.appendChild(document.createTextNode(" ad-ran "));`)
	s.handle("/pic.png", "image/png", "x")
	s.handle("/frame", "text/html", "<p>framed</p>")
	body := `<html><body><p>start</p>
<script src="/ok.js"></script>
<script src="/ads/ad.js"></script>
<img src="/pic.png">
<img src="ftp://127.0.0.1/x.png">
<iframe src="/frame"></iframe>
</body></html>`
	pg := render(t, p, s.URL+"/p", body, RenderOptions{Subresources: Subresources{CantHave: regexp.MustCompile(`/ads/`)}})
	assert.Contains(t, pg.Text, "script-ran")
	assert.NotContains(t, pg.Text, "ad-ran")
	assert.Equal(t, 1, s.hitsOf("/ok.js"))
	assert.Equal(t, 0, s.hitsOf("/ads/ad.js"), "CantHave blocks")
	assert.Equal(t, 0, s.hitsOf("/pic.png"), "images are not in DefaultAllowTypes")
	assert.Equal(t, 0, s.hitsOf("/frame"), "sub-frames are not in DefaultAllowTypes")
	assert.Equal(t, 1, pg.Requests.Allowed)
	assert.GreaterOrEqual(t, pg.Requests.Blocked, 3)
	assert.Contains(t, linkURLs(pg), s.URL+"/frame", "the iframe is still a link")

	// Everything allowed: the image and the frame load.
	pg = render(t, p, s.URL+"/p", body, RenderOptions{Subresources: Subresources{
		AllowTypes: []ResourceType{ResourceScript, ResourceImage, ResourceDocument},
	}})
	assert.Contains(t, pg.Text, "ad-ran")
	assert.Equal(t, 1, s.hitsOf("/pic.png"))
	assert.Equal(t, 1, s.hitsOf("/frame"))

	// Nothing allowed.
	pg = render(t, p, s.URL+"/p", body, RenderOptions{Subresources: Subresources{AllowTypes: []ResourceType{}}})
	assert.NotContains(t, pg.Text, "script-ran")
	assert.Equal(t, 0, pg.Requests.Allowed)
	assert.Equal(t, 0, s.hitsOf("/dir/p"))
}

func TestRenderCookiesAndUserAgent(t *testing.T) {
	p := newPool(t, Config{Tabs: 1})
	s := newSite(t)
	s.mux.HandleFunc("/me", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("session")
		v := "none"
		if err == nil {
			v = c.Value
		}
		fmt.Fprintf(w, "session=%s ua=%s", v, r.UserAgent())
	})
	body := `<html><body><script>
document.cookie = "left=behind; path=/";
fetch("/me").then(r => r.text()).then(t => { document.body.textContent = t });
</script></body></html>`
	pg := render(t, p, s.URL+"/p", body, RenderOptions{
		Cookies:   []*http.Cookie{{Name: "session", Value: "abc123"}},
		UserAgent: "ConnectorTest/1.0",
	})
	assert.Equal(t, "session=abc123 ua=ConnectorTest/1.0", strings.TrimSpace(pg.Text))
	// Same tab, no cookies: the jar was emptied (the script's cookie too),
	// and the user agent is the browser's own again.
	pg = render(t, p, s.URL+"/p", body, RenderOptions{})
	assert.Contains(t, pg.Text, "session=none")
	assert.Contains(t, pg.Text, "HeadlessChrome")
	assert.Equal(t, 1, p.Stats().TabsOpened)
}

func TestRenderRejectsBadInput(t *testing.T) {
	p := newPool(t, Config{})
	_, err := p.Render(context.Background(), "ftp://x/y", nil, "", RenderOptions{})
	require.ErrorContains(t, err, "not an absolute http(s) URL")
	_, err = p.Render(context.Background(), "/relative", nil, "", RenderOptions{})
	require.ErrorContains(t, err, "not an absolute http(s) URL")
	_, err = p.Render(context.Background(), "http://x/", nil, "", RenderOptions{Clip: Clipping{Mode: ClipCSS}})
	require.ErrorContains(t, err, "needs ClipPageUsingCssSelect or ClipPageUsingCssUnselect")
	assert.Equal(t, 0, p.Stats().Starts, "bad input starts no browser")

	_, err = ParseClipMode("smartprint")
	require.ErrorContains(t, err, "SMARTPRINT is not supported")
	m, err := ParseClipMode("readability")
	require.NoError(t, err)
	assert.Equal(t, ClipReadability, m)
	_, err = ParseClipMode("other")
	require.Error(t, err)
}

func TestMissingBrowserIsAClearError(t *testing.T) {
	_, err := New(Config{Exec: "/nonexistent/chromium"})
	require.ErrorIs(t, err, ErrNoBrowser)
	assert.Contains(t, err.Error(), "chromium-headless-shell")
}
