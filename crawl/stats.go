package crawl

import "sync/atomic"

// Stats are a crawl's counters, returned by Crawl.
type Stats struct {
	// Pages is the number of 200/203 pages delivered to OnPage.
	Pages int64
	// NotModified is the number of 304 answers delivered to OnPage.
	NotModified int64
	// Requests is the number of HTTP requests sent: pages, redirect hops
	// and robots.txt files.
	Requests int64
	// Bytes is the number of body bytes read (robots.txt included).
	Bytes int64
	// URLsDiscovered is the number of distinct URLs recorded: start URLs
	// and every distinct link or redirect target, whatever its scheme and
	// whether or not it was fetched.
	URLsDiscovered int64
	// Rendered is the number of pages Config.Render rendered;
	// RenderErrors those it failed to render (delivered as parsed, with
	// Page.RenderErr).
	Rendered, RenderErrors int64
	// Levels is the number of depth levels the crawl worked on (1 when
	// only start URLs were fetched).
	Levels int
	// Sitemaps is the number of sitemap files read; SitemapURLs the number
	// of distinct page URLs they added; SitemapUnchanged the pages
	// delivered as not modified, without a request, because of their
	// <lastmod> (counted in NotModified too).
	Sitemaps, SitemapURLs, SitemapUnchanged int64
	// SitemapsUnavailable counts the sitemaps that could not be read for
	// a reason that says nothing about them (network error, timeout, 5xx,
	// 408, 429), including a robots.txt unavailable (ignored with
	// IgnoreRobotsErrors) whose Sitemap: lines FollowSitemaps would have
	// read: the page URLs they list are missing from this crawl.
	SitemapsUnavailable int64
	// Errors counts failures by kind; each was reported to OnError.
	Errors ErrorCounts
	// Skipped counts URLs not fetched or pages not delivered, by rule.
	Skipped SkipCounts
	// StoppedBy tells why the crawl ended.
	StoppedBy StopReason
}

// ErrorCounts count failures reported to OnError, by kind.
type ErrorCounts struct {
	Network  int64 // ErrNetwork
	Timeout  int64 // ErrTimeout
	Status   int64 // ErrStatus (4xx, 5xx, ...)
	TooLarge int64 // ErrTooLarge
	Redirect int64 // ErrTooManyRedirects, ErrRedirectLoop, ErrBadRedirect
}

// SkipCounts count URLs the crawl did not fetch, and fetched pages it did
// not deliver, by rule. A distinct URL is counted once, under the first
// rule that drops it (rules are tried in the order of the fields), except
// for Invalid and MaxURLs, which count occurrences: such URLs are never
// recorded, so a URL found twice is counted twice.
type SkipCounts struct {
	Invalid     int64 // link that does not parse as a URL
	MaxURLs     int64 // found after MaxURLs distinct URLs were recorded
	Scheme      int64 // not http or https (mailto:, javascript:, file:, ...)
	Depth       int64 // beyond Config.Depth
	OffSite     int64 // StayOnSite
	Spider      int64 // SpiderMustHave / SpiderCantHave
	Trap        int64 // link-trap rules (length, segments, query variants)
	Duplicate   int64 // redirect to a URL already recorded
	Robots      int64 // robots.txt disallowed or unavailable (reported to OnError)
	ContentType int64 // media type not allowed (reported to OnError)
	NoIndex     int64 // fetched but noindex, with FollowRobots
	// SitemapScope: a sitemap entry outside the sitemap's scope (another
	// origin, or a sitemap index nested too deep), or a sitemap robots.txt
	// lists off the site (StayOnSite).
	SitemapScope int64
}

// StopReason tells why a crawl ended.
type StopReason int

// Stop reasons.
const (
	// StopDone: every reachable URL allowed by the configuration was
	// processed.
	StopDone StopReason = iota
	// StopMaxPages: Config.MaxPages pages were delivered.
	StopMaxPages
	// StopCancelled: the context was cancelled; Crawl returned its cause.
	StopCancelled
	// StopAborted: Config.Render (its Render, or its Redirect:
	// RedirectWatcher) returned an error wrapping ErrAbort, or a worker
	// panicked (ErrPanic); Crawl returned it.
	StopAborted
)

// String returns "done", "max-pages" or "cancelled".
func (r StopReason) String() string {
	switch r {
	case StopDone:
		return "done"
	case StopMaxPages:
		return "max-pages"
	case StopCancelled:
		return "cancelled"
	case StopAborted:
		return "aborted"
	}
	return "unknown"
}

// counters is the live, concurrently updated form of Stats.
type counters struct {
	pages, notModified, requests, bytes, discovered atomic.Int64

	errNetwork, errTimeout, errStatus, errTooLarge, errRedirect atomic.Int64

	skScheme, skInvalid, skOffSite, skSpider, skDepth, skTrap, skMaxURLs,
	skRobots, skContentType, skNoIndex, skDuplicate atomic.Int64

	sitemaps, sitemapURLs, skSitemapLastmod, skSitemapScope atomic.Int64
	sitemapsUnavailable                                     atomic.Int64

	rendered, renderErrors atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Pages:               c.pages.Load(),
		NotModified:         c.notModified.Load(),
		Requests:            c.requests.Load(),
		Bytes:               c.bytes.Load(),
		URLsDiscovered:      c.discovered.Load(),
		Rendered:            c.rendered.Load(),
		RenderErrors:        c.renderErrors.Load(),
		Sitemaps:            c.sitemaps.Load(),
		SitemapURLs:         c.sitemapURLs.Load(),
		SitemapUnchanged:    c.skSitemapLastmod.Load(),
		SitemapsUnavailable: c.sitemapsUnavailable.Load(),
		Errors: ErrorCounts{
			Network:  c.errNetwork.Load(),
			Timeout:  c.errTimeout.Load(),
			Status:   c.errStatus.Load(),
			TooLarge: c.errTooLarge.Load(),
			Redirect: c.errRedirect.Load(),
		},
		Skipped: SkipCounts{
			Scheme:       c.skScheme.Load(),
			Invalid:      c.skInvalid.Load(),
			OffSite:      c.skOffSite.Load(),
			Spider:       c.skSpider.Load(),
			Depth:        c.skDepth.Load(),
			Trap:         c.skTrap.Load(),
			MaxURLs:      c.skMaxURLs.Load(),
			Robots:       c.skRobots.Load(),
			ContentType:  c.skContentType.Load(),
			NoIndex:      c.skNoIndex.Load(),
			Duplicate:    c.skDuplicate.Load(),
			SitemapScope: c.skSitemapScope.Load(),
		},
	}
}

// countError bumps the counter of err's kind.
func (c *counters) countError(kind error) {
	switch kind {
	case ErrNetwork:
		c.errNetwork.Add(1)
	case ErrTimeout:
		c.errTimeout.Add(1)
	case ErrStatus:
		c.errStatus.Add(1)
	case ErrTooLarge:
		c.errTooLarge.Add(1)
	case ErrTooManyRedirects, ErrRedirectLoop, ErrBadRedirect:
		c.errRedirect.Add(1)
	case ErrRobotsDisallowed, ErrRobotsUnavailable:
		c.skRobots.Add(1)
	case ErrContentType:
		c.skContentType.Add(1)
	}
}
