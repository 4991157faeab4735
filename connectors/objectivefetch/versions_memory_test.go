package objectivefetch

import (
	"bytes"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/objectivefetch/objectivetest"
)

// TestVersionsOfADocumentDeliveredAsRead: with Versions=ALL, a document
// with many big versions (up to MaxFileBytes, 64 MiB, each). On main
// every version of a document was downloaded and held before the document
// was handed to the batch: a document with a long history held all of it
// at once (and twice Concurrency such documents may be held). Its other
// versions' documents now go to the batch as they are read (the batch
// hands its documents over at 32 MiB, here at 2 documents), and the
// document's own document and record follow, written only when none of
// them was refused. Here the content of the last version is answered only
// once the target holds one of the versions before it: on main the
// connector was still holding every one of them then.
func TestVersionsOfADocumentDeliveredAsRead(t *testing.T) {
	e := newEnv(t, "Versions=ALL\nExtractText=FALSE")
	e.repo.batchSize = 2
	f := e.srv.AddFolder(objectivetest.RootID, "History")
	d := e.srv.AddDocument(f, objectivetest.Doc{Name: "long.bin", Data: bytes.Repeat([]byte("a"), 1<<20)})
	var versions []string
	for i := range 5 {
		versions = append(versions, e.srv.NewVersion(d, bytes.Repeat([]byte{byte('b' + i)}, 1<<20)))
	}
	// The current version is the document's own, read first; the others
	// follow oldest first: the first version, then versions[0] to [3].
	firstID := "v" + d
	others := append([]string{firstID}, versions[:len(versions)-1]...)
	last := others[len(others)-1]
	var refs []string
	for _, v := range others[:len(others)-1] {
		refs = append(refs, versionRef(e.srv.URL, v))
	}
	var early atomic.Bool
	var asked atomic.Int32
	e.srv.SetFault(func(r *http.Request) *objectivetest.Fault {
		if strings.Contains(r.URL.Path, "/documentversions/"+last+"/content") {
			asked.Add(1)
			early.Store(e.target.AwaitAny(refs, 10*time.Second)) // on the server's goroutine
		}
		return nil
	})
	c := e.sync()
	require.Zero(t, c.Errors)
	require.EqualValues(t, 1, asked.Load())
	require.True(t, early.Load(), "versions of the document were delivered before its last one was read")
	requireAllOnce(t, e)
	for _, v := range others {
		require.Equal(t, 1, e.target.AddsOf(versionRef(e.srv.URL, v)), v)
	}
	require.Equal(t, 0, e.target.AddsOf(versionRef(e.srv.URL, versions[len(versions)-1])), "the current one is the document's own")
	c = e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted+c.Errors, "nothing again: %+v", c)
}

// TestVersionsOfAnUnreadDocumentAreRemovedWithIt: with Versions=ALL, a
// document whose last version cannot be read (here a 404; a fatal error,
// a Stop) after its earlier versions went to the delivery, as they do
// once read, is left for the next run without a record. Nothing named
// those versions: once the document was removed, the next run removed
// nothing of it, and their documents stayed in the index for good. A
// provisional record now names them before they are delivered, so they
// go with the document.
func TestVersionsOfAnUnreadDocumentAreRemovedWithIt(t *testing.T) {
	e := newEnv(t, "Versions=ALL\nExtractText=FALSE")
	e.repo.batchSize = 2
	f := e.srv.AddFolder(objectivetest.RootID, "History")
	e.sync()
	d := e.srv.AddDocument(f, objectivetest.Doc{Name: "long.bin", Data: bytes.Repeat([]byte("a"), 1<<10)})
	var versions []string
	for i := range 4 {
		versions = append(versions, e.srv.NewVersion(d, bytes.Repeat([]byte{byte('b' + i)}, 1<<10)))
	}
	others := append([]string{"v" + d}, versions[:len(versions)-1]...)
	last := others[len(others)-1]
	var refs []string
	for _, v := range others {
		refs = append(refs, versionRef(e.srv.URL, v))
	}
	var fail atomic.Bool
	fail.Store(true)
	e.srv.SetFault(func(r *http.Request) *objectivetest.Fault {
		if fail.Load() && strings.Contains(r.URL.Path, "/documentversions/"+last+"/content") {
			e.target.AwaitAny(refs[:len(refs)-1], 10*time.Second) // on the server's goroutine
			return &objectivetest.Fault{Status: http.StatusNotFound}
		}
		return nil
	})
	_, _, _ = e.run("SYNCHRONIZE")
	require.NotEmpty(t, e.target.Held(refs), "versions delivered before the document was left unread")

	fail.Store(false)
	e.srv.Remove(d)
	_, _, err := e.run("SYNCHRONIZE")
	require.NoError(t, err)
	require.Empty(t, e.target.Held(refs), "versions of the removed document still in the index")
	require.Nil(t, e.target.Get(objectRef(e.srv.URL, kindDocument, d)))
}
