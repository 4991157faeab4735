package restsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/internal/panics"
	"github.com/connectorhq/connector/internal/wording"
	"github.com/connectorhq/connector/secret"
	"github.com/connectorhq/connector/store"
)

// DeliveryTimeout bounds a batch's delivery after its action was stopped
// (what is under way is still delivered and recorded). While the action
// runs, only the target's own limits bound a delivery ([Ingestion]
// IngestTimeout, per CFS request): a call is several requests of
// IngestBatchSize, which a bound from its start would cut short, run
// after run, against a slow CFS.
const DeliveryTimeout = 30 * time.Second

// Batch delivers documents and records them together: a record is written
// only once its documents were delivered (and the documents of children
// it no longer has were removed), and a removal is forgotten only once
// the documents were removed, so a refused delivery or removal is sent
// again by the next run and nothing is recorded that the target does not
// have, or forgotten that it still has. An
// item with a document the target cannot take at all (one that fails
// ingest.Document.Validate: a service's value that cannot be a reference)
// is refused alone when it is added, as a refused delivery, so that it
// does not hold back the other items of its batch run after run; so is an
// item with a document the target refused on its own, all the others
// delivered (ingest.PartialError: CFS and a document too large for a
// request of its own). A
// removal the target refuses for a reference it can never take
// (RemoveRefs: CFS cannot remove a reference with a comma) fails alone
// and for good: it is reported (Report, ingestfailed, a warning) and the
// item recorded (or forgotten) as if it went through, since trying again
// can never remove it; its document stays in the index.
//
// Deliveries are pipelined: a full batch is handed to a goroutine of the
// Batch, which delivers it to the target (durable when Add returns) and
// then writes its records in one datastore write, while the caller goes
// on fetching and building the next batch. The records ride the store's
// next durable write (store.UpdateDeferred: the queue's next group
// commit, at the latest within the checkpoint interval, and before the
// action's end is on disk): a crash may lose the records of the last
// deliveries, whose items the next run then delivers again (replacing the
// same documents by reference), but never keeps a record without its
// documents. The reverse is not guarded: documents without a record. A
// new item whose record a crash lost, or whose batch was refused after
// part of it was delivered (a CFS call that fails at its second request,
// an IDX or JSONL call that fails after some of its files), or a
// conditional item held by a refusal in its batch (its documents went),
// is known to no record; if it is gone from the service by the next run,
// nothing removes its documents, and they stay in the index. Batches are
// applied one at a
// time, in the order they were handed over; at most two are held (the one
// being applied, the one being gathered). Flush waits for every batch
// handed over; Close ends the goroutine. A store error stops the
// deliveries and is returned by the next MaybeFlush or Flush.
//
// What depends on earlier deliveries (a cursor, a container's record that
// says its items were all read) is added with a Mark taken before those
// deliveries (DeliverAfter, RecordAfter, PutAfter): it is delivered and
// written only when no delivery or removal since the mark was refused, so
// a cursor never passes an item that was not delivered.
//
// A Batch may be used by several goroutines at once (a connector reading
// several containers at a time): each item is added whole, and a
// container's items depend only on their own order (its Mark taken before
// its items, its cursor added After it once they are all added), which
// other goroutines' items added in between cannot break: they can only
// make a cursor wait for the next run, when one of their deliveries is
// refused after the mark. Flush and Close are called once the others are
// done.
type Batch struct {
	DS     store.Datastore
	Target ingest.Target // nil: nothing is delivered (records only)
	Counts *fetch.Counts
	Log    *slog.Logger
	// Report, when set, is told of each reference the target can never
	// remove (RemoveRefs gave ingest.ErrInvalidDocument for it alone), of
	// each document it cannot take at all (Document.Validate; its
	// reference URL passwords hidden, quoted when it holds control
	// characters or bytes that are not UTF-8: failureRef), of
	// each document it refused on its own, all the others of the call
	// delivered (ingest.PartialError: CFS and a document too large for a
	// request of its own), whose item the next run tries again, and of
	// each document and reference of a call it refused whole (CFS down),
	// which the next run sends again: so that the action's failures
	// (FailOf) list what did not reach the index, as docs/protocol.md
	// says, and not only its count and a warning.
	Report func(ref string, err error)
	// Size is the number of documents and removals gathered before a
	// flush; default 1000 (each flush is a durable write of the
	// datastore; the target writes files of its own [Ingestion]
	// IngestBatchSize).
	Size int
	// MaxBytes bounds the content (text and source bytes) gathered before
	// a flush; default 32 MiB (two batches may be held at once).
	MaxBytes int
	// FileSize, when set, is how many documents the target writes per
	// file or request ([Ingestion] IngestBatchSize). The documents of the
	// batch being gathered are then handed to the target early, by
	// MaybeFlush while the delivering goroutine is idle, in calls of a
	// multiple of FileSize documents (at least half of Size: each call
	// costs the target a folder fsync of its own, so at most one early
	// call per batch): the target writes the files one call of the whole
	// batch would, and what is left to deliver once the last item was
	// added (Flush) is the rest only. The batch is still recorded (and counted) only once all of its
	// documents were delivered; when one of its calls is refused, the rest
	// is not delivered and the whole batch counts as refused. Documents
	// are handed over early only up to the first conditional item that
	// has documents (DeliverAfter), whose condition is known only then.
	FileSize int
	// Keep, when set, is given, once per batch after its documents were
	// delivered and before its removals, the items that remove
	// references their records held (Forget, Deliver; not the references
	// a later item of the batch adds again), and takes out of each
	// item's Refs those to keep: those another task still indexes
	// (Repo's Shared), of which only this task's record is forgotten.
	// It is called by the delivering goroutine; its error is a store
	// error, which stops the deliveries.
	Keep func(drops []*Dropping) error
	// Wrote, when set, is called by the delivering goroutine after each
	// batch's records were written (a connector that caches what its
	// tasks' records hold learns that they changed).
	Wrote func()

	// mu guards cur, work and done (the gathering side); it is held while
	// a full batch is handed over, so batches go to the delivering
	// goroutine in the order of their sequence numbers.
	mu  sync.Mutex
	cur *unit
	// the delivering goroutine, while one runs
	work chan handed
	done chan struct{}

	// grace is how long a delivery may go on once its action is
	// stopped; 0: DeliveryTimeout (tests shorten it).
	grace time.Duration

	fails atomic.Int64
	// lastFailed is the sequence number of the last batch with a refused
	// delivery or removal (-1: none); the goroutine's.
	lastFailed int64
	errMu      sync.Mutex
	err        error // the first store error
}

// FailOf is a Batch.Report that lists each reference the target can
// never remove, each document it cannot take or refused on its own, and
// each document and reference of a call it refused whole, among job's
// failures of task (the first fetch.MaxFailures; the total counts them
// all).
func FailOf(job *fetch.Job, task string) func(ref string, err error) {
	return func(ref string, err error) { job.Fail(task, ref, err.Error()) }
}

// Dropping is an item of a batch that removes references its record
// held (Batch.Keep).
type Dropping struct {
	// Key is the item's key (the connector's); Rec its record as it was.
	Key string
	Rec *Record
	// Refs are the references the item removes; Keep leaves in it those
	// to remove.
	Refs []string
	// Forget: the record is forgotten (Forget), not replaced (Deliver).
	Forget bool
}

// Mark is a point in a Batch's sequence of deliveries (Batch.Mark).
type Mark struct{ seq int64 }

// Item is one thing a Batch delivers and records.
type Item struct {
	// Docs are added to the target; Removes removed from it.
	Docs    []*ingest.Document
	Removes []string
	// Key, when set, is written with the batch: to Value when Docs were
	// delivered (or there were none), or deleted (Delete) when Removes
	// were removed (or there were none).
	Key    []byte
	Value  []byte
	Delete bool
	// After, when set, makes the item conditional: it is delivered and
	// written only when no delivery or removal since the mark (its own
	// batch's included) was refused.
	After *Mark
	// Group, when set, ties the item to the others of its group (one
	// thing handed to the batch in parts, which batches may split): an
	// item of the group that is refused marks it, and an item of a
	// marked group is not written nor counted (it is delivered). The
	// item that records the thing is added last.
	Group *Group
	// Added, Updated and Deleted are counted once the item is recorded.
	Added, Updated, Deleted uint64

	// invalid is why the target cannot take one of the item's documents
	// (Document.Validate): the item is then refused alone (refused
	// documents), instead of the target refusing its whole batch.
	invalid error
	refused uint64
	// invalidRef is the reference of the document that failed Validate
	// as Report is told it (failureRef).
	invalidRef string
	// key and old, for Keep: the item's key, and the record whose
	// references it removes.
	key string
	old *Record
	// keptNotDeleted: the references Keep takes out of Removes are not
	// counted in Deleted (Dropping).
	keptNotDeleted bool
}

// Group ties items that deliver one thing in parts (Item.Group): a
// message's files, each handed to the batch as soon as it is read so that
// they are never all held at once, then the message with its record,
// which must not be written when one of its files was refused. Unlike a
// Mark, a refusal of another item does not hold it back.
type Group struct{ refused atomic.Bool }

// Dropping returns it as an item whose removals Keep is given, as those
// of Deliver and Forget are: key is the item's key (Dropping.Key), old the
// record whose references it removes (only Keep reads it). The
// references Keep takes out are not counted in it.Deleted, which counts
// its Removes. It serves a connector with records of its own.
func (it Item) Dropping(key string, old *Record) Item {
	it.key, it.old, it.keptNotDeleted = key, old, true
	return it
}

// unit is a batch of items, delivered and recorded together.
type unit struct {
	seq     int64
	items   []Item
	pending int // documents and removals
	bytes   int
	ctx     context.Context

	// Early delivery (FileSize): the documents of the items added before
	// the first conditional item with documents (mixed), in order; how
	// many of them were handed over early (sent, the gathering side's);
	// the refusal of an early call (the delivering goroutine's).
	flat     []*ingest.Document
	mixed    bool
	sent     int
	earlyErr error
	// earlyAlone: the documents an early call delivered all but, each
	// refused on its own (ingest.PartialError), by their index in flat.
	earlyAlone map[int]error
}

// handed is what the delivering goroutine is given: a whole batch to
// deliver and record, or (docs set) documents of the batch being
// gathered, to deliver early.
type handed struct {
	u    *unit
	docs []*ingest.Document
	at   int             // the index of docs[0] in u.flat
	ctx  context.Context // the action's, for docs
}

func (b *Batch) unit() *unit {
	if b.cur == nil {
		b.cur = &unit{}
		b.lastFailed = -1
	}
	return b.cur
}

// failureRef is the reference of a document the target cannot take as
// Report is told it: as it is, as every other failure is listed, URL
// passwords hidden; quoted (wording.Quote) only when it cannot be carried
// as it is (bytes that are not UTF-8, control characters, which a
// failure's <url> and the protobuf status cannot hold). Quoting every
// one listed an ordinary reference in quotes, and cut a longer one (a
// Webex file's URL) at 100 bytes: no reference a client could match.
func failureRef(ref string) string {
	ref = secret.RedactURLs(ref)
	if utf8.ValidString(ref) && !strings.ContainsFunc(ref, unicode.IsControl) {
		return ref
	}
	return wording.Quote(ref)
}

// Mark returns the current point of the sequence of deliveries: items
// added After it depend on every delivery from now on.
func (b *Batch) Mark() Mark {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Mark{seq: b.unit().seq}
}

// Add adds an item to the batch being gathered.
func (b *Batch) Add(it Item) {
	for _, d := range it.Docs {
		if err := d.Validate(); err != nil {
			// The target refuses a whole call for one such document:
			// kept, it would hold back every item of its batch, run
			// after run.
			ref := ""
			if d != nil {
				ref = failureRef(d.Reference)
			}
			it = Item{After: it.After, Group: it.Group, invalid: err, invalidRef: ref, refused: uint64(len(it.Docs))}
			break
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	u := b.unit()
	u.items = append(u.items, it)
	u.pending += len(it.Docs) + len(it.Removes)
	for _, d := range it.Docs {
		u.bytes += len(d.Content) + len(d.Source)
	}
	if b.FileSize > 0 && b.Target != nil && len(it.Docs) > 0 && !u.mixed {
		if it.After != nil {
			u.mixed = true
		} else {
			u.flat = append(u.flat, it.Docs...)
		}
	}
}

// Deliver adds an item's documents (its own first, then its children);
// old is its record when it was delivered before. The documents of old's
// children that rec no longer has are removed.
func (b *Batch) Deliver(key string, rec *Record, docs []*ingest.Document, old *Record) {
	b.Add(deliverItem(key, rec, docs, old, nil))
}

// DeliverIn is Deliver, as the last item of group g: written only when
// no item of g was refused.
func (b *Batch) DeliverIn(g *Group, key string, rec *Record, docs []*ingest.Document, old *Record) {
	it := deliverItem(key, rec, docs, old, nil)
	it.Group = g
	b.Add(it)
}

// DeliverAfter is Deliver, done only when no delivery since m was
// refused.
func (b *Batch) DeliverAfter(m Mark, key string, rec *Record, docs []*ingest.Document, old *Record) {
	b.Add(deliverItem(key, rec, docs, old, &m))
}

func deliverItem(key string, rec *Record, docs []*ingest.Document, old *Record, after *Mark) Item {
	it := Item{Docs: docs, Key: RecordKey(key), After: after, key: key, old: old}
	it.Value, _ = json.Marshal(rec)
	if old == nil {
		it.Added = uint64(len(docs))
	} else {
		it.Updated = uint64(len(docs))
		for _, ref := range append([]string{old.Ref}, old.Kids...) {
			if ref != rec.Ref && !slices.Contains(rec.Kids, ref) {
				it.Removes = append(it.Removes, ref)
				it.Deleted++
			}
		}
	}
	return it
}

// Record writes an item's record without delivering anything (an item
// whose documents are unchanged while its record changed).
func (b *Batch) Record(key string, rec *Record) {
	v, _ := json.Marshal(rec)
	b.Add(Item{Key: RecordKey(key), Value: v})
}

// RecordAfter is Record, done only when no delivery since m was refused.
func (b *Batch) RecordAfter(m Mark, key string, rec *Record) {
	v, _ := json.Marshal(rec)
	b.Add(Item{Key: RecordKey(key), Value: v, After: &m})
}

// Forget removes an item's documents and its record. The documents
// another task still indexes (Keep) are not removed.
func (b *Batch) Forget(key string, rec *Record) {
	b.Add(Item{Removes: append([]string{rec.Ref}, rec.Kids...), Key: RecordKey(key), Delete: true, Deleted: uint64(1 + len(rec.Kids)),
		key: key, old: rec})
}

// PutAfter writes a connector key (a cursor) with the batch, only when no
// delivery since m was refused.
func (b *Batch) PutAfter(m Mark, key, value []byte) {
	b.Add(Item{Key: key, Value: value, After: &m})
}

// DeleteAfter removes a connector key with the batch, only when no
// delivery since m was refused.
func (b *Batch) DeleteAfter(m Mark, key []byte) {
	b.Add(Item{Key: key, Delete: true, After: &m})
}

// Failures is the number of refused deliveries and removals known so far
// (all of them once Flush has returned).
func (b *Batch) Failures() int { return int(b.fails.Load()) }

// Pending is the number of documents and removals being gathered.
func (b *Batch) Pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur == nil {
		return 0
	}
	return b.cur.pending
}

func (b *Batch) error() error {
	b.errMu.Lock()
	defer b.errMu.Unlock()
	return b.err
}

// MaybeFlush hands the batch over once Size documents and removals, or
// MaxBytes of content, are waiting. It returns the store error that
// stopped the deliveries, if one did.
//
// With FileSize set, it also hands documents of the batch being gathered
// to the target early when the delivering goroutine is idle (Batch).
func (b *Batch) MaybeFlush(ctx context.Context) error {
	size := b.size()
	maxBytes := b.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 32 << 20
	}
	b.mu.Lock()
	if u := b.cur; u != nil && (u.pending >= size || u.bytes >= maxBytes) {
		b.handOver(ctx)
	} else if u != nil && b.FileSize > 0 {
		b.handEarly(ctx, u)
	}
	b.mu.Unlock()
	return b.error()
}

// size is Size, or its default.
func (b *Batch) size() int {
	if b.Size <= 0 {
		return 1000
	}
	return b.Size
}

// handEarly hands the documents of u not handed over yet, in a multiple of
// FileSize and at least half of Size, to the delivering goroutine
// when it is idle (it does not wait for it). b.mu is held.
func (b *Batch) handEarly(ctx context.Context, u *unit) {
	n := (len(u.flat) - u.sent) / b.FileSize * b.FileSize
	if n == 0 || n < b.size()/2 || b.error() != nil {
		return
	}
	b.start()
	select {
	case b.work <- handed{u: u, docs: u.flat[u.sent : u.sent+n : u.sent+n], at: u.sent, ctx: ctx}:
		u.sent += n
	default: // busy with the batch before: later
	}
}

// start starts the delivering goroutine when none runs. b.mu is held.
func (b *Batch) start() {
	if b.work == nil {
		b.work, b.done = make(chan handed), make(chan struct{})
		go b.deliver(b.work, b.done)
	}
}

// handOver gives the batch being gathered to the delivering goroutine
// (started when none runs), waiting while it applies the one before. b.mu
// is held.
func (b *Batch) handOver(ctx context.Context) {
	u := b.unit()
	if len(u.items) == 0 {
		return
	}
	// The next batch is sized as this one (a batch's items and documents
	// grown by doubling were a thirtieth of the bytes a mail Synchronize
	// allocates).
	b.cur = &unit{seq: u.seq + 1, items: make([]Item, 0, len(u.items))}
	if u.flat != nil {
		b.cur.flat = make([]*ingest.Document, 0, len(u.flat))
	}
	u.ctx = ctx
	b.start()
	b.work <- handed{u: u}
}

// Flush hands over what is waiting and waits until every batch handed
// over was delivered and recorded. What is under way when ctx ends (Stop)
// is still delivered and recorded, within DeliveryTimeout. A refused
// delivery is not an error (it is counted, logged, and sent again by the
// next run); a store that cannot be written is.
func (b *Batch) Flush(ctx context.Context) error {
	b.mu.Lock()
	b.handOver(ctx)
	b.wait()
	b.mu.Unlock()
	return b.error()
}

// Close drops what was gathered and not handed over, and waits for the
// batches handed over (so that nothing runs once it returns). It may be
// called more than once, and after Flush.
func (b *Batch) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil {
		clear(b.cur.items)
		b.cur.items, b.cur.pending, b.cur.bytes = b.cur.items[:0], 0, 0
		b.cur.flat, b.cur.sent = nil, 0
	}
	b.wait()
}

// wait ends the delivering goroutine once it applied what it was given.
// b.mu is held.
func (b *Batch) wait() {
	if b.work == nil {
		return
	}
	close(b.work)
	<-b.done
	b.work, b.done = nil, nil
}

// deliver applies the batches handed over, and delivers the documents
// handed over early, in order, until work is closed; after a store error
// it only drains them.
func (b *Batch) deliver(work <-chan handed, done chan<- struct{}) {
	defer close(done)
	for h := range work {
		if b.error() != nil {
			continue
		}
		if err := b.handle(h); err != nil {
			b.errMu.Lock()
			b.err = err
			b.errMu.Unlock()
		}
	}
}

// handle delivers what deliver was handed. A panic (in the target or the
// store) is its error: on the delivering goroutine it would end the
// process; as the Batch's error it ends the action as Error, and the
// batches after it are only drained.
func (b *Batch) handle(h handed) (err error) {
	defer panics.Catch(b.Log, "restsync: delivering a batch", &err)
	if h.docs != nil {
		b.deliverEarly(h.ctx, h.u, h.docs, h.at)
		return nil
	}
	return b.apply(h.u)
}

// deliverEarly delivers documents of the batch u, from u.flat[at] on,
// before the rest of it was gathered (FileSize); after a refusal, u's
// other documents are not delivered, and apply counts the whole batch as
// refused, unless only documents refused on their own were
// (ingest.PartialError): apply then refuses only their items. As apply,
// it is not cut short by the action's end (deliveryContext).
func (b *Batch) deliverEarly(ctx context.Context, u *unit, docs []*ingest.Document, at int) {
	if u.earlyErr != nil {
		return
	}
	dctx, cancel := b.deliveryContext(ctx)
	defer cancel()
	u.earlyErr = refusedAlone(b.Target.Add(dctx, docs), at, &u.earlyAlone)
}

// refusedAlone returns err, the error of an Add of documents from index at
// of a batch's, or nil when the target delivered all of them but some,
// each refused on its own (ingest.PartialError): those are added to
// alone, by their index in the batch's documents.
func refusedAlone(err error, at int, alone *map[int]error) error {
	var pe *ingest.PartialError
	if !errors.As(err, &pe) {
		return err
	}
	if *alone == nil {
		*alone = make(map[int]error, len(pe.Refused))
	}
	for i, e := range pe.Refused {
		(*alone)[at+i] = e
	}
	return nil
}

// deliveryContext is DeliveryContext with the Batch's grace.
func (b *Batch) deliveryContext(ctx context.Context) (context.Context, context.CancelFunc) {
	grace := b.grace
	if grace <= 0 {
		grace = DeliveryTimeout
	}
	return DeliveryContext(ctx, grace)
}

// DeliveryContext returns the context of a delivery made for the action
// whose context is ctx: not cancelled when ctx is (Stop), so that what is
// under way is delivered and recorded, but cut short grace after ctx
// ends, so that a stopped action ends. While the action runs it has no
// deadline: the target bounds its own requests ([Ingestion]
// IngestTimeout, per CFS request), and one call may be many of them.
func DeliveryContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	dctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(grace, func() {
			cancel(fmt.Errorf("delivery cut short %s after the action was stopped: %w", grace, context.DeadlineExceeded))
		})
		context.AfterFunc(dctx, func() { t.Stop() }) // ended first: no timer left behind
	})
	return dctx, func() { stop(); cancel(context.Canceled) }
}

// addedLater maps each reference that an item of items adds to the index
// of the last item adding it; nil when no item removes anything (the
// common case: nothing to look up).
func addedLater(items []Item) map[string]int {
	removes := false
	for i := range items {
		if len(items[i].Removes) > 0 {
			removes = true
			break
		}
	}
	if !removes {
		return nil
	}
	at := make(map[string]int)
	for i := range items {
		for _, d := range items[i].Docs {
			at[d.Reference] = i
		}
	}
	return at
}

// apply delivers a batch (what was not delivered early), then records it
// in one datastore write, then counts it.
func (b *Batch) apply(u *unit) error {
	log := b.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dctx, cancel := b.deliveryContext(u.ctx)
	defer cancel()
	// Conditional items whose condition already failed are dropped: not
	// delivered, not recorded, not counted.
	kept := u.items[:0]
	for _, it := range u.items {
		if it.After == nil || b.lastFailed < it.After.seq {
			kept = append(kept, it)
		}
	}
	var docs []*ingest.Document
	var docItem []int // the item of each of docs
	readded := addedLater(kept)
	invalid := false
	// removes are the references each item removes.
	removes := make([][]string, len(kept))
	var drops []*Dropping
	var dropped []int // the item of each of drops
	for i, it := range kept {
		if it.invalid != nil {
			log.Warn("delivery refused: a document the ingestion target cannot take; the item is tried again by the next run", "documents", it.refused, "error", it.invalid)
			b.Counts.IngestFailed.Add(it.refused)
			b.fails.Add(1)
			invalid = true
			if b.Report != nil {
				b.Report(it.invalidRef, it.invalid)
			}
			continue
		}
		docs = append(docs, it.Docs...)
		for range it.Docs {
			docItem = append(docItem, i)
		}
		for _, ref := range it.Removes {
			// The batch adds before it removes, so a reference that a
			// later item adds again (a Gmail message moved between
			// folders in one run: one reference, two keys) must not be
			// removed: the later item wins, as it would one by one.
			if j, ok := readded[ref]; !ok || j < i {
				removes[i] = append(removes[i], ref)
			}
		}
		if b.Keep != nil && it.old != nil && len(removes[i]) > 0 {
			drops = append(drops, &Dropping{Key: it.key, Rec: it.old, Refs: removes[i], Forget: it.Delete})
			dropped = append(dropped, i)
		}
	}
	addOK, removeOK := true, true
	if b.Target != nil && len(docs) > 0 {
		// The first u.sent documents, of items that are never dropped
		// (unconditional ones before any conditional item with
		// documents), were delivered early.
		err, alone := u.earlyErr, u.earlyAlone
		if err == nil && len(docs) > u.sent {
			err = refusedAlone(b.Target.Add(dctx, docs[u.sent:]), u.sent, &alone)
		}
		// An item with a document the target refused on its own (CFS:
		// too large for a request of its own), the others delivered, is
		// refused alone, as an invalid one: refusing the whole batch
		// made every run deliver it all again, and refuse it again.
		if err == nil && len(alone) > 0 {
			for _, j := range slices.Sorted(maps.Keys(alone)) {
				if it := &kept[docItem[j]]; it.invalid == nil {
					it.invalid, it.refused = alone[j], uint64(len(it.Docs))
					log.Warn("delivery refused: a document the ingestion target refused on its own; the item is tried again by the next run", "documents", it.refused, "error", alone[j])
					b.Counts.IngestFailed.Add(it.refused)
				}
				if b.Report != nil {
					b.Report(docs[j].Reference, alone[j])
				}
			}
			invalid = true
			b.fails.Add(1)
		}
		if err != nil {
			log.Warn("delivery refused: the items are sent again by the next run", "documents", len(docs), "error", err)
			b.Counts.IngestFailed.Add(uint64(len(docs)))
			addOK = false
			b.fails.Add(1)
			if b.Report != nil {
				err := fmt.Errorf("delivery to the ingestion target refused (it is sent again by the next run): %w", err)
				for _, d := range docs {
					b.Report(d.Reference, err)
				}
			}
		} else {
			var added, updated uint64
			for i := range kept {
				if it := &kept[i]; it.invalid == nil && len(it.Docs) > 0 {
					added += it.Added
					updated += it.Updated
				}
			}
			b.Counts.IngestAdded.Add(added)
			b.Counts.IngestUpdated.Add(updated)
		}
	}
	if len(drops) > 0 {
		if err := b.Keep(drops); err != nil {
			return fmt.Errorf("keep what another task indexes: %w", err)
		}
		for k, d := range drops {
			i := dropped[k]
			if it := &kept[i]; it.keptNotDeleted {
				it.Deleted -= min(it.Deleted, uint64(len(removes[i])-len(d.Refs)))
			}
			removes[i] = d.Refs
		}
	}
	var refs []string
	for _, rs := range removes {
		refs = append(refs, rs...)
	}
	// refused holds the references whose removal was refused: an item
	// that removes one of them is neither recorded nor counted. A
	// reference the target can never remove (ingest.ErrInvalidDocument:
	// CFS and a comma) is not: kept, its item would be delivered (or
	// removed) again by every run, and hold back the cursors after it,
	// for a removal that can never happen. It is reported instead, and
	// its document stays in the index.
	var refused map[string]bool
	if b.Target != nil && len(refs) > 0 {
		var failed, never uint64
		var firstErr error
		for i, err := range RemoveRefs(dctx, b.Target, refs) {
			if err != nil && errors.Is(err, ingest.ErrInvalidDocument) {
				log.Warn("removal refused for good: the ingestion target cannot take this reference; its document stays in the index", "reference", refs[i], "error", err)
				never++
				if b.Report != nil {
					b.Report(refs[i], err)
				}
				continue
			}
			if err != nil {
				if refused == nil {
					refused = make(map[string]bool)
				}
				refused[refs[i]] = true
				failed++
				if firstErr == nil {
					firstErr = err
				}
				if b.Report != nil {
					b.Report(refs[i], fmt.Errorf("removal from the ingestion target refused (it is removed again by the next run): %w", err))
				}
			}
		}
		if failed > 0 {
			log.Warn("removal refused: the next run removes them again", "references", failed, "error", firstErr)
			b.Counts.IngestFailed.Add(failed)
			removeOK = false
			b.fails.Add(1)
		}
		b.Counts.IngestFailed.Add(never)
		b.Counts.IngestDeleted.Add(uint64(len(refs)) - failed - never)
	}
	removed := func(it *Item) bool {
		for _, r := range it.Removes {
			if refused[r] {
				return false
			}
		}
		return true
	}
	clean := addOK && removeOK && !invalid
	if !clean {
		b.lastFailed = u.seq
	}
	// A refused item marks its group, before the group's later items
	// (of this batch or the next ones) are written.
	for i := range kept {
		if it := &kept[i]; it.Group != nil && (it.invalid != nil || len(it.Docs) > 0 && !addOK) {
			it.Group.refused.Store(true)
		}
	}
	held := func(it *Item) bool {
		return it.After != nil && !clean || it.Group != nil && it.Group.refused.Load()
	}
	// written: whether the item's key is written (and the item counted).
	// An item delivered again without a child it had (Removes) is
	// written only once that child's document was removed too: its old
	// record, kept, makes the next run deliver it again and remove the
	// child then; the new one would forget a document still in the
	// index.
	written := func(it *Item) bool {
		switch {
		case held(it):
			return false
		case it.Delete:
			return removed(it)
		default:
			return addOK && it.invalid == nil && removed(it)
		}
	}
	err := store.UpdateDeferred(b.DS, func(w store.Writer) error {
		for i := range kept {
			it := &kept[i]
			if it.Key == nil || !written(it) {
				continue
			}
			var err error
			if it.Delete {
				err = w.Delete(it.Key)
			} else {
				err = w.Put(it.Key, it.Value)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record a batch: %w", err)
	}
	if b.Wrote != nil {
		b.Wrote()
	}
	for i := range kept {
		it := &kept[i]
		if held(it) || it.invalid != nil {
			continue
		}
		rm := removed(it)
		if addOK && rm {
			b.Counts.Added.Add(it.Added)
			b.Counts.Updated.Add(it.Updated)
		}
		if rm {
			b.Counts.Deleted.Add(it.Deleted)
		}
	}
	clear(u.items) // drop the references, so the contents can be freed
	return nil
}

// RemoveRefs removes refs from t and returns nil, or the error of each
// reference (nil for those removed). When t refuses the call for a
// reference it cannot take (ingest.ErrInvalidDocument: CFS cannot remove a
// reference with a comma; the target refuses before sending anything), the
// references are removed in halves, each half refused again split again,
// so that only the references it refuses fail (rather than every removal
// batched with them, run after run) and the others go in a few calls
// (about twice log2(len(refs)) for one refused reference), not one each.
// A call that removed every reference but some, each refused on its own
// (ingest.PartialError: CFS and a reference too large for a request of
// its own), fails only those. Once a call fails for another reason (CFS
// down, or not answering within [Ingestion] IngestTimeout), the
// references not sent yet fail with that
// error, unsent: one call each would wait out the timeout each, hours for
// a batch, only to fail too. They are removed again by the next run (a
// reference t can never take among them is found out then). (The metrics
// count the references of a refused call by the calls that follow it:
// metrics.Target; those left unsent are not counted there.)
func RemoveRefs(ctx context.Context, t ingest.Target, refs []string) []error {
	err := t.Remove(ctx, refs)
	if err == nil {
		return nil
	}
	errs := make([]error, len(refs))
	if alone(err, errs) {
		return errs
	}
	if !errors.Is(err, ingest.ErrInvalidDocument) || len(refs) == 1 {
		fillErr(errs, err)
		return errs
	}
	removeHalves(ctx, t, refs, errs)
	return errs
}

// removeHalves removes refs, which t refused whole for a reference it
// cannot take, half by half, setting errs (one per reference). It returns
// the error of a call that failed for another reason, after which nothing
// more is sent (the rest of refs fails with it).
func removeHalves(ctx context.Context, t ingest.Target, refs []string, errs []error) error {
	mid := len(refs) / 2
	for _, h := range [2][2]int{{0, mid}, {mid, len(refs)}} {
		part, perr := refs[h[0]:h[1]], errs[h[0]:h[1]]
		err := t.Remove(ctx, part)
		switch {
		case err == nil || alone(err, perr):
			continue
		case !errors.Is(err, ingest.ErrInvalidDocument):
			fillErr(errs[h[0]:], err)
			return err
		case len(part) == 1:
			perr[0] = err
			continue
		}
		if err := removeHalves(ctx, t, part, perr); err != nil {
			fillErr(errs[h[1]:], err)
			return err
		}
	}
	return nil
}

// alone reports whether err says that every reference of a call but some
// was removed, each of those refused on its own (ingest.PartialError: CFS
// and a reference too large for a request of its own), and then sets
// their errors in errs, the call's.
func alone(err error, errs []error) bool {
	var pe *ingest.PartialError
	if !errors.As(err, &pe) {
		return false
	}
	for i, e := range pe.Refused {
		errs[i] = e
	}
	return true
}

// fillErr sets every error of errs to err.
func fillErr(errs []error, err error) {
	for i := range errs {
		errs[i] = err
	}
}
