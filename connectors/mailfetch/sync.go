package mailfetch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// deliveryTimeout bounds the delivery and recording of the batch under way
// when an action is stopped.
const deliveryTimeout = 2 * time.Minute

// synchronize runs every task of the request, one after the other. A task
// that fails (its server refuses the login, its connection drops) does not
// stop the others; the action ends as Error with every task's failure.
func (r *Repository) synchronize(ctx context.Context, job *fetch.Job, req *request, log *slog.Logger) error {
	prog := newProgress(job, req.tasks)
	var errs []error
	for i, task := range req.tasks {
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
// documents and delivered in batches, each batch recorded in the datastore
// after its delivery. A collection's cursor is recorded when it was read to
// the end with every delivery accepted, so a run cut short (Stop, a
// dropped connection, MaxUserMessages) resumes from what was recorded.
func (r *Repository) syncTask(ctx context.Context, job *fetch.Job, task string, prog *progress, idx int, log *slog.Logger) error {
	s := r.set[task]
	cnt := counts(job, task)
	ds, err := r.datastore(task)
	if err != nil {
		return err
	}
	defer r.record(ds, ActionSynchronize)()
	st, err := loadState(ds)
	if err != nil {
		return fmt.Errorf("mailfetch: read the datastore of %s: %w", task, err)
	}
	mb, err := r.open(ctx, s)
	if err != nil {
		return err
	}
	defer mb.Close()
	colls, err := mb.Collections(ctx)
	if err != nil {
		return err
	}
	builder, err := newDocBuilder(s)
	if err != nil {
		return err
	}
	b := &batch{r: r, ds: ds, cnt: cnt, log: log, size: r.batchSize()}
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
	slices.Sort(dropped)
	for _, coll := range dropped {
		log.Info("folder no longer indexed: its messages are deleted", "folder", coll)
		for key, rec := range st.records[coll] {
			b.forget(coll, key, rec)
			if err := b.maybeFlush(ctx); err != nil {
				return err
			}
		}
		b.dropCursor(coll)
	}
	if err := b.flush(ctx); err != nil {
		return err
	}
	budget := s.MaxUserMessages
	for ci, c := range colls {
		if err := job.Checkpoint(ctx); err != nil {
			return err
		}
		prog.set(idx, float64(ci)/float64(max(len(colls), 1))*100, c.Name)
		recs := st.records[c.Name]
		if recs == nil {
			recs = map[string]*record{}
		}
		k := &known{cursor: st.cursors[c.Name], records: recs}
		plan, err := mb.Plan(ctx, c, k)
		if err != nil {
			return err
		}
		complete := true
		b.failed = false
		for _, key := range plan.Delete {
			if rec := recs[key]; rec != nil {
				b.forget(c.Name, key, rec)
				if err := b.maybeFlush(ctx); err != nil {
					return err
				}
			}
		}
		fetchKeys := plan.Fetch
		if s.MaxUserMessages > 0 {
			if budget <= 0 {
				fetchKeys, complete = nil, len(plan.Fetch) == 0
			} else if len(fetchKeys) > budget {
				fetchKeys, complete = fetchKeys[:budget], false
			}
			budget -= len(fetchKeys)
		}
		// Unchanged messages count as the documents they stand for.
		touched := make(map[string]bool, len(plan.Delete)+len(plan.Fetch))
		for _, key := range plan.Delete {
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
		n := 0
		err = mb.Fetch(ctx, c, fetchKeys, func(m *mailbox.Message) error {
			if err := job.Checkpoint(ctx); err != nil {
				return err
			}
			n++
			prog.set(idx, (float64(ci)+float64(n)/float64(len(fetchKeys)+1))/float64(max(len(colls), 1))*100, c.Name)
			bl := builder.build(ctx, task, c, m)
			if len(bl.problems) > 0 {
				log.Debug("malformed message read as far as possible", "reference", m.Reference, "problems", bl.problems)
			}
			if bl.extractFailures > 0 {
				cnt.Errors.Add(uint64(bl.extractFailures))
			}
			cnt.Seen.Add(uint64(len(bl.docs)))
			b.deliver(c.Name, m, bl, recs[m.Key])
			return b.maybeFlush(ctx)
		})
		if ferr := b.flush(ctx); err == nil {
			err = ferr
		}
		if err != nil {
			return err
		}
		if complete && !b.failed && len(plan.Cursor) > 0 {
			if err := ds.Update(func(w store.Writer) error { return w.Put(cursorKey(c.Name), plan.Cursor) }); err != nil {
				return fmt.Errorf("mailfetch: record folder %q: %w", c.Name, err)
			}
		}
	}
	prog.set(idx, 100, "")
	if st := mb.Stats(); st.Commands > 0 {
		log.Debug("mailbox work", "commands", st.Commands, "bodies", st.BodiesFetched, "bytes", st.BytesFetched)
	}
	return nil
}

// batchSize is [Ingestion] IngestBatchSize.
func (r *Repository) batchSize() int {
	if n := r.cfg.Ingestion.BatchSize; n > 0 {
		return n
	}
	return ingest.DefaultBatchSize
}

// batch gathers deliveries, removals and the datastore writes that follow
// them: documents are delivered in one Add and removals in one Remove, then
// every record of the batch is written in one Datastore.Update, then the
// batch is counted. A refused delivery leaves the records as they were
// (the next run sends the messages again) and counts ingestfailed.
type batch struct {
	r    *Repository
	ds   store.Datastore
	cnt  *fetch.Counts
	log  *slog.Logger
	size int

	docs    []*ingest.Document
	removes []string
	puts    []put
	dels    [][]byte
	cursors [][]byte // cursors to drop
	// counts to add once the batch is applied
	added, updated, deleted uint64
	// failed: a delivery of this collection was refused
	failed bool
}

type put struct {
	key []byte
	rec *record
}

// deliver adds a message's documents; old is its record when it was
// delivered before.
func (b *batch) deliver(coll string, m *mailbox.Message, bl *built, old *record) {
	rec := &record{Version: m.Version, Ref: m.Reference, Kids: bl.kids, Title: bl.title, Size: m.Size}
	b.docs = append(b.docs, bl.docs...)
	if old == nil {
		b.added += uint64(len(bl.docs))
	} else {
		b.updated += uint64(len(bl.docs))
		// Attachments the message no longer yields (a limit changed).
		for _, ref := range kidRefs(old.Ref, old.Kids) {
			if !slices.Contains(kidRefs(rec.Ref, rec.Kids), ref) {
				b.removes = append(b.removes, ref)
				b.deleted++
			}
		}
		if old.Ref != rec.Ref {
			b.removes = append(b.removes, old.Ref)
			b.deleted++
		}
	}
	b.puts = append(b.puts, put{key: recordKey(coll, m.Key), rec: rec})
}

// forget removes a message's documents and record.
func (b *batch) forget(coll, key string, rec *record) {
	b.removes = append(b.removes, rec.Ref)
	b.removes = append(b.removes, kidRefs(rec.Ref, rec.Kids)...)
	b.deleted += uint64(1 + len(rec.Kids))
	b.dels = append(b.dels, recordKey(coll, key))
}

func (b *batch) dropCursor(coll string) { b.cursors = append(b.cursors, cursorKey(coll)) }

func (b *batch) pending() int { return len(b.docs) + len(b.removes) }

func (b *batch) maybeFlush(ctx context.Context) error {
	if b.pending() < b.size {
		return nil
	}
	return b.flush(ctx)
}

// flush applies the batch. A batch under way when ctx ends (Stop) is still
// delivered and recorded, within deliveryTimeout.
func (b *batch) flush(ctx context.Context) error {
	if b.pending() == 0 && len(b.dels) == 0 && len(b.cursors) == 0 {
		return nil
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deliveryTimeout)
	defer cancel()
	t := b.r.target
	putsOK, delsOK := true, true
	if t != nil && len(b.docs) > 0 {
		if err := t.Add(dctx, b.docs); err != nil {
			b.log.Warn("delivery refused: the messages are sent again by the next run", "documents", len(b.docs), "error", err)
			b.cnt.IngestFailed.Add(uint64(len(b.docs)))
			b.failed, putsOK = true, false
		} else {
			b.cnt.IngestAdded.Add(b.added)
			b.cnt.IngestUpdated.Add(b.updated)
		}
	}
	if t != nil && len(b.removes) > 0 {
		if err := t.Remove(dctx, b.removes); err != nil {
			b.log.Warn("removal refused: the next run removes them again", "references", len(b.removes), "error", err)
			b.cnt.IngestFailed.Add(uint64(len(b.removes)))
			b.failed, delsOK = true, false
		} else {
			b.cnt.IngestDeleted.Add(uint64(len(b.removes)))
		}
	}
	err := b.ds.Update(func(w store.Writer) error {
		if putsOK {
			for _, p := range b.puts {
				v, _ := json.Marshal(p.rec)
				if err := w.Put(p.key, v); err != nil {
					return err
				}
			}
		}
		if delsOK {
			for _, k := range b.dels {
				if err := w.Delete(k); err != nil {
					return err
				}
			}
			for _, k := range b.cursors {
				if err := w.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mailfetch: record a batch: %w", err)
	}
	if putsOK {
		b.cnt.Added.Add(b.added)
		b.cnt.Updated.Add(b.updated)
	}
	if delsOK {
		b.cnt.Deleted.Add(b.deleted)
	}
	b.docs, b.removes, b.puts, b.dels, b.cursors = b.docs[:0], b.removes[:0], b.puts[:0], b.dels[:0], b.cursors[:0]
	b.added, b.updated, b.deleted = 0, 0, 0
	return nil
}

// progress publishes one stage per task, with the folder being read.
type progress struct {
	mu    sync.Mutex
	job   *fetch.Job
	names []string
	pct   []float64
	cur   []string
	last  time.Time
}

func newProgress(job *fetch.Job, tasks []string) *progress {
	p := &progress{job: job, names: tasks, pct: make([]float64, len(tasks)), cur: make([]string, len(tasks))}
	p.publish(true)
	return p
}

func (p *progress) set(i int, pct float64, folder string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	changed := p.cur[i] != folder || pct >= 100
	p.pct[i], p.cur[i] = min(pct, 100), folder
	p.publish(changed)
}

func (p *progress) publish(force bool) {
	now := time.Now()
	if !force && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	out := &messages.Progress{Stage: "finished"}
	total := 0.0
	for i, name := range p.names {
		state := messages.State_STATE_QUEUED
		switch {
		case p.pct[i] >= 100:
			state = messages.State_STATE_FINISHED
		case p.cur[i] != "":
			state = messages.State_STATE_PROCESSING
			out.Stage = name + " " + p.cur[i]
		}
		total += p.pct[i]
		out.Stages = append(out.Stages, &messages.Stage{Name: name, Percent: p.pct[i], State: state})
	}
	if len(p.names) > 0 {
		out.Percent = total / float64(len(p.names))
	}
	if out.Stage == "finished" && out.Percent < 100 {
		out.Stage = "queued"
	}
	p.job.SetProgress(out)
}
