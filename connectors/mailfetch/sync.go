package mailfetch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/internal/panics"
	"github.com/connectorhq/connector/store"
)

// synchronize runs every task of the request, one after the other. A task
// that fails (its server refuses the login, its connection drops) does not
// stop the others; the action ends as Error with every task's failure.
func (r *Repository) synchronize(ctx context.Context, job *fetch.Job, req *request, log *slog.Logger) error {
	prog := restsync.NewProgress(job, req.Tasks)
	var errs []error
	for i, task := range req.Tasks {
		if err := job.Checkpoint(ctx); err != nil {
			return err
		}
		err := r.syncTask(ctx, job, task, prog, i, log.With("task", task))
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if err != nil {
			log.Warn("synchronize failed", "task", task, "error", err)
			errs = append(errs, fmt.Errorf("task %s: %w", task, err))
		}
	}
	return errors.Join(errs...)
}

// syncTask synchronizes one task: every collection is planned, its gone
// messages removed, its new and changed messages fetched, turned into
// documents and delivered in batches (the documents of keys replaced by a
// new UIDVALIDITY removed after the collection was read to the end), each
// batch recorded in the datastore
// after its delivery (in the background, while the next messages are
// fetched and built). A collection's cursor is recorded when it was read
// to the end with every delivery accepted, so a run cut short (Stop, a
// dropped connection, MaxUserMessages) resumes from what was recorded.
func (r *Repository) syncTask(ctx context.Context, job *fetch.Job, task string, prog *restsync.Progress, idx int, log *slog.Logger) error {
	s := r.set[task]
	cnt := restsync.Counts(job, task)
	// Connecting and logging in (the server's greeting, its
	// authentication: tens of milliseconds) overlaps reading the
	// datastore (every record of the task on a re-sync).
	conn := r.openAsync(ctx, s)
	ds, err := r.datastore(task)
	if err != nil {
		conn.discard()
		return err
	}
	defer restsync.NoteAction(ds, restsync.ActionSynchronize, r.now, r.log)()
	st, err := loadState(ds)
	if err != nil {
		conn.discard()
		return fmt.Errorf("mailfetch: read the datastore of %s: %w", task, err)
	}
	mb, err := conn.wait()
	if err != nil {
		return err
	}
	closeOnce := sync.OnceFunc(func() { _ = mb.Close() })
	defer closeOnce()
	colls, err := mb.Collections(ctx)
	// A folder of Folders that does not exist (deleted by the mailbox's
	// owner): the others are synchronized, its messages go as those of a
	// folder no longer indexed, and the task ends with the error.
	var missing error
	if errors.Is(err, mailbox.ErrMissingFolder) {
		missing, err = err, nil
		log.Warn("a folder named in Folders does not exist: the others are synchronized", "error", missing)
	}
	if err != nil {
		return err
	}
	builder, err := newDocBuilder(s)
	if err != nil {
		return err
	}
	b := r.newBatch(ds, cnt, log)
	b.Report = restsync.FailOf(job, task)
	b.Wrote = func() { r.wrote[task].Add(1) } // (shared.othersWrote)
	defer b.Close()
	// The settings that shape documents now, and those of the records
	// that do not say theirs.
	now, legacy := shapeOf(s), shapeOf(s)
	if st.legacy != nil {
		legacy = *st.legacy
	} else {
		v, _ := json.Marshal(legacy)
		b.Add(restsync.Item{Key: shapeKey, Value: v})
	}
	h := countHolders(st, colls)
	sh := r.shared(task, ds, log)
	if sh != nil {
		b.Keep = sh.keepBatch
	}
	// Folders (or labels) no longer indexed: their messages go.
	names := map[string]bool{}
	for _, c := range colls {
		names[c.Name] = true
	}
	var dropped []string
	for coll := range st.records {
		if !names[coll] {
			dropped = append(dropped, coll)
		}
	}
	for coll, failed := range st.failed {
		if !names[coll] {
			for key := range failed {
				b.Add(restsync.Item{Key: failureKey(coll, key), Delete: true})
			}
		}
	}
	slices.Sort(dropped)
	for _, coll := range dropped {
		log.Info("folder no longer indexed: its messages are deleted", "folder", coll)
		mark := b.Mark()
		for key, rec := range st.records[coll] {
			if err := forget(b, h, sh, coll, key, rec); err != nil {
				return flushed(ctx, b, err)
			}
			if err := b.MaybeFlush(ctx); err != nil {
				return err
			}
		}
		b.DeleteAfter(mark, cursorKey(coll))
	}
	budget := s.MaxUserMessages
	for ci, c := range colls {
		if err := job.Checkpoint(ctx); err != nil {
			return flushed(ctx, b, err)
		}
		prog.Set(idx, float64(ci)/float64(max(len(colls), 1))*100, c.Name)
		recs := st.records[c.Name]
		if recs == nil {
			recs = map[string]*record{}
		}
		k := newKnown(st.cursors[c.Name], recs, st.failed[c.Name], now, legacy)
		plan, err := mb.Plan(ctx, c, k)
		if err != nil {
			return flushed(ctx, b, err)
		}
		complete := true
		// The cursor depends on every delivery of the collection.
		mark := b.Mark()
		failed := st.failed[c.Name]
		if err := forgetKeys(ctx, b, h, sh, c.Name, plan.Delete, recs); err != nil {
			return err
		}
		// The messages under keys replaced (a new UIDVALIDITY) go once
		// the collection is read again, below; their failures now.
		for _, key := range slices.Concat(plan.Delete, plan.Replaced) {
			if _, ok := failed[key]; ok {
				b.Add(restsync.Item{Key: failureKey(c.Name, key), Delete: true})
			}
		}
		if len(plan.Replaced) > 0 && h == nil {
			// The task's one collection: a record replaced may hold the
			// reference of the message read again (Gmail's id), whose
			// documents must then stay.
			h = newHolders()
			h.count(recs)
		}
		// Messages that failed before go after the others (the suspect of
		// a fetch the server failed, below).
		imap := s.Transport == TransportIMAP
		if imap && len(failed) > 0 {
			// A message given up that the plan no longer names (an IMAP
			// plan names every message never read) left the folder.
			named := planned(plan)
			for key, f := range failed {
				if recs[key] == nil && !named[key] && f.givenUp(r.now()) {
					b.Add(restsync.Item{Key: failureKey(c.Name, key), Delete: true})
				}
			}
		}
		plan.Fetch = lastFailed(plan.Fetch, failed, recs, imap, r.now())
		// Messages another task let go of, whose document in the index
		// may be that task's; then the retries, last.
		plan.Fetch = append(plan.Fetch, againOf(plan, recs)...)
		retries := retriesOf(plan, failed, r.now())
		plan.Fetch = append(plan.Fetch, retries...)
		fetchKeys := plan.Fetch
		if s.MaxUserMessages > 0 {
			if budget <= 0 {
				fetchKeys, complete = nil, len(plan.Fetch) == 0
			} else if len(fetchKeys) > budget {
				fetchKeys, complete = fetchKeys[:budget], false
			}
			budget -= len(fetchKeys)
		}
		// Unchanged messages count as the documents they stand for (none
		// on a first run: no map of the keys to fetch then).
		if len(recs) > 0 {
			touched := make(map[string]bool, len(plan.Delete)+len(plan.Replaced)+len(plan.Fetch))
			for _, key := range plan.Delete {
				touched[key] = true
			}
			for _, key := range plan.Replaced {
				touched[key] = true
			}
			for _, key := range plan.Fetch {
				touched[key] = true
			}
			for key, rec := range recs {
				if !touched[key] {
					cnt.Unchanged.Add(uint64(1 + len(rec.Kids)))
					cnt.Seen.Add(uint64(1 + len(rec.Kids)))
				}
			}
		}
		n, inARow := 0, 0
		read := make(map[string]bool, len(retries)) // messages that failed before, read now
		bp := startBuilding(ctx, log, builder, task, c, func(m *mailbox.Message, bl *built) error {
			if m.Err != nil {
				at := r.now()
				f := failed[m.Key].failed(m.Err, at)
				cnt.Errors.Add(1)
				job.Fail(task, m.Reference, m.Err.Error())
				if f.givenUp(at) {
					log.Warn("message could not be read: given up until it changes", "reference", m.Reference, "attempts", f.N, "error", m.Err)
				} else {
					log.Warn("message could not be read: the next run reads it again", "reference", m.Reference, "attempts", f.N, "error", m.Err)
				}
				b.Add(restsync.Item{Key: failureKey(c.Name, m.Key), Value: f.encode()})
				return b.MaybeFlush(ctx)
			}
			if _, ok := failed[m.Key]; ok {
				// Forgotten once its documents are delivered.
				b.DeleteAfter(b.Mark(), failureKey(c.Name, m.Key))
			}
			if len(bl.problems) > 0 {
				log.Debug("malformed message read as far as possible", "reference", m.Reference, "problems", bl.problems)
			}
			if bl.extractFailures > 0 {
				cnt.Errors.Add(uint64(bl.extractFailures))
			}
			cnt.Seen.Add(uint64(len(bl.docs)))
			if err := deliver(b, h, sh, c.Name, m, bl, recs[m.Key], now); err != nil {
				return err
			}
			return b.MaybeFlush(ctx)
		})
		var ownErr error // why the deliveries stopped the fetch, if they did
		onMessage := func(m *mailbox.Message) error {
			if err := job.Checkpoint(ctx); err != nil {
				return err
			}
			n++
			prog.Set(idx, (float64(ci)+float64(n)/float64(len(fetchKeys)+1))/float64(max(len(colls), 1))*100, c.Name)
			_, before := failed[m.Key]
			if before {
				read[m.Key] = true // (only those: a first run reads every message)
			}
			if m.Err != nil && !before {
				// Many messages failing for the first time, one after
				// the other: the server is failing, not the messages.
				if inARow++; inARow >= maxNewFailuresInARow {
					_ = bp.add(m) // reported as the others
					return fmt.Errorf("mailfetch: %d messages in a row could not be read, the last: %w", inARow, m.Err)
				}
			} else if m.Err == nil {
				inARow = 0
			}
			return bp.add(m)
		}
		fetch := func(keys []string) error {
			if len(keys) == 0 {
				return nil
			}
			return mb.Fetch(ctx, c, keys, func(m *mailbox.Message) error {
				err := onMessage(m)
				if err != nil {
					ownErr = err
				}
				return err
			})
		}
		// Those that failed before in commands of their own, after the
		// others: the server gives a command's messages in the order of
		// their UIDs, so one it cannot give would stop it before the
		// messages after it again.
		var clean, before []string
		for _, k := range fetchKeys {
			if _, ok := failed[k]; ok {
				before = append(before, k)
			} else {
				clean = append(clean, k)
			}
		}
		err = fetch(clean)
		if err == nil {
			err = fetch(before)
		}
		var fa *mailbox.FailedAt
		if errors.As(err, &fa) && ownErr == nil && ctx.Err() == nil && imap {
			// The server failed while giving fa.Key (it dropped the
			// connection, answered NO): it may be a message it can
			// never give, which would stop every run there. It is noted
			// as failed (as the server's failure: given up only after
			// transientGiveUp and maxMessageAttempts runs) and read after
			// the others by the next runs.
			f := failed[fa.Key].failed(fmt.Errorf("%w: %w", mailbox.ErrTransient, err), r.now())
			log.Warn("the server failed while giving a message: the next runs read it after the others", "folder", c.Name, "key", fa.Key, "attempts", f.N, "error", err)
			b.Add(restsync.Item{Key: failureKey(c.Name, fa.Key), Value: f.encode()})
		}
		if berr := bp.wait(); err == nil {
			err = berr
		}
		if err != nil {
			return flushed(ctx, b, err)
		}
		// The retries are the end of plan.Fetch, of which fetchKeys is
		// the beginning.
		first := len(plan.Fetch) - len(retries)
		for i, key := range retries {
			if !read[key] && first+i < len(fetchKeys) {
				// Gone meanwhile.
				b.Add(restsync.Item{Key: failureKey(c.Name, key), Delete: true})
			}
		}
		if complete {
			// Read again to the end: the documents of the keys replaced
			// go (those of a reference read again stay: h).
			if err := forgetKeys(ctx, b, h, sh, c.Name, plan.Replaced, recs); err != nil {
				return err
			}
		}
		if complete && len(plan.Cursor) > 0 {
			b.PutAfter(mark, cursorKey(c.Name), plan.Cursor)
		}
	}
	// Every message was read: the connection is closed (LOGOUT, its
	// answer) while the last deliveries are written, and the task ends
	// when both are done.
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		closeOnce()
	}()
	err = b.Flush(ctx)
	<-closed
	if err != nil {
		return fmt.Errorf("mailfetch: %w", err)
	}
	prog.Set(idx, 100, "")
	if st := mb.Stats(); st.Commands > 0 {
		log.Debug("mailbox work", "commands", st.Commands, "bodies", st.BodiesFetched, "bytes", st.BytesFetched)
	}
	return missing
}

// opening is a connection to a task's mailbox being made in the
// background.
type opening struct {
	done chan struct{}
	mb   mailbox.Mailbox
	err  error
}

// openAsync starts connecting to the task's mailbox (r.open). It runs
// outside the worker's recovery: a panic (in the reading of the server's
// answers) is why it could not be opened, not the process's end.
func (r *Repository) openAsync(ctx context.Context, s *settings) *opening {
	o := &opening{done: make(chan struct{})}
	go func() {
		defer close(o.done)
		defer panics.Catch(r.log, "mailfetch: opening the mailbox", &o.err)
		o.mb, o.err = r.open(ctx, s)
	}()
	return o
}

// wait returns the mailbox, or why it could not be opened.
func (o *opening) wait() (mailbox.Mailbox, error) {
	<-o.done
	return o.mb, o.err
}

// discard closes the mailbox once it is open; it does not wait.
func (o *opening) discard() {
	go func() {
		if mb, err := o.wait(); err == nil {
			_ = mb.Close()
		}
	}()
}

// building turns a collection's messages into documents on several
// goroutines (MIME reading and text extraction are most of a message's
// cost) and hands them, in the order fetched, to one goroutine that
// delivers them. Messages go in jobs of up to jobMessages messages or
// jobBytes of message bytes (plus one message): a hand-over per message
// (a job, two channel sends and a wake-up of each goroutine) cost more
// than reading a small message. At most 2 × builders jobs are held
// besides the one being gathered.
type building struct {
	in    chan *buildJob // to the builders
	order chan *buildJob // to the deliverer, in the order fetched
	done  chan struct{}  // the deliverer ended
	err   atomic.Pointer[error]
	wg    sync.WaitGroup
	next  *buildJob // being gathered (by add, on the caller's goroutine)
	log   *slog.Logger
}

type buildJob struct {
	msgs  []*mailbox.Message
	bls   []*built // msgs[i]'s documents, once ready is closed
	bytes int
	ready chan struct{}
}

// The most messages, and message bytes, a job gathers.
const (
	jobMessages = 16
	jobBytes    = 1 << 20
)

// builders is how many messages are read at once: one per core, at
// least 2 so that building overlaps the hand-over.
func builders() int { return max(2, min(runtime.GOMAXPROCS(0), 8)) }

// startBuilding starts the builders and the deliverer, which calls
// deliver for each message in order until it returns an error.
func startBuilding(ctx context.Context, log *slog.Logger, b *docBuilder, task string, c mailbox.Collection, deliver func(*mailbox.Message, *built) error) *building {
	n := builders()
	bp := &building{in: make(chan *buildJob, n), order: make(chan *buildJob, n), done: make(chan struct{}), log: log}
	for range n {
		bp.wg.Add(1)
		go func() {
			defer bp.wg.Done()
			sc := b.scratch(ctx)
			for j := range bp.in {
				bp.build(j, func(m *mailbox.Message) *built {
					if m.Err != nil {
						return nil // not read: nothing to build
					}
					return b.buildWith(sc, ctx, task, c, m)
				})
			}
		}()
	}
	go func() {
		defer close(bp.done)
		for j := range bp.order {
			<-j.ready
			for i, m := range j.msgs {
				if bp.err.Load() != nil {
					break // drain
				}
				if err := bp.deliverOne(deliver, m, j.bls[i]); err != nil {
					bp.fail(err)
				}
			}
		}
	}()
	return bp
}

// The builders and the deliverer are goroutines of the Synchronize's,
// outside the worker's recovery: a panic in one (the MIME reading of a
// malformed message, say) would end the process. build and deliverOne
// make it the error that stops the deliveries (and so the task's, which
// ends the action as Error with its message); the goroutines go on
// draining, so that add and wait never wait for them in vain.

// build builds j's messages, and closes j.ready even if that panics
// (those left are not built: the deliverer drains them). After the
// deliveries stopped it builds nothing.
func (bp *building) build(j *buildJob, fn func(*mailbox.Message) *built) {
	defer close(j.ready)
	if err := bp.buildAll(j, fn); err != nil {
		bp.fail(err)
	}
}

// buildAll builds j's messages; a panic is its error.
func (bp *building) buildAll(j *buildJob, fn func(*mailbox.Message) *built) (err error) {
	defer panics.Catch(bp.log, "mailfetch: building a message", &err)
	j.bls = make([]*built, len(j.msgs))
	for i, m := range j.msgs {
		if bp.err.Load() != nil {
			return nil
		}
		j.bls[i] = fn(m)
	}
	return nil
}

// deliverOne delivers a built message; a panic is its error.
func (bp *building) deliverOne(deliver func(*mailbox.Message, *built) error, m *mailbox.Message, bl *built) (err error) {
	defer panics.Catch(bp.log, "mailfetch: delivering a message", &err)
	return deliver(m, bl)
}

// fail records the error that stops the deliveries: the first one.
func (bp *building) fail(err error) { bp.err.CompareAndSwap(nil, &err) }

// add hands a message over to be built and delivered; it returns the
// error that stopped the deliveries, if one did.
func (bp *building) add(m *mailbox.Message) error {
	if e := bp.err.Load(); e != nil {
		return *e
	}
	if bp.next == nil {
		bp.next = &buildJob{msgs: make([]*mailbox.Message, 0, jobMessages)}
	}
	j := bp.next
	j.msgs = append(j.msgs, m)
	j.bytes += len(m.Raw)
	if len(j.msgs) >= jobMessages || j.bytes >= jobBytes {
		bp.dispatch()
	}
	return nil
}

// dispatch hands the job gathered to the builders and the deliverer.
func (bp *building) dispatch() {
	j := bp.next
	if j == nil {
		return
	}
	bp.next = nil
	j.ready = make(chan struct{})
	bp.order <- j
	bp.in <- j
}

// wait waits until every message handed over was delivered, and returns
// the error that stopped the deliveries, if one did.
func (bp *building) wait() error {
	bp.dispatch()
	close(bp.in)
	close(bp.order)
	bp.wg.Wait()
	<-bp.done
	if e := bp.err.Load(); e != nil {
		return *e
	}
	return nil
}

// flushed delivers and records what was gathered before err ended the
// task (a dropped connection, Stop), so the next run resumes after it,
// and returns err.
func flushed(ctx context.Context, b *restsync.Batch, err error) error {
	if ferr := b.Flush(ctx); ferr != nil {
		return errors.Join(err, fmt.Errorf("mailfetch: %w", ferr))
	}
	return err
}

// newBatch gathers deliveries, removals and the datastore writes that
// follow them (restsync.Batch): documents are delivered in batches of at
// least 1000 (or [Ingestion] IngestBatchSize when larger) in the
// background, then every record of the batch is written in one
// Datastore.Update, then the batch is counted. A refused delivery leaves
// the records as they were (the next run sends the messages again) and
// counts ingestfailed. The documents of the batch being gathered go to the
// target early, in multiples of IngestBatchSize (the target's files are
// those of one call per batch), while the delivering goroutine is idle, so
// the last batch's delivery, after the last message was read, is its rest
// only.
func (r *Repository) newBatch(ds store.Datastore, cnt *fetch.Counts, log *slog.Logger) *restsync.Batch {
	return &restsync.Batch{DS: ds, Target: r.target, Counts: cnt, Log: log, Size: max(r.batchSize(), 1000), FileSize: r.batchSize()}
}

// batchSize is [Ingestion] IngestBatchSize.
func (r *Repository) batchSize() int {
	if n := r.cfg.Ingestion.BatchSize; n > 0 {
		return n
	}
	return ingest.DefaultBatchSize
}

// holders counts, per message reference, the records of the task that
// hold it, when the task has more than one collection (folders indexed
// now or before); nil otherwise. On Gmail a message is in the folder of
// each of its labels under one reference (its Gmail id), so one message
// may have a record in each folder indexed: its documents are removed
// only when the last of them goes (it left every folder indexed), not
// when it leaves one folder while still in another. Elsewhere a
// reference is the IMAP URL of RFC 5092, which names its folder: such
// references are not counted (one record each, and no memory spent on a
// map of every message of a many-folder mailbox).
//
// The counts are the run's: the builders' deliverer (deliver) and the
// task's goroutine (forget) use them one after the other, never at once
// (a collection's messages are delivered, and the deliverer waited for,
// before the next collection is planned).
//
// A hold this run's delivery added is only as sure as that delivery: the
// target may refuse it, and then no record holds the reference. fresh
// keeps, for such a reference, the point of the batch before that
// delivery, so that a record forgotten while only the other folder's
// delivery may hold its reference is deleted only once no delivery since
// was refused (restsync.Batch.DeleteAfter); refused, the record stays and
// the next run forgets it again, instead of leaving the document in the
// index with no record of it.
type holders struct {
	n     map[string]int
	fresh map[string]restsync.Mark
}

// countHolders counts the references of the records read.
func countHolders(st *state, colls []mailbox.Collection) *holders {
	names := make(map[string]bool, len(colls)+len(st.records))
	for coll := range st.records {
		names[coll] = true
	}
	for _, c := range colls {
		names[c.Name] = true
	}
	if len(names) < 2 {
		return nil
	}
	h := newHolders()
	for _, recs := range st.records {
		h.count(recs)
	}
	return h
}

// count counts the references of recs.
func (h *holders) count(recs map[string]*record) {
	for _, rec := range recs {
		if shareable(rec.Ref) {
			h.n[rec.Ref]++
		}
	}
}

func newHolders() *holders {
	return &holders{n: map[string]int{}, fresh: map[string]restsync.Mark{}}
}

// shareable reports whether a reference may be held by records of
// several folders: any but an IMAP URL, which names its folder.
func shareable(ref string) bool { return !strings.HasPrefix(ref, "imap:") }

// hold notes one more record holding ref: the one of a delivery added to
// the batch after m.
func (h *holders) hold(ref string, m restsync.Mark) {
	if h != nil && shareable(ref) {
		h.n[ref]++
		if _, ok := h.fresh[ref]; !ok {
			h.fresh[ref] = m
		}
	}
}

// release notes one record less holding ref, and reports whether another
// still holds it (its documents must stay).
func (h *holders) release(ref string) bool {
	if h == nil || !shareable(ref) {
		return false
	}
	n := h.n[ref] - 1
	if n <= 0 {
		delete(h.n, ref)
		return false
	}
	h.n[ref] = n
	return true
}

// deliver adds a message's documents; old is its record when it was
// delivered before. The documents of old it no longer yields stay when
// another task holds them (sh): the batch's Keep (shared.keepBatch)
// decides just before the removals go.
func deliver(b *restsync.Batch, h *holders, sh *shared, coll string, m *mailbox.Message, bl *built, old *record, now shape) error {
	rec := &record{Version: m.Version, Ref: m.Reference, Kids: bl.kids, Title: bl.title, Size: m.Size, Shape: now.FP}
	if m.Truncated {
		rec.Cut = now.Max
	}
	it := restsync.Item{Docs: bl.docs, Key: recordKey(coll, m.Key)}
	it.Value = rec.encode()
	mark := b.Mark() // the point before this delivery
	if old == nil {
		it.Added = uint64(len(bl.docs))
		h.hold(rec.Ref, mark)
	} else {
		it.Updated = uint64(len(bl.docs))
		// The old reference's documents stay while another folder's
		// record holds it.
		held := false
		if old.Ref != rec.Ref {
			h.hold(rec.Ref, mark)
			held = h.release(old.Ref)
		}
		if !held {
			// Attachments the message no longer yields (a limit changed).
			for _, ref := range kidRefs(old.Ref, old.Kids) {
				if !slices.Contains(kidRefs(rec.Ref, rec.Kids), ref) {
					it.Removes = append(it.Removes, ref)
					it.Deleted++
				}
			}
			if old.Ref != rec.Ref {
				it.Removes = append(it.Removes, old.Ref)
				it.Deleted++
			}
			if len(it.Removes) > 0 && sh != nil {
				// Those another task holds stay (keepBatch).
				it = it.Dropping(string(it.Key), &restsync.Record{Ref: old.Ref})
			}
		}
	}
	b.Add(it)
	return nil
}

// forget removes a message's documents and record; its record alone when
// another folder's record still holds its reference (h), and, when that
// may be the record of a delivery of this run, only if no delivery since
// was refused. The documents another task holds (sh) stay: the batch's
// Keep (shared.keepBatch) decides just before the removals go, and fails
// the batch when the store's turn cannot be had.
func forget(b *restsync.Batch, h *holders, sh *shared, coll, key string, rec *record) error {
	if h.release(rec.Ref) {
		if m, ok := h.fresh[rec.Ref]; ok {
			b.DeleteAfter(m, recordKey(coll, key))
			return nil
		}
		b.Add(restsync.Item{Key: recordKey(coll, key), Delete: true})
		return nil
	}
	refs := append([]string{rec.Ref}, kidRefs(rec.Ref, rec.Kids)...)
	it := restsync.Item{Removes: refs, Key: recordKey(coll, key), Delete: true, Deleted: uint64(len(refs))}
	if sh != nil {
		// Those another task holds stay (keepBatch).
		it = it.Dropping(string(it.Key), &restsync.Record{Ref: rec.Ref})
	}
	b.Add(it)
	return nil
}

// forgetKeys forgets the messages of keys that have a record (forget),
// delivering the batch as it fills.
func forgetKeys(ctx context.Context, b *restsync.Batch, h *holders, sh *shared, coll string, keys []string, recs map[string]*record) error {
	for _, key := range keys {
		if rec := recs[key]; rec != nil {
			if err := forget(b, h, sh, coll, key, rec); err != nil {
				return flushed(ctx, b, err)
			}
			if err := b.MaybeFlush(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// planned returns the keys the plan fetches, deletes or replaces.
func planned(plan *mailbox.Plan) map[string]bool {
	named := make(map[string]bool, len(plan.Fetch)+len(plan.Delete)+len(plan.Replaced))
	for _, key := range plan.Fetch {
		named[key] = true
	}
	for _, key := range plan.Delete {
		named[key] = true
	}
	for _, key := range plan.Replaced {
		named[key] = true
	}
	return named
}

// lastFailed returns keys (a plan's Fetch) with those of messages that
// failed before after the others, in their order: one the server cannot
// give (the suspect of a failed IMAP fetch) no longer stops the run
// before the messages after it. On IMAP (imap), whose plan names a
// message never read in every run, those never read (no record) and
// given up at now are left out: they are read again once they leave the
// folder and come back (a new UID), or their failure is forgotten.
func lastFailed(keys []string, failed map[string]failure, recs map[string]*record, imap bool, now time.Time) []string {
	if len(failed) == 0 {
		return keys
	}
	out := make([]string, 0, len(keys))
	var last []string
	for _, k := range keys {
		f, ok := failed[k]
		switch {
		case !ok:
			out = append(out, k)
		case imap && recs[k] == nil && f.givenUp(now):
		default:
			last = append(last, k)
		}
	}
	return append(out, last...)
}

// againOf returns the keys of the records another task marked Again that
// the plan neither fetches nor deletes.
func againOf(plan *mailbox.Plan, recs map[string]*record) []string {
	var keys []string
	for key, rec := range recs {
		if rec.Again {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	named := planned(plan)
	keys = slices.DeleteFunc(keys, func(k string) bool { return named[k] })
	slices.Sort(keys)
	return keys
}

// A message that cannot be read (mailbox.Message.Err: Gmail answers an
// error for it alone, run after run) is skipped, reported (a failure
// naming its reference, counted in errors, a warning) and recorded, so that
// the others are indexed and the collection's cursor moves on past it.
// Runs whose plan does not name it read it again until it is given up
// (failure.givenUp): after maxMessageAttempts runs that the server refused
// it for good (a 4xx), or, when some of them were the server failing for
// now (a 5xx: mailbox.ErrTransient, which says nothing of the message),
// once it has also failed for transientGiveUp, so that a few hours of the
// server's trouble over frequent runs do not give a message up. Then it is
// left until it changes (the plan names it again).
// maxNewFailuresInARow messages failing one after the other, each for the
// first time, end the task with the last one's error instead: then the
// server is failing, not the messages, and recording them would give them
// up.
const (
	maxMessageAttempts   = 3
	transientGiveUp      = 24 * time.Hour
	maxNewFailuresInARow = 20
)

// retriesOf returns the messages that failed before and are not given up
// (at now) that the plan neither fetches nor deletes.
func retriesOf(plan *mailbox.Plan, failed map[string]failure, now time.Time) []string {
	if len(failed) == 0 {
		return nil
	}
	named := planned(plan)
	var keys []string
	for key, f := range failed {
		if !f.givenUp(now) && !named[key] {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	return keys
}
