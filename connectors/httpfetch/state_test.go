package httpfetch

import (
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

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
