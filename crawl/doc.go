// Package crawl is the web crawl engine of the HTTP connector: a pure
// library (no actors, no ACI) that crawls web sites fast and politely and
// hands each page to the caller.
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
// fragment and removes session ids (Config.SessionParams). Only http and
// https URLs are fetched; other schemes are counted in Stats.Skipped.Scheme.
// Deduplication keeps a 64-bit hash per URL (see dedup.go for the collision
// trade-off).
//
// # Politeness
//
// With FollowRobots, robots.txt is fetched once per origin
// (scheme://host:port) per crawl, with Google's semantics (grobotstxt
// parser, longest match, product-token user-agent matching, redirects
// followed up to 5 hops, 4xx = allow all, 5xx/429/network error = disallow
// all unless IgnoreRobotsErrors, 500 KiB read at most). PageDelay spaces
// each worker's requests; MaxBytesPerSec caps the whole crawl's download
// rate (a token bucket on body bytes read).
//
// # Termination
//
// Depth, MaxPages, MaxURLs and the link-trap rules (URL length, path
// segments, repeated segments, query variants per path, session ids) bound
// a crawl of an infinite site. Cancelling ctx stops it: no request starts
// after that, requests in flight are aborted, and Crawl returns only after
// all its goroutines have exited.
//
// # Concurrency of hooks
//
// Hooks are called from up to Config.Concurrency worker goroutines at once;
// they must be safe for concurrent use. A Page belongs to the callee once
// OnPage is called.
package crawl
