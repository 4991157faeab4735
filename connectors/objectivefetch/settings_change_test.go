package objectivefetch

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/objectivefetch/objectivetest"
	"github.com/connectorhq/connector/extract"
)

// Versions and IndexCatalogueFields changed for a task that had indexed
// with other values: what was indexed before is delivered again as the
// new settings make it (its old versions, its catalogue fields), not only
// what changes in Objective from then on. Before, nothing already
// indexed changed.
func TestSettingsThatShapeDocumentsReindex(t *testing.T) {
	e := newEnv(t, "Versions=CURRENT\nIndexCatalogueFields=FALSE")
	tr := buildTree(t, e.srv)
	d := e.srv.AddDocument(tr.archive, objectivetest.Doc{Name: "a.txt", Data: []byte("version one")})
	e.srv.NewVersion(d, []byte("version two"))
	e.sync()
	require.Nil(t, e.target.Get(versionRef(e.srv.URL, "v"+d)), "the current version only")
	require.Empty(t, field1(e.doc(kindDocument, tr.report), "CATALOGUE_AUTHOR"))

	e.reconfigure("Versions=ALL\nIndexCatalogueFields=FALSE")
	e.sync()
	require.NotNil(t, e.target.Get(versionRef(e.srv.URL, "v"+d)), "the old version of a document indexed before")
	require.Empty(t, field1(e.doc(kindDocument, tr.report), "CATALOGUE_AUTHOR"))
	c := e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "%+v", c)

	e.reconfigure("Versions=ALL\nIndexCatalogueFields=TRUE")
	e.sync()
	require.Equal(t, "A. Archer", field1(e.doc(kindDocument, tr.report), "CATALOGUE_AUTHOR"))

	e.reconfigure("Versions=CURRENT\nIndexCatalogueFields=TRUE")
	e.sync()
	require.Nil(t, e.target.Get(versionRef(e.srv.URL, "v"+d)), "the old version removed")
	c = e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "%+v", c)
}

// A server from before the extractor's version was recorded indexed the
// documents; the first Synchronize of this one delivers every document
// again, once, so that extraction fixes reach them (docs/extraction.md,
// "Re-extraction after an upgrade"); folders and files, which have no
// extracted text, are not delivered again. Before, nothing already
// indexed changed until it changed in Objective.
func TestNewExtractorVersionDeliversDocumentsAgainOnce(t *testing.T) {
	extractVersion = 0
	t.Cleanup(func() { extractVersion = extract.Version })
	e := newEnv(t, "")
	tr := buildTree(t, e.srv)
	e.sync()
	require.Contains(t, e.doc(kindDocument, tr.report).Content, "Quarterly report on tunnels")
	c := e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "%+v", c)

	extractVersion = extract.Version
	c = e.sync()
	require.Equal(t, uint64(4), c.Updated, "the four documents, not their folders and files: %+v", c)
	require.Zero(t, c.Added+c.Deleted, "%+v", c)
	require.Contains(t, e.doc(kindDocument, tr.report).Content, "Quarterly report on tunnels")

	c = e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "once: %+v", c)
}

// IndexFolders changed for a task that had indexed with the other value.
// Turned off, the folders' and files' documents were left in the index
// for good (their records said nothing had changed); turned on, the
// folders and files already recorded (without a document) were never
// delivered, until each changed in Objective. Now each is delivered, or
// removed, once, as the new setting says; the documents under them are
// not delivered again.
func TestIndexFoldersChangeReindexesContainers(t *testing.T) {
	e := newEnv(t, "")
	tr := buildTree(t, e.srv)
	e.sync()
	require.NotNil(t, e.target.Get(objectRef(e.srv.URL, kindFolder, tr.home)))

	e.reconfigure("IndexFolders=FALSE")
	c := e.sync()
	for _, f := range []struct{ kind, id string }{{kindFolder, objectivetest.RootID}, {kindFolder, tr.home}, {kindFolder, tr.aliceF}, {kindFile, tr.policies}, {kindFolder, tr.archive}} {
		require.True(t, e.gone(f.kind, f.id), "%s %s removed", f.kind, f.id)
	}
	require.Equal(t, uint64(5), c.Deleted, "the folders and the file, not the documents: %+v", c)
	require.NotNil(t, e.target.Get(objectRef(e.srv.URL, kindDocument, tr.report)))
	c = e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "once: %+v", c)

	e.reconfigure("IndexFolders=TRUE")
	c = e.sync()
	require.Equal(t, "Home", field1(e.doc(kindFolder, tr.home), "NAME"))
	require.Equal(t, []string{"Part 1", "Part 2"}, field(e.doc(kindFile, tr.policies), "FILE_PART"))
	require.Equal(t, uint64(5), c.Added+c.Updated, "the folders and the file again, not the documents: %+v", c)
	c = e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "once: %+v", c)
}
