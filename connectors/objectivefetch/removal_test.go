package objectivefetch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/objectivefetch/objectivetest"
	"github.com/connectorhq/connector/ingest"
)

// refusingRemoves refuses Remove while refuse is set.
type refusingRemoves struct {
	ingest.Target
	refuse atomic.Bool
}

func (t *refusingRemoves) Remove(ctx context.Context, refs []string) error {
	if t.refuse.Load() {
		return errors.New("the ingestion target is restarting")
	}
	return t.Target.Remove(ctx, refs)
}

// A version that is gone has its document removed, even when the target
// refused the removal the first time: the next run removes it.
func TestGoneVersionIsRemovedAfterARefusedRemoval(t *testing.T) {
	e := newEnv(t, "Versions=ALL")
	folder := e.srv.AddFolder(objectivetest.RootID, "Contracts")
	docID := e.srv.AddDocument(folder, objectivetest.Doc{Name: "lease.txt", Data: []byte("first draft")})
	e.srv.NewVersion(docID, []byte("signed lease"))
	tgt := &refusingRemoves{Target: e.target}
	e.repo = e.newRepoWith(tgt)
	e.sync()
	old := e.srv.Object(docID).Versions[0].ID
	require.NotNil(t, e.target.Get(versionRef(e.srv.URL, old)))

	// The old version is deleted; the target refuses removals this run.
	e.srv.Update(docID, func(o *objectivetest.Object) { o.Versions = o.Versions[1:] })
	tgt.refuse.Store(true)
	c := e.sync()
	require.NotZero(t, c.Ingestfailed, "%+v", c)
	require.NotNil(t, e.target.Get(versionRef(e.srv.URL, old)), "not removed yet")

	tgt.refuse.Store(false)
	e.sync()
	require.Nil(t, e.target.Get(versionRef(e.srv.URL, old)), "the gone version's document is removed")
	require.Equal(t, "signed lease", e.doc(kindDocument, docID).Content)
}

// removeSizes records the number of references of each Remove.
type removeSizes struct {
	ingest.Target
	mu    sync.Mutex
	sizes []int
}

func (t *removeSizes) Remove(ctx context.Context, refs []string) error {
	t.mu.Lock()
	t.sizes = append(t.sizes, len(refs))
	t.mu.Unlock()
	return t.Target.Remove(ctx, refs)
}

// What a run forgets goes to the target in batches of the Batch's size,
// as what it delivers does. Before, every object forgotten went in the
// run's last batch, whatever their number: a tree of 50,000 objects taken
// out of RootFolders was one removal, which a CFS answering in more than
// restsync.DeliveryTimeout (30 s) for all of its requests refused, and
// so again by every run.
func TestForgottenObjectsAreRemovedInBatches(t *testing.T) {
	e := newEnv(t, "")
	home := e.srv.AddFolder(objectivetest.RootID, "Home")
	archive := e.srv.AddFolder(objectivetest.RootID, "Archive")
	for i := range 7 {
		e.srv.AddDocument(archive, objectivetest.Doc{Name: fmt.Sprintf("d%d.txt", i), Data: []byte("old")})
	}
	e.reconfigure("RootFolders=" + home + "," + archive)
	tgt := &removeSizes{Target: e.target}
	e.repo = e.newRepoWith(tgt)
	e.repo.batchSize = 3
	e.sync()
	require.Equal(t, 9, e.target.Len())

	e.reconfigure("RootFolders=" + home)
	e.repo = e.newRepoWith(tgt)
	e.repo.batchSize = 3
	c := e.sync()
	require.Equal(t, uint64(8), c.Deleted, "%+v", c)
	require.Equal(t, 1, e.target.Len())
	require.NotEmpty(t, tgt.sizes)
	for _, n := range tgt.sizes {
		require.LessOrEqual(t, n, 3, "removals of %v references", tgt.sizes)
	}
}

// TestDocumentDeletedWhileReadIsRemoved: a document deleted between its
// folder's listing and its reading (the run lists it changed, and the
// server then answers 404 for it). That counted as a failure of the run,
// and the document's old content stayed in the index until the next run
// found it missing from the listing: a run that met a deletion reported an
// error, and an indexed document Objective no longer has stayed
// searchable meanwhile. The document is now asked for: gone, it is
// removed (a new one is skipped), and the run has no failure; one the
// server still has stays a failure, as before.
func TestDocumentDeletedWhileReadIsRemoved(t *testing.T) {
	for _, settings := range []string{"", "Versions=ALL", "IndexCatalogueFields=FALSE\nMappedSecurity=FALSE"} {
		t.Run(settings, func(t *testing.T) {
			e := newEnv(t, settings)
			folder := e.srv.AddFolder(objectivetest.RootID, "Contracts")
			indexed := e.srv.AddDocument(folder, objectivetest.Doc{Name: "lease.txt", Data: []byte("first draft")})
			kept := e.srv.AddDocument(folder, objectivetest.Doc{Name: "memo.txt", Data: []byte("memo")})
			e.sync()
			require.Equal(t, "first draft", e.doc(kindDocument, indexed).Content)

			// The document changes, a new one is added, and both are
			// deleted once the folder's listing names them.
			e.srv.NewVersion(indexed, []byte("signed lease"))
			fresh := e.srv.AddDocument(folder, objectivetest.Doc{Name: "note.txt", Data: []byte("new")})
			deleteWhenAskedFor(e, folder, indexed, fresh)
			c := e.sync()
			require.Zero(t, c.Errors, "%+v", c)
			require.True(t, e.gone(kindDocument, indexed), "the deleted document is removed from the index")
			require.True(t, e.gone(kindDocument, fresh))
			require.Equal(t, "memo", e.doc(kindDocument, kept).Content)
			require.Equal(t, uint64(1), c.Deleted, "%+v", c)

			// And the next run has nothing left to do.
			e.srv.SetFault(nil)
			c = e.sync()
			require.Zero(t, c.Errors, "%+v", c)
			require.Zero(t, c.Deleted, "%+v", c)
		})
	}
}

// A document whose reading fails with 404 while the server still has it
// (a version gone between the list of versions and its content, say) is
// a failure of the run, as before: it is not removed.
func TestDocumentNotFoundWhileStillThereIsAFailure(t *testing.T) {
	e := newEnv(t, "")
	folder := e.srv.AddFolder(objectivetest.RootID, "Contracts")
	doc := e.srv.AddDocument(folder, objectivetest.Doc{Name: "lease.txt", Data: []byte("first draft")})
	e.sync()
	e.srv.NewVersion(doc, []byte("signed lease"))
	e.srv.SetFault(func(r *http.Request) *objectivetest.Fault {
		if strings.Contains(r.URL.Path, doc) && strings.HasSuffix(r.URL.Path, "/content") {
			return &objectivetest.Fault{Status: http.StatusNotFound}
		}
		return nil
	})
	c := e.sync()
	require.NotZero(t, c.Errors, "%+v", c)
	require.Equal(t, "first draft", e.doc(kindDocument, doc).Content, "kept")
}

// With Versions=ALL, a document deleted while its versions are read,
// after one of its older versions' documents went to the index: that
// document goes too (none is left that no record names).
func TestDocumentDeletedWhileItsVersionsAreReadLeavesNoVersion(t *testing.T) {
	e := newEnv(t, "Versions=ALL")
	folder := e.srv.AddFolder(objectivetest.RootID, "Contracts")
	doc := e.srv.AddDocument(folder, objectivetest.Doc{Name: "lease.txt", Data: []byte("first draft")})
	e.sync()
	require.Equal(t, 3, e.target.Len(), "the root, the folder, the document")

	e.srv.NewVersion(doc, []byte("second draft"))
	e.srv.NewVersion(doc, []byte("signed lease"))
	var contents atomic.Int64
	e.srv.SetFault(func(r *http.Request) *objectivetest.Fault {
		if strings.HasSuffix(r.URL.Path, "/content") && contents.Add(1) == 3 {
			e.srv.Remove(doc) // after the current version and another one were read
		}
		return nil
	})
	c := e.sync()
	require.Zero(t, c.Errors, "%+v", c)
	require.Equal(t, int64(3), contents.Load())
	require.True(t, e.gone(kindDocument, doc))
	require.Equal(t, 2, e.target.Len(), "only the folders' documents are left")
}

// TestFolderDeletedWhileReadIsRemoved: a folder deleted after its parent
// was listed, before it was listed itself (or, new, before its own
// permissions were read). As with a document (above), that counted as a
// failure of the run, and an indexed folder stayed in the index with
// everything under it until the next run. It is now asked for: gone, it
// is removed with everything under it, and the run has no failure.
func TestFolderDeletedWhileReadIsRemoved(t *testing.T) {
	// Without fields and permissions, the new folder's document is
	// delivered before its listing finds it gone.
	for _, settings := range []string{"", "IndexCatalogueFields=FALSE\nMappedSecurity=FALSE"} {
		t.Run(settings, func(t *testing.T) { testFolderDeletedWhileRead(t, settings) })
	}
}

func testFolderDeletedWhileRead(t *testing.T, settings string) {
	e := newEnv(t, settings)
	top := e.srv.AddFolder(objectivetest.RootID, "Contracts")
	sub := e.srv.AddFolder(top, "Leases")
	doc := e.srv.AddDocument(sub, objectivetest.Doc{Name: "lease.txt", Data: []byte("signed lease")})
	keep := e.srv.AddDocument(top, objectivetest.Doc{Name: "memo.txt", Data: []byte("memo")})
	e.sync()
	require.Equal(t, "signed lease", e.doc(kindDocument, doc).Content)

	fresh := e.srv.AddFolder(top, "New")
	deleteWhenAskedFor(e, top, sub, fresh)
	c := e.sync()
	require.Zero(t, c.Errors, "%+v", c)
	require.True(t, e.gone(kindFolder, sub), "the deleted folder is removed")
	require.True(t, e.gone(kindDocument, doc), "with what was under it")
	require.True(t, e.gone(kindFolder, fresh))
	require.Equal(t, "memo", e.doc(kindDocument, keep).Content)

	e.srv.SetFault(nil)
	c = e.sync()
	require.Zero(t, c.Errors, "%+v", c)
	require.Zero(t, c.Deleted, "nothing left for the next run: %+v", c)
}

// deleteWhenAskedFor has the stand-in delete the objects ids (with
// everything under them) at the first request that names one of them (a
// segment of its path, or a value of its query) once parent's children
// were listed: deleted between that listing and their reading.
func deleteWhenAskedFor(e *env, parent string, ids ...string) {
	var listed atomic.Bool
	e.srv.SetFault(func(r *http.Request) *objectivetest.Fault {
		names := strings.Split(r.URL.Path, "/")
		for _, vs := range r.URL.Query() {
			names = append(names, vs...)
		}
		if r.URL.Query().Get("parentId") == parent {
			listed.Store(true)
		} else if listed.Load() && slices.ContainsFunc(ids, func(id string) bool { return slices.Contains(names, id) }) {
			for _, id := range ids {
				e.srv.Remove(id)
			}
		}
		return nil
	})
}
