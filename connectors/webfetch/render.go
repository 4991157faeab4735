package webfetch

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	whatwg "github.com/nlnwa/whatwg-url/url"

	"github.com/connectorhq/connector/crawl"
	"github.com/connectorhq/connector/crawl/browser"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/secret"
)

// Document fields the Web connector adds (docs/connectors/web.md).
const (
	FieldRendered        = "RENDERED"
	FieldRenderSettled   = "RENDER_SETTLED"
	FieldRenderSettledBy = "RENDER_SETTLED_BY"
	FieldRenderError     = "RENDER_ERROR"
	FieldRenderTruncated = "RENDER_TRUNCATED"
	FieldRenderFinalURL  = "RENDER_FINAL_URL"
	FieldClippingMode    = "CLIPPING_MODE"
	FieldClipFallback    = "CLIPPING_FALLBACK"
)

// taskRun renders one task's pages (a crawl.Renderer) and adds what the
// browser found to their documents.
type taskRun struct {
	s    *settings
	pool *browser.Pool
	log  *slog.Logger
	opts browser.RenderOptions
	// jar is the session of the task's login (nil: none); each render
	// is given its cookies as they are then, and what its page set is
	// kept in it.
	jar *sessionJar
	// shape is settings.renderShape (the content of a rendered page).
	shape string
	// start is the task's first start URL, and fetch fetches a page now
	// (httpfetch.TaskStart): sessionEnded. startGated says whether the
	// site sends start to its login page without a session (decided
	// once, by startOnce).
	start      string
	fetch      func(ctx context.Context, jar http.CookieJar, u string) (string, error)
	startOnce  sync.Once
	startGated bool
}

// rendered is what the browser gave for a page (crawl.Page.Rendered).
type rendered struct {
	page *browser.Page
}

// renders reports whether the task renders url's page (when it is HTML).
func (t *taskRun) renders(url string) bool {
	return t.s.renderMatch == nil || t.s.renderMatch.MatchString(url)
}

// pageShape is httpfetch's TaskRun.Shape: how the task makes the
// content of the HTML page at url ("" when it does not render it).
func (t *taskRun) pageShape(url string) string {
	if !t.renders(url) {
		return ""
	}
	return t.shape
}

// Render implements crawl.Renderer: the page's fetched bytes are rendered
// in a tab; title, text (after clipping), metadata, language, canonical
// URL and links are read from the rendered DOM (the documents the page
// navigated to are links too), and the content hash
// (what incremental synchronisation compares) is of the title and the
// text after clipping.
func (t *taskRun) Render(ctx context.Context, p *crawl.Page) ([]string, error) {
	if !t.renders(p.FinalURL) {
		return nil, nil
	}
	// KeepBody: a tab's event goroutine may still be answering a request
	// with the body after Render returns (crawl.Page.KeepBody).
	opts := t.opts
	if t.jar != nil {
		opts.Cookies, opts.ReadCookies = t.jar.browserCookies(), true
	} else {
		opts.Cookies = pageCookies(p)
	}
	pg, err := t.pool.Render(ctx, p.FinalURL, p.KeepBody(), p.Header.Get("Content-Type"), opts)
	if err != nil {
		var se *browser.StartError
		if errors.As(err, &se) || errors.Is(err, browser.ErrNoBrowser) {
			// No page can be rendered: the action ends with the
			// browser's own message.
			return nil, fmt.Errorf("%w: %w", crawl.ErrAbort, err)
		}
		if errors.Is(err, browser.ErrBadSelector) {
			// A setting's selector the browser refuses fails every
			// page alike: the action ends naming it, instead of
			// delivering the whole site unrendered.
			return nil, fmt.Errorf("%w: %w", crawl.ErrAbort, err)
		}
		return nil, err
	}
	if t.jar != nil {
		if err := t.scriptSentToLogin(ctx, p.URL, pg.Navigations); err != nil {
			return nil, err
		}
		t.jar.fromRender(opts.Cookies, pg.Cookies)
	}
	p.Title = pg.Title
	p.Text = pg.Text
	if pg.Clipped != nil {
		p.Text = pg.Clipped.Text
		if pg.Clipped.Mode == browser.ClipCSS && pg.Clipped.Matched == 0 {
			// Delivered with no content: said, so that a misspelt
			// selector (or a redesigned site) is not an index of empty
			// documents without a word.
			t.log.Warn("ClipPageUsingCssSelect matched no element of the page: it is delivered with no content",
				"url", secret.LogURL(p.FinalURL), "select", strings.Join(t.s.clip.Select, ","))
		}
	}
	if pg.Lang != "" {
		p.Lang = pg.Lang
	}
	p.CanonicalURL = pg.Canonical
	p.Meta = metaMap(pg.Meta)
	p.SetHash(contentHash(p.Title, p.Text))
	p.Rendered = &rendered{page: pg}
	if !pg.Settled {
		t.log.Debug("page read at its deadline, not settled", "url", secret.LogURL(p.FinalURL), "deadline", t.opts.Deadline)
	}
	links := make([]string, 0, len(pg.Links)+len(pg.Navigations))
	for _, l := range pg.Links {
		links = append(links, l.URL)
	}
	// Where the page sent the browser (a script's redirect, a meta
	// refresh), which a person would have seen: followed as links.
	links = append(links, pg.Navigations...)
	return links, nil
}

// Redirect implements crawl.RedirectWatcher: a page of the task that the
// site sends to its login page (at any hop of its redirects, before the
// crawl's rules: the login page may be on another host, a single sign-on
// service, excluded by the spider regexes, or fetched already) when the
// session ended (expired, logged out, replaced by another login) stops
// the crawl. Every page after it would be the login form, or dropped, and
// every page not reached would be deleted: the crawl stops, nothing is
// deleted, and the next run logs in again.
//
// When the task's first start URL cannot tell (it is served without a
// session: sessionEnded; or the task has none, only SitemapUrl), the error
// also says that the page may be one the account may not see, and what to
// do: every run would end there.
func (t *taskRun) Redirect(ctx context.Context, page, to string) error {
	if t.jar == nil || !loginPage(to, t.s.login.url) {
		return nil
	}
	ended, checked := t.sessionEnded(ctx)
	if !ended {
		return nil
	}
	unsure := ""
	switch {
	case checked:
	case t.start == "":
		// SitemapUrl only: there is no start URL to check with.
		unsure = "; or it is a page the account may not see: the task has no start URL (Url) to tell, only SitemapUrl; exclude that page with the spider regexes, or add a start URL behind the login"
	default:
		unsure = "; or it is a page the account may not see: the first start URL is served without a session and cannot tell; exclude that page with the spider regexes, or start at a page behind the login"
	}
	return fmt.Errorf("%w: the session ended: %s was redirected to the login page (LoginUrl); nothing is deleted, the next run logs in again%s",
		crawl.ErrAbort, secret.LogURL(page), unsure)
}

// scriptSentToLogin is Redirect for a page whose script sent the browser
// to the login page (navigated: a single-page application whose data
// requests the site answers 401 once the session ended): the page as
// rendered is the application's empty shell, its links are gone, and the
// pages after it would be deleted.
func (t *taskRun) scriptSentToLogin(ctx context.Context, page string, navigated []string) error {
	for _, n := range navigated {
		if loginPage(n, t.s.login.url) {
			return t.Redirect(ctx, page, n)
		}
	}
	return nil
}

// sessionEnded reports whether the session of the task's login has ended,
// a page having been sent to the login page. A site also sends there, with
// the session alive, a page the account logged in may not see (Django's
// permission_required, Spring Security's entry point, a members' area of
// a higher level): such a page must not end every run of the task. The
// task's first start URL tells them apart when the site sends it to the
// login page without a session: fetched again with the session, sent to
// the login page too (or not fetched), the session ended; served, it is
// alive, and the page is one the account may not see. A start URL served
// without a session tells nothing: the session is taken to have ended, as
// for any page sent to the login page (nothing is deleted), and checked
// is false: nothing was checked.
func (t *taskRun) sessionEnded(ctx context.Context) (ended, checked bool) {
	if t.fetch == nil || t.start == "" {
		return true, false
	}
	t.startOnce.Do(func() {
		final, err := t.fetch(ctx, nil, t.start)
		// A login page on another host is a redirect off the task's
		// sites, which the fetch does not follow.
		var off *crawl.OffSiteError
		t.startGated = (err == nil && loginPage(final, t.s.login.url)) ||
			(errors.As(err, &off) && loginPage(off.To, t.s.login.url))
	})
	if !t.startGated {
		return true, false
	}
	final, err := t.fetch(ctx, t.jar, t.start)
	return err != nil || loginPage(final, t.s.login.url), true
}

// loginPage reports whether u is the login page at login (LoginUrl):
// the same scheme, host, port and path, and the parameters of LoginUrl's
// query with the same values (on a site whose login page shares its path
// with other pages, they tell it apart: index.php?title=Special:UserLogin,
// doku.php?do=login), but for a return address (returnAddress), which may
// differ. Other parameters ("?expired=1", a return address LoginUrl does
// not have) and the fragment may be anything. Both are read as the crawl
// and the browser write URLs (WHATWG: host in lower case and IDNA, default
// port removed, dot segments resolved), so that LoginUrl may be written
// otherwise ("https://sso.example.com:443/login").
func loginPage(u, login string) bool {
	a, err1 := whatwg.Parse(u)
	b, err2 := whatwg.Parse(login)
	if err1 != nil || err2 != nil {
		return false
	}
	path := func(x *whatwg.Url) string { return strings.TrimSuffix(x.Pathname(), "/") }
	if a.Protocol() != b.Protocol() || a.Hostname() != b.Hostname() || a.Port() != b.Port() || path(a) != path(b) {
		return false
	}
	want, _ := url.ParseQuery(strings.TrimPrefix(b.Search(), "?"))
	var got url.Values
	for name, vs := range want {
		if returnAddress(name, vs[0]) {
			continue
		}
		if got == nil {
			got, _ = url.ParseQuery(strings.TrimPrefix(a.Search(), "?"))
		}
		if !slices.Contains(got[name], vs[0]) {
			return false
		}
	}
	return true
}

// returnAddress reports whether a query parameter of a login page is the
// address to return to once logged in, which the site sets to each page
// it sends there: its value is a path or a URL ("/admin/", "%2F",
// "https://..."), or it has the name of one (Django's next, MediaWiki's
// returnto, WordPress's redirect_to, Drupal's destination, Joomla's
// return, ...).
func returnAddress(name, value string) bool {
	if strings.HasPrefix(value, "/") || strings.Contains(value, "://") {
		return true
	}
	n := strings.ToLower(name)
	switch {
	case strings.HasPrefix(n, "return"), strings.HasPrefix(n, "redirect"):
		return true
	}
	switch n {
	case "next", "destination", "continue", "goto", "came_from", "camefrom", "service", "referer", "referrer":
		return true
	}
	return false
}

// pageCookies are the cookies the page's response set (Set-Cookie),
// which a browser that loaded the page would have while it runs, for a
// task without a session (a session's jar has them already): those the
// crawl's cookie rules refuse (another domain, Secure over http) are
// left out.
func pageCookies(p *crawl.Page) []*http.Cookie {
	lines := p.Header.Values("Set-Cookie")
	if len(lines) == 0 {
		return nil
	}
	u, err := url.Parse(p.FinalURL)
	if err != nil {
		return nil
	}
	cookies := make([]*http.Cookie, 0, len(lines))
	for _, l := range lines {
		if c, err := http.ParseSetCookie(l); err == nil {
			cookies = append(cookies, c)
		}
	}
	j, err := newSessionJar(nil)
	if err != nil {
		return nil
	}
	j.SetCookies(u, cookies)
	return j.browserCookies()
}

// contentHash is the hash incremental synchronisation compares: the
// title and the text after clipping.
func contentHash(title, text string) [32]byte {
	h := sha256.New()
	h.Write([]byte(title))
	h.Write([]byte{0})
	h.Write([]byte(text))
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// metaMap turns the rendered <meta> elements into the crawl's form: by
// lower-case name (http-equiv without its prefix), values in document
// order; charset is left out.
func metaMap(ms []browser.Meta) map[string][]string {
	if len(ms) == 0 {
		return nil
	}
	out := make(map[string][]string, len(ms))
	for _, m := range ms {
		name := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(m.Name, "http-equiv:")))
		if name == "" || name == "charset" {
			continue
		}
		out[name] = append(out[name], m.Content)
	}
	return out
}

// document adds the rendering's fields to a page's document.
func (t *taskRun) document(p *crawl.Page, d *ingest.Document) {
	add := func(name, value string) {
		if value != "" {
			d.Fields = append(d.Fields, ingest.Field{Name: name, Value: value})
		}
	}
	if p.RenderErr != nil {
		add(FieldRenderError, p.RenderErr.Error())
		return
	}
	r, ok := p.Rendered.(*rendered)
	if !ok {
		return
	}
	pg := r.page
	add(FieldRendered, "true")
	add(FieldRenderSettled, strconv.FormatBool(pg.Settled))
	add(FieldRenderSettledBy, pg.SettledBy)
	if pg.FinalURL != "" && pg.FinalURL != p.FinalURL {
		add(FieldRenderFinalURL, pg.FinalURL)
	}
	var cut []string
	for _, c := range []struct {
		name string
		on   bool
	}{{"text", pg.Truncated.Text || pg.Truncated.TextBounded}, {"html", pg.Truncated.HTML}, {"links", pg.Truncated.Links}, {"meta", pg.Truncated.Meta}} {
		if c.on {
			cut = append(cut, c.name)
		}
	}
	if pg.Clipped != nil && pg.Clipped.Truncated {
		cut = append(cut, "clipped")
	}
	add(FieldRenderTruncated, strings.Join(cut, ","))
	if pg.Clipped != nil {
		add(FieldClippingMode, string(pg.Clipped.Mode))
		if pg.Clipped.Fallback {
			add(FieldClipFallback, "true")
		}
	}
}

// view is what View shows of a rendered page: the rendered HTML.
func (t *taskRun) view(p *crawl.Page) ([]byte, string, bool) {
	r, ok := p.Rendered.(*rendered)
	if !ok {
		return nil, "", false
	}
	return []byte(r.page.HTML), "text/html; charset=utf-8", true
}
