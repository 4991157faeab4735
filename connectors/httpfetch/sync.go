package httpfetch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectorhq/connector/crawl"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// errMaxPages is the cause the crawl is cancelled with when MaxPages pages
// have been added or updated.
var errMaxPages = errors.New("httpfetch: MaxPages reached")

// flushInterval bounds how long a fetched page waits in a part-filled
// batch, so that a Stop loses at most this much work.
const flushInterval = time.Second

// deliveryTimeout bounds one delivery to the target once it has started:
// a batch being delivered when Stop arrives is finished (or fails) within
// it, never half-recorded.
const deliveryTimeout = 2 * time.Minute

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
		if err := r.syncTask(ctx, job, p.set[task], prog, i, log.With("task", task)); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// change is the outcome of one page (or one deletion) of a Synchronize,
// applied by flush: delivered to the target, then recorded in the
// datastore, then counted.
type change struct {
	key  string
	rec  *record // the record to store; nil deletes the key
	kind changeKind
	seen bool // a page examined (200 or 304)

	doc       *ingest.Document // to add or replace in the target
	removeRef string           // to remove from the target
	prev      []byte           // record.Delivered before this change, kept if delivery fails

	skip bool // set by flush: write nothing (a removal that failed)
}

type changeKind int

const (
	kindNone changeKind = iota // nothing to count besides seen (excluded page)
	kindAdded
	kindUpdated
	kindUnchanged
	kindDeleted
)

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
	failed map[string]bool // URLs that failed transiently
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
		sr.log.Warn("datastore read failed; fetching without validators", "url", u, "error", err)
		return crawl.Prior{}, false
	}
	if rec == nil {
		return crawl.Prior{}, false
	}
	sr.priors.Store(u, rec)
	// A conditional request is sent only when a 304 needs no content: the
	// target holds what was fetched last, or the page is not a document.
	if sr.r.target != nil && sr.s.ingestible(u) && !rec.deliveredCurrent() {
		return crawl.Prior{}, false
	}
	if sr.tr.Unconditional != nil && sr.tr.Unconditional(u) {
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
		sr.log.Error("datastore read failed; page skipped", "url", key, "error", err)
		return
	}
	c := &change{key: key, seen: true}
	ingestible := sr.s.ingestible(key)
	if p.NotModified {
		if rec == nil { // Prior had it a moment ago; only a concurrent PurgeDatastore gets here
			sr.counts.Errors.Add(1)
			sr.fail(key, "HTTP 304 for a page the datastore no longer has; it is fetched again next run")
			sr.log.Warn("304 for a URL without a record; page skipped", "url", key)
			return
		}
		nr := *rec
		nr.Run = sr.run
		c.rec, c.prev = &nr, rec.Delivered
		switch {
		case ingestible:
			nr.Excluded = false
			c.kind = sr.classify(rec, rec.Hash) // unchanged, or added when no target and the page was excluded
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
		sr.log.Warn("rendering failed; the page is delivered as served", "url", key, "error", p.RenderErr)
	}
	nr := &record{
		ETag: p.Header.Get("ETag"), LastModified: p.Header.Get("Last-Modified"),
		Hash: p.Hash[:], Links: p.Prior().Links, Run: sr.run,
		Title: pageTitle(p.Title, key), MediaType: p.MediaType, Size: int64(len(p.Body)),
		Depth: p.Depth, Parent: p.Parent, FetchedMs: p.FetchedAt.UnixMilli(),
	}
	c.rec = nr
	if rec != nil {
		nr.Delivered, nr.Extra, c.prev = rec.Delivered, rec.Extra, rec.Delivered
	}
	if !ingestible {
		nr.Excluded = true
		sr.removeExcluded(c, rec)
		sr.queue(c)
		return
	}
	c.kind = sr.classify(rec, nr.Hash)
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
			sr.extract.submit(c, p)
			return
		}
	}
	sr.queue(c)
}

// classify compares new content with what the target holds (or, without
// a target, with what was fetched last).
func (sr *syncRun) classify(rec *record, hash []byte) changeKind {
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
	case bytes.Equal(rec.Delivered, hash):
		return kindUnchanged
	}
	return kindUpdated
}

// removeExcluded makes c remove a page that is no longer a document from
// the target, if the target has it.
func (sr *syncRun) removeExcluded(c *change, rec *record) {
	if rec != nil && rec.Delivered != nil && sr.r.target != nil {
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
		sr.mu.Lock()
		sr.failed[u], sr.failed[fe.URL] = true, true
		sr.mu.Unlock()
	case errors.Is(fe, crawl.ErrRobotsDisallowed), errors.Is(fe, crawl.ErrContentType):
		// Policy, not failure: such a page is not reached, and deleted if
		// it was known (see doc.go).
	default:
		sr.counts.Errors.Add(1)
		sr.fail(u, fetchReason(u, fe))
	}
	sr.log.Debug("fetch failed", "url", u, "error", err)
}

// fail lists a failure of u in the action's failures.
func (sr *syncRun) fail(u, reason string) { sr.job.Fail(sr.s.Task, u, reason) }

// fetchReason is why the fetch of u failed, without the URL the error
// message starts with; where a redirect led elsewhere, the failing hop.
func fetchReason(u string, fe *crawl.FetchError) string {
	reason := strings.TrimPrefix(strings.TrimPrefix(fe.Error(), "crawl: "), fe.URL+": ")
	if fe.URL != u {
		reason += " (at " + fe.URL + ", where it redirected)"
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

// deletion is the change that forgets a known URL (and removes its
// document from the target when the target has it).
func (sr *syncRun) deletion(u string, rec *record) *change {
	c := &change{key: u, prev: rec.Delivered}
	if !rec.Excluded || rec.Delivered != nil {
		c.kind = kindDeleted
	}
	if rec.Delivered != nil && sr.r.target != nil {
		c.removeRef = u
	}
	return c
}

// queue hands c to the flusher. When the action is stopped the change is
// dropped: neither delivered nor recorded nor counted.
func (sr *syncRun) queue(c *change) {
	select {
	case sr.changes <- c:
		return
	default:
	}
	select {
	case sr.changes <- c:
	case <-sr.dead:
	case <-sr.ctx.Done():
	}
}

// flusher applies changes in batches of batchSize, or of batchBytes of
// documents, or what has waited flushInterval. After Stop it applies
// nothing more; a batch being applied when Stop arrives is completed.
func (sr *syncRun) flusher() {
	defer close(sr.flushDone)
	tick := time.NewTicker(flushInterval)
	defer tick.Stop()
	batch := make([]*change, 0, sr.r.batchSize)
	size := 0
	flush := func() bool {
		size = 0
		if len(batch) == 0 {
			return true
		}
		if sr.ctx.Err() != nil {
			batch = batch[:0]
			return true
		}
		err := sr.r.apply(sr.ctx, sr.ds, sr.counts, batch, sr.log, sr.fail)
		batch = batch[:0]
		if err != nil {
			sr.flushErr = err
			close(sr.dead)
			sr.cancelCrawl(err)
			return false
		}
		return true
	}
	for {
		select {
		case c, ok := <-sr.changes:
			if !ok {
				flush()
				return
			}
			batch = append(batch, c)
			size += docBytes(c.doc)
			if (len(batch) >= sr.r.batchSize || size >= sr.r.batchBytes()) && !flush() {
				for range sr.changes { // drain until the crawl has stopped
				}
				return
			}
		case <-tick.C:
			if !flush() {
				for range sr.changes {
				}
				return
			}
		}
	}
}

// apply delivers a batch of changes to the target, records the outcome in
// the datastore in one Update, and counts it. Deliveries run to their end
// even if ctx is cancelled meanwhile (bounded by deliveryTimeout), so that
// the datastore always says what the target holds. A failed delivery is
// counted as ingestfailed and leaves record.Delivered as it was, so the
// next run delivers again. It returns only datastore errors.
//
// fail, when not nil, lists each document of a failed delivery or removal
// in the action's failures.
func (r *Repository) apply(ctx context.Context, ds store.Datastore, cnt *fetch.Counts, batch []*change, log *slog.Logger, fail func(url, reason string)) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deliveryTimeout)
	defer cancel()
	var docs []*ingest.Document
	var refs []string
	for _, c := range batch {
		if c.doc != nil {
			docs = append(docs, c.doc)
		}
		if c.removeRef != "" {
			refs = append(refs, c.removeRef)
		}
	}
	if len(docs) > 0 {
		err := r.target.Add(dctx, docs)
		var added, updated uint64
		for _, c := range batch {
			if c.doc == nil {
				continue
			}
			switch {
			case err != nil:
				c.rec.Delivered = c.prev
			case c.kind == kindAdded:
				c.rec.Delivered, added = c.rec.Hash, added+1
			default:
				c.rec.Delivered, updated = c.rec.Hash, updated+1
			}
		}
		if err != nil {
			cnt.IngestFailed.Add(uint64(len(docs)))
			if fail != nil {
				for _, c := range batch {
					if c.doc != nil {
						fail(c.key, "delivery to the ingestion target failed (it is sent again next run): "+err.Error())
					}
				}
			}
			log.Error("delivery failed; the documents will be sent again by the next run", "documents", len(docs), "error", err)
		} else {
			cnt.IngestAdded.Add(added)
			cnt.IngestUpdated.Add(updated)
		}
	}
	if len(refs) > 0 {
		err := r.target.Remove(dctx, refs)
		for _, c := range batch {
			if c.removeRef == "" {
				continue
			}
			switch {
			case err != nil && c.rec == nil:
				c.skip = true // keep the record: the next run removes it again
			case err != nil:
				c.rec.Delivered = c.prev
				c.kind = kindNone
			case c.rec != nil:
				c.rec.Delivered = nil
			}
		}
		if err != nil {
			cnt.IngestFailed.Add(uint64(len(refs)))
			if fail != nil {
				for _, c := range batch {
					if c.removeRef != "" {
						fail(c.removeRef, "removal from the ingestion target failed (it is removed again next run): "+err.Error())
					}
				}
			}
			log.Error("removal failed; the next run removes them again", "references", len(refs), "error", err)
		} else {
			cnt.IngestDeleted.Add(uint64(len(refs)))
		}
	}
	err := ds.Update(func(w store.Writer) error {
		for _, c := range batch {
			switch {
			case c.skip:
			case c.rec == nil:
				if err := w.Delete(urlKey(c.key)); err != nil {
					return err
				}
			default:
				if err := w.Put(urlKey(c.key), encodeRecord(c.rec)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("httpfetch: datastore %s: %w", cnt.Task, err)
	}
	for _, c := range batch {
		if c.seen {
			cnt.Seen.Add(1)
		}
		if c.skip {
			continue
		}
		switch c.kind {
		case kindAdded:
			cnt.Added.Add(1)
		case kindUpdated:
			cnt.Updated.Add(1)
		case kindUnchanged:
			cnt.Unchanged.Add(1)
		case kindDeleted:
			cnt.Deleted.Add(1)
		}
	}
	return nil
}

// deleteUnreached deletes the records this completed crawl did not reach,
// except what a transiently failed page leads to: the failed pages and
// every unreached record reachable from them through the links recorded by
// earlier runs.
func (sr *syncRun) deleteUnreached() error {
	sr.priors.Clear()
	var keys []string
	cand := map[string]*record{}
	err := sr.ds.ForEach(func(k, v []byte) error {
		u, ok := strings.CutPrefix(string(k), urlPrefix)
		if !ok {
			return nil
		}
		var seen struct {
			Run uint64 `json:"run"`
		}
		if err := json.Unmarshal(v, &seen); err != nil {
			return fmt.Errorf("httpfetch: datastore record %q: %w", k, err)
		}
		if seen.Run == sr.run {
			return nil
		}
		rec, err := decodeRecord(v)
		if err != nil {
			return err
		}
		keys = append(keys, u)
		cand[u] = rec
		return nil
	})
	if err != nil {
		return fmt.Errorf("httpfetch: %s: deletions: %w", sr.s.Task, err)
	}
	protected := map[string]bool{}
	var stack []string
	sr.mu.Lock()
	for u := range sr.failed {
		if _, ok := cand[u]; ok && !protected[u] {
			protected[u] = true
			stack = append(stack, u)
		}
	}
	sr.mu.Unlock()
	for len(stack) > 0 {
		u := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, l := range cand[u].Links {
			if _, ok := cand[l]; ok && !protected[l] {
				protected[l] = true
				stack = append(stack, l)
			}
		}
	}
	if len(protected) > 0 {
		sr.log.Info("pages kept because a page leading to them failed transiently", "pages", len(protected))
	}
	var batch []*change
	total := len(keys) - len(protected)
	doneN := 0
	for _, u := range keys {
		if protected[u] {
			continue
		}
		batch = append(batch, sr.deletion(u, cand[u]))
		if len(batch) < sr.r.batchSize {
			continue
		}
		if err := sr.applyDeletions(batch); err != nil {
			return err
		}
		doneN += len(batch)
		batch = batch[:0]
		pct := 100 * float64(doneN) / float64(total)
		sr.prog.set(sr.index, func(t *taskProgress) { t.deletionsPct = pct })
	}
	return sr.applyDeletions(batch)
}

func (sr *syncRun) applyDeletions(batch []*change) error {
	if len(batch) == 0 {
		return nil
	}
	if err := sr.job.Checkpoint(sr.ctx); err != nil {
		return err
	}
	return sr.r.apply(sr.ctx, sr.ds, sr.counts, batch, sr.log, sr.fail)
}

// progressed counts a page or failure and publishes the crawl's progress:
// pages done over URLs the crawl admitted (an estimate: robots.txt and
// MaxPages may still skip some), below 100 until the crawl ends.
func (sr *syncRun) progressed() {
	n := sr.done.Add(1)
	pct := min(99, 100*float64(n)/float64(max(sr.admitted.Load(), n)))
	sr.prog.set(sr.index, func(t *taskProgress) { t.crawlPct = pct })
}

// progress publishes a Synchronize's progress: one stage per task, each
// with a crawl and a deletions stage.
type progress struct {
	job   *fetch.Job
	mu    sync.Mutex
	names []string
	tasks []taskProgress
	last  time.Time
}

type taskProgress struct {
	crawl, deletions       messages.State
	crawlPct, deletionsPct float64
}

func newProgress(job *fetch.Job, tasks []string) *progress {
	p := &progress{job: job, names: tasks, tasks: make([]taskProgress, len(tasks))}
	for i := range p.tasks {
		p.tasks[i] = taskProgress{crawl: messages.State_STATE_QUEUED, deletions: messages.State_STATE_QUEUED}
	}
	p.publish(true)
	return p
}

// set changes task i's progress; state changes are published at once,
// percentages at most every 100ms.
func (p *progress) set(i int, fn func(*taskProgress)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	before := p.tasks[i]
	fn(&p.tasks[i])
	after := p.tasks[i]
	p.publish(before.crawl != after.crawl || before.deletions != after.deletions)
}

// publish builds and publishes a snapshot; p.mu is held.
func (p *progress) publish(force bool) {
	now := time.Now()
	if !force && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	out := &messages.Progress{Stage: "finished"}
	total := 0.0
	for i, t := range p.tasks {
		// The crawl is most of the work: weigh it 90%, deletions 10%.
		pct := 0.9*t.crawlPct + 0.1*t.deletionsPct
		state := messages.State_STATE_QUEUED
		switch {
		case t.deletions == messages.State_STATE_FINISHED:
			state, pct = messages.State_STATE_FINISHED, 100
		case t.crawl != messages.State_STATE_QUEUED:
			state = messages.State_STATE_PROCESSING
		}
		if state == messages.State_STATE_PROCESSING {
			out.Stage = p.names[i] + " crawl"
			if t.deletions == messages.State_STATE_PROCESSING {
				out.Stage = p.names[i] + " deletions"
			}
		}
		total += pct
		out.Stages = append(out.Stages, &messages.Stage{Name: p.names[i], Percent: pct, State: state, Stages: []*messages.Stage{
			{Name: "crawl", Percent: t.crawlPct, State: t.crawl},
			{Name: "deletions", Percent: t.deletionsPct, State: t.deletions},
		}})
	}
	if len(p.tasks) > 0 {
		out.Percent = total / float64(len(p.tasks))
	}
	if out.Stage == "finished" && out.Percent < 100 {
		out.Stage = "queued"
	}
	p.job.SetProgress(out)
}
