package httpfetch

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectorhq/connector/crawl"
	"github.com/connectorhq/connector/extract"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/secret"
	"github.com/connectorhq/connector/store"
)

// errMaxPages is the cause the crawl is cancelled with when MaxPages pages
// have been added or updated.
var errMaxPages = errors.New("httpfetch: MaxPages reached")

// synchronize runs a Synchronize: the crawl of each task in turn, or the
// re-ingestion of the given identifiers.
func (r *Repository) synchronize(ctx context.Context, job *fetch.Job, p *plan, log *slog.Logger) ([]*messages.Element, error) {
	if len(p.ids) > 0 {
		return r.update(ctx, job, p, true)
	}
	prog := newProgress(job, p.tasks)
	for i, task := range p.tasks {
		if err := job.Checkpoint(ctx); err != nil {
			return nil, err
		}
		if err := r.syncTask(ctx, job, p.settings(task), prog, i, log.With("task", task)); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// syncRun is one task's part of a Synchronize.
type syncRun struct {
	r      *Repository
	ctx    context.Context // the action's: Stop cancels it
	job    *fetch.Job
	counts *fetch.Counts
	s      *settings
	ds     store.Datastore
	run    uint64
	log    *slog.Logger
	prog   *progress
	index  int // of the task in prog

	cancelCrawl context.CancelCauseFunc
	ingested    atomic.Int64 // pages added or updated (MaxPages)
	done        atomic.Int64 // pages and failures reported by the crawl

	changes   chan *change
	dead      chan struct{} // closed when the flusher stops on an error
	flushErr  error         // set by the flusher before closing dead
	flushDone chan struct{}

	priors sync.Map // URL → *record read by prior, taken by onPage (one decode per page)

	extract *extractStage // nil: no text extraction
	tr      *TaskRun      // the extension's part (never nil)

	mu     sync.Mutex
	failed map[string]bool // URLs that failed transiently, or whose record could not be read (keep)
	// admitted counts the URLs the crawl admitted to its frontier
	// (crawl.Hooks.OnAdmit): the progress estimate's denominator.
	admitted atomic.Int64
}

// syncTask crawls one task and applies what it finds.
func (r *Repository) syncTask(ctx context.Context, job *fetch.Job, s *settings, prog *progress, index int, log *slog.Logger) error {
	unlock, err := r.lock(ctx, s.Task)
	if err != nil {
		return err
	}
	defer unlock()
	ds, err := r.datastore(s.Task)
	if err != nil {
		return err
	}
	meta, end, err := r.begin(ds, fetch.ActionSynchronize, true)
	if err != nil {
		return err
	}
	defer end()
	sr := &syncRun{
		r: r, ctx: ctx, job: job, counts: counts(job, s.Task), s: s, ds: ds, run: meta.Runs,
		log: log, prog: prog, index: index,
		changes: make(chan *change, r.batchSize), dead: make(chan struct{}), flushDone: make(chan struct{}),
		failed: map[string]bool{},
	}
	if sr.tr, err = r.startTask(ctx, s, PurposeSync, log); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("task %s: %w", s.Task, err)
	}
	defer sr.tr.end()
	prog.set(index, func(t *taskProgress) { t.crawl = messages.State_STATE_PROCESSING })
	go sr.flusher()
	if x := s.extractor(); x != nil {
		sr.extract = newExtractStage(sr, x, s.ExtractThreads)
	}

	crawlCtx, cancelCrawl := context.WithCancelCause(ctx)
	sr.cancelCrawl = cancelCrawl
	cfg := s.crawlConfig()
	cfg.Client, cfg.Logger, cfg.Deny = r.client, log, r.guard
	cfg.Render, cfg.Jar = sr.tr.Render, sr.tr.Jar
	cfg.MaxURLs = r.maxURLs
	stats, cerr := crawl.Crawl(crawlCtx, cfg, crawl.Hooks{
		Gate: job.Checkpoint, Prior: sr.prior, OnPage: sr.onPage, OnError: sr.onError,
		OnAdmit: func(string, int) { sr.admitted.Add(1) },
	})
	cancelCrawl(nil)
	if sr.extract != nil {
		sr.extract.close()
	}
	close(sr.changes)
	<-sr.flushDone
	if r.crawled != nil {
		r.crawled(fetch.CrawlStats{Pages: stats.Pages, NotModified: stats.NotModified, Requests: stats.Requests, Bytes: stats.Bytes})
	}
	log.Info("task crawled", "run", sr.run, "stopped_by", stats.StoppedBy.String(), "pages", stats.Pages,
		"not_modified", stats.NotModified, "requests", stats.Requests, "error", cerr)
	switch {
	case sr.flushErr != nil:
		return sr.flushErr
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case errors.Is(cerr, crawl.ErrAbort):
		return fmt.Errorf("task %s: %w", s.Task, cerr)
	case cerr != nil && !errors.Is(cerr, errMaxPages):
		return fmt.Errorf("httpfetch: %s: crawl: %w", s.Task, cerr)
	}
	prog.set(index, func(t *taskProgress) {
		t.crawl, t.crawlPct = messages.State_STATE_FINISHED, 100
		t.deletions = messages.State_STATE_PROCESSING
	})
	switch {
	case cerr != nil || stats.StoppedBy != crawl.StopDone:
		log.Info("crawl cut short by MaxPages: no page is deleted for not being reached", "max_pages", s.MaxPages)
	case stats.SitemapsUnavailable > 0:
		// The pages only a sitemap lists were not reached because it could
		// not be read this time, not because the site lost them.
		log.Warn("a sitemap could not be read: no page is deleted for not being reached", "sitemaps", stats.SitemapsUnavailable)
	case stats.Skipped.MaxURLs > 0:
		// The crawl stopped recording new URLs: the pages it dropped were
		// not reached for want of room, not because the site lost them.
		log.Warn("the crawl found more distinct URLs than it records: no page is deleted for not being reached",
			"urls_dropped", stats.Skipped.MaxURLs, "max_urls", cmp.Or(cfg.MaxURLs, crawl.DefaultMaxURLs))
	case stats.Pages+stats.NotModified == 0:
		log.Warn("the crawl reached no page: no page is deleted for not being reached")
	default:
		if err := sr.deleteUnreached(); err != nil {
			return err
		}
	}
	prog.set(index, func(t *taskProgress) { t.deletions, t.deletionsPct = messages.State_STATE_FINISHED, 100 })
	return nil
}

// prior is the crawl's Prior hook: validators and links of the last fetch,
// for a conditional request. (A paused action waits in the crawl's Gate
// hook, the job's Checkpoint, asked just before.)
func (sr *syncRun) prior(u string) (crawl.Prior, bool) {
	rec, err := getRecord(sr.ds, u)
	if err != nil {
		sr.log.Warn("datastore read failed; fetching without validators", "url", secret.LogURL(u), "error", err)
		return crawl.Prior{}, false
	}
	if rec == nil {
		return crawl.Prior{}, false
	}
	sr.priors.Store(u, rec)
	// A conditional request is sent only when a 304 needs no content: the
	// target holds what was fetched last, or the page is not a document;
	// and never for a page whose rendering failed last time.
	if sr.r.target != nil && sr.s.ingestible(u) && !sr.noIndex(rec) && !rec.deliveredCurrent() {
		return crawl.Prior{}, false
	}
	if rec.Unrendered || rec.Stale || sr.s.extractStale(rec) || (sr.tr.Unconditional != nil && sr.tr.Unconditional(u)) ||
		rec.Render != sr.tr.shape(rec.MediaType, u) {
		return crawl.Prior{}, false
	}
	pr := crawl.Prior{ETag: rec.ETag, LastModified: rec.LastModified, Links: rec.Links}
	if rec.FetchedMs > 0 {
		pr.FetchedAt = time.UnixMilli(rec.FetchedMs)
	}
	return pr, true
}

// onPage classifies a fetched page against its record and queues the
// change.
func (sr *syncRun) onPage(p *crawl.Page) {
	defer sr.progressed()
	key := p.FinalURL
	var rec *record
	var err error
	if v, ok := sr.priors.LoadAndDelete(key); ok {
		rec = v.(*record)
	} else {
		rec, err = getRecord(sr.ds, key)
	}
	if err != nil {
		sr.counts.Errors.Add(1)
		sr.fail(key, "the datastore could not be read: "+err.Error())
		sr.log.Error("datastore read failed; page skipped", "url", secret.LogURL(key), "error", err)
		// The page is there: kept like a page that failed transiently, so
		// that the deletion pass does not take it for gone.
		sr.keep(key)
		return
	}
	c := &change{key: key, seen: true}
	ingestible := sr.s.ingestible(key)
	if p.NotModified {
		ingestible = ingestible && !sr.noIndex(rec)
		if rec == nil { // Prior had it a moment ago; only a concurrent PurgeDatastore gets here
			sr.counts.Errors.Add(1)
			sr.fail(key, "HTTP 304 for a page the datastore no longer has; it is fetched again next run")
			sr.log.Warn("304 for a URL without a record; page skipped", "url", secret.LogURL(key))
			return
		}
		nr := *rec
		nr.Run = sr.run
		if p.URL != key {
			nr.From = p.URL
		}
		if p.Depth != rec.Depth {
			// Found at another depth (a shorter or longer link chain):
			// the record says so, and the document, which says where
			// the page is, is delivered again by the next run (a 304
			// has no content to build it from now).
			nr.Depth, nr.Parent = p.Depth, p.Parent
			nr.Stale = nr.Stale || rec.mayBeHeld() && ingestible
		}
		c.rec, c.prev = &nr, rec.Delivered
		switch {
		case ingestible:
			nr.Excluded = false
			c.kind = sr.classify(rec, rec.Hash, false) // unchanged, or added when no target and the page was excluded
		default:
			nr.Excluded = true
			sr.removeExcluded(c, rec)
		}
		sr.queue(c)
		return
	}
	if p.RenderErr != nil {
		// Delivered as the crawl parsed it (the document says why), and
		// counted as a failure.
		sr.counts.Errors.Add(1)
		sr.fail(key, "rendering failed (delivered as served): "+p.RenderErr.Error())
		sr.log.Warn("rendering failed; the page is delivered as served", "url", secret.LogURL(key), "error", p.RenderErr)
	}
	hash := p.Hash() // while Body is valid (OnPage's call)
	nr := &record{
		ETag: p.Header.Get("ETag"), LastModified: p.Header.Get("Last-Modified"),
		Hash: hash[:], Links: p.Prior().Links, Run: sr.run,
		Title: pageTitle(p.Title, key), MediaType: p.MediaType, Size: int64(len(p.Body)),
		Depth: p.Depth, Parent: p.Parent, FetchedMs: p.FetchedAt.UnixMilli(),
		Unrendered: p.RenderErr != nil, Render: sr.tr.shape(p.MediaType, key),
		XV: extract.Version,
	}
	c.rec = nr
	if rec != nil {
		nr.Delivered, nr.Removing, nr.Extra, nr.From, c.prev = rec.Delivered, rec.Removing, rec.Extra, rec.From, rec.Delivered
	}
	if p.URL != key {
		nr.From = p.URL
	}
	// A noindex page (the crawl delivers it: crawl.Config.DeliverNoIndex)
	// is recorded for its links, as an excluded page is, and not indexed.
	nr.NoIndex = sr.s.FollowRobots && p.Robots.NoIndex
	if !ingestible || nr.NoIndex {
		nr.Excluded = true
		sr.removeExcluded(c, rec)
		sr.queue(c)
		return
	}
	// Until delivered, a stale document stays stale; so does one
	// delivered by another extractor, or a file's delivered with other
	// extraction settings.
	nr.Stale = rec != nil && (rec.Stale || sr.s.extractStale(rec))
	if !textType(nr.MediaType) {
		nr.Extract = sr.s.extractShape()
	}
	c.kind = sr.classify(rec, nr.Hash, nr.Stale)
	if c.kind == kindUnchanged {
		sr.queue(c)
		return
	}
	// New content. MaxPages counts these pages only, so that successive
	// runs work through a large site.
	if max := int64(sr.s.MaxPages); max > 0 {
		n := sr.ingested.Add(1)
		if n > max {
			return // beyond the limit: left for the next run
		}
		if n == max {
			defer sr.cancelCrawl(errMaxPages)
		}
	}
	if sr.r.target != nil {
		c.doc = sr.tr.document(sr.s.Task, p, nr.Extra)
		if sr.extract != nil && needsExtraction(sr.extract.x, p) {
			p.KeepBody() // extracted by another goroutine
			sr.extract.submit(c, p)
			return
		}
	}
	sr.queue(c)
}

// noIndex reports whether rec's page was noindex at its last 200, and
// robots directives are obeyed: it is not to be indexed.
func (sr *syncRun) noIndex(rec *record) bool {
	return rec != nil && rec.NoIndex && sr.s.FollowRobots
}

// classify compares new content with what the target holds (or, without
// a target, with what was fetched last); stale content (record.Stale) is
// updated even when it is the same.
func (sr *syncRun) classify(rec *record, hash []byte, stale bool) changeKind {
	switch {
	case rec == nil:
		return kindAdded
	case sr.r.target == nil && rec.Excluded:
		return kindAdded
	case sr.r.target == nil && bytes.Equal(rec.Hash, hash):
		return kindUnchanged
	case sr.r.target == nil:
		return kindUpdated
	case rec.Delivered == nil:
		return kindAdded
	case bytes.Equal(rec.Delivered, hash) && !stale:
		return kindUnchanged
	}
	return kindUpdated
}

// removeExcluded makes c remove a page that is no longer a document from
// the target, if the target has it.
func (sr *syncRun) removeExcluded(c *change, rec *record) {
	if rec != nil && rec.mayBeHeld() && sr.r.target != nil {
		c.kind, c.removeRef = kindDeleted, c.key
	}
}

// onError handles a failed URL: a 404 or 410 of a known page deletes it; a
// transient failure protects what the page led to from deletion. Every
// failure counted in errors is also listed with its reason (fetch.Job.Fail).
func (sr *syncRun) onError(u string, _ int, err error) {
	defer sr.progressed()
	var fe *crawl.FetchError
	if !errors.As(err, &fe) {
		sr.counts.Errors.Add(1)
		sr.fail(u, err.Error())
		return
	}
	switch {
	case errors.Is(fe, crawl.ErrStatus) && (fe.Status == 404 || fe.Status == 410):
		rec, gerr := getRecord(sr.ds, fe.URL)
		if gerr == nil && rec != nil {
			sr.queue(sr.deletion(fe.URL, rec))
			return
		}
		sr.counts.Errors.Add(1) // a broken link
		sr.fail(u, fetchReason(u, fe))
	case transient(fe):
		sr.counts.Errors.Add(1)
		sr.fail(u, fetchReason(u, fe))
		sr.keep(u, fe.URL)
	case errors.Is(fe, crawl.ErrRobotsDisallowed), errors.Is(fe, crawl.ErrContentType):
		// Policy, not failure: such a page is not reached, and deleted if
		// it was known (see doc.go).
	default:
		sr.counts.Errors.Add(1)
		sr.fail(u, fetchReason(u, fe))
	}
	sr.log.Debug("fetch failed", "url", secret.LogURL(u), "error", err)
}

// keep protects urls, and the unreached pages they lead to, from this
// run's deletion pass (deleteUnreached): they were not reached for a
// reason that says nothing about their existence.
func (sr *syncRun) keep(urls ...string) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	for _, u := range urls {
		sr.failed[u] = true
	}
}

// fail lists a failure of u in the action's failures.
func (sr *syncRun) fail(u, reason string) { sr.job.Fail(sr.s.Task, u, reason) }

// fetchReason is why the fetch of u failed, without the URL the error
// message starts with; where a redirect led elsewhere, the failing hop.
func fetchReason(u string, fe *crawl.FetchError) string {
	reason := strings.TrimPrefix(strings.TrimPrefix(fe.Error(), "crawl: "), secret.LogURL(fe.URL)+": ")
	if fe.URL != u {
		reason += " (at " + secret.LogURL(fe.URL) + ", where it redirected)"
	}
	return reason
}

// transient reports failures that say nothing about the page's existence:
// network errors, timeouts, 5xx, 408, 429, robots.txt unavailable.
func transient(fe *crawl.FetchError) bool {
	switch {
	case errors.Is(fe, crawl.ErrNetwork), errors.Is(fe, crawl.ErrTimeout), errors.Is(fe, crawl.ErrRobotsUnavailable):
		return true
	case errors.Is(fe, crawl.ErrStatus):
		return fe.Status >= 500 || fe.Status == 408 || fe.Status == 429
	}
	return false
}
