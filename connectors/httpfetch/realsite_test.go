package httpfetch

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/sitepages"

	"github.com/connectorhq/connector/store"
)

// pgDocDir is the PostgreSQL 15 HTML manual (Debian postgresql-doc-15).
const pgDocDir = sitepages.PostgresDocs

// TestRealSitePostgresDocs synchronises the PostgreSQL manual served from
// disk: Depth=1 and Depth=2 find exactly the pages reachable at those
// depths (corpora.md measured 112 and 1169 for 15.20); a second run finds
// every page unchanged through conditional requests; then, served from an
// edited copy at the same address, one page is updated and one deleted.
func TestRealSitePostgresDocs(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("crawls the 1169-page manual several times; skipped with -short")
	}
	want, err := sitepages.PostgresPages(2)
	require.NoError(t, err)
	var root atomic.Pointer[string]
	dir := pgDocDir
	root.Store(&dir)
	var conditional, notModified atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-Modified-Since") != "" {
			conditional.Add(1)
		}
		rw := &statusWriter{ResponseWriter: w}
		http.FileServer(http.Dir(*root.Load())).ServeHTTP(rw, r)
		if rw.status == http.StatusNotModified {
			notModified.Add(1)
		}
	}))
	t.Cleanup(srv.Close)
	refOf := func(name string) string {
		if name == "index.html" {
			return srv.URL + "/"
		}
		return srv.URL + "/" + name
	}
	wantRefs := func(depth int) []string {
		var out []string
		for d := 0; d <= depth; d++ {
			for _, n := range want[d] {
				out = append(out, refOf(n))
			}
		}
		sort.Strings(out)
		return out
	}
	// The manual links to postgresql.org: StayOnSite (the default) keeps
	// the crawl on 127.0.0.1.
	cfgText := "[FetchTasks]\n0=PG\n[PG]\nUrl=" + srv.URL + "/\nConcurrency=8\n"

	t.Run("depth 1", func(t *testing.T) {
		t.Parallel()
		// A server of its own: the other subtest swaps its server's root.
		plain := httptest.NewServer(http.FileServer(http.Dir(pgDocDir)))
		t.Cleanup(plain.Close)
		b := setup(t, "[FetchTasks]\n0=PG\n[PG]\nUrl="+plain.URL+"/\nConcurrency=8\n")
		job := b.sync(t, "Depth", "1")
		var refs []string
		for _, r := range wantRefs(1) {
			refs = append(refs, plain.URL+strings.TrimPrefix(r, srv.URL))
		}
		sort.Strings(refs)
		n := uint64(len(refs))
		require.Equal(t, cnt{Seen: n, Added: n, IngestAdded: n}, countsOf(job, "PG"))
		require.Equal(t, refs, b.target.refs())
		t.Logf("depth 1: %d pages", n)
	})

	t.Run("depth 2, resync, edit and delete", func(t *testing.T) {
		t.Parallel()
		st, err := store.Open(store.Config{Dir: t.TempDir()})
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		b := setup(t, cfgText, setupOpts{store: st})
		refs := wantRefs(2)
		n := uint64(len(refs))
		job := b.sync(t, "Depth", "2")
		require.Equal(t, cnt{Seen: n, Added: n, IngestAdded: n}, countsOf(job, "PG"))
		require.Equal(t, refs, b.target.refs())
		adds, _ := b.target.idxFiles(t)
		require.Equal(t, refs, adds, "the IDX folder holds every page once")
		t.Logf("depth 2: %d pages", n)

		before := conditional.Load()
		job = b.sync(t, "Depth", "2")
		require.Equal(t, cnt{Seen: n, Unchanged: n}, countsOf(job, "PG"))
		require.GreaterOrEqual(t, conditional.Load()-before, int64(n), "every page was asked for conditionally")
		require.GreaterOrEqual(t, notModified.Load(), int64(n))

		// Serve an edited copy at the same address: one depth-2 page
		// changed, another gone.
		edited, deleted := want[2][0], want[2][1]
		cp := t.TempDir()
		entries, err := os.ReadDir(pgDocDir)
		require.NoError(t, err)
		for _, e := range entries {
			src, dst := filepath.Join(pgDocDir, e.Name()), filepath.Join(cp, e.Name())
			switch e.Name() {
			case deleted:
			case edited:
				data, err := os.ReadFile(src)
				require.NoError(t, err)
				data = bytes.Replace(data, []byte("</body>"), []byte("<p>An edit.</p></body>"), 1)
				require.NoError(t, os.WriteFile(dst, data, 0o644))
			default:
				require.NoError(t, os.Symlink(src, dst)) // same modification time
			}
		}
		root.Store(&cp)
		b.target.reset()
		job = b.sync(t, "Depth", "2")
		require.Equal(t, cnt{Seen: n - 1, Unchanged: n - 2, Updated: 1, Deleted: 1, IngestUpdated: 1, IngestDeleted: 1}, countsOf(job, "PG"))
		require.Equal(t, []string{refOf(edited)}, b.target.refs())
		require.Equal(t, []string{refOf(deleted)}, b.target.removals())
		_, dels := b.target.idxFiles(t)
		require.Equal(t, []string{refOf(deleted)}, dels)
		require.False(t, slices.Contains(keys(b.records(t, "PG")), refOf(deleted)))
	})
}

func keys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}
