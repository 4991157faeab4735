package crawl

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	neturl "net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nlnwa/whatwg-url/url"
	"golang.org/x/time/rate"

	"github.com/connectorhq/connector/internal/netguard"
	"github.com/connectorhq/connector/internal/panics"
	"github.com/connectorhq/connector/secret"
)

// errMaxPages is the cause the crawl's own context is cancelled with when
// MaxPages pages have been delivered.
var errMaxPages = errors.New("crawl: MaxPages reached")

// Crawl crawls from cfg.StartURLs and returns when every reachable URL has
// been processed, MaxPages pages have been delivered, or ctx is done.
//
// It validates cfg first (see Config.Validate). On cancellation no new
// request starts, requests in flight are aborted, and Crawl returns — after
// every goroutine it started has exited — the statistics so far and
// context.Cause(ctx). Otherwise the error is nil and Stats.StoppedBy tells
// why the crawl ended. Pages and failures are reported through hooks while
// the crawl runs.
//
// The crawl is breadth-first by levels: every URL of depth d is processed
// before any of depth d+1, so each URL is recorded at its minimum depth
// whatever the concurrency.
func Crawl(ctx context.Context, cfg Config, hooks Hooks) (Stats, error) {
	if err := cfg.Validate(); err != nil {
		return Stats{}, err
	}
	c := newCrawler(cfg.withDefaults(), hooks)
	defer c.close()
	return c.run(ctx)
}

// crawler is the state of one Crawl call.
type crawler struct {
	cfg       Config
	hooks     Hooks
	log       *slog.Logger
	client    Fetcher
	transport *http.Transport // owned: closed at the end; nil for a caller's client or Fetcher
	norm      *normalizer
	types     []typePattern
	sites     map[string]bool // site (scheme, host, port) of start URLs, for StayOnSite
	// authOrigins are the origins BasicAuth is sent to.
	authOrigins map[string]bool
	limiter     *rate.Limiter // nil: no rate cap
	burst       int

	robots    robotsCache
	stats     counters
	delivered atomic.Int64
	stop      context.CancelCauseFunc

	mu   sync.Mutex // guards seen and next
	seen *dedup
	next []item // frontier of the level after the one running
}

// item is a URL waiting to be fetched.
type item struct {
	url    string
	depth  int
	parent string

	lastmod     time.Time // <lastmod> of a sitemap URL: the latest instant it may stand for (parseW3CDate)
	fromSitemap bool
	start       bool // a start URL (Config.StartURLs)
}

func newCrawler(cfg Config, hooks Hooks) *crawler {
	c := &crawler{
		cfg:   cfg,
		hooks: hooks,
		log:   cfg.Logger.With("component", "crawl"),
		norm:  newNormalizer(cfg.SessionParams),
		seen:  newDedup(cfg.MaxURLs),
		sites: make(map[string]bool),
	}
	if cfg.Fetcher != nil {
		c.client = cfg.Fetcher
	} else if cfg.Client != nil {
		cl := *cfg.Client
		cl.CheckRedirect = noRedirect
		if cfg.Jar != nil {
			cl.Jar = cfg.Jar
		}
		c.client = &cl
	} else {
		c.client, c.transport = newClient(cfg)
	}
	for _, t := range cfg.AllowedContentTypes {
		p, _ := parseTypePattern(t) // validated
		c.types = append(c.types, p)
	}
	if cfg.BasicAuth != nil {
		c.authOrigins = map[string]bool{}
		for _, o := range cfg.BasicAuth.Origins {
			// In the form the crawl requests (its WHATWG
			// serialisation: an IDN host in ASCII, xn--...), which
			// the requests' origins are compared with; as written,
			// a Unicode host matched no request.
			if w, err := parseStartURL(o); err == nil {
				o = w.Href(false)
			}
			if u, err := neturl.Parse(strings.TrimSpace(o)); err == nil && u.Host != "" {
				c.authOrigins[netguard.Origin(u)] = true
			}
		}
	}
	if cfg.MaxBytesPerSec > 0 {
		c.burst = int(min(cfg.MaxBytesPerSec, 64<<10))
		c.limiter = rate.NewLimiter(rate.Limit(cfg.MaxBytesPerSec), c.burst)
	}
	return c
}

func (c *crawler) close() {
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
}

func (c *crawler) run(parent context.Context) (Stats, error) {
	ctx, stop := context.WithCancelCause(parent)
	defer stop(nil)
	c.stop = stop
	start := time.Now()
	c.log.InfoContext(ctx, "crawl started", "start_urls", len(c.cfg.StartURLs), "depth", c.cfg.Depth, "concurrency", c.cfg.Concurrency)

	frontier := c.seed()
	frontier = append(frontier, c.sitemapSeeds(ctx)...)

	type job struct {
		it    item
		level *sync.WaitGroup
	}
	jobs := make(chan job)
	var workers sync.WaitGroup
	for range c.cfg.Concurrency {
		workers.Go(func() {
			w := &worker{c: c, links: make(map[string]normURL), origins: make(map[string]originKeys)}
			w.text, w.body = getTextBuf(), getBodyBuf()
			defer func() { putTextBuf(w.text); putBodyBuf(w.body) }()
			for j := range jobs {
				w.processSafe(ctx, j.it)
				j.level.Done()
			}
		})
	}

	levels := 0
	for len(frontier) > 0 && ctx.Err() == nil {
		levels++
		var level sync.WaitGroup
	feed:
		for _, it := range frontier {
			level.Add(1)
			select {
			case jobs <- job{it, &level}:
			case <-ctx.Done():
				level.Done()
				break feed
			}
		}
		// Level barrier: depth d+1 starts only when depth d is done, so a
		// URL is always first recorded at its minimum depth.
		level.Wait()
		c.mu.Lock()
		frontier, c.next = c.next, nil
		c.mu.Unlock()
	}
	close(jobs)
	workers.Wait()

	st := c.stats.snapshot()
	st.Levels = levels
	var err error
	switch {
	case parent.Err() != nil:
		st.StoppedBy = StopCancelled
		err = context.Cause(parent)
	case errors.Is(context.Cause(ctx), errMaxPages):
		st.StoppedBy = StopMaxPages
	case errors.Is(context.Cause(ctx), ErrAbort), errors.Is(context.Cause(ctx), ErrPanic):
		st.StoppedBy = StopAborted
		err = context.Cause(ctx)
	}
	c.log.InfoContext(parent, "crawl ended", "stopped_by", st.StoppedBy.String(), "pages", st.Pages,
		"not_modified", st.NotModified, "requests", st.Requests, "bytes", st.Bytes,
		"urls", st.URLsDiscovered, "levels", st.Levels, "elapsed", time.Since(start))
	return st, err
}

// processSafe is process, with a panic turned into the crawl's end
// (ErrPanic): the worker goes on taking jobs (dropped once the crawl's
// context has ended) so that the level it is part of ends.
func (w *worker) processSafe(ctx context.Context, it item) {
	if err := w.processCaught(ctx, it); err != nil {
		w.c.stop(err)
	}
}

// processCaught is process, with a panic its error (wrapping ErrPanic),
// logged with the stack.
func (w *worker) processCaught(ctx context.Context, it item) (err error) {
	defer panics.CatchAs(w.c.log, ErrPanic, &err, "url", secret.LogURL(it.url))
	w.process(ctx, it)
	return nil
}

// seed records the start URLs and returns the depth-0 frontier.
func (c *crawler) seed() []item {
	var frontier []item
	var starts []normURL
	for _, s := range c.cfg.StartURLs {
		u, err := parseStartURL(s) // validated already
		if err != nil {
			continue
		}
		n := c.norm.normalize(u)
		starts = append(starts, n)
		c.sites[n.site] = true
	}
	for _, s := range slices.Concat(c.cfg.SitemapURLs, c.cfg.SiteURLs) {
		if u, err := parseStartURL(s); err == nil {
			c.sites[c.norm.normalize(u).site] = true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range starts {
		added, full := c.seen.add(n.s)
		switch {
		case !added:
			continue
		case full:
			c.stats.skMaxURLs.Add(1)
			continue
		}
		c.stats.discovered.Add(1)
		if !c.spiderAllows(n.s) {
			c.stats.skSpider.Add(1)
			continue
		}
		c.admitted(n.s, 0)
		frontier = append(frontier, item{url: n.s, start: true})
	}
	return frontier
}

func (c *crawler) spiderAllows(u string) bool {
	if c.cfg.SpiderMustHave != nil && !c.cfg.SpiderMustHave.MatchString(u) {
		return false
	}
	if c.cfg.SpiderCantHave != nil && c.cfg.SpiderCantHave.MatchString(u) {
		return false
	}
	return true
}

func (c *crawler) onSite(n normURL) bool {
	return !c.cfg.StayOnSite || c.sites[n.site]
}

// admit applies the URL rules to a newly recorded http(s) URL and bumps
// the counter of the first rule that rejects it. c.mu must be held.
func (c *crawler) admit(n normURL, depth int) bool {
	switch {
	case c.cfg.Depth >= 0 && depth > c.cfg.Depth:
		c.stats.skDepth.Add(1)
	case !c.onSite(n):
		c.stats.skOffSite.Add(1)
	case !c.spiderAllows(n.s):
		c.stats.skSpider.Add(1)
	case c.isTrap(n.s):
		c.stats.skTrap.Add(1)
	default:
		return true
	}
	return false
}

// isTrap applies the link-trap rules. c.mu must be held (query variant
// counts).
func (c *crawler) isTrap(u string) bool {
	cfg := &c.cfg
	if cfg.MaxURLLength > 0 && len(u) > cfg.MaxURLLength {
		return true
	}
	origin, path, query, hasQuery := splitURL(u)
	if cfg.MaxPathSegments > 0 || cfg.MaxSegmentRepeats > 0 {
		segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
		if cfg.MaxPathSegments > 0 && len(segs) > cfg.MaxPathSegments {
			return true
		}
		if cfg.MaxSegmentRepeats > 0 && len(segs) > cfg.MaxSegmentRepeats {
			for i, s := range segs {
				if s == "" {
					continue
				}
				n := 1
				for _, t := range segs[i+1:] {
					if t == s {
						n++
					}
				}
				if n > cfg.MaxSegmentRepeats {
					return true
				}
			}
		}
	}
	if cfg.MaxQueryVariants > 0 && hasQuery && query != "" {
		if c.seen.queryVariant(origin, path) > cfg.MaxQueryVariants {
			return true
		}
	}
	return false
}

// discover records the links of a depth-d page and queues the new ones
// that pass every rule for depth d+1.
func (c *crawler) discover(links []normURL, depth int, parent string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range links {
		added, full := c.seen.add(n.s)
		switch {
		case !added:
			continue
		case full:
			c.stats.skMaxURLs.Add(1)
			continue
		}
		c.stats.discovered.Add(1)
		if !n.http {
			c.stats.skScheme.Add(1)
			continue
		}
		if c.admit(n, depth+1) {
			c.admitted(n.s, depth+1)
			c.next = append(c.next, item{url: n.s, depth: depth + 1, parent: parent})
		}
	}
}

// admitRedirect records a redirect target and checks it against the rules
// (depth excepted: a redirect is not a link).
func (c *crawler) admitRedirect(n normURL, depth int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	added, full := c.seen.add(n.s)
	switch {
	case !added:
		c.stats.skDuplicate.Add(1)
		return false
	case full:
		c.stats.skMaxURLs.Add(1)
		return false
	}
	c.stats.discovered.Add(1)
	if !c.admit(n, depth) {
		return false
	}
	c.admitted(n.s, depth)
	return true
}

// admitted reports a URL admitted to the frontier to Hooks.OnAdmit. c.mu
// must be held.
func (c *crawler) admitted(u string, depth int) {
	if c.hooks.OnAdmit != nil {
		c.hooks.OnAdmit(u, depth)
	}
}

func (c *crawler) report(it item, e *FetchError) {
	c.stats.countError(e.Kind)
	c.log.Debug("fetch failed", "url", secret.LogURL(it.url), "depth", it.depth, "error", e)
	if c.hooks.OnError != nil {
		c.hooks.OnError(it.url, it.depth, e)
	}
}

// deliver hands a page to OnPage unless MaxPages pages have been
// delivered already; the MaxPages-th delivery stops the crawl.
func (c *crawler) deliver(p *Page) bool {
	var n int64
	if c.cfg.MaxPages > 0 {
		n = c.delivered.Add(1)
		if n > int64(c.cfg.MaxPages) {
			return false
		}
	}
	if p.NotModified {
		c.stats.notModified.Add(1)
	} else {
		c.stats.pages.Add(1)
	}
	if c.hooks.OnPage != nil {
		c.hooks.OnPage(p)
	}
	if c.cfg.MaxPages > 0 && n == int64(c.cfg.MaxPages) {
		c.stop(errMaxPages)
	}
	return true
}

func (c *crawler) prior(u string) (*Prior, bool) {
	if c.hooks.Prior == nil {
		return nil, false
	}
	p, ok := c.hooks.Prior(u)
	if !ok || (p.ETag == "" && p.LastModified == "" && p.FetchedAt.IsZero()) {
		return nil, false
	}
	return &p, true
}

var (
	pagePolicyAccept   = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"
	robotsPolicyAccept = "text/plain,*/*;q=0.8"
)

// process fetches one frontier URL, following its redirects, and delivers
// or reports the outcome.
func (w *worker) process(ctx context.Context, it item) {
	c := w.c
	pol := bodyPolicy{limit: c.cfg.MaxPageSize, types: c.types, accept: pagePolicyAccept}
	cur := it.url
	chain := []string{cur}
	for hop := 0; ; hop++ {
		if ctx.Err() != nil {
			return
		}
		if c.cfg.FollowRobots && !w.robotsAllow(ctx, cur, it) {
			return
		}
		if c.hooks.Gate != nil && c.hooks.Gate(ctx) != nil {
			return // the crawl is cancelled: nothing more is reported
		}
		prior, conditional := c.prior(cur)
		if hop == 0 && conditional && !it.lastmod.IsZero() && !prior.FetchedAt.IsZero() && !it.lastmod.After(prior.FetchedAt) {
			w.unchangedBySitemap(it, prior)
			return
		}
		ex, ferr := w.get(ctx, cur, prior, pol)
		if ctx.Err() != nil {
			return // cancelled or MaxPages: nothing more is reported
		}
		if ferr != nil {
			c.report(it, ferr)
			return
		}
		if ex == nil {
			return
		}
		switch st := ex.status; {
		case st == http.StatusOK || st == http.StatusNonAuthoritativeInfo:
			if !w.page(ctx, it, cur, ex) {
				w.recycleBody(ex.body)
			}
			return
		case st == http.StatusNotModified && conditional:
			w.notModified(it, cur, ex, prior)
			return
		case isRedirect(st) && ex.header.Get("Location") != "":
			if hop >= c.cfg.MaxRedirects {
				c.report(it, fetchErr(cur, ErrTooManyRedirects, st, nil))
				return
			}
			next, err := w.redirectTarget(cur, ex.header.Get("Location"))
			if err != nil {
				c.report(it, fetchErr(cur, ErrBadRedirect, st, err))
				return
			}
			if slices.Contains(chain, next.s) {
				c.report(it, fetchErr(cur, ErrRedirectLoop, st, errors.New("to "+next.s)))
				return
			}
			if rw, ok := c.cfg.Render.(RedirectWatcher); ok {
				if err := rw.Redirect(ctx, it.url, next.s); err != nil {
					if ctx.Err() == nil && errors.Is(err, ErrAbort) {
						c.stop(err) // as render does: not once cancelled
					}
					return
				}
			}
			if !c.admitRedirect(next, it.depth) {
				if it.start && !c.onSite(next) {
					c.report(it, fetchErr(cur, ErrOffSite, st, &OffSiteError{To: next.s}))
				}
				return
			}
			chain = append(chain, next.s)
			cur = next.s
		case isRedirect(st):
			c.report(it, fetchErr(cur, ErrBadRedirect, st, errors.New("no Location header")))
			return
		default:
			c.report(it, fetchErr(cur, ErrStatus, st, nil))
			w.recycleBody(ex.body)
			return
		}
	}
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMultipleChoices, http.StatusMovedPermanently, http.StatusFound,
		http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// redirectTarget resolves a Location header against the URL that sent it.
func (w *worker) redirectTarget(from, location string) (normURL, error) {
	base, err := parseURL(nil, from)
	if err != nil {
		return normURL{}, err
	}
	n, err := w.c.norm.resolve(base, location)
	if err != nil {
		return normURL{}, err
	}
	if !n.http {
		return normURL{}, errNotHTTP
	}
	return n, nil
}

// page builds, delivers and follows a 200 page. It reports whether
// OnPage kept the body (Page.KeepBody); otherwise its buffer is the
// worker's again.
func (w *worker) page(ctx context.Context, it item, final string, ex *exchange) (bodyKept bool) {
	c := w.c
	p := &Page{
		URL:       it.url,
		FinalURL:  final,
		Status:    ex.status,
		Header:    headerSubset(ex.header),
		MediaType: ex.mediaType,
		Body:      ex.body,
		Depth:     it.depth,
		Parent:    it.parent,
		FetchedAt: ex.fetchedAt,
		Lang:      strings.TrimSpace(ex.header.Get("Content-Language")),
		Robots:    parseXRobotsTag(ex.header.Values("X-Robots-Tag"), c.cfg.RobotsAgent),
	}
	var links []normURL
	if isHTMLType(ex.mediaType) {
		doc := parseHTMLWith(ex.body, ex.header.Get("Content-Type"), c.cfg.RobotsAgent, &w.text, w.rawLinks)
		defer func() {
			if cap(doc.links) <= maxKeptLinks {
				clear(doc.links) // the strings are garbage once resolved
				w.rawLinks = doc.links[:0]
			}
		}()
		p.Title, p.Text, p.Meta = doc.title, doc.text, doc.meta
		if doc.lang != "" {
			p.Lang = doc.lang
		}
		p.Robots = p.Robots.merge(doc.robots)
		base := &lazyURL{href: final}
		var bk baseKeys
		if doc.base != "" {
			if b, err := base.get(); err == nil {
				if bu, err := parseURL(b, doc.base); err == nil {
					base = &lazyURL{u: bu, done: true}
				}
			}
		} else {
			w.pageKeys(final, &bk)
		}
		usable := bk.done
		if !usable {
			_, err := base.get()
			usable = err == nil
		}
		if usable {
			links, p.Links = w.resolveWith(base, &bk, doc.links, w.linkBuf[:0])
			if cap(links) <= maxKeptLinks {
				w.linkBuf = links[:0] // discover reads links before the next page
			}
			if doc.canonical != "" {
				if b, err := base.get(); err == nil {
					if n, err := c.norm.resolve(b, doc.canonical); err == nil && n.http {
						p.CanonicalURL = n.s
					}
				}
			}
		}
	}
	if c.cfg.Render != nil && isHTMLType(ex.mediaType) && !(c.cfg.FollowRobots && p.Robots.NoIndex && p.Robots.NoFollow) {
		if !w.render(ctx, p, final, &links) {
			return p.bodyKept
		}
	}
	p.followed = !(c.cfg.FollowRobots && p.Robots.NoFollow)
	if c.log.Enabled(ctx, slog.LevelDebug) { // the arguments would cost allocations on every page
		c.log.DebugContext(ctx, "page fetched", "url", secret.LogURL(it.url), "final_url", secret.LogURL(final), "depth", it.depth,
			"bytes", len(ex.body), "links", len(p.Links), "noindex", p.Robots.NoIndex, "nofollow", p.Robots.NoFollow)
	}
	followed := p.followed // p is the callee's once delivered
	bodyKept = p.bodyKept  // by Render
	noIndex := c.cfg.FollowRobots && p.Robots.NoIndex
	if noIndex {
		c.stats.skNoIndex.Add(1)
	}
	if !noIndex || c.cfg.DeliverNoIndex {
		if !c.deliver(p) {
			return bodyKept
		}
		bodyKept = p.bodyKept // read once OnPage has returned
	}
	if followed {
		c.discover(links, it.depth, it.url)
	}
	return bodyKept
}

// render runs Config.Render on an HTML page: the renderer may replace the
// page's fields; the links it returns replace the parsed ones, and the
// robots directives of its metadata add to the page's. A render that
// fails keeps what was parsed, with Page.RenderErr set. It returns false
// when the page must be dropped: the crawl was cancelled, or the renderer
// aborted it (ErrAbort).
func (w *worker) render(ctx context.Context, p *Page, final string, links *[]normURL) bool {
	c := w.c
	raw, err := c.cfg.Render.Render(ctx, p)
	switch {
	case ctx.Err() != nil:
		return false
	case errors.Is(err, ErrAbort):
		c.stop(err)
		return false
	case err != nil:
		p.RenderErr = err
		c.stats.renderErrors.Add(1)
		return true
	}
	c.stats.rendered.Add(1)
	for _, name := range []string{"robots", strings.ToLower(c.cfg.RobotsAgent)} {
		for _, v := range p.Meta[name] {
			p.Robots = p.Robots.merge(parseRobotsDirectives(v))
		}
	}
	if raw == nil && p.CanonicalURL == "" {
		return true
	}
	base, err := parseURL(nil, final)
	if err != nil {
		p.CanonicalURL = ""
		return true
	}
	if p.CanonicalURL != "" {
		// The renderer's canonical URL (as a browser resolved it)
		// in the crawl's form, as a parsed page's: no fragment, no
		// session id; none when it is not http(s).
		href := p.CanonicalURL
		p.CanonicalURL = ""
		if n, err := c.norm.resolve(base, href); err == nil && n.http {
			p.CanonicalURL = n.s
		}
	}
	if raw != nil {
		*links, p.Links = w.resolveLinks(base, raw)
	}
	return true
}

// resolveLinks resolves raw hrefs against base. It returns every distinct
// resolved URL (any scheme) for discovery and the http(s) ones for
// Page.Links.
func (w *worker) resolveLinks(base *url.Url, raw []string) (all []normURL, httpLinks []string) {
	var bk baseKeys
	return w.resolveWith(&lazyURL{u: base, done: true}, &bk, raw, nil)
}

// lazyURL is a page's base URL, parsed only when a link needs the parser.
type lazyURL struct {
	href string
	u    *url.Url
	err  error
	done bool
}

func (l *lazyURL) get() (*url.Url, error) {
	if !l.done {
		l.done = true
		l.u, l.err = parseURL(nil, l.href)
	}
	return l.u, l.err
}

// resolveWith is resolveLinks against a lazily parsed base whose keys bk
// may be computed already (see pageKeys), appending to dst (of length 0).
func (w *worker) resolveWith(base *lazyURL, bk *baseKeys, raw []string, dst []normURL) (all []normURL, httpLinks []string) {
	c := w.c
	set := linkSet{all: dst, m: w.linkSeen}
	clear(set.m)
	defer func() {
		if len(set.m) <= maxKeptLinks {
			w.linkSeen = set.m
		} else {
			w.linkSeen = nil
		}
	}()
	for _, r := range raw {
		n, fast := c.norm.fastResolve(base.u, bk, r)
		if !fast {
			b, err := base.get()
			if err != nil {
				c.stats.skInvalid.Add(1)
				continue
			}
			key := linkCacheKey(b, bk, r)
			var cached bool
			n, cached = w.links[key]
			if key == "" || !cached {
				n, err = c.norm.resolve(b, r)
				if err != nil {
					c.stats.skInvalid.Add(1)
					continue
				}
				if key != "" {
					if len(w.links) >= linkCacheSize {
						clear(w.links)
					}
					w.links[key] = n
				}
			}
		}
		if set.all == nil {
			set.all = make([]normURL, 0, len(raw))
		}
		if set.add(n, len(raw)) && n.http {
			if httpLinks == nil {
				httpLinks = make([]string, 0, len(raw))
			}
			httpLinks = append(httpLinks, n.s)
		}
	}
	return set.all, httpLinks
}

// linkSet is the distinct links of one page, in order: a linear search
// while there are few, a map past that (kept empty between pages).
type linkSet struct {
	all   []normURL
	m     map[string]struct{}
	inMap bool // m holds all
}

// maxKeptLinks bounds the link buffers a worker keeps from one page to
// the next: a page with more links gets buffers of its own.
const maxKeptLinks = 4096

// linkSetLinear is how many links linkSet searches linearly.
const linkSetLinear = 32

// add appends n unless it is there already, and reports whether it did;
// expect is how many links the page has at most.
func (s *linkSet) add(n normURL, expect int) bool {
	if !s.inMap {
		if len(s.all) < linkSetLinear {
			for i := range s.all {
				if s.all[i].s == n.s {
					return false
				}
			}
			s.all = append(s.all, n)
			return true
		}
		if s.m == nil {
			s.m = make(map[string]struct{}, expect)
		}
		for i := range s.all {
			s.m[s.all[i].s] = struct{}{}
		}
		s.inMap = true
	}
	if _, dup := s.m[n.s]; dup {
		return false
	}
	s.m[n.s] = struct{}{}
	s.all = append(s.all, n)
	return true
}

// pageKeys computes into bk the keys of a page's base URL href (a URL the
// crawl normalised, so a serialisation of the parser's), without parsing
// it: host and site are kept per origin by the worker (parsed once). bk
// is left not computed when href cannot be read so.
func (w *worker) pageKeys(href string, bk *baseKeys) {
	ps := pathStart(href)
	origin := href[:ps]
	o, ok := w.origins[origin]
	if !ok {
		if w.origins == nil {
			w.origins = make(map[string]originKeys)
		}
		u, err := parseURL(nil, href)
		if err != nil || !isHTTPScheme(u.Scheme()) || u.Href(false)[:pathStart(u.Href(false))] != origin {
			return
		}
		o = originKeys{host: u.Hostname(), site: siteOf(u.Scheme(), u.Hostname(), u.Port())}
		if len(w.origins) >= linkCacheSize {
			clear(w.origins)
		}
		w.origins[origin] = o
	}
	p := href
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if ps >= len(p) {
		return
	}
	*bk = baseKeys{origin: origin, dir: p[:ps+strings.LastIndexByte(p[ps:], '/')+1], host: o.host, site: o.site, ok: true, done: true}
}

// originKeys are the parts of normURL that depend only on the origin.
type originKeys struct{ host, site string }

// linkCacheSize bounds a worker's cache of resolved links.
const linkCacheSize = 4096

// baseKeys caches, for one page, the parts of its base URL that the
// resolution of a reference depends on.
type baseKeys struct {
	origin string // scheme://userinfo@host:port
	dir    string // origin + path up to and including its last '/'
	host   string // normURL.host of base
	site   string // normURL.site of base
	ok     bool   // computed (and base is http(s))
	done   bool
}

func (b *baseKeys) compute(base *url.Url) bool {
	if !b.done {
		b.done = true
		// A base with a password is left to resolve, which drops the
		// user information (normalize); the crawl's own pages never
		// have one.
		if isHTTPScheme(base.Scheme()) && base.Password() == "" {
			href := base.Href(true)
			if i := strings.IndexAny(href, "?#"); i >= 0 {
				href = href[:i]
			}
			ps := pathStart(href)
			b.origin = href[:ps]
			b.dir = href[:ps+strings.LastIndexByte(href[ps:], '/')+1]
			b.ok = ps < len(href)
			b.host = base.Hostname()
			b.site = siteOf(base.Scheme(), b.host, base.Port())
		}
	}
	return b.ok
}

// linkCacheKey returns the key under which the resolution of ref against
// base can be cached across pages, or "" when it cannot. What the WHATWG
// parser takes from base decides the key:
//   - absolute http(s) URLs: nothing (key: the URL);
//   - path-absolute references "/x": base's scheme://userinfo@host:port;
//   - relative paths "x/y.html", "../z": that origin and base's path up to
//     its last '/' (only references without a scheme-like ':', a '\', a
//     leading '?' or '#', or white space, which the parser treats
//     specially).
//
// Navigation links repeated on every page of a site, and relative links
// between the pages of one folder, are thus resolved once per worker.
func linkCacheKey(base *url.Url, bk *baseKeys, ref string) string {
	switch {
	case strings.HasPrefix(ref, "http://") || strings.HasPrefix(ref, "https://"):
		return ref
	case len(ref) >= 2 && ref[0] == '/' && ref[1] != '/' && ref[1] != '\\':
		if !bk.compute(base) {
			return ""
		}
		return bk.origin + "\x00" + ref
	case plainRelative(ref):
		if !bk.compute(base) {
			return ""
		}
		return bk.dir + "\x01" + ref
	}
	return ""
}

// plainRelative reports whether ref is a relative path reference whose
// resolution depends only on base's origin and folder.
func plainRelative(ref string) bool {
	if ref == "" || ref[0] == '/' || ref[0] == '?' || ref[0] == '#' {
		return false
	}
	for i := 0; i < len(ref); i++ {
		switch c := ref[i]; {
		case c <= ' ' || c == 0x7f || c == '\\':
			return false
		case c == ':':
			return false // a scheme, or could be read as one
		case c == '?' || c == '#':
			return true // the rest is query or fragment, taken from ref
		}
	}
	return true
}

// notModified delivers a 304 and follows the links the earlier crawl saw.
func (w *worker) notModified(it item, final string, ex *exchange, prior *Prior) {
	c := w.c
	var links []normURL
	var httpLinks []string
	for _, l := range prior.Links {
		n, err := c.norm.resolve(nil, l)
		if err != nil || !n.http {
			continue
		}
		links = append(links, n)
		httpLinks = append(httpLinks, n.s)
	}
	p := &Page{
		URL:         it.url,
		FinalURL:    final,
		Status:      ex.status,
		NotModified: true,
		Header:      headerSubset(ex.header),
		Links:       httpLinks,
		Depth:       it.depth,
		Parent:      it.parent,
		FetchedAt:   ex.fetchedAt,
		followed:    true,
	}
	if !c.deliver(p) {
		return
	}
	c.discover(links, it.depth, it.url)
}

// robotsAllow checks u against its host's robots.txt (fetching it on first
// use) and reports a refusal.
func (w *worker) robotsAllow(ctx context.Context, u string, it item) bool {
	c := w.c
	origin := originOf(u)
	e, err := c.robots.get(ctx, origin, func() (*robotsRules, error, bool) { return w.loadRobots(ctx, origin) })
	if err != nil {
		return false // cancelled
	}
	if e.rules.allowed(robotsPath(u)) {
		return true
	}
	if e.rules.disallowAll {
		c.report(it, fetchErr(u, ErrRobotsUnavailable, 0, e.cause))
	} else {
		c.report(it, fetchErr(u, ErrRobotsDisallowed, 0, nil))
	}
	return false
}

// loadRobots fetches and parses origin's robots.txt. ok is false when the
// crawl was cancelled meanwhile.
func (w *worker) loadRobots(ctx context.Context, origin string) (rules *robotsRules, cause error, ok bool) {
	c := w.c
	pol := bodyPolicy{limit: robotsMaxBytes, truncate: true, accept: robotsPolicyAccept}
	target := origin + "/robots.txt"
	unavailable := func(err error) (*robotsRules, error, bool) {
		c.log.Debug("robots.txt unavailable", "url", secret.LogURL(target), "error", err, "ignored", c.cfg.IgnoreRobotsErrors)
		if c.cfg.IgnoreRobotsErrors {
			// cause kept: the Sitemap: lines are unknown (sitemapSeeds)
			return allowAll, err, true
		}
		return disallowAllRules, err, true
	}
	for range robotsMaxRedirects + 1 {
		ex, ferr := w.get(ctx, target, nil, pol)
		if ctx.Err() != nil {
			return nil, nil, false
		}
		if ferr != nil {
			return unavailable(ferr)
		}
		if ex == nil {
			return nil, nil, false
		}
		st := ex.status
		switch {
		case st >= 200 && st <= 299:
			return parseRobots(string(ex.body), c.cfg.RobotsAgent), nil, true
		case isRedirect(st) && ex.header.Get("Location") != "":
			next, err := w.redirectTarget(target, ex.header.Get("Location"))
			if err != nil {
				return allowAll, nil, true
			}
			if !c.onSite(next) {
				// StayOnSite: the site must not send the crawl elsewhere
				// (another host, or its own machine's other ports); as
				// a redirect that cannot be followed, it is no robots.txt.
				c.log.Debug("robots.txt redirects off the site: not followed", "url", secret.LogURL(target), "to", secret.LogURL(next.s))
				return allowAll, nil, true
			}
			target = next.s
		case st == http.StatusTooManyRequests || st >= 500:
			return unavailable(fetchErr(target, ErrStatus, st, nil))
		default: // 4xx, and anything else unusable: no robots.txt
			return allowAll, nil, true
		}
	}
	return allowAll, nil, true // too many redirects: Google treats it as absent
}
