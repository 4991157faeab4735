package httpfetch

import (
	"context"
	"crypto/sha256"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/crawl"
	"github.com/connectorhq/connector/store"
)

// memStore is an in-memory store closed when the test ends.
func memStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// flakyStore is a store whose datastores fail Get for the keys a test
// names (a shared store's read that times out, say); everything else is
// the real store's.
type flakyStore struct {
	store.Store
	mu   sync.Mutex
	fail map[string]bool // datastore keys whose Get fails
}

var errFlakyRead = errors.New("test: datastore read failed")

func (s *flakyStore) failGet(key string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail == nil {
		s.fail = map[string]bool{}
	}
	s.fail[key] = on
}

func (s *flakyStore) Datastore(task string) (store.Datastore, error) {
	ds, err := s.Store.Datastore(task)
	if err != nil {
		return nil, err
	}
	return &flakyDatastore{Datastore: ds, s: s}, nil
}

type flakyDatastore struct {
	store.Datastore
	s *flakyStore
}

func (d *flakyDatastore) Get(key []byte) ([]byte, error) {
	d.s.mu.Lock()
	fail := d.s.fail[string(key)]
	d.s.mu.Unlock()
	if fail {
		return nil, errFlakyRead
	}
	return d.Datastore.Get(key)
}

// TestDatastoreReadFailureDeletesNothing: a page the crawl reached but
// whose record could not be read is skipped for this run, not treated as
// gone: the deletion pass must neither remove it from the target nor
// forget it.
func TestDatastoreReadFailureDeletesNothing(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":  htmlPage("Home", "/a"),
		"/a": htmlPage("A", "/b"),
		"/b": htmlPage("B"),
	})
	fs := &flakyStore{Store: memStore(t)}
	b := setup(t, siteConfig(s), setupOpts{store: fs})
	require.Equal(t, cnt{Seen: 3, Added: 3, IngestAdded: 3}, countsOf(b.sync(t), "MYTASK"))

	// The second run cannot read A's record; A and B are unchanged.
	fs.failGet(string(urlKey(s.URL+"/a")), true)
	b.target.reset()
	job := b.sync(t)
	c := countsOf(job, "MYTASK")
	require.Equal(t, uint64(1), c.Errors, "%+v", c)
	require.Zero(t, c.Deleted, "%+v", c)
	require.Empty(t, b.target.removals(), "a live page was removed from the target")
	recs := b.records(t, "MYTASK")
	require.Contains(t, recs, s.URL+"/a")
	require.Contains(t, recs, s.URL+"/b")

	// Readable again: nothing is missing, nothing delivered twice.
	fs.failGet(string(urlKey(s.URL+"/a")), false)
	b.target.reset()
	require.Equal(t, cnt{Seen: 3, Unchanged: 3}, countsOf(b.sync(t), "MYTASK"))
	require.Empty(t, b.target.refs())
}

// flakyRenderer is a crawl.Renderer (an extension's, as the Web
// connector's browser) that fails while failing is set and otherwise
// replaces a page's text with "rendered <title>".
type flakyRenderer struct{ failing atomic.Bool }

func (r *flakyRenderer) Render(_ context.Context, p *crawl.Page) ([]string, error) {
	if r.failing.Load() {
		return nil, errors.New("test: renderer unresponsive")
	}
	p.Text = "rendered " + p.Title
	p.SetHash(sha256.Sum256([]byte(p.Text)))
	return nil, nil
}

// TestRenderFailureIsRenderedNextRun: a page delivered as served because
// rendering failed is a failure, not a version of the page: the next run
// fetches it in full (no conditional request a 304 would answer) and
// renders it, even though the site did not change it.
func TestRenderFailureIsRenderedNextRun(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":  htmlPage("Home", "/a"),
		"/a": htmlPage("A"),
	})
	r := &flakyRenderer{}
	begin := func(context.Context, TaskStart) (*TaskRun, error) { return &TaskRun{Render: r}, nil }
	b := setup(t, siteConfig(s), setupOpts{begin: begin})
	a := s.URL + "/a"

	r.failing.Store(true)
	job := b.sync(t)
	require.Equal(t, cnt{Seen: 2, Added: 2, IngestAdded: 2, Errors: 2}, countsOf(job, "MYTASK"))
	require.NotContains(t, b.target.doc(a).Content, "rendered")

	// The renderer works again; the site is unchanged.
	r.failing.Store(false)
	b.target.reset()
	mark := len(s.requests())
	job = b.sync(t)
	require.Equal(t, cnt{Seen: 2, Updated: 2, IngestUpdated: 2}, countsOf(job, "MYTASK"))
	for _, h := range pageHits(s, mark) {
		require.Empty(t, h.inm, "%s: a conditional request for a page delivered unrendered", h.path)
		require.Equal(t, 200, h.status, h.path)
	}
	require.Equal(t, "rendered A", b.target.doc(a).Content)

	// Rendered now: the next run is conditional again.
	b.target.reset()
	require.Equal(t, cnt{Seen: 2, Unchanged: 2}, countsOf(b.sync(t), "MYTASK"))
	require.Empty(t, b.target.refs())
}

// TestMaxURLsDeletesNothing: a crawl that found more distinct URLs than
// it records (crawl.Config.MaxURLs) did not cover the site: the known
// pages it dropped for want of room are not deleted.
func TestMaxURLsDeletesNothing(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":   htmlPage("Home", "/a", "/b", "/c"),
		"/a":  htmlPage("A", "/a1"),
		"/b":  htmlPage("B"),
		"/c":  htmlPage("C"),
		"/a1": htmlPage("A1"),
	})
	b := setup(t, siteConfig(s))
	require.Equal(t, cnt{Seen: 5, Added: 5, IngestAdded: 5}, countsOf(b.sync(t), "MYTASK"))

	// Room for four URLs: /a1 is found when "/", /a, /b and /c fill it.
	b.repo.maxURLs = 4
	b.target.reset()
	job := b.sync(t)
	require.Equal(t, cnt{Seen: 4, Unchanged: 4}, countsOf(job, "MYTASK"))
	require.Empty(t, b.target.removals(), "a page dropped for want of room was removed from the target")
	require.Contains(t, b.records(t, "MYTASK"), s.URL+"/a1")

	b.repo.maxURLs = 0
	require.Equal(t, cnt{Seen: 5, Unchanged: 5}, countsOf(b.sync(t), "MYTASK"))
}

// TestSitemapUnavailableDeletesNothing: a sitemap that could not be read
// for a passing reason (5xx, network error, timeout) leaves the crawl
// without the pages only it lists: they are not deleted for not being
// reached. A sitemap that is gone (404) is the site's word: they are.
func TestSitemapUnavailableDeletesNothing(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":       htmlPage("Home", "/a"),
		"/a":      htmlPage("A"),
		"/orphan": htmlPage("Orphan", "/b"),
		"/b":      htmlPage("B"),
	})
	sitemap := &page{ctype: "application/xml", body: `<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">` +
		`<url><loc>` + s.URL + `/orphan</loc></url></urlset>`}
	s.set("/sitemap.xml", sitemap)
	b := setup(t, siteConfig(s, "SitemapUrl="+s.URL+"/sitemap.xml"))
	require.Equal(t, cnt{Seen: 4, Added: 4, IngestAdded: 4}, countsOf(b.sync(t), "MYTASK"))

	s.set("/sitemap.xml", &page{status: 503})
	b.target.reset()
	job := b.sync(t)
	require.Equal(t, cnt{Seen: 2, Unchanged: 2, Errors: 1}, countsOf(job, "MYTASK"))
	require.Empty(t, b.target.removals(), "pages listed by a sitemap that answered 503 were removed")
	require.Len(t, b.records(t, "MYTASK"), 4)

	s.set("/sitemap.xml", sitemap)
	require.Equal(t, cnt{Seen: 4, Unchanged: 4}, countsOf(b.sync(t), "MYTASK"))

	// Gone: its pages are no longer part of the site's crawl.
	s.set("/sitemap.xml", nil)
	job = b.sync(t)
	require.Equal(t, cnt{Seen: 2, Unchanged: 2, Deleted: 2, IngestDeleted: 2, Errors: 1}, countsOf(job, "MYTASK"))
}

// crashStore is a store whose datastores lose, on crash(), the deferred
// writes (store.UpdateDeferred) made since their last durable Update, as
// a kill -9 loses those the store had not yet committed: deferred writes
// are seen at once, and a durable Update commits them with its own.
type crashStore struct {
	store.Store
	mu  sync.Mutex
	dss map[string]*crashDatastore
}

func (s *crashStore) Datastore(task string) (store.Datastore, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.dss[task]; d != nil {
		return d, nil
	}
	ds, err := s.Store.Datastore(task)
	if err != nil {
		return nil, err
	}
	if s.dss == nil {
		s.dss = map[string]*crashDatastore{}
	}
	d := &crashDatastore{Datastore: ds}
	s.dss[task] = d
	return d, nil
}

// crash undoes every datastore's uncommitted deferred writes.
func (s *crashStore) crash(t *testing.T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.dss {
		d.crash(t)
	}
}

type crashDatastore struct {
	store.Datastore
	mu   sync.Mutex
	undo []undoOp // uncommitted deferred writes, oldest first
}

type undoOp struct {
	key  string
	prev []byte // nil: absent
}

// undoWriter notes the value each write replaces.
type undoWriter struct {
	store.Writer
	ops []undoOp
}

func (w *undoWriter) note(key []byte) error {
	prev, err := w.Writer.Get(key)
	if err != nil {
		return err
	}
	w.ops = append(w.ops, undoOp{key: string(key), prev: prev})
	return nil
}

func (w *undoWriter) Put(key, value []byte) error {
	if err := w.note(key); err != nil {
		return err
	}
	return w.Writer.Put(key, value)
}

func (w *undoWriter) Delete(key []byte) error {
	if err := w.note(key); err != nil {
		return err
	}
	return w.Writer.Delete(key)
}

func (d *crashDatastore) UpdateDeferred(fn func(w store.Writer) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var uw *undoWriter
	err := d.Datastore.Update(func(w store.Writer) error {
		uw = &undoWriter{Writer: w}
		return fn(uw)
	})
	if err == nil {
		d.undo = append(d.undo, uw.ops...)
	}
	return err
}

func (d *crashDatastore) Update(fn func(w store.Writer) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.Datastore.Update(fn)
	if err == nil {
		d.undo = nil // committed with this write
	}
	return err
}

func (d *crashDatastore) crash(t *testing.T) {
	d.mu.Lock()
	defer d.mu.Unlock()
	require.NoError(t, d.Datastore.Update(func(w store.Writer) error {
		for i := len(d.undo) - 1; i >= 0; i-- {
			op := d.undo[i]
			var err error
			if op.prev == nil {
				err = w.Delete([]byte(op.key))
			} else {
				err = w.Put([]byte(op.key), op.prev)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}))
	d.undo = nil
}

// TestRemovalSurvivesACrash: pages a Synchronize removed from the target
// (one answered 404, one no longer linked), whose datastore writes a
// crash (kill -9) then lost, are not taken for delivered by the re-run:
// when it finds them again it delivers them again (a 304 would have left
// them missing from the index), and had they stayed gone it removes them
// again.
func TestRemovalSurvivesACrash(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":  htmlPage("Home", "/a", "/b", "/c"),
		"/a": htmlPage("A"),
		"/b": htmlPage("B"),
		"/c": htmlPage("C"),
	})
	cs := &crashStore{Store: memStore(t)}
	b := setup(t, siteConfig(s), setupOpts{store: cs})
	require.Equal(t, cnt{Seen: 4, Added: 4, IngestAdded: 4}, countsOf(b.sync(t), "MYTASK"))

	// /b answers 404 and /c is no longer linked: both are removed from the
	// target; then the server is killed before the deletion of their
	// records is on disk.
	gone := func(home string) {
		s.set("/", htmlPage(home, "/a", "/b"))
		s.set("/b", &page{status: 404})
	}
	back := func(home string) {
		s.set("/", htmlPage(home, "/a", "/b", "/c"))
		s.set("/b", htmlPage("B"))
	}
	gone("Home 2")
	job := b.sync(t)
	require.Equal(t, cnt{Seen: 2, Updated: 1, IngestUpdated: 1, Unchanged: 1, Deleted: 2, IngestDeleted: 2}, countsOf(job, "MYTASK"))
	require.Equal(t, []string{s.URL + "/b", s.URL + "/c"}, b.target.removals())
	cs.crash(t)

	// The pages are back by the time the action re-runs.
	back("Home 3")
	b.target.reset()
	job = b.sync(t)
	require.Subset(t, b.target.refs(), []string{s.URL + "/b", s.URL + "/c"},
		"pages the target no longer holds were not delivered again (counts %+v)", countsOf(job, "MYTASK"))
	for u, r := range b.records(t, "MYTASK") {
		require.True(t, r.deliveredCurrent(), u)
	}

	// Had they stayed gone, the re-run would have removed again those
	// whose records the crash left.
	gone("Home 4")
	require.Equal(t, uint64(2), countsOf(b.sync(t), "MYTASK").IngestDeleted)
	cs.crash(t)
	var left []string
	for u, r := range b.records(t, "MYTASK") {
		if u == s.URL+"/b" || u == s.URL+"/c" {
			require.True(t, r.Removing, u)
			require.Nil(t, r.Delivered, u)
			left = append(left, u)
		}
	}
	require.NotEmpty(t, left, "the crash lost no record deletion: the test tests nothing")
	sort.Strings(left)
	b.target.reset()
	b.sync(t)
	require.Equal(t, left, b.target.removals())
	require.Len(t, b.records(t, "MYTASK"), 2)
}
