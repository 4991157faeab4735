package crawl

import (
	"errors"
	"strconv"
	"strings"

	"github.com/connectorhq/connector/secret"
)

// Kinds of failure reported to Hooks.OnError. Each error passed to OnError
// is a *FetchError whose Kind is one of these sentinels, so callers count
// them with errors.Is; the underlying cause (a net.Error, the context's
// error, ...) is reachable with errors.As / errors.Is through Unwrap.
var (
	// ErrNetwork: the request could not be sent or the response not read
	// (DNS, connection refused or reset, TLS, malformed response, ...).
	ErrNetwork = errors.New("crawl: network error")
	// ErrTimeout: the exchange, body included, took longer than
	// Config.RequestTimeout.
	ErrTimeout = errors.New("crawl: request timed out")
	// ErrStatus: the server answered with a status that is neither a page
	// (200, 203), a redirect nor 304; FetchError.Status holds it.
	ErrStatus = errors.New("crawl: unexpected HTTP status")
	// ErrTooLarge: the body is larger than Config.MaxPageSize. The download
	// is aborted at MaxPageSize+1 bytes (or at once when Content-Length
	// says so); nothing is delivered.
	ErrTooLarge = errors.New("crawl: page larger than MaxPageSize")
	// ErrContentType: the response's media type is not in
	// Config.AllowedContentTypes; the body is not downloaded (or not
	// delivered when the type had to be sniffed from it).
	ErrContentType = errors.New("crawl: content type not allowed")
	// ErrTooManyRedirects: more than Config.MaxRedirects redirects.
	ErrTooManyRedirects = errors.New("crawl: too many redirects")
	// ErrRedirectLoop: a redirect chain came back to a URL it had already
	// visited.
	ErrRedirectLoop = errors.New("crawl: redirect loop")
	// ErrBadRedirect: a redirect without a usable Location header.
	ErrBadRedirect = errors.New("crawl: redirect without a valid location")
	// ErrOffSite: a start URL redirects off the crawl's sites
	// (Config.StayOnSite), so the crawl does not follow it and may reach
	// nothing at all (a site that moved from http to https). A link's
	// redirect off the sites is not followed either, but it is policy,
	// like the link itself, and not reported.
	ErrOffSite = errors.New("crawl: redirects off the crawl's sites, not followed (StayOnSite)")
	// ErrRobotsDisallowed: robots.txt of the URL's host forbids it to
	// Config.RobotsAgent.
	ErrRobotsDisallowed = errors.New("crawl: disallowed by robots.txt")
	// ErrRobotsUnavailable: robots.txt could not be read (5xx, 429,
	// network error, timeout) and Config.IgnoreRobotsErrors is false, so
	// the whole host is treated as disallowed.
	ErrRobotsUnavailable = errors.New("crawl: robots.txt unavailable")
	// ErrSitemap: a sitemap named by Config.SitemapURLs, listed in
	// robots.txt or by a sitemap index is not a sitemap (or redirects to
	// another site); FetchError.URL is the sitemap. Sitemaps that cannot be
	// fetched are reported with the kind of their fetch failure.
	ErrSitemap = errors.New("crawl: unusable sitemap")
)

// FetchError is what Hooks.OnError receives: which URL failed and why.
// errors.Is(err, Kind) holds; Unwrap returns the underlying cause, if any.
type FetchError struct {
	// URL is the URL of the request that failed: for a redirect chain, the
	// hop that failed, not the URL the chain started from.
	URL string
	// Kind is one of the Err* sentinels of this package.
	Kind error
	// Status is the HTTP status for ErrStatus (and, when known, for other
	// kinds such as ErrTooLarge); 0 otherwise.
	Status int
	// Cause is the underlying error, or nil.
	Cause error
}

// Error implements error. It names the URL as a log may show it
// (secret.LogURL: its password and query hidden), since the error goes to
// logs and replies.
func (e *FetchError) Error() string {
	var b strings.Builder
	b.WriteString("crawl: ")
	b.WriteString(secret.LogURL(e.URL))
	b.WriteString(": ")
	if e.Kind != nil {
		b.WriteString(strings.TrimPrefix(e.Kind.Error(), "crawl: "))
	} else {
		b.WriteString("failed")
	}
	if e.Status != 0 {
		b.WriteString(": HTTP ")
		b.WriteString(strconv.Itoa(e.Status))
	}
	if e.Cause != nil {
		b.WriteString(": ")
		b.WriteString(e.Cause.Error())
	}
	return b.String()
}

// Is reports whether target is the error's Kind.
func (e *FetchError) Is(target error) bool { return target != nil && target == e.Kind }

// Unwrap returns the underlying cause.
func (e *FetchError) Unwrap() error { return e.Cause }

// OffSiteError is the cause of an ErrOffSite FetchError: where the
// redirect that was not followed went.
type OffSiteError struct {
	To string // the redirect's normalised target
}

// Error names the target as a log may show it (secret.LogURL).
func (e *OffSiteError) Error() string { return "to " + secret.LogURL(e.To) }

func fetchErr(u string, kind error, status int, cause error) *FetchError {
	return &FetchError{URL: u, Kind: kind, Status: status, Cause: cause}
}

// ErrAbort, wrapped by an error of Config.Render (its Render, or its
// Redirect: RedirectWatcher), stops the whole crawl
// (Stats.StoppedBy StopAborted) and is returned by Crawl: the renderer
// cannot work at all (a browser that cannot start), so going on would
// only fail every page.
var ErrAbort = errors.New("crawl: aborted by the renderer")

// ErrPanic, wrapped with the panic's value, stops the whole crawl
// (Stats.StoppedBy StopAborted) and is returned by Crawl when processing
// a page panicked (the crawl's own reading of it, or a hook): the
// workers are the crawl's goroutines, where a panic would otherwise end
// the process. The panic is logged with its stack.
var ErrPanic = errors.New("crawl: a worker panicked")
