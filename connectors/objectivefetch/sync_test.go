package objectivefetch

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/objectivefetch/objectivetest"
)

// tree builds: fA0/Home/alice/{report.docx, notes.txt (own permissions)},
// fA0/Home/Policies (a file with parts, two documents), fA0/Archive.
type tree struct {
	home, aliceF, policies, archive string
	report, notes, policy1, policy2 string
}

func buildTree(t *testing.T, s *objectivetest.Server) tree {
	var tr tree
	tr.home = s.AddFolder(objectivetest.RootID, "Home", group("Staff", "read", "browse"), user("alice", "read", "browse", "write"))
	tr.aliceF = s.AddFolder(tr.home, "alice")
	tr.report = s.AddDocument(tr.aliceF, objectivetest.Doc{Name: "report.docx", Data: resttest.Docx(t, "Quarterly report on tunnels"),
		Fields: []objectivetest.Field{{Name: "Author", Label: "Author", Value: "A. Archer"}, {Name: "Keywords", Value: []any{"tunnels", "finance"}}}})
	tr.notes = s.AddDocument(tr.aliceF, objectivetest.Doc{Name: "notes.txt", Data: []byte("private notes"),
		Perms: []objectivetest.Permission{user("alice", "read", "browse", "write"), {Principal: "bob", PrincipalType: "user", Privileges: []string{"read"}, Deny: true}}})
	tr.policies = s.AddFile(tr.home, "Policies", []string{"Part 1", "Part 2"})
	tr.policy1 = s.AddDocument(tr.policies, objectivetest.Doc{Name: "leave.txt", Data: []byte("leave policy"), FilePart: "Part 1", Corporate: true})
	tr.policy2 = s.AddDocument(tr.policies, objectivetest.Doc{Name: "travel.txt", Data: []byte("travel policy"), FilePart: "Part 2"})
	tr.archive = s.AddFolder(objectivetest.RootID, "Archive")
	return tr
}

// A first Synchronize delivers the tree: folders, the file with its parts,
// documents with their text, catalogue fields, paths and permissions.
func TestSynchronizeTree(t *testing.T) {
	e := newEnv(t, "")
	tr := buildTree(t, e.srv)
	c := e.sync()
	// fA0, Home, alice, Policies, Archive + 4 documents.
	require.Equal(t, uint64(9), c.Added, "%+v", c)
	require.Zero(t, c.Errors)

	d := e.doc(kindDocument, tr.report)
	require.Equal(t, "report.docx", field1(d, "DRETITLE"))
	require.Contains(t, d.Content, "Quarterly report on tunnels")
	require.Equal(t, "/Objective Global Folder/Home/alice/report.docx", field1(d, "PATH"))
	require.Equal(t, "A. Archer", field1(d, "CATALOGUE_AUTHOR"))
	require.Equal(t, []string{"tunnels", "finance"}, field(d, "CATALOGUE_KEYWORDS"))
	require.Equal(t, "0:U:alice:NU::G:staff:NG:", field1(d, "AUTONOMYMETADATA"), "inherited from Home")
	require.Equal(t, "0:U:alice:NU::G::NG:", field1(d, "AUTONOMYMETADATA_WRITE"))
	require.Equal(t, "OBJECTIVEREST", field1(d, "SECURITYTYPE"))
	require.Equal(t, "1", field1(d, "VERSION_NUMBER"))
	id, err := decodeIdentifier(field1(d, "AUTN_IDENTIFIER"))
	require.NoError(t, err)
	require.Equal(t, tr.report, id.Item)
	require.Equal(t, kindDocument, id.Kind)

	n := e.doc(kindDocument, tr.notes)
	require.Equal(t, "0:U:alice:NU:bob:G::NG:", field1(n, "AUTONOMYMETADATA"), "its own permissions, with a denial")
	require.Equal(t, "private notes", n.Content)

	f := e.doc(kindFile, tr.policies)
	require.Equal(t, []string{"Part 1", "Part 2"}, field(f, "FILE_PART"))
	require.Equal(t, "dotdA11", field1(f, "OBJECTIVE_OBJECT_TYPE"))
	p := e.doc(kindDocument, tr.policy1)
	require.Equal(t, "/Objective Global Folder/Home/Policies/leave.txt", field1(p, "PATH"))
	require.NotEmpty(t, field1(p, "FILE_PART_ID"))
	require.Equal(t, "1:U::NU::G::NG:", field1(e.doc(kindFolder, tr.archive), "AUTONOMYMETADATA"), "everyone, from fA0")
}

// An unchanged repository costs a listing per container and a handful of
// requests for the root; changes, moves, renames and deletions are
// delivered, and nothing twice.
func TestIncremental(t *testing.T) {
	e := newEnv(t, "")
	tr := buildTree(t, e.srv)
	for i := 0; i < 10; i++ {
		e.srv.AddDocument(tr.archive, objectivetest.Doc{Name: fmt.Sprintf("old-%02d.txt", i), Data: []byte("old")})
	}
	e.sync()
	e.srv.ResetRequests()
	c := e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted)
	by, total := e.srv.Requests()
	// fA0, Home, alice, Policies (a page shorter than PageSize, then an
	// empty one to tell the end from a server's smaller largest page: 2
	// each), Archive (10 documents at 4 a page: 3, the last short after
	// full ones); the root: its metadata and permissions.
	require.Equal(t, 11, by["GET /api/resources"]+by["GET /api/resources/files/{id}/children"], "%v", by)
	require.LessOrEqual(t, total, 11+2, "%v", by)

	e.srv.NewVersion(tr.report, resttest.Docx(t, "Revised report"))
	e.srv.Update(tr.notes, func(o *objectivetest.Object) { o.Name = "renamed notes" })
	moved := e.srv.Find(tr.archive, "old-03.txt")
	e.srv.Update(moved, func(o *objectivetest.Object) { o.ParentID = tr.aliceF })
	e.srv.Remove(tr.policy2)
	c = e.sync()
	require.Equal(t, uint64(3), c.Updated, "%+v", c)
	require.Equal(t, uint64(1), c.Deleted)
	require.Zero(t, c.Added)
	require.Contains(t, e.doc(kindDocument, tr.report).Content, "Revised report")
	require.Equal(t, "2", field1(e.doc(kindDocument, tr.report), "VERSION_NUMBER"))
	require.Equal(t, "/Objective Global Folder/Home/alice/renamed notes.txt", field1(e.doc(kindDocument, tr.notes), "PATH"))
	require.Equal(t, "/Objective Global Folder/Home/alice/old-03.txt", field1(e.doc(kindDocument, moved), "PATH"))
	require.True(t, e.gone(kindDocument, tr.policy2))

	// A folder deleted with what is in it.
	e.srv.Remove(tr.home)
	c = e.sync()
	require.Equal(t, uint64(7), c.Deleted, "Home, alice, Policies, report, notes, old-03, leave: %+v", c)
	require.True(t, e.gone(kindDocument, tr.report))
	require.Equal(t, 1+1+9, e.target.Len(), "fA0, Archive and its 9 documents")
}

// A change of a folder's permissions reaches the documents that inherit
// them, not those with their own.
func TestInheritedPermissionsChange(t *testing.T) {
	e := newEnv(t, "")
	tr := buildTree(t, e.srv)
	e.sync()
	e.srv.Update(tr.home, func(o *objectivetest.Object) {
		o.Permissions = []objectivetest.Permission{group("Staff", "read", "browse"), group("Auditors", "read"), user("alice", "read", "browse", "write")}
	})
	c := e.sync()
	require.Equal(t, "0:U:alice:NU::G:auditors,staff:NG:", field1(e.doc(kindDocument, tr.report), "AUTONOMYMETADATA"))
	require.Equal(t, "0:U:alice:NU:bob:G::NG:", field1(e.doc(kindDocument, tr.notes), "AUTONOMYMETADATA"))
	// Home, alice, report, Policies, leave, travel: notes keeps its own.
	require.Equal(t, uint64(6), c.Updated, "%+v", c)
}

// Every version, or the corporate ones, as documents of their own beside
// the current one.
func TestVersions(t *testing.T) {
	for _, mode := range []string{VersionsAll, VersionsCorporate} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, "Versions="+mode)
			f := e.srv.AddFolder(objectivetest.RootID, "Drafts")
			d := e.srv.AddDocument(f, objectivetest.Doc{Name: "plan.txt", Data: []byte("plan v1"), Corporate: true})
			e.srv.NewVersion(d, []byte("plan v2"))
			e.srv.NewVersion(d, []byte("plan v3"))
			e.sync()
			require.Equal(t, "plan v3", e.doc(kindDocument, d).Content)
			v1 := e.target.Get(versionRef(e.srv.URL, "v"+d))
			require.NotNil(t, v1)
			require.Equal(t, "plan v1", v1.Content)
			v2 := e.target.Get(versionRef(e.srv.URL, "v"+d+".2"))
			if mode == VersionsAll {
				require.NotNil(t, v2)
				require.Equal(t, "plan v2", v2.Content)
			} else {
				require.Nil(t, v2, "not corporate")
			}
		})
	}
}

// Roots by path; folders excluded by name.
func TestRootByPathAndExclusion(t *testing.T) {
	e := newEnv(t, "RootFolders=/Objective Global Folder/Home\nFolderCantHaveRegex=Pol.*")
	tr := buildTree(t, e.srv)
	c := e.sync()
	require.Equal(t, uint64(4), c.Added, "Home, alice, report, notes: %+v", c)
	require.True(t, e.gone(kindFolder, tr.archive))
	require.True(t, e.gone(kindFile, tr.policies))
	require.Equal(t, "/Objective Global Folder/Home", field1(e.doc(kindFolder, tr.home), "PATH"))
}

// When a page has fewer changed documents than Concurrency, a document's
// catalogue fields, permissions and content are asked for at once (their
// latencies overlap): the stand-in holds each of the three requests until
// the other two have come, and fails it when they do not come in time.
func TestDocumentRequestsOverlap(t *testing.T) {
	e := newEnv(t, "Concurrency=3\nMaxAttempts=1")
	folder := e.srv.AddFolder(objectivetest.RootID, "Overlap")
	doc := e.srv.AddDocument(folder, objectivetest.Doc{Name: "a.txt", Data: []byte("overlapping"),
		Fields: []objectivetest.Field{{Name: "Author", Value: "A. Archer"}}})
	prefix := "/api/resources/documents/" + doc + "/"
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	e.srv.SetFault(func(r *http.Request) *objectivetest.Fault {
		if !strings.HasPrefix(r.URL.Path, prefix) {
			return nil
		}
		mu.Lock()
		arrived++
		if arrived == 3 {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
			return nil
		case <-time.After(5 * time.Second):
			return &objectivetest.Fault{Status: http.StatusServiceUnavailable}
		}
	})
	c := e.sync()
	require.Zero(t, c.Errors, "the document's three requests were not in flight together")
	d := e.doc(kindDocument, doc)
	require.Equal(t, "overlapping", d.Content)
	require.Equal(t, "A. Archer", field1(d, "CATALOGUE_AUTHOR"))
	require.Equal(t, "1:U::NU::G::NG:", field1(d, "AUTONOMYMETADATA"), "everyone, from fA0")
}
