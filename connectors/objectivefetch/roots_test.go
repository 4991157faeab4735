package objectivefetch

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/objectivefetch/objectivetest"
)

// A root folder taken out of RootFolders is no longer indexed: it is
// removed with everything under it, and the roots still named stay.
func TestRootTakenOutOfRootFoldersIsRemoved(t *testing.T) {
	e := newEnv(t, "")
	tr := buildTree(t, e.srv)
	e.reconfigure("RootFolders=" + tr.home + "," + tr.archive)
	c := e.sync()
	// Home, alice, Policies, Archive + 4 documents.
	require.Equal(t, uint64(8), c.Added, "%+v", c)

	e.reconfigure("RootFolders=" + tr.archive)
	c = e.sync()
	require.Equal(t, uint64(7), c.Deleted, "%+v", c)
	for _, g := range []struct{ kind, id string }{{kindFolder, tr.home}, {kindFolder, tr.aliceF}, {kindFile, tr.policies},
		{kindDocument, tr.report}, {kindDocument, tr.notes}, {kindDocument, tr.policy1}, {kindDocument, tr.policy2}} {
		require.True(t, e.gone(g.kind, g.id), "%s %s", g.kind, g.id)
	}
	require.False(t, e.gone(kindFolder, tr.archive))
	require.Equal(t, 1, e.target.Len())

	c = e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "%+v", c)
}

// A document moved out of the roots (to a folder not indexed) is
// removed; one moved within them is updated.
func TestDocumentMovedOutOfTheRootsIsRemoved(t *testing.T) {
	e := newEnv(t, "")
	tr := buildTree(t, e.srv)
	e.reconfigure("RootFolders=" + tr.home)
	e.sync()
	require.False(t, e.gone(kindDocument, tr.report))

	e.srv.Update(tr.report, func(o *objectivetest.Object) { o.ParentID = tr.archive })
	e.srv.Update(tr.notes, func(o *objectivetest.Object) { o.ParentID = tr.home })
	c := e.sync()
	require.True(t, e.gone(kindDocument, tr.report), "in Archive, which is not indexed")
	require.Equal(t, "/Objective Global Folder/Home/notes.txt", field1(e.doc(kindDocument, tr.notes), "PATH"))
	require.Equal(t, uint64(1), c.Deleted, "%+v", c)
}

// A folder excluded by FolderCantHaveRegex after it was indexed is
// removed with everything under it.
func TestFolderExcludedAfterItWasIndexedIsRemoved(t *testing.T) {
	e := newEnv(t, "")
	tr := buildTree(t, e.srv)
	e.sync()
	require.False(t, e.gone(kindFolder, tr.aliceF))

	e.reconfigure("FolderCantHaveRegex=alice")
	c := e.sync()
	require.True(t, e.gone(kindFolder, tr.aliceF))
	require.True(t, e.gone(kindDocument, tr.report))
	require.True(t, e.gone(kindDocument, tr.notes))
	require.Equal(t, uint64(3), c.Deleted, "%+v", c)
}

// TestRootNamedTwiceIsReadOnce: RootFolders naming one folder twice (by
// id and by path, or an entry repeated) delivered that folder twice and
// counted it twice as added on the first run, and listed it twice on
// every run. It is now one root, read once.
func TestRootNamedTwiceIsReadOnce(t *testing.T) {
	e := newEnv(t, "")
	a := e.srv.AddFolder(objectivetest.RootID, "A")
	d := e.srv.AddDocument(a, objectivetest.Doc{Name: "x.txt", Data: []byte("x")})
	e.reconfigure("RootFolders=" + a + ",/A," + a)
	c := e.sync()
	require.Equal(t, uint64(2), c.Added, "the folder and its document: %+v", c)
	require.Equal(t, 1, e.target.AddsOf(objectRef(e.srv.URL, kindFolder, a)))
	require.Equal(t, 1, e.target.AddsOf(objectRef(e.srv.URL, kindDocument, d)))

	var listings atomic.Int64 // first pages of A's listing
	e.srv.SetFault(func(r *http.Request) *objectivetest.Fault {
		if r.URL.Query().Get("parentId") == a && r.URL.Query().Get("offset") == "0" {
			listings.Add(1)
		}
		return nil
	})
	c = e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted+c.Errors, "%+v", c)
	require.Equal(t, int64(1), listings.Load(), "listed once")
}
