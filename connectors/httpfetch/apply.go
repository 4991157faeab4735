package httpfetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/internal/panics"
	"github.com/connectorhq/connector/secret"
	"github.com/connectorhq/connector/store"
)

// flushInterval is the default of Options.FlushInterval: how long a
// fetched page waits in a part-filled batch, so that a Stop loses at most
// this much work.
const flushInterval = time.Second

// deliveryTimeout bounds a delivery to the target once its action was
// stopped: a batch being delivered when Stop arrives is finished (or
// fails) within it, never half-recorded (restsync.DeliveryContext). While
// the action runs, only the target's own limits bound a delivery
// ([Ingestion] IngestTimeout, per CFS request): the batches that waited
// are delivered in one call of several requests, which a bound from its
// start would cut short against a slow CFS, run after run.
const deliveryTimeout = 2 * time.Minute

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
	old       *record          // the record a deletion forgets (rec is nil)

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

// deletion is the change that forgets a known URL (and removes its
// document from the target when the target has it).
func (sr *syncRun) deletion(u string, rec *record) *change {
	c := &change{key: u, prev: rec.Delivered, old: rec}
	if !rec.Excluded || rec.mayBeHeld() {
		c.kind = kindDeleted
	}
	if rec.mayBeHeld() && sr.r.target != nil {
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

// flusher gathers changes into batches of batchSize, or of batchBytes of
// documents, or what has waited Options.FlushInterval, and hands each to
// the applier (applier), so that the crawl goes on while a batch is
// delivered: it waits only when a batchBytes of documents already waits
// for the applier. After Stop nothing more is handed over nor applied; a
// batch being applied when Stop arrives is completed.
func (sr *syncRun) flusher() {
	defer close(sr.flushDone)
	ap := &applier{sr: sr, work: make(chan pending, maxWaitingBatches), room: make(chan struct{}, 1), done: make(chan struct{})}
	go ap.run()
	defer func() {
		close(ap.work)
		<-ap.done
	}()
	tick := time.NewTicker(sr.r.flushInterval)
	defer tick.Stop()
	batch := make([]*change, 0, sr.r.batchSize)
	size := 0
	hand := func() bool {
		b, n := batch, size
		size = 0
		if len(b) == 0 {
			return true
		}
		batch = make([]*change, 0, sr.r.batchSize)
		if sr.ctx.Err() != nil {
			return true // dropped: neither delivered nor recorded nor counted
		}
		return ap.hand(pending{changes: b, bytes: n})
	}
	for {
		select {
		case c, ok := <-sr.changes:
			if !ok {
				hand()
				return
			}
			batch = append(batch, c)
			size += docBytes(c.doc)
			if (len(batch) >= sr.r.batchSize || size >= sr.r.batchBytes()) && !hand() {
				for range sr.changes { // drain until the crawl has stopped
				}
				return
			}
		case <-tick.C:
			if !hand() {
				for range sr.changes {
				}
				return
			}
		}
	}
}

// maxWaitingBatches bounds the batches handed to the applier and not yet
// taken by it (the documents they hold are bounded by batchBytes too).
const maxWaitingBatches = 16

// pending is a batch handed to the applier, with the bytes of documents
// it holds.
type pending struct {
	changes []*change
	bytes   int
}

// applier applies the batches the flusher hands over, in order. The
// batches that waited while it applied the previous ones are applied
// together, in one apply (one delivery, whose files the target writes and
// syncs together, then one deferred datastore write): the slower the
// disk, the more pages each of its syncs carries, and the crawl never
// waits for one unless a batchBytes of documents is waiting.
type applier struct {
	sr      *syncRun
	work    chan pending
	room    chan struct{} // signalled when waiting bytes were taken
	done    chan struct{} // closed when run returns
	waiting atomic.Int64  // bytes of documents handed over and not yet applied
}

// hand gives the applier a batch; it waits while a batchBytes of
// documents already waits for it (at least one batch is always let
// through). It returns false when the applier has stopped on an error.
func (a *applier) hand(p pending) bool {
	sr := a.sr
	for w := a.waiting.Load(); w > 0 && w+int64(p.bytes) > int64(sr.r.batchBytes()); w = a.waiting.Load() {
		select {
		case <-a.room:
		case <-sr.dead:
			return false
		case <-sr.ctx.Done():
			return true // dropped, as after Stop
		}
	}
	a.waiting.Add(int64(p.bytes))
	select {
	case a.work <- p:
		return true
	case <-sr.dead:
		return false
	case <-sr.ctx.Done():
		a.waiting.Add(-int64(p.bytes))
		return true
	}
}

// apply applies a group of changes. The applier is a goroutine of the
// Synchronize's, outside the worker's recovery, where a panic (in the
// target or the store) would end the process: it is this apply's error
// instead, which ends the Synchronize (and so the action, as Error).
func (a *applier) apply(group []*change) (err error) {
	sr := a.sr
	defer panics.Catch(sr.log, "httpfetch: applying a batch", &err)
	return sr.r.apply(sr.ctx, sr.ds, sr.counts, group, sr.log, sr.fail)
}

// run applies until work is closed. After a datastore error it applies
// nothing more: it records the error, closes sr.dead and cancels the
// crawl.
func (a *applier) run() {
	defer close(a.done)
	sr := a.sr
	var group []*change
	for p := range a.work {
		group = append(group[:0], p.changes...)
		n := p.bytes
	more:
		for {
			select {
			case q, ok := <-a.work:
				if !ok {
					break more
				}
				group = append(group, q.changes...)
				n += q.bytes
			default:
				break more
			}
		}
		if sr.ctx.Err() == nil && !sr.failedApply() {
			if err := a.apply(group); err != nil {
				sr.flushErr = err
				close(sr.dead)
				sr.cancelCrawl(err)
			}
		}
		clear(group) // let the pages' documents go
		a.waiting.Add(-int64(n))
		select {
		case a.room <- struct{}{}:
		default:
		}
	}
}

// failedApply reports whether an apply failed (sr.dead closed).
func (sr *syncRun) failedApply() bool {
	select {
	case <-sr.dead:
		return true
	default:
		return false
	}
}

// apply delivers a batch of changes to the target, records the outcome in
// the datastore in one deferred write (store.UpdateDeferred), and counts
// it. Deliveries run to their end
// even if ctx is cancelled meanwhile (within deliveryTimeout), so that
// the datastore always says what the target holds. A failed delivery is
// counted as ingestfailed and leaves record.Delivered as it was, so the
// next run delivers again. It returns only datastore errors.
//
// fail, when not nil, lists each document of a failed delivery or removal
// in the action's failures.
func (r *Repository) apply(ctx context.Context, ds store.Datastore, cnt *fetch.Counts, batch []*change, log *slog.Logger, fail func(url, reason string)) error {
	dctx, cancel := restsync.DeliveryContext(ctx, deliveryTimeout)
	defer cancel()
	var docs []*ingest.Document
	var refs []string
	// invalid holds the documents no target can take (Validate): the
	// target would refuse the whole Add for one of them, and with it
	// every other page of the batch, run after run. Each is refused
	// alone instead.
	var invalid map[*change]error
	for _, c := range batch {
		if c.doc != nil {
			if err := c.doc.Validate(); err != nil {
				if invalid == nil {
					invalid = map[*change]error{}
				}
				invalid[c] = err
			} else {
				docs = append(docs, c.doc)
			}
		}
		if c.removeRef != "" {
			refs = append(refs, c.removeRef)
		}
	}
	if len(docs) > 0 || len(invalid) > 0 {
		var err error
		if len(docs) > 0 {
			err = r.target.Add(dctx, docs)
		}
		// A document the target refused on its own (CFS: too large for
		// a request of its own), the others delivered: only its page
		// fails. Failing them all made every run deliver the batch
		// again, to be refused again.
		var pe *ingest.PartialError
		if errors.As(err, &pe) {
			err = nil
		}
		var added, updated, failed uint64
		j := -1 // the index of c.doc in docs
		for _, c := range batch {
			if c.doc == nil {
				continue
			}
			cerr, bad := invalid[c]
			refusal := "delivery refused: a document the ingestion target cannot take; it is sent again by the next run"
			if !bad {
				j++
				cerr = err
				if pe != nil {
					cerr, bad = pe.Refused[j], pe.Refused[j] != nil
					refusal = "delivery refused: a document the ingestion target refused on its own; it is sent again by the next run"
				}
			}
			switch {
			case cerr != nil:
				c.rec.Delivered = c.prev
				failed++
				if fail != nil {
					fail(c.key, "delivery to the ingestion target failed (it is sent again next run): "+cerr.Error())
				}
				if bad {
					log.Warn(refusal, "url", secret.LogURL(c.key), "error", cerr)
				}
			case c.kind == kindAdded:
				c.rec.Delivered, c.rec.Removing, c.rec.Stale, added = c.rec.Hash, false, false, added+1
			default:
				c.rec.Delivered, c.rec.Removing, c.rec.Stale, updated = c.rec.Hash, false, false, updated+1
			}
		}
		cnt.IngestFailed.Add(failed)
		if err != nil {
			log.Error("delivery failed; the documents will be sent again by the next run", "documents", len(docs), "error", err)
		} else {
			cnt.IngestAdded.Add(added)
			cnt.IngestUpdated.Add(updated)
		}
	}
	if len(refs) > 0 {
		var err error
		if refs, err = r.keepShared(ds, cnt.Task, batch, refs, log); err != nil {
			return fmt.Errorf("httpfetch: datastore %s: %w", cnt.Task, err)
		}
	}
	if len(refs) > 0 {
		if err := markRemoving(ds, batch); err != nil {
			return fmt.Errorf("httpfetch: datastore %s: %w", cnt.Task, err)
		}
		errs := restsync.RemoveRefs(dctx, r.target, refs)
		var failed, never uint64
		var firstErr error
		i := 0
		for _, c := range batch {
			if c.removeRef == "" {
				continue
			}
			var err error
			if errs != nil {
				err = errs[i]
			}
			i++
			if err != nil && errors.Is(err, ingest.ErrInvalidDocument) {
				// A reference the target can never remove (CFS and a
				// comma): kept, the page would be removed again, and
				// refused again, by every run. It is reported once and
				// recorded as removed; its document stays in the index.
				never++
				log.Warn("removal refused for good: the ingestion target cannot take this reference; its document stays in the index", "url", secret.LogURL(c.removeRef), "error", err)
				if fail != nil {
					fail(c.removeRef, "the ingestion target can never remove this reference; its document stays in the index: "+err.Error())
				}
				err = nil
			}
			switch {
			case err != nil && c.rec == nil:
				c.skip = true // keep the record (as markRemoving left it): the next run removes it again
			case err != nil:
				// The target holds what it held; a removal sent again
				// (prev nil) is still to be made.
				c.rec.Delivered, c.rec.Removing = c.prev, c.prev == nil
				c.kind = kindNone
			case c.rec != nil:
				c.rec.Delivered, c.rec.Removing = nil, false
			}
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = err
				}
				if fail != nil {
					fail(c.removeRef, "removal from the ingestion target failed (it is removed again next run): "+err.Error())
				}
			}
		}
		if failed > 0 {
			cnt.IngestFailed.Add(failed)
			log.Error("removal failed; the next run removes them again", "references", failed, "error", firstErr)
		}
		cnt.IngestFailed.Add(never)
		cnt.IngestDeleted.Add(uint64(len(refs)) - failed - never)
	}
	// The records ride the store's next durable write (the queue's next
	// group commit, at the latest within its checkpoint interval, and
	// always before the action's end is on disk; a cluster's shared store
	// commits them at once, store.Deferrer): written after the
	// delivery returned, they can never be on disk without the documents
	// they stand for; a crash may lose the last ones, whose pages the next
	// run delivers again (replacing by reference). Those of removals are
	// safe to lose too: markRemoving wrote, durably, that the target may
	// no longer hold the documents.
	err := store.UpdateDeferred(ds, func(w store.Writer) error {
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

// keepShared takes out of a batch's removals the pages another task of
// the repository still indexes: every task delivers a page under one
// reference, its URL, to the one target, so removing it because this
// task no longer has it would take the other task's document out of the
// index, and that task, answered 304, would never deliver it again. Such
// a page is forgotten by this task alone (as if removed); the other
// task's record is marked Stale, so that its next run delivers its own
// document (the one in the target may be this task's: its
// AUTN_IDENTIFIER names this task). It returns the references left to
// remove. A datastore that cannot be read counts as holding nothing (the
// removal goes ahead, as before).
//
// The pages it keeps are forgotten in ds (this task's datastore) before
// it returns, and the repository's tasks take their turn (restsync.Turns): two
// tasks that let a page go in runs at the same time would otherwise each
// find the other's record still holding it, each keep it, and leave it in
// the index with no task to remove it. Taking turns, the second finds the
// first's record forgotten and removes the page. (A forgotten record
// claims nothing of the target, so it may be written before the batch's
// deliveries.) In a store that several processes share (store.Turns:
// the nodes of a cluster), the turn is the store's too: the turn of one
// node does not order a task on another, so two tasks letting go of one
// page on two nodes at once both kept it.
func (r *Repository) keepShared(ds store.Datastore, task string, batch []*change, refs []string, log *slog.Logger) ([]string, error) {
	defer r.turns.Take()()
	var kept []string
	err := store.Turn(r.st, sharedTurn, func() error {
		var err error
		kept, err = r.keepSharedTurn(ds, task, batch, refs, log)
		return err
	})
	return kept, err
}

// sharedTurn is the name of the turn keepShared takes in a store that
// several processes share (store.Turns: the nodes of a cluster).
const sharedTurn = "httpfetch: letting go of a page another task may hold"

// keepSharedTurn is keepShared's work, during its turn.
func (r *Repository) keepSharedTurn(ds store.Datastore, task string, batch []*change, refs []string, log *slog.Logger) ([]string, error) {
	others := r.otherTasks(task, log)
	if len(others) == 0 {
		return refs, nil
	}
	var urls []string
	for _, c := range batch {
		if c.removeRef != "" {
			urls = append(urls, c.removeRef)
		}
	}
	holders := heldElsewhere(others, urls, log)
	kept := refs[:0]
	var forgot []*change
	i := 0
	for _, c := range batch {
		if c.removeRef == "" {
			continue
		}
		i++
		if !r.markHeldElsewhere(holders[i-1], c.removeRef, log, func(rec *record) { rec.Stale = true }) {
			kept = append(kept, c.removeRef)
			continue
		}
		if c.rec != nil {
			c.rec.Delivered, c.rec.Removing = nil, false
		}
		c.removeRef = ""
		forgot = append(forgot, c)
	}
	if len(forgot) == 0 {
		return kept, nil
	}
	if keepSharedChecked != nil {
		keepSharedChecked(task)
	}
	return kept, ds.Update(func(w store.Writer) error {
		for _, c := range forgot {
			if c.rec == nil {
				if err := w.Delete(urlKey(c.key)); err != nil {
					return err
				}
				continue
			}
			if err := w.Put(urlKey(c.key), encodeRecord(c.rec)); err != nil {
				return err
			}
		}
		return nil
	})
}

// keepSharedChecked, when set (tests only), is called by keepShared
// between its look at the other tasks' records and its write of the
// pages this task forgot.
var keepSharedChecked func(task string)

// otherTask is another task's datastore.
type otherTask struct {
	name string
	ds   store.Datastore
}

// otherTasks returns the datastores of the repository's tasks but task.
func (r *Repository) otherTasks(task string, log *slog.Logger) []otherTask {
	names, err := r.st.DatastoreNames()
	if err != nil {
		log.Warn("the other tasks' datastores cannot be listed", "error", err)
		return nil
	}
	var others []otherTask
	for _, n := range names {
		if strings.EqualFold(n, task) || !r.hasTask(n) {
			continue
		}
		if ds, err := r.st.Datastore(n); err == nil {
			others = append(others, otherTask{name: n, ds: ds})
		}
	}
	return others
}

// heldElsewhere returns, for each of urls, the other tasks whose record
// of it says the target may hold its document: one read of each other
// task's datastore for them all (store.GetMany), not one per page and
// task. A datastore that cannot be read counts as holding nothing.
func heldElsewhere(others []otherTask, urls []string, log *slog.Logger) [][]otherTask {
	keys := make([][]byte, len(urls))
	for i, u := range urls {
		keys[i] = urlKey(u)
	}
	out := make([][]otherTask, len(urls))
	for _, o := range others {
		vals, err := store.GetMany(o.ds, keys)
		if err != nil {
			log.Warn("the records of another task cannot be read; the pages it indexes are removed", "task", o.name, "error", err)
			continue
		}
		for i, b := range vals {
			if b == nil {
				continue
			}
			if rec, err := decodeRecord(b); err == nil && rec.mayBeHeld() {
				out[i] = append(out[i], o)
			}
		}
	}
	return out
}

// markHeldElsewhere changes, with mark, the record of u of each of
// holders (heldElsewhere), and reports whether there was one. The turn is
// taken (restsync.Turns): a task that runs marks the record again as its
// run ends (remark), so that its run's own write of the record, read
// before, does not undo the mark. In a store that outlives the process
// (noteMarks), the mark is also noted in the holder's datastore, since
// its run may be on another node, whose turns do not see this one's, or
// may die before it ends (remarkNoted).
func (r *Repository) markHeldElsewhere(holders []otherTask, u string, log *slog.Logger, mark func(*record)) bool {
	held := false
	noted := r.noted
	for _, o := range holders {
		log.Info("another task indexes the page", "url", secret.LogURL(u), "task", o.name)
		err := o.ds.Update(func(w store.Writer) error {
			b, err := w.Get(urlKey(u))
			if err != nil || b == nil {
				return err
			}
			rec, err := decodeRecord(b)
			if err != nil {
				return err
			}
			mark(rec)
			if err := w.Put(urlKey(u), encodeRecord(rec)); err != nil || !noted {
				return err
			}
			return w.Put(markKey(u), []byte{1})
		})
		if err != nil {
			log.Warn("cannot mark another task's page to be delivered again", "url", secret.LogURL(u), "task", o.name, "error", err)
		} else {
			r.turns.Marked(o.name, u)
		}
		held = true
	}
	return held
}

// unheldElsewhere marks the records of the other tasks that hold one of
// refs, removed from the target by a Delete, no longer delivered, so that
// their next Synchronize delivers the pages again. The turn is taken.
func (r *Repository) unheldElsewhere(task string, refs []string) {
	defer r.turns.Take()()
	if others := r.otherTasks(task, r.log); len(others) > 0 {
		holders := heldElsewhere(others, refs, r.log)
		for i, ref := range refs {
			r.markHeldElsewhere(holders[i], ref, r.log, func(rec *record) { rec.Delivered, rec.Removing, rec.Stale = nil, false, false })
		}
	}
}

// remark marks Stale again the records of task that other tasks marked
// while task's action ran (markHeldElsewhere: Stale, or no longer
// delivered after a Delete), when the target may hold their pages: the
// action may have written over the mark a copy of the record read
// before, which would keep its next run from delivering the page (a 304
// says unchanged). A page it delivered meanwhile is delivered once more.
// The turn is taken. The notes drop (remarkNoted) are deleted in the same
// write.
func (r *Repository) remark(task string, keys []string, drop [][]byte) {
	ds, err := r.datastore(task)
	if err == nil {
		err = ds.Update(func(w store.Writer) error {
			for _, k := range drop {
				if err := w.Delete(k); err != nil {
					return err
				}
			}
			for _, u := range keys {
				b, err := w.Get(urlKey(u))
				if err != nil || b == nil {
					if err != nil {
						return err
					}
					continue
				}
				rec, err := decodeRecord(b)
				if err != nil {
					return err
				}
				if !rec.mayBeHeld() || rec.Stale {
					continue
				}
				rec.Stale = true
				if err := w.Put(urlKey(u), encodeRecord(rec)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		r.log.Warn("cannot mark again the pages other tasks marked to be delivered again", "task", task, "pages", len(keys), "error", err)
	}
}

// noteMarks reports whether marks on another task's records are noted in
// its datastore (markHeldElsewhere): in every store but the memory store,
// whose datastores do not outlive the process. In a store several
// processes share (store.Turns: the nodes of a cluster), the marked
// task's run may be on another node, whose restsync.Turns does not hear
// of the mark, so its run's write of the record as it read it undid the
// mark (its next runs were answered 304 and never delivered the page
// again, which stayed in the index as the marking task's document). In
// any store, the marked task's run may die (kill -9) after that write and
// before it marks the record again: the marks to make again that its
// process kept in memory were lost with it, and, for a mark of a Delete,
// the page was missing from the index until it changed. The notes are
// listed by prefix (store.ForEachPrefix), which the embedded and shared
// stores serve without reading the task's other records.
func noteMarks(st store.Store) bool {
	if _, ok := st.(store.Turns); ok {
		return true
	}
	return !st.Info().InMemory
}

// remarkNoted reads the notes of the marks other tasks made on task's
// records (markHeldElsewhere), deletes them and marks those records
// again (remark): at the end of an action of task, which may have written
// them as it read them before the mark, and at the start of one, for the
// notes an action that died left (the others are of records that carry
// their mark, which remark leaves as they are). A note made between is
// marked again at the action's end, which costs a delivery more at most.
// A failure is logged: the notes stay, for the next action.
func (r *Repository) remarkNoted(task string) {
	defer r.turns.Take()()
	ds, err := r.datastore(task)
	var keys []string
	var drop [][]byte
	if err == nil {
		err = store.ForEachPrefix(ds, []byte(markPrefix), func(k, _ []byte) error {
			keys = append(keys, strings.TrimPrefix(string(k), markPrefix))
			drop = append(drop, bytes.Clone(k))
			return nil
		})
	}
	if err != nil {
		r.log.Warn("cannot read the marks other tasks made on this task's pages", "task", task, "error", err)
		return
	}
	if len(drop) == 0 {
		return
	}
	r.remark(task, keys, drop)
}

// markRemoving records, durably and before the removals of batch are
// sent, that the target may no longer hold their documents
// (record.Removing, Delivered nil). The records apply writes once the
// target answered ride the store's next durable write, so a crash
// (kill -9) may lose them while the target has already removed the
// documents: without this, the re-run would find the record saying the
// target holds the page, and a page back on the site by then would be
// answered 304 and stay missing from the index. With it, such a page is
// delivered again, and one still gone is removed again.
func markRemoving(ds store.Datastore, batch []*change) error {
	return ds.Update(func(w store.Writer) error {
		for _, c := range batch {
			if c.removeRef == "" {
				continue
			}
			base := c.rec
			if base == nil {
				base = c.old
			}
			tomb := record{}
			if base != nil {
				tomb = *base
			}
			tomb.Delivered, tomb.Removing = nil, true
			if err := w.Put(urlKey(c.key), encodeRecord(&tomb)); err != nil {
				return err
			}
		}
		return nil
	})
}
