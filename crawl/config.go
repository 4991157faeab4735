package crawl

import (
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/connectorhq/connector/internal/netguard"
	"github.com/connectorhq/connector/messages"
)

// Defaults applied by Crawl (and Validate) to zero-valued Config fields.
const (
	DefaultUserAgent         = "connector/1.0 (+https://github.com/connectorhq/connector)"
	DefaultConcurrency       = 4
	DefaultRequestTimeout    = 30 * time.Second
	DefaultMaxPageSize       = 16 << 20
	DefaultMaxRedirects      = 10
	DefaultMaxURLs           = 1_000_000
	DefaultMaxURLLength      = 2048
	DefaultMaxPathSegments   = 32
	DefaultMaxSegmentRepeats = 3
	DefaultMaxQueryVariants  = 10_000

	// robotsMaxBytes is how much of a robots.txt is read; the rest is
	// ignored, as Google does (500 KiB).
	robotsMaxBytes = 500 << 10
	// robotsMaxRedirects is how many redirects are followed for a
	// robots.txt; past that it is treated as absent (allow all), as Google
	// does.
	robotsMaxRedirects = 5
)

// DefaultContentTypes are the media types delivered when
// Config.AllowedContentTypes is nil: web pages, plain text, and the
// document formats whose text the connector extracts (package extract).
var DefaultContentTypes = []string{
	"text/html", "application/xhtml+xml", "text/plain", "application/pdf",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"application/vnd.openxmlformats-officedocument.presentationml.presentation",
	"application/vnd.oasis.opendocument.text",
	"application/vnd.oasis.opendocument.spreadsheet",
	"application/vnd.oasis.opendocument.presentation",
	"application/rtf", "text/rtf",
}

// DefaultSessionParams are the query parameter names (compared
// case-insensitively; a trailing '*' matches any suffix) removed from every
// URL when Config.SessionParams is nil.
var DefaultSessionParams = []string{
	"jsessionid", "phpsessid", "aspsessionid*", "sessionid", "session_id",
	"sessid", "sid", "cfid", "cftoken", "zenid", "oscsid",
}

// Config describes one crawl. The zero value of every field but StartURLs
// is usable: zero numbers take the Default* constants above, except where
// a field's comment gives zero another meaning. Knobs marked "negative
// disables" switch their rule off when negative.
type Config struct {
	// StartURLs are the absolute http or https URLs the crawl starts from
	// (depth 0). At least one start URL or sitemap URL is required.
	StartURLs []string

	// SitemapURLs are sitemaps or sitemap indexes (sitemaps.org XML,
	// gzipped or not, or text with one URL a line) whose page URLs the
	// crawl also starts from, at depth 0 like start URLs, after the URL
	// rules (StayOnSite, spider regexes, traps). A listed URL must be on
	// the sitemap's origin; a sitemap index's sitemaps too. The sitemaps'
	// hosts count as start hosts for StayOnSite. See sitemap.go for the
	// bounds.
	SitemapURLs []string
	// FollowSitemaps also reads, for the origin of each start URL, the
	// sitemaps its robots.txt lists (Sitemap: lines, on the site when
	// StayOnSite; their URLs may be anywhere on that origin), or
	// /sitemap.xml when it lists none (a missing /sitemap.xml is not an
	// error). A URL with a <lastmod> that is
	// not after Prior.FetchedAt is delivered as not modified without a
	// request (Stats.SitemapUnchanged), when Hooks.Prior allows a
	// conditional request for it.
	FollowSitemaps bool
	// MaxSitemaps bounds the sitemap files fetched per crawl, indexes
	// included. 0: DefaultMaxSitemaps.
	MaxSitemaps int

	// Depth is the maximum link depth: start URLs are depth 0, links found
	// on a depth-d page are depth d+1. 0 fetches only the start URLs; -1 is
	// unlimited. A URL's depth is the length of the shortest link chain
	// from a start URL (redirects do not add depth).
	Depth int

	// StayOnSite restricts the crawl to the start URLs' sites. A site is a
	// scheme, a host and a port: a URL is on site when its scheme, its
	// host without a leading "www." and its port (the scheme's default
	// when none is written) equal those of a start URL. So
	// http://example.com:8080/ and https://example.com/ are off the site
	// of http://example.com/ (other services, maybe on the same machine),
	// http://www.example.com/ is on it, and other subdomains are not
	// (blog.example.com is off the site of example.com). A site that
	// moved to https is crawled by listing the https start URL. Hosts
	// compare in their WHATWG serialisation (lower case, IDNA/punycode).
	StayOnSite bool
	// SiteURLs are more URLs whose sites count as the start URLs' for
	// StayOnSite; nothing is fetched from them (a task's sites, when the
	// crawl starts from pages the task knows).
	SiteURLs []string

	// SpiderMustHave and SpiderCantHave are matched against the full
	// normalised URL of every URL before it is fetched, start URLs and
	// redirect targets included: a URL is fetched (and so followed) only
	// if it matches SpiderMustHave (when set) and does not match
	// SpiderCantHave (when set).
	SpiderMustHave, SpiderCantHave *regexp.Regexp

	// FollowRobots obeys robots.txt (Google's semantics, matched for
	// RobotsAgent), <meta name="robots"> and the X-Robots-Tag header:
	// noindex pages are not delivered to OnPage (unless DeliverNoIndex),
	// nofollow pages' links are not followed.
	FollowRobots bool
	// DeliverNoIndex delivers noindex pages to OnPage too, with
	// Page.Robots.NoIndex set, for a caller that must not index them but
	// records what they are and link to (an incremental crawl: a
	// "noindex, follow" hub that fails next time still tells what it led
	// to). They count in Stats.Pages and in Stats.Skipped.NoIndex.
	DeliverNoIndex bool
	// IgnoreRobotsErrors treats a robots.txt that cannot be read (5xx,
	// 429, network error, timeout) as absent (allow all) instead of as
	// "disallow all".
	IgnoreRobotsErrors bool

	// PageDelay is the minimum time a worker waits between the end of one
	// request (body read and closed) and the start of its next one
	// (robots.txt and redirect hops included). 0: no delay.
	PageDelay time.Duration
	// MaxBytesPerSec caps the download rate of the whole crawl, counted on
	// bytes of bodies read (robots.txt included). 0: no cap.
	MaxBytesPerSec int64
	// MaxPages stops the crawl once this many pages have been delivered to
	// OnPage (304s included). 0: no limit.
	MaxPages int
	// RequestTimeout bounds one HTTP exchange, from sending the request to
	// the last byte of the body.
	RequestTimeout time.Duration
	// MaxPageSize is the largest body accepted, in bytes; larger responses
	// are aborted and reported as ErrTooLarge, never truncated.
	MaxPageSize int64

	// UserAgent is sent in the User-Agent header.
	UserAgent string
	// RobotsAgent is the product token matched against robots.txt
	// User-agent lines and robots meta tags named after a crawler. Empty:
	// the product token of UserAgent, i.e. its leading run of token
	// characters ("connector" for "connector/1.0 (+https://...)").
	RobotsAgent string

	// Concurrency is the number of fetches in flight at once.
	Concurrency int

	// AllowedContentTypes lists the media types whose bodies are
	// delivered, e.g. "text/html"; "type/*" and "*/*" are wildcards. Only
	// text/html and application/xhtml+xml are parsed for links. nil means
	// DefaultContentTypes. A response whose Content-Type is missing is
	// sniffed: a PDF, RTF, Office Open XML or OpenDocument document (told
	// by package extract) is of that format's type, anything else what
	// http.DetectContentType says. A generic type that is not allowed as
	// such (application/octet-stream, binary/octet-stream,
	// application/force-download, application/zip, a PDF's old names such
	// as application/x-pdf, the binary Office types, ...) is decided by the
	// body the same way: its first kilobyte says whether it may be such a
	// document of an allowed type (else it is refused without reading
	// on), the whole body which (else it is refused; a zip larger than
	// MaxPageSize, which cannot be read to tell, is refused as its type,
	// ErrContentType, not ErrTooLarge); the page's MediaType is the
	// document's type. So is that of a body declared as HTML or text
	// (text/html, text/plain, ...) that starts as such a document does
	// (a PDF's header, a zip, RTF): it is that document, refused when its
	// type is not allowed.
	AllowedContentTypes []string

	// MaxRedirects is the longest redirect chain followed; each hop is
	// checked against robots.txt, the spider rules and deduplication.
	// Negative: redirects are not followed (reported as
	// ErrTooManyRedirects).
	MaxRedirects int

	// MaxURLs bounds the number of distinct URLs recorded during the crawl
	// (every scheme counts); once reached, newly found URLs are dropped
	// and counted in Stats.Skipped.MaxURLs. It bounds the crawl's memory
	// and guarantees termination on infinite sites.
	MaxURLs int

	// Link-trap protection. A discovered URL is dropped (Stats.Skipped.Trap)
	// when its normalised form is longer than MaxURLLength bytes, its path
	// has more than MaxPathSegments segments, one path segment occurs more
	// than MaxSegmentRepeats times in its path, or its scheme, host and
	// path have already been seen with MaxQueryVariants different queries.
	// Negative disables a rule.
	MaxURLLength, MaxPathSegments, MaxSegmentRepeats, MaxQueryVariants int

	// SessionParams are query parameter names removed from every URL
	// (compared ASCII case-insensitively; a trailing '*' matches any
	// suffix). nil means DefaultSessionParams; an empty non-nil slice
	// removes none. Path parameters ";jsessionid=..." (and ";phpsessid=",
	// ";sid=") and ASP.NET cookieless segments "(S(...))" are removed too
	// unless SessionParams is empty and non-nil.
	SessionParams []string

	// BasicAuth, when set, is sent (Authorization: Basic) with every
	// request, robots.txt included, to one of its Origins, and to no other
	// origin: not to a link's other host, nor after a redirect elsewhere.
	BasicAuth *BasicAuth

	// Deny, when set, is enforced by the crawl's own client (Client nil):
	// a connection to an address it denies is refused where it is dialled
	// (after name resolution, so redirects and DNS names cannot get round
	// it), and the fetch fails with an error wrapping netguard.ErrDenied.
	// Through an HTTP proxy (HTTP_PROXY and friends) only the URL's host
	// is checked. A caller's Client must enforce it itself.
	Deny *netguard.Guard

	// Client sends the requests. nil: a client with a keep-alive pool
	// sized to Concurrency, owned by the crawl (its idle connections are
	// closed when Crawl returns). A given client is copied and its copy's
	// CheckRedirect replaced, because the crawl follows redirects itself.
	Client *http.Client
	// Fetcher, when set, sends the requests instead of Client: the seam
	// for fetching pages another way than net/http. (The Web connector's
	// browser does not fetch: it renders what the crawl fetched, through
	// Render.) It must enforce Deny itself, and return redirects (3xx) to
	// the crawl rather than follow them.
	Fetcher Fetcher
	// Render, when set, renders the HTML pages the crawl fetched (the Web
	// connector's headless browser, crawl/browser): see Renderer. The
	// fetch stays the crawl's (robots, conditional requests, limits); the
	// renderer works on the bytes fetched.
	Render Renderer
	// Jar, when set, holds the cookies every request of the crawl sends
	// and receives (the session of a form login). A caller's Client is
	// copied with it.
	Jar http.CookieJar
	// Logger receives debug lines per request and an info line per crawl.
	// nil: discard.
	Logger *slog.Logger
}

// BasicAuth is a user name and password for HTTP Basic authentication,
// and the origins (scheme://host[:port]) they are sent to. An origin is
// compared in the WHATWG serialisation the crawl requests (an IDN host
// in ASCII: bücher.example is xn--bcher-kva.example).
type BasicAuth struct {
	Username, Password string
	Origins            []string
}

// withDefaults returns c with zero fields replaced by defaults.
func (c Config) withDefaults() Config {
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent
	}
	if c.RobotsAgent == "" {
		c.RobotsAgent = productToken(c.UserAgent)
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.MaxPageSize == 0 {
		c.MaxPageSize = DefaultMaxPageSize
	}
	if c.MaxRedirects == 0 {
		c.MaxRedirects = DefaultMaxRedirects
	}
	if c.MaxURLs == 0 {
		c.MaxURLs = DefaultMaxURLs
	}
	if c.MaxURLLength == 0 {
		c.MaxURLLength = DefaultMaxURLLength
	}
	if c.MaxPathSegments == 0 {
		c.MaxPathSegments = DefaultMaxPathSegments
	}
	if c.MaxSegmentRepeats == 0 {
		c.MaxSegmentRepeats = DefaultMaxSegmentRepeats
	}
	if c.MaxSitemaps == 0 {
		c.MaxSitemaps = DefaultMaxSitemaps
	}
	if c.MaxQueryVariants == 0 {
		c.MaxQueryVariants = DefaultMaxQueryVariants
	}
	if c.AllowedContentTypes == nil {
		c.AllowedContentTypes = DefaultContentTypes
	}
	if c.SessionParams == nil {
		c.SessionParams = DefaultSessionParams
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// Validate reports every problem with c as *messages.ParamError values
// (matching messages.ErrInvalidParam / messages.ErrMissingParam) joined with
// errors.Join, named after the Config fields. Zero fields are valid (they
// take defaults). Crawl calls it; callers may call it earlier to reject a
// configuration before queueing work.
func (c Config) Validate() error {
	var errs []error
	if len(c.StartURLs) == 0 && len(c.SitemapURLs) == 0 {
		errs = append(errs, messages.Missing("StartURLs"))
	}
	for _, s := range c.StartURLs {
		if _, err := parseStartURL(s); err != nil {
			errs = append(errs, messages.Invalid("StartURLs", s, err.Error()))
		}
	}
	for _, s := range c.SitemapURLs {
		if _, err := parseStartURL(s); err != nil {
			errs = append(errs, messages.Invalid("SitemapURLs", s, err.Error()))
		}
	}
	if c.Depth < -1 {
		errs = append(errs, messages.Invalid("Depth", strconv.Itoa(c.Depth), "must be -1 (unlimited) or at least 0"))
	}
	neg := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, messages.Invalid(name, strconv.FormatInt(v, 10), "must not be negative"))
		}
	}
	neg("PageDelay", int64(c.PageDelay))
	neg("MaxBytesPerSec", c.MaxBytesPerSec)
	neg("MaxPages", int64(c.MaxPages))
	neg("RequestTimeout", int64(c.RequestTimeout))
	neg("MaxPageSize", c.MaxPageSize)
	neg("Concurrency", int64(c.Concurrency))
	neg("MaxURLs", int64(c.MaxURLs))
	neg("MaxSitemaps", int64(c.MaxSitemaps))
	if c.UserAgent != "" && strings.ContainsAny(c.UserAgent, "\r\n") {
		errs = append(errs, messages.Invalid("UserAgent", c.UserAgent, "must be a single line"))
	}
	if c.RobotsAgent != "" && productToken(c.RobotsAgent) != c.RobotsAgent {
		errs = append(errs, messages.Invalid("RobotsAgent", c.RobotsAgent, "must be a product token (letters, digits and ~#$%'*+-.^_`|)"))
	}
	if c.RobotsAgent == "" && c.UserAgent != "" && productToken(c.UserAgent) == "" {
		errs = append(errs, messages.Invalid("UserAgent", c.UserAgent, "must start with a product token (or set RobotsAgent)"))
	}
	for _, t := range c.AllowedContentTypes {
		if _, ok := parseTypePattern(t); !ok {
			errs = append(errs, messages.Invalid("AllowedContentTypes", t, `must be a media type such as "text/html", "text/*" or "*/*"`))
		}
	}
	for _, p := range c.SessionParams {
		if strings.TrimSuffix(p, "*") == "" || strings.ContainsAny(p, "&=#?") {
			errs = append(errs, messages.Invalid("SessionParams", p, "must be a query parameter name"))
		}
	}
	return errors.Join(errs...)
}

// productToken returns the leading run of token characters of a user
// agent string: "connector" for "connector/1.0 (+https://...)". The
// character set is grobotstxt's (letters, digits and ~#$%'*+-.^_`|), which
// is what robots.txt User-agent lines are cut to before they are compared.
func productToken(ua string) string {
	i := 0
	for i < len(ua) && isTokenChar(ua[i]) {
		i++
	}
	return ua[:i]
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("~#$%'*+-.^_`|", c) >= 0
}

// typePattern is a parsed AllowedContentTypes entry.
type typePattern struct{ typ, sub string } // "*" matches anything

func parseTypePattern(s string) (typePattern, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	typ, sub, ok := strings.Cut(s, "/")
	if !ok || typ == "" || sub == "" || strings.ContainsAny(s, " ;,") {
		return typePattern{}, false
	}
	if typ == "*" && sub != "*" {
		return typePattern{}, false
	}
	return typePattern{typ, sub}, true
}

// mediaType returns the lower-case essence ("text/html") of a Content-Type
// header value, or "" when it is missing or malformed.
func mediaType(contentType string) string {
	switch contentType {
	case "":
		return ""
	case "text/html", "text/html; charset=utf-8", "text/html; charset=UTF-8":
		return "text/html" // what ParseMediaType says, without its parameter map
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		// Be lenient with a broken parameter list: keep the essence.
		mt, _, _ = strings.Cut(contentType, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		if _, ok := parseTypePattern(mt); !ok {
			return ""
		}
	}
	return mt
}

func typeAllowed(patterns []typePattern, mt string) bool {
	typ, sub, _ := strings.Cut(mt, "/")
	for _, p := range patterns {
		if (p.typ == "*" || p.typ == typ) && (p.sub == "*" || p.sub == sub) {
			return true
		}
	}
	return false
}

func isHTMLType(mt string) bool { return mt == "text/html" || mt == "application/xhtml+xml" }
