package httpfetch

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/store"
)

// flushInterval is the default of Options.FlushInterval: how long a
// fetched page waits in a part-filled batch, so that a Stop loses at most
// this much work.
const flushInterval = time.Second

// deliveryTimeout bounds one delivery to the target once it has started:
// a batch being delivered when Stop arrives is finished (or fails) within
// it, never half-recorded.
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
// documents, or what has waited Options.FlushInterval. After Stop it applies
// nothing more; a batch being applied when Stop arrives is completed.
func (sr *syncRun) flusher() {
	defer close(sr.flushDone)
	tick := time.NewTicker(sr.r.flushInterval)
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
