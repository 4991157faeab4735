package httpfetch

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/crawl"
	"github.com/connectorhq/connector/store"
)

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
	mem, err := store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	t.Cleanup(func() { _ = mem.Close() })
	fs := &flakyStore{Store: mem}
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
