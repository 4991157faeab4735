package browser

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/storage"
)

//go:embed read.js
var readJS string

//go:embed clip.js
var clipJS string

// maxNodes bounds the element walks of read.js (links, and the fallback
// text walk) and is the element count above which innerText (which lays
// the page out) is replaced by the bounded walk.
const maxNodes = 300_000

// How a page settled (Page.SettledBy).
const (
	SettledQuiet    = "quiet"    // load event fired and the network was quiet for QuietWindow
	SettledSelector = "selector" // WaitSelector matched
	SettledDeadline = "deadline" // neither before Deadline: read as it was (Settled false)
)

// Meta is one <meta> element: Name is its name, property or itemprop
// attribute, "http-equiv:<value>" for http-equiv, or "charset".
type Meta struct {
	Name, Content string
}

// Link is one link of the rendered DOM.
type Link struct {
	URL      string // absolute, as the browser resolved it (fragment kept)
	Text     string // anchor text (area: alt), whitespace collapsed, ≤ 1000 bytes
	Tag      string // a, area, iframe or frame
	NoFollow bool   // rel="nofollow"
}

// Truncation says which parts of a Page were cut at their limits.
type Truncation struct {
	Text, HTML, Links, Meta bool
	// TextBounded: the document was too large for innerText; Text comes
	// from a bounded walk of its text nodes (no layout: text hidden by CSS
	// is included, blocks are joined by spaces).
	TextBounded bool
}

// Requests counts what the render's request policy did.
type Requests struct {
	// Allowed and Blocked count subresource requests.
	Allowed, Blocked int
	// NavigationsBlocked counts attempts of the page to load another
	// document in its main frame (location changes, meta refresh, form
	// submissions, download links).
	NavigationsBlocked int
	// Denied counts subresources refused because their URL names a host
	// or address Config.Deny denies (counted in Blocked too); those whose
	// name resolves to a denied address are refused by the proxy
	// (Stats.ProxyDenied).
	Denied int
}

// Clipped is the content after clipping (Page.Clipped).
type Clipped struct {
	Mode       ClipMode
	Text, HTML string
	// Title is the article title (READABILITY only).
	Title string
	// Matched and Removed count the elements kept and removed
	// (CSSCLIPPING only).
	Matched, Removed int
	// Fallback: READABILITY found no article; Text and HTML are the whole
	// page's.
	Fallback  bool
	Truncated bool
}

// Page is a rendered page, read from the DOM after the wait.
type Page struct {
	// URL is the page's URL as given to Render; FinalURL is location.href
	// when it was read (it differs when the page used history.pushState or
	// changed its fragment).
	URL, FinalURL string
	Title         string
	// Text is the visible text (document.body.innerText).
	Text string
	// HTML is the serialised DOM (doctype + documentElement.outerHTML).
	HTML      string
	Lang      string // <html lang>, else <meta http-equiv=content-language>
	Canonical string // <link rel=canonical> href, absolute
	Meta      []Meta
	Links     []Link
	// Navigations are the documents the page tried to load in its main
	// frame, which the render kept it from (a script's location change,
	// a meta refresh, a GET form it submitted, a download it started):
	// absolute http(s) URLs as the browser requested them, in order,
	// each once, not the page's own, at most 20. A person's browser would
	// have gone there: a crawl follows them as links.
	Navigations []string
	// Clipped is the content after clipping; nil when Clip.Mode is none.
	Clipped *Clipped
	// Settled is false when the page was read at its deadline, still busy
	// (loading, network active, or WaitSelector absent); SettledBy says
	// which rule ended the wait.
	Settled   bool
	SettledBy string
	Truncated Truncation
	// Elements is the number of elements in the document when read (up to
	// the scan bound).
	Elements int
	Requests Requests
	// Dialogs counts the alert/confirm/prompt/beforeunload dialogs
	// dismissed.
	Dialogs int
	// MainFromBody is true: the main document was the bytes given to Render
	// (the browser did not request it). Present so that callers and
	// benchmarks can check the single-fetch guarantee.
	MainFromBody bool
	// Attempts is 2 when the browser or the tab crashed, or a reused tab
	// was unresponsive, and the render was retried.
	Attempts int
	// Elapsed is the time Render took, waits for a tab included.
	Elapsed time.Duration
	// Cookies, with RenderOptions.ReadCookies, are the tab's cookies
	// when the page was read: those given, as the page's scripts and
	// requests changed them (Domain is the host of a host-only cookie,
	// "." + the domain of a domain cookie).
	Cookies []*http.Cookie
}

// Render renders body (the already fetched bytes of url, with their
// Content-Type) in a tab and reads the result. The browser does not
// request url itself: its navigation request is answered with body. See
// the package comment for the wait, the limits and the request policy.
//
// Cancelling ctx ends the render at once: its tab is closed (in the
// background) and Render returns ctx's error. When the browser or the tab
// crashes, the render is retried once (a new browser or tab); so is a
// render that finds a reused tab unresponsive (ErrUnresponsive: the
// previous page may have left a script running).
func (p *Pool) Render(ctx context.Context, rawURL string, body []byte, contentType string, opts RenderOptions) (*Page, error) {
	start := time.Now()
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("browser: cannot render %q: not an absolute http(s) URL", rawURL)
	}
	nav := *u
	nav.Fragment, nav.RawFragment = "", ""
	if contentType == "" {
		contentType = "text/html"
	}
	for attempt := 1; ; attempt++ {
		pg, err := p.renderOnce(ctx, nav.String(), body, contentType, opts)
		if err == nil {
			pg.URL = rawURL
			pg.Attempts = attempt
			pg.Elapsed = time.Since(start)
			p.rendered.Add(1)
			return pg, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if attempt == 1 && (errors.Is(err, ErrBrowserLost) || errors.Is(err, ErrTabCrashed) || errors.Is(err, errReusedTabBusy)) {
			p.retried.Add(1)
			p.log.Warn("browser: render failed; retrying once", "url", redactURL(rawURL), "err", err)
			continue
		}
		return nil, err
	}
}

// renderOnce is one attempt of Render, in one tab.
func (p *Pool) renderOnce(ctx context.Context, navURL string, body []byte, contentType string, opts RenderOptions) (_ *Page, err error) {
	t, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	reuse := false
	reused := t.pages > 0 // the tab rendered a page before: its scripts may still run
	var scope context.Context
	if opts.TabsEndWithContext {
		scope = ctx
	}
	defer func() { p.release(t, reuse, scope) }()
	st := newRenderState(navURL)
	st.body = body
	st.contentType = contentType
	st.policy = newPolicy(opts.Subresources)
	st.setAuth(opts.BasicAuth)
	t.state.Store(st)
	defer t.state.Store(nil)
	defer func() {
		err = t.cause(ctx, err)
		if reused && errors.Is(err, ErrUnresponsive) {
			err = fmt.Errorf("%w: %w", errReusedTabBusy, err)
		}
	}()

	// Deadline starts once the tab is ready: preparing it has its own
	// bound, past which the browser is hung.
	prepCtx, prepCancel := context.WithTimeout(ctx, p.cfg.AnswerTimeout)
	err = t.prepare(prepCtx, navURL, opts.Cookies, opts.UserAgent, !st.policy.types[ResourceWebSocket])
	prepCancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(prepCtx.Err(), context.DeadlineExceeded) {
			return nil, t.gen.hung("preparing a tab")
		}
		return nil, err
	}
	pageCtx, cancel := context.WithTimeout(ctx, opts.Deadline)
	defer cancel()
	nav, err := cdp.Call(pageCtx, t.target, page.Navigate, page.NavigateParams{URL: navURL})
	if err != nil {
		return nil, fmt.Errorf("browser: navigating to %s: %w", safeURL(navURL), err)
	}
	if nav.ErrorText != "" {
		return nil, fmt.Errorf("browser: loading %s: %s", safeURL(navURL), nav.ErrorText)
	}
	settledBy, err := t.wait(ctx, pageCtx, st, opts)
	if err != nil {
		return nil, err
	}
	readCtx, rcancel := context.WithTimeout(ctx, opts.ReadTimeout)
	defer rcancel()
	if settledBy == SettledDeadline {
		_, _ = cdp.Call(readCtx, t.target, page.StopLoading, cdp.Empty{})
	}
	pg, err := t.read(readCtx, st, opts)
	if err != nil {
		return nil, err
	}
	if opts.ReadCookies {
		res, err := cdp.Call(readCtx, t.gen.browser, storage.GetCookies, storage.GetCookiesParams{BrowserContextID: t.bctx})
		if err != nil {
			return nil, fmt.Errorf("browser: reading the page's cookies: %w", err)
		}
		pg.Cookies = make([]*http.Cookie, 0, len(res.Cookies))
		for _, c := range res.Cookies {
			pg.Cookies = append(pg.Cookies, httpCookie(c))
		}
	}
	pg.Settled = settledBy != SettledDeadline
	pg.SettledBy = settledBy
	st.mu.Lock()
	pg.Requests = Requests{Allowed: st.allowed, Blocked: st.blocked, NavigationsBlocked: st.navBlocked, Denied: st.denied}
	pg.Dialogs = st.dialogs
	pg.MainFromBody = st.mainServed
	pg.Navigations = slices.Clone(st.navigations)
	st.mu.Unlock()
	if opts.Clip.Mode != ClipNone {
		if pg.Clipped, err = t.clip(readCtx, st, pg, opts); err != nil {
			return nil, err
		}
	}
	// A page that never settled may still be running scripts: its tab is
	// not reused. Nor is a tab that gave credentials: its HTTP auth cache
	// would send them with another render's requests.
	reuse = pg.Settled && !st.endCredentials()
	return pg, nil
}

// cause turns the error of a failed step into what happened: the caller's
// cancellation, the browser's death, the tab's crash.
func (t *tab) cause(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case t.gen.dead():
		if errors.Is(err, ErrBrowserLost) {
			return err
		}
		return fmt.Errorf("%w (%v)", ErrBrowserLost, err)
	case t.isCrashed():
		if errors.Is(err, ErrTabCrashed) {
			return err
		}
		return fmt.Errorf("%w (%v)", ErrTabCrashed, err)
	}
	return err
}

func (t *tab) isCrashed() bool {
	select {
	case <-t.crashed:
		return true
	default:
		return false
	}
}

// prepare empties the tab's cookie jar, sets cookies, applies the user
// agent, and keeps the frames of the page from opening WebSockets when
// noWebSockets (frameNoWebSocketJS).
func (t *tab) prepare(ctx context.Context, pageURL string, cookies []*http.Cookie, ua string, noWebSockets bool) error {
	if _, err := cdp.Call(ctx, t.gen.browser, storage.ClearCookies, storage.ClearCookiesParams{BrowserContextID: t.bctx}); err != nil {
		return fmt.Errorf("browser: clearing cookies: %w", err)
	}
	if len(cookies) > 0 {
		params := make([]*network.CookieParam, 0, len(cookies))
		for _, c := range cookies {
			params = append(params, cookieParam(c, pageURL))
		}
		if _, err := cdp.Call(ctx, t.gen.browser, storage.SetCookies, storage.SetCookiesParams{Cookies: params, BrowserContextID: t.bctx}); err != nil {
			return fmt.Errorf("browser: setting %d cookies: %w", len(cookies), err)
		}
	}
	if ua != t.ua {
		want := ua
		if want == "" {
			want = t.gen.userAgent
		}
		if _, err := cdp.Call(ctx, t.target, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: want}); err != nil {
			return fmt.Errorf("browser: setting the user agent: %w", err)
		}
		t.ua = ua
	}
	if noWebSockets != (t.wsScript != "") {
		if noWebSockets {
			r, err := cdp.Call(ctx, t.target, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: frameNoWebSocketJS})
			if err != nil {
				return fmt.Errorf("browser: keeping frames from WebSockets: %w", err)
			}
			t.wsScript = r.Identifier
		} else {
			if _, err := cdp.Call(ctx, t.target, page.RemoveScriptToEvaluateOnNewDocument, page.RemoveScriptToEvaluateOnNewDocumentParams{Identifier: t.wsScript}); err != nil {
				return fmt.Errorf("browser: letting frames open WebSockets: %w", err)
			}
			t.wsScript = ""
		}
	}
	return nil
}

// frameNoWebSocketJS runs in every frame's document before its scripts,
// when the render does not allow WebSockets: a frame whose document
// comes from the network has a policy of its own (Chromium does not take
// a policy added to a navigation's response headers by the DevTools
// protocol), so its WebSocket is replaced by one that fails as a refused
// connection does (error, then close, after the constructor returns).
// The main document needs none: its policy is noWebSocketsCSP.
const frameNoWebSocketJS = `(function () {
  if (window === window.top || typeof window.WebSocket === "undefined") return;
  const WS = class WebSocket extends EventTarget {
    constructor(url) {
      super();
      this.url = String(url); this.readyState = 3; this.protocol = ""; this.extensions = "";
      this.bufferedAmount = 0; this.binaryType = "blob";
      this.onopen = null; this.onmessage = null; this.onerror = null; this.onclose = null;
      setTimeout(() => {
        const e = new Event("error");
        if (typeof this.onerror === "function") this.onerror(e);
        this.dispatchEvent(e);
        const c = new CloseEvent("close", { code: 1006, wasClean: false });
        if (typeof this.onclose === "function") this.onclose(c);
        this.dispatchEvent(c);
      }, 0);
    }
    send() { throw new DOMException("WebSockets are not loaded", "InvalidStateError"); }
    close() {}
  };
  Object.assign(WS, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  Object.defineProperty(window, "WebSocket", { value: WS, writable: true, configurable: true });
})()`

func cookieParam(c *http.Cookie, pageURL string) *network.CookieParam {
	p := &network.CookieParam{
		Name: c.Name, Value: c.Value, Path: c.Path, Secure: c.Secure, HTTPOnly: c.HttpOnly,
	}
	if c.Domain != "" {
		p.Domain = c.Domain
	} else {
		p.URL = pageURL // host-only cookie of the page's host
	}
	if p.Path == "" && p.URL == "" {
		p.Path = "/"
	}
	if !c.Expires.IsZero() {
		p.Expires = cdp.TimeSinceEpoch(float64(c.Expires.UnixNano()) / 1e9)
	}
	switch c.SameSite {
	case http.SameSiteLaxMode:
		p.SameSite = network.CookieSameSiteLax
	case http.SameSiteStrictMode:
		p.SameSite = network.CookieSameSiteStrict
	case http.SameSiteNoneMode:
		p.SameSite = network.CookieSameSiteNone
	}
	return p
}

// wait returns when the page settled (SettledQuiet, SettledSelector) or at
// pageCtx's deadline (SettledDeadline); with an error when ctx ends, the
// tab crashes or the browser dies.
func (t *tab) wait(ctx, pageCtx context.Context, st *renderState, opts RenderOptions) (string, error) {
	if opts.WaitSelector != "" {
		return t.waitSelector(ctx, pageCtx, st, opts)
	}
	timer := time.NewTimer(opts.QuietWindow)
	defer timer.Stop()
	for {
		q, loaded := st.quietFor(time.Now())
		if loaded && q >= opts.QuietWindow {
			return SettledQuiet, nil
		}
		next := opts.QuietWindow - q
		if !loaded || q == 0 {
			next = opts.QuietWindow // a change wakes the loop earlier
		}
		timer.Reset(next)
		select {
		case <-st.changed:
		case <-timer.C:
		case <-pageCtx.Done():
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			return SettledDeadline, nil
		case <-t.crashed:
			return "", ErrTabCrashed
		case <-t.ctx.Done():
			return "", t.goneErr()
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// waitSelectorJS resolves true as soon as the selector matches (checked at
// once, on every DOM mutation, and every 100 ms), or "invalid".
const waitSelectorJS = `(function (s) {
  return new Promise(function (resolve) {
    function found() {
      try { return document.querySelector(s) !== null } catch (e) { resolve("invalid"); return true }
    }
    if (found()) { resolve(true); return }
    var iv, mo = new MutationObserver(function () { if (found()) { mo.disconnect(); clearInterval(iv); resolve(true) } });
    mo.observe(document, { childList: true, subtree: true, attributes: true });
    iv = setInterval(function () { if (found()) { mo.disconnect(); clearInterval(iv); resolve(true) } }, 100);
  });
})`

// waitSelector waits in the page (a promise in the isolated world) for
// opts.WaitSelector.
func (t *tab) waitSelector(ctx, pageCtx context.Context, st *renderState, opts RenderOptions) (string, error) {
	sel, _ := json.Marshal(opts.WaitSelector)
	expr := waitSelectorJS + "(" + string(sel) + ")"
	wctx, cancel := context.WithCancel(pageCtx)
	defer cancel()
	type result struct {
		v   any
		err error
	}
	res := make(chan result, 1)
	go func() {
		var v any
		for {
			err := t.evalAwait(wctx, st, expr, &v)
			// A document replaced under the promise (document.open)
			// drops it: wait again, in the new document.
			if err != nil && wctx.Err() == nil && !t.broken() && strings.Contains(err.Error(), "context") {
				st.mu.Lock()
				st.world = 0
				st.mu.Unlock()
				continue
			}
			res <- result{v, err}
			return
		}
	}()
	stop := func() { cancel(); <-res }
	select {
	case r := <-res:
		switch {
		case r.err == nil && r.v == true:
			return SettledSelector, nil
		case r.err == nil && r.v == "invalid":
			return "", &selectorError{fmt.Sprintf("browser: WaitSelector %q is not a valid CSS selector", opts.WaitSelector)}
		case ctx.Err() != nil:
			return "", ctx.Err()
		case pageCtx.Err() != nil && !t.broken() && !t.gen.dead():
			return SettledDeadline, nil
		case r.err != nil:
			return "", r.err
		}
		return "", fmt.Errorf("browser: waiting for %q: unexpected answer %v", opts.WaitSelector, r.v)
	case <-pageCtx.Done():
		stop()
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return SettledDeadline, nil
	case <-t.crashed:
		stop()
		return "", ErrTabCrashed
	case <-t.ctx.Done():
		stop()
		return "", t.goneErr()
	}
}

// goneErr classifies the end of the tab's context during a render.
func (t *tab) goneErr() error {
	if t.gen.dead() {
		return ErrBrowserLost
	}
	return errTabGone
}

// world returns the render's isolated world in the main frame (created on
// first use; a new document needs a new one).
func (t *tab) world(ctx context.Context, st *renderState) (runtime.ExecutionContextID, error) {
	st.mu.Lock()
	id := st.world
	st.mu.Unlock()
	if id != 0 {
		return id, nil
	}
	res, err := cdp.Call(ctx, t.target, page.CreateIsolatedWorld, page.CreateIsolatedWorldParams{
		FrameID: t.mainFrame, WorldName: "connector-browser",
	})
	if err != nil {
		return 0, err
	}
	st.mu.Lock()
	st.world = res.ExecutionContextID
	st.mu.Unlock()
	return res.ExecutionContextID, nil
}

// ErrUnresponsive: the page's renderer did not answer the read within
// RenderOptions.ReadTimeout, even after its script was terminated: a
// document too large to lay out in time, or a renderer stuck otherwise.
// The tab is closed; the pool goes on.
var ErrUnresponsive = errors.New("browser: the page's renderer is unresponsive")

// selectorError is an ErrBadSelector saying which selector.
type selectorError struct{ msg string }

func (e *selectorError) Error() string { return e.msg }
func (e *selectorError) Unwrap() error { return ErrBadSelector }

// errReusedTabBusy: a reused tab did not answer; the previous page's
// scripts (a loop started after it was read) may keep its renderer busy,
// so the render is retried once in another tab rather than failed for a
// fault that may not be its page's.
var errReusedTabBusy = errors.New("browser: a reused tab did not answer")

// JSError is an exception thrown by the package's own script in the page.
type JSError struct{ Text string }

func (e *JSError) Error() string { return "browser: script error: " + e.Text }

// eval evaluates expr in the isolated world and decodes its JSON value
// into out.
func (t *tab) eval(ctx context.Context, st *renderState, expr string, out any) error {
	return t.evaluate(ctx, st, expr, out, false)
}

// evalAwait is eval for an expression whose value is a promise.
func (t *tab) evalAwait(ctx context.Context, st *renderState, expr string, out any) error {
	return t.evaluate(ctx, st, expr, out, true)
}

func (t *tab) evaluate(ctx context.Context, st *renderState, expr string, out any, await bool) error {
	yes := true
	for try := 0; ; try++ {
		id, err := t.world(ctx, st)
		if err != nil {
			return err
		}
		r, err := cdp.Call(ctx, t.target, runtime.Evaluate, runtime.EvaluateParams{
			Expression: expr, ContextID: id, ReturnByValue: &yes, Silent: &yes, AwaitPromise: &await,
		})
		if err != nil {
			if try == 0 && ctx.Err() == nil && strings.Contains(err.Error(), "context") {
				// The world went with its document (a document.open, a
				// renderer swap): make a new one, once.
				st.mu.Lock()
				st.world = 0
				st.mu.Unlock()
				continue
			}
			return err
		}
		if r.ExceptionDetails != nil {
			text := r.ExceptionDetails.Text
			if r.ExceptionDetails.Exception != nil && r.ExceptionDetails.Exception.Description != "" {
				text = r.ExceptionDetails.Exception.Description
			}
			return &JSError{Text: text}
		}
		if r.Result == nil || len(r.Result.Value) == 0 {
			return errors.New("browser: script returned nothing")
		}
		return json.Unmarshal([]byte(r.Result.Value), out)
	}
}

// evalRetry is eval, once more after terminating the page's own script
// when the first try timed out (a page stuck in a loop blocks every
// evaluation in its renderer).
func (t *tab) evalRetry(ctx context.Context, st *renderState, expr string, out any, each time.Duration) error {
	first, cancel := context.WithTimeout(ctx, each)
	err := t.eval(first, st, expr, out)
	cancel()
	if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	tctx, tcancel := context.WithTimeout(ctx, time.Second)
	_, _ = cdp.Call(tctx, t.target, runtime.TerminateExecution, cdp.Empty{})
	tcancel()
	return t.eval(ctx, st, expr, out)
}

type readResult struct {
	URL       string      `json:"url"`
	Title     string      `json:"title"`
	Lang      string      `json:"lang"`
	Canonical string      `json:"canonical"`
	Meta      [][2]string `json:"meta"`
	Links     []struct {
		URL      string `json:"url"`
		Text     string `json:"text"`
		Tag      string `json:"tag"`
		NoFollow bool   `json:"nofollow"`
	} `json:"links"`
	Text           string `json:"text"`
	HTML           string `json:"html"`
	Elements       int    `json:"elements"`
	TextTruncated  bool   `json:"textTruncated"`
	HTMLTruncated  bool   `json:"htmlTruncated"`
	LinksTruncated bool   `json:"linksTruncated"`
	MetaTruncated  bool   `json:"metaTruncated"`
	TextBounded    bool   `json:"textBounded"`
}

// read runs read.js and applies the byte limits.
func (t *tab) read(ctx context.Context, st *renderState, opts RenderOptions) (*Page, error) {
	lim, _ := json.Marshal(map[string]int{
		"maxText": opts.MaxTextBytes, "maxHTML": opts.MaxHTMLBytes, "maxLinks": opts.MaxLinks,
		"maxMeta": opts.MaxMeta, "linkText": DefaultLinkTextBytes, "maxNodes": maxNodes,
	})
	var r readResult
	half := opts.ReadTimeout / 2
	if err := t.evalRetry(ctx, st, "("+readJS+")("+string(lim)+")", &r, half); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w: no answer within ReadTimeout (%s)", ErrUnresponsive, opts.ReadTimeout)
		}
		return nil, fmt.Errorf("browser: reading the page: %w", err)
	}
	pg := &Page{
		FinalURL:  r.URL,
		Title:     r.Title,
		Lang:      r.Lang,
		Canonical: r.Canonical,
		Elements:  r.Elements,
		Truncated: Truncation{Links: r.LinksTruncated, Meta: r.MetaTruncated, TextBounded: r.TextBounded},
	}
	var cut bool
	pg.Text, cut = clipBytes(r.Text, opts.MaxTextBytes)
	pg.Truncated.Text = r.TextTruncated || cut
	pg.HTML, cut = clipBytes(r.HTML, opts.MaxHTMLBytes)
	pg.Truncated.HTML = r.HTMLTruncated || cut
	pg.Meta = make([]Meta, 0, len(r.Meta))
	for _, m := range r.Meta {
		pg.Meta = append(pg.Meta, Meta{Name: m[0], Content: m[1]})
	}
	pg.Links = make([]Link, 0, len(r.Links))
	for _, l := range r.Links {
		text, _ := clipBytes(l.Text, DefaultLinkTextBytes)
		pg.Links = append(pg.Links, Link{URL: l.URL, Text: text, Tag: l.Tag, NoFollow: l.NoFollow})
	}
	return pg, nil
}

// clipBytes cuts s to at most max bytes on a rune boundary.
func clipBytes(s string, max int) (string, bool) {
	if len(s) <= max {
		return s, false
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i], true
}

// safeURL drops a URL's user info (a password) for error messages and
// logs.
func safeURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	return u.String()
}

// redactURL drops a URL's query and user info (they may hold secrets, a
// login form sent with GET puts the password in the query) for error
// messages and logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}
