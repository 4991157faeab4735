package httpfetch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/store"
)

// Datastore layout (one store.Datastore per task, named after the task in
// upper case):
//
//	"m:run"     runMeta (JSON): the number of the last Synchronize run
//	"m:task"    taskMeta (JSON): calls, last action and times (and a copy
//	            of the run number, which may lag: see runKey)
//	"u:<URL>"   record (JSON): what the task knows about one URL
//
// Values are JSON so that fields can be added without a migration; unknown
// fields are ignored when read.
const (
	// runKey holds the run number apart from the rest of the meta,
	// because the two are written differently: the run number only by the
	// durable Update of a Synchronize's start (which runs alone on its
	// task, cluster-wide: fetch.Exclusive), the rest also deferred, by
	// every action's end (store.UpdateBookkeeping). In a cluster a
	// deferred write is read on one node and committed with that node's
	// next group commit, so it can carry a value read before another
	// node's run started and write it back after: it must not hold the
	// run number, or a run number would be reused (and that run's
	// deletion pass would keep records the earlier run of that number
	// reached). The run number is the larger of runKey and taskMeta.Runs:
	// datastores written before runKey existed have it only in the
	// latter, and it is still written there for older nodes of a cluster
	// being upgraded.
	runKey    = "m:run"
	metaKey   = "m:task"
	urlPrefix = "u:"
	// markPrefix keys the notes of the marks another task made on this
	// task's records (markHeldElsewhere) in a store that outlives the
	// process, where this task's run may be on another node than the
	// marking task, or die before it marks them again (noteMarks).
	markPrefix = "k:"
)

func urlKey(u string) []byte { return []byte(urlPrefix + u) }

func markKey(u string) []byte { return []byte(markPrefix + u) }

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
	// From is the URL whose redirect last led the crawl to this page
	// (crawl.Page.URL; "" when it was asked for directly, and until a
	// redirect leads here): a link to From leads here, though no record
	// is kept under From. The deletion pass follows it from a URL that
	// failed transiently (deleteUnreached).
	From string `json:"from,omitempty"`
	// Run is the Synchronize run number in which the URL was last fetched
	// (200 or 304).
	Run uint64 `json:"run"`
	// Excluded: the page is crawled but not a document (UrlMustHaveRegex /
	// UrlCantHaveRegex excluded it, or it was noindex, at its last fetch).
	Excluded bool `json:"excluded,omitempty"`
	// NoIndex: the page was noindex (<meta name="robots">, X-Robots-Tag)
	// at its last 200, with FollowRobotProtocol: crawled for its links,
	// recorded (so that what it leads to is known when it fails: see
	// deleteUnreached) and Excluded, but not indexed.
	NoIndex bool `json:"noindex,omitempty"`
	// Removing: a removal of the page's document was sent to the target
	// and its outcome is not known for sure (apply writes this durably
	// before it sends a removal; a crash may lose the record written
	// after it): the target may or may not hold the document, so
	// Delivered is nil. A later run that finds the page delivers it
	// again; one that deletes it sends the removal again. A successful
	// delivery or removal clears it.
	Removing bool `json:"removing,omitempty"`
	// Unrendered: rendering failed at the last 200 (crawl.Page.RenderErr),
	// so Hash and what was delivered are of the page as served, not of its
	// rendering. The next fetch is unconditional: a 304 would keep the
	// failure as the page's content until the site changed it.
	Unrendered bool `json:"unrendered,omitempty"`
	// Render is the shape (TaskRun.Shape) an HTML page was fetched with
	// at its last 200: how the extension rendered and clipped it. When
	// the task's shape for the page is another, the next fetch is
	// unconditional.
	Render string `json:"render,omitempty"`
	// Stale: the target's document for the page is not the one this
	// task would deliver now, though the content is the same: a 304
	// found the page at another depth than its document says (DEPTH,
	// PARENT_URL; Depth and Parent are the new ones), or another task
	// delivered the same URL and forgot it (its AUTN_IDENTIFIER names
	// that task). The next fetch is unconditional and delivers the page
	// even when its content is unchanged.
	Stale bool `json:"stale,omitempty"`
	// Extract is the extraction settings a file's document (not HTML nor
	// plain text) was delivered with (settings.extractShape; "" the
	// defaults'). When they change, the file is fetched in full and
	// delivered again with its text as they extract it.
	Extract string `json:"extract,omitempty"`
	// XV is the extract.Version the document was delivered with (0:
	// before there was one). When it is another, the page is fetched in
	// full and delivered again, once (settings.extractStale).
	XV int `json:"xv,omitempty"`
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

// mayBeHeld reports whether the target may hold a document for the page:
// it was delivered, or a removal of it is not known to have been made.
func (r *record) mayBeHeld() bool { return r.Delivered != nil || r.Removing }

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

// forEachRecord calls fn for every URL record, in URL byte order: the
// Identifiers action's listing (store.ForEachPrefix: in a cluster, served
// from the node's cache while no node has written the task's datastore
// since; the URL records are never merged, only the meta record is).
func forEachRecord(ds store.Datastore, fn func(u string, r *record) error) error {
	return store.ForEachPrefix(ds, []byte(urlPrefix), func(k, v []byte) error {
		u := strings.TrimPrefix(string(k), urlPrefix)
		r, err := decodeRecord(v)
		if err != nil {
			return fmt.Errorf("%w (key %q)", err, k)
		}
		return fn(u, r)
	})
}

// taskMeta is a task's bookkeeping, kept in its datastore so that it
// survives restarts: TaskList reads it.
//
// In a cluster an action's end is merged into the record by the shared
// store as it commits (changeMetaDeferred, store.MergeBookkeeper), not
// read and written back, so Calls counts every node's actions; Action and
// the times are last writer wins: those of the action committed last
// rather than started last. A Synchronize's start (beginRun) reads the
// record and writes it whole, durably; merges committed after it apply
// over it. They are statistics (TaskList); nothing depends on them. The
// run number is kept exact apart (runKey).
type taskMeta struct {
	// Runs is the number of Synchronize runs started, as beginRun
	// returns it. In the stored record it may lag (runKey): only
	// beginRun reads the run number, from both keys.
	Runs         uint64 `json:"runs"`
	Calls        uint64 `json:"calls"` // fetch actions of any kind started on the task
	Action       string `json:"action,omitempty"`
	LastStartMs  int64  `json:"laststart,omitempty"`
	LastFinishMs int64  `json:"lastfinish,omitempty"`
}

// readMeta reads the task's meta record (TaskList); its Runs may lag
// (runKey).
func readMeta(ds store.Datastore) (*taskMeta, error) {
	b, err := ds.Get([]byte(metaKey))
	if err != nil {
		return nil, err
	}
	m := &taskMeta{}
	if b == nil {
		return m, nil
	}
	if err := decodeMeta(b, m); err != nil {
		return nil, fmt.Errorf("httpfetch: datastore meta: %w", err)
	}
	return m, nil
}

// runMeta is the record under runKey.
type runMeta struct {
	Runs uint64 `json:"runs"` // Synchronize runs started
}

// beginRun starts a new Synchronize run of the task: it raises the run
// number (runKey) and changes the task's meta record with fn, atomically
// and durably, and returns the new meta (Runs: the new run's number).
func beginRun(ds store.Datastore, fn func(m *taskMeta)) (*taskMeta, error) {
	var out *taskMeta
	err := ds.Update(func(w store.Writer) error {
		m, err := getMeta(w)
		if err != nil {
			return err
		}
		b, err := w.Get([]byte(runKey))
		if err != nil {
			return err
		}
		rm := &runMeta{}
		if b != nil {
			if err := json.Unmarshal(b, rm); err != nil {
				return fmt.Errorf("httpfetch: datastore run number: %w", err)
			}
		}
		m.Runs = max(m.Runs, rm.Runs) + 1
		fn(m)
		out = m
		rb, err := json.Marshal(&runMeta{Runs: m.Runs})
		if err != nil {
			return err
		}
		if err := w.Put([]byte(runKey), rb); err != nil {
			return err
		}
		return putMeta(w, m)
	})
	return out, err
}

// updateMetaDeferred changes the task's meta record atomically; the change
// reaches the disk with the store's next durable write
// (store.UpdateBookkeeping):
// at the latest with the record of the action's end, which the queue
// writes after Run returns.
func updateMetaDeferred(ds store.Datastore, fn func(m *taskMeta)) (*taskMeta, error) {
	return changeMeta(func(f func(store.Writer) error) error { return store.UpdateBookkeeping(ds, f) }, fn)
}

// metaChange is what an action's end changes in its task's meta record:
// calls added to Calls, and the other fields set (those that are zero are
// left as they are).
type metaChange struct {
	calls             uint64
	action            string
	startMs, finishMs int64
}

// apply makes c on m.
func (c metaChange) apply(m *taskMeta) {
	m.Calls += c.calls
	if c.action != "" {
		m.Action = c.action
	}
	if c.startMs != 0 {
		m.LastStartMs = c.startMs
	}
	if c.finishMs != 0 {
		m.LastFinishMs = c.finishMs
	}
}

// merge is c as a store.Merge of the JSON record (taskMeta's names).
func (c metaChange) merge() store.Merge {
	m := store.Merge{Add: map[string]int64{}, Set: map[string]json.RawMessage{}}
	if c.calls != 0 {
		m.Add["calls"] = int64(c.calls)
	}
	if c.action != "" {
		b, err := json.Marshal(c.action)
		if err != nil { // a string: cannot fail
			panic(fmt.Sprintf("httpfetch: encode meta: %v", err))
		}
		m.Set["action"] = b
	}
	if c.startMs != 0 {
		m.Set["laststart"] = json.RawMessage(strconv.FormatInt(c.startMs, 10))
	}
	if c.finishMs != 0 {
		m.Set["lastfinish"] = json.RawMessage(strconv.FormatInt(c.finishMs, 10))
	}
	return m
}

// changeMetaDeferred makes c on the task's meta record, deferred as
// updateMetaDeferred: without reading the record when the store can merge
// the change itself as it commits it (store.MergeBookkeeper, the shared
// store of a cluster, where a read is a round trip to PostgreSQL for
// every action). Calls is then exact across nodes, and the other fields
// are those of the change committed last.
func changeMetaDeferred(ds store.Datastore, c metaChange) error {
	if mb, ok := ds.(store.MergeBookkeeper); ok {
		return mb.MergeBookkeeping([]byte(metaKey), c.merge())
	}
	_, err := updateMetaDeferred(ds, c.apply)
	return err
}

func changeMeta(update func(func(store.Writer) error) error, fn func(m *taskMeta)) (*taskMeta, error) {
	var out *taskMeta
	err := update(func(w store.Writer) error {
		m, err := getMeta(w)
		if err != nil {
			return err
		}
		fn(m)
		out = m
		return putMeta(w, m)
	})
	return out, err
}

// getMeta reads the task's meta record in an Update (zero when none).
func getMeta(w store.Writer) (*taskMeta, error) {
	m := &taskMeta{}
	b, err := w.Get([]byte(metaKey))
	if err != nil {
		return nil, err
	}
	if b != nil {
		if err := decodeMeta(b, m); err != nil {
			return nil, fmt.Errorf("httpfetch: datastore meta: %w", err)
		}
	}
	return m, nil
}

func putMeta(w store.Writer, m *taskMeta) error {
	b, err := encodeMeta(m)
	if err != nil {
		return err
	}
	return w.Put([]byte(metaKey), b)
}
