package restsync

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/connectorhq/connector/store"
)

// A task's datastore (one store.Datastore, named after the task in upper
// case) holds, under keys this package owns:
//
//	m:task          TaskMeta: the actions run on the task (TaskList)
//	r:<key>         Record: one delivered item, under the connector's key
//	k:<key>         in a store that outlives the process: another task
//	                marked the record of key (Repo.remarkNoted)
//
// and the connector's own keys (cursors) under other prefixes. Nothing
// secret is stored: no password, no token, no content.
const (
	metaKey      = "m:task"
	RecordPrefix = "r:"
	markPrefix   = "k:"
)

// markKey is the key of the note that another task marked the record of
// key (Repo.keepHeld).
func markKey(key string) []byte { return []byte(markPrefix + key) }

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
	return getRecord(ds.Get, key)
}

// getRecord returns the record of key as get has it, or nil.
func getRecord(get func(key []byte) ([]byte, error), key string) (*Record, error) {
	b, err := get(RecordKey(key))
	if err != nil {
		return nil, err
	}
	return decodeRecord(key, b)
}

// decodeRecord decodes the record of key stored as b (nil: none).
func decodeRecord(key string, b []byte) (*Record, error) {
	if b == nil {
		return nil, nil
	}
	r := &Record{}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("record %q: %w", key, err)
	}
	return r, nil
}

// EachRecord calls fn with every record whose key starts with prefix (in
// key order). An error from fn stops the walk. It reads only the keys
// under prefix where the datastore can (store.ForEachPrefix: the
// embedded store seeks to it, a cluster's shared store serves it from
// the node's cache), not every key of the task: records are never
// written by merges (only the task's meta record is: NoteAction).
func EachRecord(ds store.Datastore, prefix string, fn func(key string, r *Record) error) error {
	p := RecordKey(prefix)
	return store.ForEachPrefix(ds, p, func(k, v []byte) error {
		r := &Record{}
		if err := json.Unmarshal(v, r); err != nil {
			return fmt.Errorf("record %q: %w", k, err)
		}
		return fn(string(k[len(RecordPrefix):]), r)
	})
}

// TaskMeta is what TaskList reports of a task.
//
// It is written only by NoteAction, deferred: in a cluster as a merge the
// shared store applies as it commits the node's next group
// (store.MergeBookkeeper), without reading the record first, so Calls
// counts every node's actions, and Action and the times are those of the
// action committed last; on a single node read, changed and written back
// (store.UpdateBookkeeping). They are statistics; nothing depends on them
// (no run number or cursor lives here: records and cursors are keys of
// their own, which this deferred write never touches).
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
		// Bookkeeping: it rides the next durable write (the action's end).
		var err error
		if mb, ok := ds.(store.MergeBookkeeper); ok {
			err = mb.MergeBookkeeping([]byte(metaKey), noteMerge(action, start, now().UnixMilli()))
		} else {
			err = noteUpdate(ds, action, start, now().UnixMilli())
		}
		if err != nil {
			log.Warn("cannot record an action", "error", err)
		}
	}
}

// noteMerge is an action's record as a merge of TaskMeta's JSON names.
func noteMerge(action string, startMs, finishMs int64) store.Merge {
	a, _ := json.Marshal(action) // a string: cannot fail
	return store.Merge{Add: map[string]int64{"calls": 1}, Set: map[string]json.RawMessage{
		"action": a,
		"start":  json.RawMessage(strconv.FormatInt(startMs, 10)),
		"finish": json.RawMessage(strconv.FormatInt(finishMs, 10)),
	}}
}

// noteUpdate records an action by reading, changing and writing back the
// task's meta (a store that does not merge: reads are local).
func noteUpdate(ds store.Datastore, action string, startMs, finishMs int64) error {
	return store.UpdateBookkeeping(ds, func(w store.Writer) error {
		m := &TaskMeta{}
		if b, err := w.Get([]byte(metaKey)); err != nil {
			return err
		} else if b != nil {
			_ = json.Unmarshal(b, m)
		}
		m.Calls++
		m.Action = action
		m.LastStartMs = startMs
		m.LastFinishMs = finishMs
		b, _ := json.Marshal(m)
		return w.Put([]byte(metaKey), b)
	})
}

// MsTime turns milliseconds since the epoch into a time (zero for 0).
func MsTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// FileShape appends to parts what of a task's file settings differs from
// the defaults, for a record's fingerprint of the settings its documents
// were built with (nothing when all are the defaults, so that records
// written before there was one match a task on the defaults): MaxFileBytes
// (maxFile, defaultMax), ExtractText (extract) and ExtractMaxTextBytes
// (text, defaultText); and, when text is extracted, the extractor's
// version xv (extract.Version; 0: none, as records written before it was
// recorded), so that a new extraction reaches files already delivered.
func FileShape(parts []string, maxFile, defaultMax int64, extract bool, text, defaultText int64, xv int) []string {
	if maxFile != defaultMax {
		parts = append(parts, "max="+strconv.FormatInt(maxFile, 10))
	}
	if !extract {
		parts = append(parts, "noextract")
		return parts
	}
	if text != defaultText {
		parts = append(parts, "text="+strconv.FormatInt(text, 10))
	}
	if xv != 0 {
		parts = append(parts, "xv="+strconv.Itoa(xv))
	}
	return parts
}
