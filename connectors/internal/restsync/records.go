package restsync

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/store"
)

// A task's datastore (one store.Datastore, named after the task in upper
// case) holds, under keys this package owns:
//
//	m:task          TaskMeta: the actions run on the task (TaskList)
//	r:<key>         Record: one delivered item, under the connector's key
//
// and the connector's own keys (cursors) under other prefixes. Nothing
// secret is stored: no password, no token, no content.
const (
	metaKey      = "m:task"
	RecordPrefix = "r:"
)

// Record is what a task keeps about one delivered item.
type Record struct {
	// Version is the service's version of the item when it was delivered
	// (an entity tag, an update time): a different one is a change.
	Version string `json:"v"`
	// Ref is the reference of the item's document.
	Ref string `json:"r"`
	// Kids are the references of its child documents (files, versions).
	Kids []string `json:"k,omitempty"`
	// Title names the item in Identifiers.
	Title string `json:"t,omitempty"`
	// Parent is the id of the container the item was found in.
	Parent string `json:"p,omitempty"`
	// Extra is the connector's own data.
	Extra json.RawMessage `json:"x,omitempty"`
}

// RecordKey is the datastore key of an item's record.
func RecordKey(key string) []byte { return []byte(RecordPrefix + key) }

// GetRecord returns the record of key, or nil.
func GetRecord(ds store.Datastore, key string) (*Record, error) {
	b, err := ds.Get(RecordKey(key))
	if err != nil || b == nil {
		return nil, err
	}
	r := &Record{}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("record %q: %w", key, err)
	}
	return r, nil
}

// EachRecord calls fn with every record whose key starts with prefix (in
// key order). An error from fn stops the walk.
func EachRecord(ds store.Datastore, prefix string, fn func(key string, r *Record) error) error {
	p := RecordKey(prefix)
	return ds.ForEach(func(k, v []byte) error {
		if !bytes.HasPrefix(k, p) {
			return nil
		}
		r := &Record{}
		if err := json.Unmarshal(v, r); err != nil {
			return fmt.Errorf("record %q: %w", k, err)
		}
		return fn(string(k[len(RecordPrefix):]), r)
	})
}

// TaskMeta is what TaskList reports of a task.
type TaskMeta struct {
	Calls        uint64 `json:"calls"`
	Action       string `json:"action"`
	LastStartMs  int64  `json:"start"`
	LastFinishMs int64  `json:"finish"`
}

// ReadMeta returns the task's meta (zero when none was written).
func ReadMeta(ds store.Datastore) (*TaskMeta, error) {
	m := &TaskMeta{}
	b, err := ds.Get([]byte(metaKey))
	if err != nil || b == nil {
		return m, err
	}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("task record: %w", err)
	}
	return m, nil
}

// NoteAction records that an action started on the task now; the returned
// function records its end (call it once).
func NoteAction(ds store.Datastore, action string, now func() time.Time, log *slog.Logger) func() {
	start := now().UnixMilli()
	return func() {
		err := ds.Update(func(w store.Writer) error {
			m := &TaskMeta{}
			if b, err := w.Get([]byte(metaKey)); err != nil {
				return err
			} else if b != nil {
				_ = json.Unmarshal(b, m)
			}
			m.Calls++
			m.Action = action
			m.LastStartMs = start
			m.LastFinishMs = now().UnixMilli()
			b, _ := json.Marshal(m)
			return w.Put([]byte(metaKey), b)
		})
		if err != nil {
			log.Warn("cannot record an action", "error", err)
		}
	}
}

// MsTime turns milliseconds since the epoch into a time (zero for 0).
func MsTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// DeliveryTimeout bounds a batch's delivery after its action was stopped
// (what is under way is still delivered and recorded).
const DeliveryTimeout = 30 * time.Second

// Batch delivers documents and records them together: a record is written
// only once its documents were delivered, and a removal is forgotten only
// once the documents were removed, so a refused delivery is sent again by
// the next run and nothing is recorded that the target does not have.
// Cursors (Put) are written only while every delivery of the batch
// succeeded, so a cursor never passes an item that was not delivered.
// A Batch is used by one goroutine.
type Batch struct {
	DS     store.Datastore
	Target ingest.Target // nil: nothing is delivered (records only)
	Counts *fetch.Counts
	Log    *slog.Logger
	// Size is the number of documents and removals gathered before a
	// flush; default 1000 (each flush is a durable write of the
	// datastore; the target writes files of its own [Ingestion]
	// IngestBatchSize).
	Size int
	// MaxBytes bounds the content (text and source bytes) gathered before
	// a flush; default 64 MiB.
	MaxBytes int

	docs    []*ingest.Document
	removes []string
	puts    []kv
	dels    [][]byte
	raw     []kv
	rawDels [][]byte
	bytes   int
	fails   int
	added   uint64
	updated uint64
	deleted uint64
	failed  bool
}

type kv struct {
	key []byte
	val []byte
}

// Deliver adds an item's documents (its own first, then its children);
// old is its record when it was delivered before. The documents of old's
// children that rec no longer has are removed.
func (b *Batch) Deliver(key string, rec *Record, docs []*ingest.Document, old *Record) {
	b.docs = append(b.docs, docs...)
	for _, d := range docs {
		b.bytes += len(d.Content) + len(d.Source)
	}
	if old == nil {
		b.added += uint64(len(docs))
	} else {
		b.updated += uint64(len(docs))
		for _, ref := range append([]string{old.Ref}, old.Kids...) {
			if ref != rec.Ref && !slices.Contains(rec.Kids, ref) {
				b.removes = append(b.removes, ref)
				b.deleted++
			}
		}
	}
	v, _ := json.Marshal(rec)
	b.puts = append(b.puts, kv{RecordKey(key), v})
}

// Record writes an item's record without delivering anything (an item
// whose documents are unchanged while its record changed).
func (b *Batch) Record(key string, rec *Record) {
	v, _ := json.Marshal(rec)
	b.puts = append(b.puts, kv{RecordKey(key), v})
}

// Forget removes an item's documents and its record.
func (b *Batch) Forget(key string, rec *Record) {
	b.removes = append(b.removes, rec.Ref)
	b.removes = append(b.removes, rec.Kids...)
	b.deleted += uint64(1 + len(rec.Kids))
	b.dels = append(b.dels, RecordKey(key))
}

// Put writes a connector key (a cursor) with the batch, unless a delivery
// of this batch failed.
func (b *Batch) Put(key, value []byte) {
	b.raw = append(b.raw, kv{key, value})
}

// Delete removes a connector key with the batch, unless a delivery of
// this batch failed.
func (b *Batch) Delete(key []byte) { b.rawDels = append(b.rawDels, key) }

// Failed reports whether a delivery of this batch was refused.
func (b *Batch) Failed() bool { return b.failed }

// Failures is the number of refused deliveries so far: a caller that
// notes it before adding an item's documents knows, after, whether any of
// them may have been refused.
func (b *Batch) Failures() int { return b.fails }

// Pending is the number of documents and removals waiting.
func (b *Batch) Pending() int { return len(b.docs) + len(b.removes) }

// MaybeFlush flushes once Size documents and removals, or MaxBytes of
// content, are waiting.
func (b *Batch) MaybeFlush(ctx context.Context) error {
	size := b.Size
	if size <= 0 {
		size = 1000
	}
	maxBytes := b.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 64 << 20
	}
	if b.Pending() < size && b.bytes < maxBytes {
		return nil
	}
	return b.Flush(ctx)
}

// Flush delivers and records what is waiting. What is under way when ctx
// ends (Stop) is still delivered and recorded, within DeliveryTimeout. A
// refused delivery is not an error (it is counted, logged, and sent again
// by the next run); a store that cannot be written is.
func (b *Batch) Flush(ctx context.Context) error {
	if b.Pending() == 0 && len(b.puts) == 0 && len(b.dels) == 0 && len(b.raw) == 0 && len(b.rawDels) == 0 {
		return nil
	}
	log := b.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DeliveryTimeout)
	defer cancel()
	putsOK, delsOK := true, true
	if b.Target != nil && len(b.docs) > 0 {
		if err := b.Target.Add(dctx, b.docs); err != nil {
			log.Warn("delivery refused: the items are sent again by the next run", "documents", len(b.docs), "error", err)
			b.Counts.IngestFailed.Add(uint64(len(b.docs)))
			b.failed, putsOK = true, false
			b.fails++
		} else {
			b.Counts.IngestAdded.Add(b.added)
			b.Counts.IngestUpdated.Add(b.updated)
		}
	}
	if b.Target != nil && len(b.removes) > 0 {
		if err := b.Target.Remove(dctx, b.removes); err != nil {
			log.Warn("removal refused: the next run removes them again", "references", len(b.removes), "error", err)
			b.Counts.IngestFailed.Add(uint64(len(b.removes)))
			b.failed, delsOK = true, false
			b.fails++
		} else {
			b.Counts.IngestDeleted.Add(uint64(len(b.removes)))
		}
	}
	err := b.DS.Update(func(w store.Writer) error {
		if putsOK {
			for _, p := range b.puts {
				if err := w.Put(p.key, p.val); err != nil {
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
		}
		if !b.failed {
			for _, p := range b.raw {
				if err := w.Put(p.key, p.val); err != nil {
					return err
				}
			}
			for _, k := range b.rawDels {
				if err := w.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record a batch: %w", err)
	}
	if putsOK {
		b.Counts.Added.Add(b.added)
		b.Counts.Updated.Add(b.updated)
	}
	if delsOK {
		b.Counts.Deleted.Add(b.deleted)
	}
	clear(b.docs) // drop the references, so the contents can be freed
	b.docs, b.removes, b.puts, b.dels, b.raw, b.rawDels = b.docs[:0], b.removes[:0], b.puts[:0], b.dels[:0], b.raw[:0], b.rawDels[:0]
	b.added, b.updated, b.deleted, b.bytes = 0, 0, 0, 0
	return nil
}
