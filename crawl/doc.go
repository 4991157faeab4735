// Package crawl is the web crawl engine of the HTTP and Web connectors: a
// pure library (no actors, no ACI) that crawls web sites fast and politely
// and hands each page to the caller.
//
// # Usage
//
//	stats, err := crawl.Crawl(ctx, crawl.Config{
//		StartURLs:    []string{"https://example.com/"},
//		Depth:        2,
//		StayOnSite:   true,
//		FollowRobots: true,
//		Concurrency:  8,
//	}, crawl.Hooks{
//		Prior:   store.Prior,                // validators + links from the last crawl
//		OnPage:  func(p *crawl.Page) { ... }, // called concurrently
//		OnError: func(u string, depth int, err error) { ... },
//	})
//
// # Order and depth
//
// The crawl runs level by level (breadth first): all URLs of depth d are
// processed by the workers before any URL of depth d+1 is started. A URL is
// recorded the first time it is found, so it always gets its minimum link
// depth, whatever the concurrency; per-depth page counts are exact.
//
// # URLs
//
// Every URL (start URLs, links, Location headers, Prior links) is parsed by
// the WHATWG URL parser (github.com/nlnwa/whatwg-url), relative to the
// document base (<base href> honoured), and serialised: lower-case scheme
// and host, IDNA, default port removed, dot segments resolved,
// percent-encoding as the standard prescribes. The crawl then drops the
// fragment and removes session ids (Config.SessionParams). Links whose
// resolution is a plain concatenation (a relative path or "/path" of bytes
// the parser copies unchanged, no dot segment; or an absolute URL with a
// plain lower-case host) are resolved without the parser, to the same
// result (urlnorm.go, fastResolve; held to the parser by a test over the
// WHATWG suite and a fuzz target). Only http and
// https URLs are fetched; other schemes are counted in Stats.Skipped.Scheme.
// Deduplication keeps a 64-bit hash per URL (see dedup.go for the collision
// trade-off).
//
// # Politeness
//
// With FollowRobots, robots.txt is fetched once per origin
// (scheme://host:port) per crawl, with Google's semantics (grobotstxt
// parser, longest match, product-token user-agent matching, redirects
// followed up to 5 hops (with StayOnSite, only on the site: one off it
// is treated as no robots.txt), 4xx = allow all, 5xx/429/network error = disallow
// all unless IgnoreRobotsErrors, 500 KiB read at most). PageDelay spaces
// each worker's requests; MaxBytesPerSec caps the whole crawl's download
// rate (a token bucket on body bytes read).
//
// # Sitemaps
//
// Config.SitemapURLs, and with FollowSitemaps the Sitemap: lines of the
// start URLs' robots.txt (else /sitemap.xml), add the page URLs of
// sitemaps and sitemap indexes (XML, gzipped, or text) at depth 0, before
// the first level runs. They pass the same rules as links; each sitemap
// may list only URLs of its origin; sizes, entries, nesting and the
// number of files are bounded (sitemap.go). A <lastmod> not after
// Prior.FetchedAt delivers the page as not modified without a request; a
// <lastmod> without seconds, or without a time, counts as the end of its
// minute, day, month or year (in the zone where it ends last, UTC-12).
//
// # Termination
//
// Depth, MaxPages, MaxURLs and the link-trap rules (URL length, path
// segments, repeated segments, query variants per path, session ids) bound
// a crawl of an infinite site. Cancelling ctx stops it: no request starts
// after that, requests in flight are aborted, and Crawl returns only after
// all its goroutines have exited. A panic while a page is processed (by
// the crawl or by a hook) stops it the same way, and Crawl returns
// ErrPanic with the panic's value (Stats.StoppedBy StopAborted).
//
// # Choices where the connector documentation is silent
//
//   - Links are taken from <a href>, <area href>, <frame src> and <iframe
//     src>; not from <link>, <img>, <script> (assets are not pages).
//     rel="nofollow" on a single link is not honoured; page-level robots
//     directives are.
//   - With FollowRobots, a noindex page is fetched (its links are followed
//     unless nofollow) but not delivered; it is counted in
//     Stats.Skipped.NoIndex.
//   - robots.txt answered with 429 counts as unavailable (like 5xx), as
//     Google does; other 4xx mean "no robots.txt".
//   - A redirect does not add depth. Its target is recorded like a link;
//     when it was recorded already (a page linked to it, or another
//     redirect led there) the chain stops and nothing is delivered for it
//     (Stats.Skipped.Duplicate): that URL is, or was, fetched on its own.
//   - Hooks.Prior is asked for every URL requested, redirect hops included;
//     a 304 is delivered under the chain's first URL with FinalURL set.
//   - MaxPages counts 304 deliveries too.
//   - The level barrier means a slow page holds the next level back until
//     it completes or times out; that is the price of exact depths.
//   - Query strings are percent-encoded as UTF-8 whatever the document's
//     charset (the WHATWG "encoding override" is not applied); text is
//     decoded with the document's charset: a byte order mark's (the
//     mark is not text), the Content-Type's, an XML declaration's
//     (XHTML's <?xml ... encoding="windows-1251"?>), or a <meta charset>
//     of the first 1024 bytes or, past them, of the head (as Chromium
//     reads them).
//   - Bytes for MaxBytesPerSec, MaxPageSize and Stats.Bytes are body bytes
//     after transport decompression.
//
// # Concurrency of hooks
//
// Hooks are called from up to Config.Concurrency worker goroutines at once;
// they must be safe for concurrent use. A Page belongs to the callee once
// OnPage is called, except its Body: that buffer is lent for the call
// (each worker reads its pages into one buffer, so that a crawl does not
// allocate, and collect, a body per page); Page.KeepBody keeps it.
// Page.Hash (the SHA-256 of the body) is computed when called, so it too
// is for the call, or for after it once KeepBody was called: a crawl
// whose hooks never ask for it does not hash its pages.
package crawl
