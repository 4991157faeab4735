// Package browser renders web pages in headless Chromium, for the Web
// connector: a library (no actors, no ACI), driven through the Chrome
// DevTools Protocol by github.com/chromedp/chromedp.
//
// # Usage
//
//	pool, err := browser.New(browser.Config{}) // finds the binary; starts nothing
//	if err != nil { ... }                    // errors.Is(err, browser.ErrNoBrowser)
//	defer pool.Close()
//
//	// body and contentType come from the crawl's own HTTP fetch.
//	page, err := pool.Render(ctx, pageURL, body, contentType, browser.RenderOptions{
//		WaitSelector: "",                       // or a CSS selector to wait for
//		Clip: browser.Clipping{Mode: browser.ClipCSS, Select: []string{"main"}},
//	})
//	// page.Title, page.Text, page.Links, page.Meta, page.Canonical, page.Lang,
//	// page.HTML, page.Clipped.Text (what incremental sync compares),
//	// page.Settled (false: read at its deadline; put it in the metadata).
//
//	cookies, err := pool.Login(ctx, browser.Login{URL: ..., Fields: ..., Submit: ..., SuccessSelector: ...})
//	// cookies go to the crawl's HTTP client and to RenderOptions.Cookies.
//
// # The browser and its tabs
//
// A Pool runs one browser process. It starts on the first Render or Login
// and stops after Config.IdleTimeout (default 1 minute) without one, and
// on Close; the next use starts it again. The binary is Config.Exec, or
// Debian's chromium-headless-shell (/usr/lib/chromium/chromium-headless-shell,
// the binary behind the /usr/bin wrapper script), or chromium. Its flags:
// --headless --disable-gpu --disable-quic --no-first-run
// --disable-background-networking --disable-component-update --disable-sync
// --block-new-web-contents (window.open returns null) and a few others that
// switch off background work (listed in pool.go), --no-sandbox when running as
// root, and a fresh --user-data-dir in Config.TempDir, removed when the
// browser stops.
//
// Renders run in tabs; at most Config.Tabs (default: the number of CPUs)
// exist at once, and more renders wait for a free tab (or for their ctx).
// Each tab has a browser context of its own (cookie jar, storage, cache),
// so tabs do not see each other's state; a tab is reused for up to
// Config.TabMaxPages renders (default 100) and then replaced, so that
// 10,000 renders do not grow the renderers. A tab whose page never settled,
// whose render was cancelled or failed, that logged in, or that gave
// RenderOptions.BasicAuth's credentials (Chromium keeps them in the tab's
// HTTP auth cache and would send them with the next render's requests) is
// closed instead of reused. With RenderOptions.TabsEndWithContext, a tab left idle
// is also closed when the context of its last render ends (a crawl's end or
// Stop). The browser's start-up tab is closed once the browser has started,
// so a browser with no render in progress and no idle tab runs no renderer
// process. Before each render the tab's cookie jar is emptied and
// set to RenderOptions.Cookies: a render sees the cookies it is given and
// those its own scripts set, never another render's. An HTTP
// authentication challenge (401) of a page's request is answered with
// RenderOptions.BasicAuth when the request is to one of its origins, and
// cancelled otherwise (the request gets its 401); a login's with
// Login.BasicAuth, the same way.
//
// # Process safety
//
// No browser process outlives its owner (see docs/browser.md):
//
//   - the browser runs in a process group of its own; stopping it (Close,
//     idle, crash clean-up) kills the whole group, then any process still
//     carrying the pool's marker, and waits until none is left before it
//     removes the user-data-dir;
//   - the browser gets SIGKILL from the kernel when its owner dies
//     (Pdeathsig), including by SIGKILL: it is started from a goroutine
//     locked to its OS thread for the browser's whole life, because the
//     signal follows the thread that forked, not the process. Its helper
//     processes (zygotes, renderers, network service) exit when their pipe
//     to the browser closes;
//   - a user-data-dir left by an owner that died is removed, and any helper
//     of it still running is killed, by the next start in the same TempDir.
//
// # Rendering the bytes already fetched
//
// Render does not let the browser fetch the page again: request
// interception (the Fetch domain) answers the tab's navigation request with
// the given body and Content-Type, status 200. The page's subresources
// are fetched by the browser itself, as RenderOptions.Subresources allows:
// by default scripts, style sheets, XHR and fetch(); images, fonts, media,
// sub-frames and the rest are blocked (Subresources.AllowTypes changes
// that; MustHave, CantHave and SameSiteOnly filter URLs). Always blocked:
// non-http(s) URLs, downloads (denied per browser context), and any other
// document in the main frame (location changes, meta refresh, form
// submissions, download links: the browser is answered "204 No Content"
// and keeps the page being rendered; the documents it was sent to are
// Page.Navigations, for the crawl to follow as links). Service workers are bypassed, and
// a page cannot register one (navigator.serviceWorker.register rejects
// with a SecurityError in every document of the tab): a service worker's
// own requests would escape the interception.
// Page.MainFromBody and Page.Requests report what happened.
//
// # Waiting
//
// A page is read once it has loaded (load event, or its main frame stopped
// loading) and no request has been in flight for RenderOptions.QuietWindow
// (default 500 ms), or, with RenderOptions.WaitSelector, as soon as an
// element matches that selector (checked every 50 ms). Either way the wait
// ends at RenderOptions.Deadline (default 30 s): the page is then read as
// it is, its loading stopped, with Page.Settled false and Page.SettledBy
// "deadline". Reading has its own bound, RenderOptions.ReadTimeout
// (default 10 s): a renderer stuck in a script is interrupted
// (Runtime.terminateExecution) half-way and the read tried once more; one
// that still does not answer (a document too large to lay out in time)
// ends the render with ErrUnresponsive.
//
// # What is read
//
// In an isolated JavaScript world (the page's scripts cannot tamper with
// the reader): the title, the visible text (body.innerText; above 300,000
// elements, or when the text is far larger than the limit, a bounded walk
// of the text nodes instead, Truncated.TextBounded), <meta> elements (name,
// property, itemprop, http-equiv, charset), the canonical link, the
// language (<html lang>, else Content-Language meta), the links (<a href>,
// <area href>, <iframe src>, <frame src>; absolute as the browser resolved
// them, <base> honoured; http(s) only; one per URL with the first anchor
// text; rel=nofollow flagged) and the serialised DOM with its doctype.
// Limits (RenderOptions; Page.Truncated says what was cut): MaxLinks 5000,
// MaxTextBytes 2 MiB, MaxHTMLBytes 8 MiB, MaxMeta 500, anchor text 1000
// bytes, and an element walk of 300,000.
//
// # Clipping
//
// IDOL's ClippingMode: CSSCLIPPING keeps the outermost elements matching
// ClipPageUsingCssSelect (Clipping.Select; empty: the body) with their
// descendants, after removing the elements matching
// ClipPageUsingCssUnselect (Clipping.Unselect) with theirs; READABILITY
// runs Mozilla's Readability (codeberg.org/readeck/go-readability/v2, a
// maintained Go port of Readability.js 0.6) on the rendered HTML, and
// falls back to the whole page when it finds no article. IDOL's SMARTPRINT
// is not implemented (ParseClipMode says so). Page.Clipped holds the
// clipped text and HTML: compare those for incremental synchronisation,
// as IDOL compares content after clipping. Links and Page.Text are always
// the whole page's.
//
// # Hostile pages
//
// Dialogs (alert, confirm, prompt) are dismissed as they open (confirm is
// false, prompt null), beforeunload is accepted; popups are refused
// (--block-new-web-contents), and a page target opened anyway is closed;
// pages that navigate away keep being the page rendered; downloads never
// start; infinite scrolling, endless link generation and pages that never
// fire load are cut by Deadline and the read limits; a stuck script is
// terminated. The tests render each of these.
//
// # Stop, crash, errors
//
// Cancelling Render's ctx returns ctx's error at once; the tab is closed
// in the background (its slot is free once the browser has closed it).
// When the browser dies during a render (crash, kill) the pool starts a new
// one and the render is retried once (Page.Attempts 2); so it does when the
// browser does not open or prepare a tab within Config.AnswerTimeout (a
// hung browser, stopped as a dead one is); a renderer crash
// is retried once in a new tab, and so is a render whose reused tab did not
// answer (ErrUnresponsive: the previous page may have left a script
// looping after it was read). A browser that cannot start gives a
// *StartError carrying the tail of what the browser printed. A
// WaitSelector or clipping selector that is not valid CSS gives an error
// that is ErrBadSelector (a *ClipError for clipping's), naming it. A login
// failure is a *LoginError naming the step and the field or selector that
// failed; a field marked Secret never appears in an error, a log line or a
// result, and URLs in login errors lose their query.
//
// Log lines (start, stop, idle, restart, sweep) go to Config.Logger.
// chromedp's own internal messages are not logged (they may quote page
// data); Stats.InternalErrors counts them.
package browser
