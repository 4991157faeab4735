package crawl

import (
	"context"
	"crypto/sha256"
	"net/http"
	"time"
)

// Page is one fetched page as delivered to Hooks.OnPage.
//
// Ownership: the crawl never writes a Page (its Header, slices and maps
// included) after passing it to OnPage, and reads nothing of it after OnPage
// returns but whether KeepBody was called; the callee may keep, change or
// hand it on without copying, with one exception: Body. Body is lent for
// the duration of the call (and of Config.Render's): the crawl reads its
// next pages into the same buffer. A callee that needs the bytes after
// OnPage returns calls KeepBody during the call (or copies them); the
// same holds for Hash, which is computed from Body when called. Every
// other field (Title, Text, Links, Meta, Header, ...) is a copy and stays
// valid.
type Page struct {
	// URL is the normalised URL that was requested.
	URL string
	// FinalURL is the normalised URL of the response, after redirects; it
	// equals URL when there were none.
	FinalURL string
	// CanonicalURL is the normalised href of <link rel="canonical">, or "".
	CanonicalURL string
	// Status is the HTTP status: 200 or 203, or 304 with NotModified.
	Status int
	// NotModified is set when the server answered 304 to a conditional
	// request built from Hooks.Prior. Body and the HTML fields are then
	// empty and Links are the Prior's links.
	NotModified bool
	// Header holds the response headers Content-Type, Content-Length,
	// Last-Modified, ETag, Content-Language and Set-Cookie, when present.
	// Set-Cookie is for a renderer (the cookies a browser that loaded the
	// page would have): its values may be a session's, secrets that must
	// never reach a document or a log.
	Header http.Header
	// MediaType is the lower-case media type essence ("text/html"), from
	// Content-Type or sniffed from the body when that header is missing.
	MediaType string
	// Body is the whole response body (decompressed when the transport
	// decompressed it), at most Config.MaxPageSize bytes. It is valid
	// only until OnPage returns, unless OnPage calls KeepBody.
	Body []byte

	// Title is the text of the first <title> (outside SVG/MathML),
	// whitespace-normalised. HTML only, like the fields below up to Robots.
	Title string
	// Text is the visible text of the document, decoded to UTF-8:
	// whitespace-normalised (runs of Unicode white space become one
	// space), without the title and the content of script, style,
	// noscript, iframe, noembed, noframes and template, without a
	// ruby's reading (<rt>, <rtc>) and its parentheses (<rp>) and
	// without soft hyphens (&shy;), with a
	// space at every block-level element boundary but none around inline
	// elements ("fo<b>o</b>" is "foo").
	Text string
	// Links are the distinct http and https links of the page (<a href>,
	// <area href>, <frame src>, <iframe src>), resolved against the
	// document base (<base href> honoured), normalised like every crawl
	// URL, in document order. They are all the page's links, including
	// ones the crawl does not follow (off site, filtered, nofollow).
	Links []string
	// Meta maps the lower-cased name, http-equiv or property attribute of
	// each <meta> element to its content attributes, in document order
	// (repeats kept).
	Meta map[string][]string
	// Lang is the document language: <html lang>, else <meta
	// http-equiv="content-language">, else the Content-Language header.
	Lang string
	// Robots are the robots directives of <meta name="robots"> (or named
	// after Config.RobotsAgent) and of X-Robots-Tag headers.
	Robots RobotsFlags

	// Depth is the page's link depth (0 for start URLs).
	Depth int
	// Parent is the URL of the page the link was first found on ("" for
	// start URLs).
	Parent string
	// FetchedAt is when the response headers arrived.
	FetchedAt time.Time

	// Rendered is what Config.Render attached to the page (its own
	// results, for the caller); nil when the page was not rendered.
	Rendered any
	// RenderErr is why Config.Render failed on the page; the page then
	// has what the crawl parsed from its body.
	RenderErr error

	// followed reports whether the crawl followed Links (false when the
	// page is nofollow and FollowRobots is set).
	followed bool
	// bodyKept is set by KeepBody.
	bodyKept bool
	// hash is what Hash returns when hashSet (SetHash).
	hash    [32]byte
	hashSet bool
}

// Hash returns the SHA-256 of Body (zero for a 304), or the hash a
// Renderer set with SetHash. It is computed on each call, from Body, so
// that a crawl whose hooks never ask pays nothing for it: like Body, call
// it during OnPage (or Renderer.Render), or later only if KeepBody was
// called during the call; after OnPage has returned without KeepBody the
// buffer holds another page and the result is meaningless. Keep the
// result rather than calling it twice. It only reads the Page, so
// goroutines may call it at once.
func (p *Page) Hash() [32]byte {
	switch {
	case p.hashSet:
		return p.hash
	case p.NotModified:
		return [32]byte{}
	}
	return sha256.Sum256(p.Body)
}

// SetHash makes Hash return h from now on: a Renderer that replaces the
// page's content gives the hash that change detection should compare (of
// the rendered text, say) instead of the body's.
func (p *Page) SetHash(h [32]byte) {
	p.hash, p.hashSet = h, true
}

// KeepBody returns Body and gives its buffer to the caller for good: the
// crawl does not reuse it for later pages. Call it from OnPage (or
// Renderer.Render), before it returns, when Body (or a slice of it) must
// outlive the call: a document delivered later, a page handed to another
// goroutine. Calling it after OnPage has returned is a data race and does
// not protect Body.
func (p *Page) KeepBody() []byte {
	p.bodyKept = true
	return p.Body
}

// RobotsFlags are page-level robots directives.
type RobotsFlags struct {
	NoIndex  bool // do not index the page
	NoFollow bool // do not follow the page's links
}

// Prior returns what a later crawl needs to know about the page for a
// conditional request: its validators and, when the crawl followed them,
// its links (so that a 304 lets the crawl go on through the page exactly as
// this crawl did). Store it under p.FinalURL: Hooks.Prior is asked with
// the URL of each request, and the validators belong to the response of the
// last one (the same as p.URL when there was no redirect).
func (p *Page) Prior() Prior {
	pr := Prior{ETag: p.Header.Get("ETag"), LastModified: p.Header.Get("Last-Modified")}
	if p.followed {
		pr.Links = append([]string(nil), p.Links...)
	}
	return pr
}

// Prior is what an earlier crawl learnt about a URL.
type Prior struct {
	// ETag and LastModified are the validators of the earlier response,
	// sent back as If-None-Match and If-Modified-Since. With neither, the
	// request is unconditional.
	ETag, LastModified string
	// FetchedAt is when the earlier response arrived; a sitemap <lastmod>
	// not after it makes the URL not modified without a request (zero:
	// never).
	FetchedAt time.Time
	// Links are followed when the server answers 304 Not Modified.
	Links []string
}

// Hooks receive the crawl's results. Every hook may be nil.
//
// Hooks are called from the crawl's worker goroutines, concurrently (up to
// Config.Concurrency calls at once): they must be safe for concurrent use.
// A worker does not fetch while it runs a hook, so slow hooks slow the crawl
// down (that is the back-pressure). Hooks must not call Crawl's cancel
// function and then block waiting for Crawl to return.
type Hooks struct {
	// Prior returns what is known about a URL from an earlier crawl; ok is
	// false when it was never seen. It is asked for every URL requested,
	// redirect hops included, with the normalised URL.
	Prior func(url string) (p Prior, ok bool)
	// OnPage receives each page that was fetched (200 or 203) and passed
	// every filter, and each 304 answer (NotModified set). See Page for
	// ownership: Page.Body is valid only during the call unless OnPage
	// calls Page.KeepBody.
	OnPage func(p *Page)
	// OnError receives each URL that failed, that robots.txt refused or
	// whose content type is not allowed, with its depth and a *FetchError.
	// url is the URL taken from the frontier (where a redirect chain
	// started); FetchError.URL is the request that failed. Filtered URLs
	// (spider rules, off site, depth, traps, ...) are only counted in
	// Stats, not reported. A cancelled crawl reports nothing for the
	// requests it aborts.
	OnError func(url string, depth int, err error)
	// Gate, when set, is called before each page request (with the
	// crawl's context, before Prior) and waits while the crawl must not
	// send requests: it is where a paused action waits. It returns nil to
	// go on, or an error once ctx has ended (the request is then dropped
	// and nothing is reported for it, as for a cancelled crawl).
	Gate func(ctx context.Context) error
	// OnAdmit, when set, receives each URL the crawl admits to its
	// frontier (start URLs, and links and redirect targets that passed
	// every rule: dedup, depth, StayOnSite, the spider rules, the trap
	// rules), with its depth: the URLs the crawl will request unless it
	// is cut short. Connectors estimate progress from it. It is called
	// with the frontier's lock held: it must return at once and must not
	// call back into the crawl.
	OnAdmit func(url string, depth int)
}

// Renderer renders fetched HTML pages (Config.Render): a headless
// browser runs the page's scripts on the bytes the crawl fetched, so
// that links and text that scripts create are found.
//
// Render is called by the crawl's workers, concurrently, for every 200
// or 203 page whose media type is HTML once its body has been read and
// parsed (Title, Text, Meta, Lang, CanonicalURL, Links and Robots are the
// parsed ones), before the page is delivered and its links followed;
// not for a page that is both noindex and nofollow (with FollowRobots).
// It may replace Title, Text, Meta (the robots directives of its "robots"
// entries are added to the page's), Lang and CanonicalURL (an absolute
// URL, which the crawl normalises as a parsed one: a URL that is not
// http(s) is dropped), set the hash
// (SetHash), and set Rendered. links, when not nil, replace the page's links: absolute
// http(s) URLs, which the crawl normalises and filters like parsed links.
//
// An error keeps the parsed page, with RenderErr set, and the crawl goes
// on; an error wrapping ErrAbort stops the crawl, which returns it (a
// browser that cannot start). ctx is the crawl's: cancelled on Stop.
// p.Body is lent as to OnPage: valid until Render returns.
type Renderer interface {
	Render(ctx context.Context, p *Page) (links []string, err error)
}

// RedirectWatcher may be implemented by a Renderer: Redirect is called
// for every redirect a page's fetch is about to follow (url is the URL
// taken from the frontier, to the normalised target of this hop), before
// the crawl's rules decide whether it follows it (StayOnSite, the spider
// rules, a target already seen), so that it sees redirects the crawl
// drops in silence. An error wrapping ErrAbort stops the crawl (a
// session that ended: every page is sent to the login page); any other
// error drops the redirect. It is called concurrently, from the workers.
type RedirectWatcher interface {
	Redirect(ctx context.Context, url, to string) error
}
