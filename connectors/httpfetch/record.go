package httpfetch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/store"
)

// Datastore layout (one store.Datastore per task, named after the task in
// upper case):
//
//	"m:task"    taskMeta (JSON): run number, calls, last action and times
//	"u:<URL>"   record (JSON): what the task knows about one URL
//
// Values are JSON so that fields can be added without a migration; unknown
// fields are ignored when read.
const (
	metaKey   = "m:task"
	urlPrefix = "u:"
)

func urlKey(u string) []byte { return []byte(urlPrefix + u) }

// record is what a task remembers about one URL it fetched: the response's
// validators, a content hash, the links (so that a 304 lets the crawl go on
// through the page), what the ingestion target holds, and the run in which
// the URL was last seen. A record is written only as a whole, in the same
// datastore write (store.UpdateDeferred) as the other pages of its batch.
type record struct {
	// ETag and LastModified are the validators of the last 200 response.
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"lastmod,omitempty"`
	// Hash is the SHA-256 of the last body fetched.
	Hash []byte `json:"hash,omitempty"`
	// Delivered is the hash of the content the ingestion target holds for
	// this reference; nil when the target holds nothing (never delivered,
	// delivery failed, or removed).
	Delivered []byte `json:"delivered,omitempty"`
	// Links are the page's followed links (crawl.Page.Prior).
	Links []string `json:"links,omitempty"`
	// Run is the Synchronize run number in which the URL was last fetched
	// (200 or 304).
	Run uint64 `json:"run"`
	// Excluded: the page is crawled but not a document (UrlMustHaveRegex /
	// UrlCantHaveRegex excluded it at its last fetch).
	Excluded bool `json:"excluded,omitempty"`
	// Description of the page at its last 200, for Identifiers and logs.
	Title     string `json:"title,omitempty"`
	MediaType string `json:"type,omitempty"`
	Size      int64  `json:"size,omitempty"`
	Depth     int    `json:"depth,omitempty"`
	Parent    string `json:"parent,omitempty"`
	FetchedMs int64  `json:"fetched,omitempty"`
	// Extra is metadata added by FetchAction=Update; it is delivered with
	// every later version of the document.
	Extra []ingest.Field `json:"extra,omitempty"`
}

// delivered reports whether the target holds the content last fetched.
func (r *record) deliveredCurrent() bool {
	return r.Delivered != nil && bytes.Equal(r.Delivered, r.Hash)
}

func encodeRecord(r *record) []byte {
	b, err := json.Marshal(r)
	if err != nil { // only plain strings, numbers and byte slices: cannot fail
		panic(fmt.Sprintf("httpfetch: encode record: %v", err))
	}
	return b
}

func decodeRecord(b []byte) (*record, error) {
	r := &record{}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("httpfetch: datastore record: %w", err)
	}
	return r, nil
}

// getRecord reads the record of u, or nil when there is none.
func getRecord(ds store.Datastore, u string) (*record, error) {
	b, err := ds.Get(urlKey(u))
	if err != nil || b == nil {
		return nil, err
	}
	return decodeRecord(b)
}

// forEachRecord calls fn for every URL record, in URL byte order.
func forEachRecord(ds store.Datastore, fn func(u string, r *record) error) error {
	return ds.ForEach(func(k, v []byte) error {
		u, ok := strings.CutPrefix(string(k), urlPrefix)
		if !ok {
			return nil
		}
		r, err := decodeRecord(v)
		if err != nil {
			return fmt.Errorf("%w (key %q)", err, k)
		}
		return fn(u, r)
	})
}

// taskMeta is a task's bookkeeping, kept in its datastore so that it
// survives restarts: TaskList reads it.
type taskMeta struct {
	Runs         uint64 `json:"runs"`  // Synchronize runs started
	Calls        uint64 `json:"calls"` // fetch actions of any kind started on the task
	Action       string `json:"action,omitempty"`
	LastStartMs  int64  `json:"laststart,omitempty"`
	LastFinishMs int64  `json:"lastfinish,omitempty"`
}

func readMeta(ds store.Datastore) (*taskMeta, error) {
	b, err := ds.Get([]byte(metaKey))
	if err != nil {
		return nil, err
	}
	m := &taskMeta{}
	if b == nil {
		return m, nil
	}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("httpfetch: datastore meta: %w", err)
	}
	return m, nil
}

// updateMeta changes the task's meta record atomically and durably, and
// returns the new value.
func updateMeta(ds store.Datastore, fn func(m *taskMeta)) (*taskMeta, error) {
	return changeMeta(ds.Update, fn)
}

// updateMetaDeferred changes the task's meta record atomically; the change
// reaches the disk with the store's next durable write
// (store.UpdateBookkeeping):
// at the latest with the record of the action's end, which the queue
// writes after Run returns.
func updateMetaDeferred(ds store.Datastore, fn func(m *taskMeta)) (*taskMeta, error) {
	return changeMeta(func(f func(store.Writer) error) error { return store.UpdateBookkeeping(ds, f) }, fn)
}

func changeMeta(update func(func(store.Writer) error) error, fn func(m *taskMeta)) (*taskMeta, error) {
	var out *taskMeta
	err := update(func(w store.Writer) error {
		m := &taskMeta{}
		b, err := w.Get([]byte(metaKey))
		if err != nil {
			return err
		}
		if b != nil {
			if err := json.Unmarshal(b, m); err != nil {
				return fmt.Errorf("httpfetch: datastore meta: %w", err)
			}
		}
		fn(m)
		nb, err := json.Marshal(m)
		if err != nil {
			return err
		}
		out = m
		return w.Put([]byte(metaKey), nb)
	})
	return out, err
}
