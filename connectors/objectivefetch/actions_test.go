package objectivefetch

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/objectivefetch/objectivetest"
	"github.com/connectorhq/connector/messages"
)

// Insert as IDOL documents it: PATH (required) from the top-level folder,
// the missing folders created with FOLDER_OBJECT_TYPE (default dotdA12),
// content inline or from a file inside [Security] InsertFolders; a
// document already at the path gets a new version.
func TestInsert(t *testing.T) {
	e := newEnv(t, "")
	home := e.srv.AddFolder(objectivetest.RootID, "Home", user("alice", "read", "browse", "write"))
	require.NoError(t, os.MkdirAll(filepath.Join(e.dir, "insert"), 0o750))
	big := filepath.Join(e.dir, "insert", "scan.txt")
	require.NoError(t, os.WriteFile(big, []byte(strings.Repeat("scanned text ", 10000)), 0o640))
	xml := `<insert><insert_id>1</insert_id><property name="PATH" value="/Home/user1/newfile.txt"/>
  <file><type>content</type><content>` + base64.StdEncoding.EncodeToString([]byte("hello objective")) + `</content></file></insert>
<insert><insert_id>2</insert_id><property name="PATH" value="/Objective Global Folder/Home/Projects/2026/plan.txt"/><property name="FOLDER_OBJECT_TYPE" value="dotdA99"/>
  <file><type>drecontent</type><content>the plan</content></file></insert>
<insert><insert_id>3</insert_id><property name="PATH" value="/Home/user1/scan.txt"/><file><type>file</type><content>` + big + `</content></file></insert>`
	job, res, err := e.run("INSERT", "ConfigSection", "MyObjective", "InsertXML", "<InsertXML>"+xml+"</InsertXML>")
	require.NoError(t, err)
	require.Equal(t, uint64(3), job.Snapshot()[0].Inserted, "%v", res)
	user1 := e.srv.Find(home, "user1")
	require.NotEmpty(t, user1)
	require.Equal(t, "dotdA12", e.srv.Object(user1).ObjectType)
	projects := e.srv.Find(home, "Projects")
	y := e.srv.Find(projects, "2026")
	require.Equal(t, "dotdA99", e.srv.Object(y).ObjectType)
	doc := e.srv.Find(user1, "newfile.txt")
	require.Equal(t, "hello objective", string(e.srv.Object(doc).Versions[0].Data))
	scan := e.srv.Find(user1, "scan.txt")
	require.Equal(t, 130000, len(e.srv.Object(scan).Versions[0].Data))
	id, err := decodeIdentifier(res[1].Children[0].Text)
	require.NoError(t, err)
	require.Equal(t, doc, id.Item)
	require.Equal(t, "1", res[1].Children[0].Attrs[0].Value)

	// Again at the same path: a new version.
	_, _, err = e.run("INSERT", "ConfigSection", "MyObjective", "InsertXML",
		`<insert><property name="PATH" value="/Home/user1/newfile.txt"/><file><type>drecontent</type><content>second</content></file></insert>`)
	require.NoError(t, err)
	vs := e.srv.Object(doc).Versions
	require.Len(t, vs, 2)
	require.Equal(t, "second", string(vs[1].Data))

	// Where the user may not write: that document fails, with the
	// server's message.
	e.srv.AddFolder(objectivetest.RootID, "ReadOnly")
	job, res, err = e.run("INSERT", "ConfigSection", "MyObjective", "InsertXML",
		`<insert><property name="PATH" value="/ReadOnly/x.txt"/><file><type>drecontent</type><content>x</content></file></insert>`)
	require.NoError(t, err)
	require.Equal(t, uint64(1), job.Snapshot()[0].Errors)
	require.Equal(t, "failed", res[0].Children[0].Name)
	require.Contains(t, res[0].Children[0].Attrs[0].Value, "HTTP 403")

	var pe *messages.ParamError
	for _, bad := range []string{
		`<insert><file><type>drecontent</type><content>x</content></file></insert>`,
		`<insert><property name="PATH" value="/just-a-name.txt"/><file><type>drecontent</type><content>x</content></file></insert>`,
		`<insert><property name="PATH" value="/Home/../x.txt"/><file><type>drecontent</type><content>x</content></file></insert>`,
		`<insert><property name="PATH" value="/Home/x.txt"/></insert>`,
		`<insert><property name="PATH" value="/Home/x.txt"/><file><type>file</type><content>/etc/passwd</content></file></insert>`,
		`<insert><property name="PATH" value="/Home/x.txt"/><file><type>content</type><content>!!!</content></file></insert>`,
	} {
		_, err := e.repo.Validate("INSERT", messages.Params{{Name: "ConfigSection", Value: "MyObjective"}, {Name: "InsertXML", Value: bad}})
		require.ErrorAs(t, err, &pe, bad)
		require.Equal(t, "InsertXML", pe.Name, bad)
	}
}

// Identifiers, View, Collect and Delete of what Synchronize indexed.
func TestIdentifiersViewCollectDelete(t *testing.T) {
	e := newEnv(t, "Versions=ALL")
	f := e.srv.AddFolder(objectivetest.RootID, "Docs", user("alice", "read", "browse", "write"))
	d := e.srv.AddDocument(f, objectivetest.Doc{Name: "a.txt", Data: []byte("version one")})
	e.srv.NewVersion(d, []byte("version two"))
	e.sync()
	_, res, err := e.run("IDENTIFIERS", "ConfigSection", "MyObjective")
	require.NoError(t, err)
	names := map[string]string{}
	for _, c := range res[0].Children {
		names[c.Attrs[0].Value] = c.Text
	}
	require.Contains(t, names, "a.txt")
	require.Contains(t, names, "Docs")

	v, err := e.repo.View(context.Background(), names["a.txt"], nil)
	require.NoError(t, err)
	require.Equal(t, "version two", string(v.Content))
	require.Equal(t, "a.txt", v.FileName)
	old := identifier("MYOBJECTIVE", kindDocument, f, d, "v"+d)
	v, err = e.repo.View(context.Background(), old, nil)
	require.NoError(t, err)
	require.Equal(t, "version one", string(v.Content))

	job, _, err := e.run("COLLECT", "Identifiers", names["a.txt"], "Destination", "got")
	require.NoError(t, err)
	require.Equal(t, uint64(1), job.Snapshot()[0].Collected)
	data, err := os.ReadFile(filepath.Join(e.dir, "collect", "got", "a.txt"))
	require.NoError(t, err)
	require.Equal(t, "version two", string(data))

	var pe *messages.ParamError
	_, err = e.repo.Validate("DELETE", messages.Params{{Name: "Identifiers", Value: names["Docs"]}})
	require.ErrorAs(t, err, &pe, "a folder is not deleted")
	// Given twice (a list with repeats from a UI selection or a script),
	// it is one document: it was counted deleted (four, with its old
	// version) and listed once per time it was given.
	job, res, err = e.run("DELETE", "Identifiers", names["a.txt"]+","+names["a.txt"])
	require.NoError(t, err)
	require.Len(t, res[0].Children, 1, "listed once")
	require.Nil(t, e.srv.Object(d))
	require.Equal(t, uint64(2), job.Snapshot()[0].Deleted, "the document and its old version")
	require.Equal(t, uint64(2), job.Snapshot()[0].Ingestdeleted)
	require.True(t, e.gone(kindDocument, d))
	_, err = e.repo.View(context.Background(), names["a.txt"], nil)
	require.ErrorIs(t, err, messages.ErrNotFound)
}

// Delete refuses an identifier of a document the task has not indexed, as
// View and Collect do: a stale or crafted identifier (here of a document
// added after the Synchronize) deleted any document in Objective the
// account may delete.
func TestDeleteRefusesADocumentTheTaskHasNotIndexed(t *testing.T) {
	e := newEnv(t, "")
	f := e.srv.AddFolder(objectivetest.RootID, "Docs", user("alice", "read", "browse", "write"))
	d := e.srv.AddDocument(f, objectivetest.Doc{Name: "a.txt", Data: []byte("indexed")})
	e.sync()
	d2 := e.srv.AddDocument(f, objectivetest.Doc{Name: "b.txt", Data: []byte("not yet indexed")})
	known := identifier("MYOBJECTIVE", kindDocument, f, d, "")
	unknown := identifier("MYOBJECTIVE", kindDocument, f, d2, "")

	job, res, err := e.run("DELETE", "Identifiers", unknown+","+known)
	require.NoError(t, err)
	require.Len(t, res[0].Children, 2)
	require.Equal(t, "success", res[0].Children[0].Name)
	require.Equal(t, known, res[0].Children[0].Text)
	require.Equal(t, "failed", res[0].Children[1].Name)
	require.Equal(t, unknown, res[0].Children[1].Text)
	require.Equal(t, "the task has not indexed this document", res[0].Children[1].Attrs[0].Value)
	require.NotNil(t, e.srv.Object(d2), "the document the task never indexed is still in Objective")
	require.Nil(t, e.srv.Object(d))
	require.Equal(t, uint64(1), job.Snapshot()[0].Deleted)
}

// A RootFolders id that is not a folder's or file's (a document's, a
// version's) is refused at start-up with the file, line, key and id: it
// would be indexed as a container without content.
func TestRootFoldersRefusesDocumentIDs(t *testing.T) {
	for _, id := range []string{"A123", "vA106", "pA7"} {
		_, err := config.Parse("bad.cfg", []byte("[FetchTasks]\nNumber=1\n0=T\n[T]\nUsername=u\nRootFolders=fA0, "+id+"\n"), TaskKeys)
		require.Error(t, err, id)
		require.Contains(t, err.Error(), "bad.cfg:6", id)
		require.Contains(t, err.Error(), "RootFolders", id)
		require.Contains(t, err.Error(), id, id)
	}
	_, err := config.Parse("good.cfg", []byte("[FetchTasks]\nNumber=1\n0=T\n[T]\nRootFolders=fA0,qA77,/Objective Global Folder/A123\n"), TaskKeys)
	require.NoError(t, err)
}

// Bad settings stop the configuration with the file, line and key.
func TestSettings(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"AuthMethod=NTLM", "AuthMethod"},
		{"RootFolders=Home", "RootFolders"},
		{"Versions=SOME", "Versions"},
		{"Concurrency=0", "Concurrency"},
		{"ServerUrl=objective", "ServerUrl"},
	} {
		_, err := config.Parse("bad.cfg", []byte("[FetchTasks]\nNumber=1\n0=T\n[T]\nUsername=u\n"+c.text+"\n"), TaskKeys)
		require.Error(t, err, c.text)
		require.Contains(t, err.Error(), "bad.cfg:6", c.text)
		require.Contains(t, err.Error(), c.want, c.text)
	}
	for _, c := range []struct{ text, want string }{
		{"Username=u\nPassword=p", "ServerUrl"},
		{"ServerUrl=https://o\nPassword=p", "Username"},
		{"ServerUrl=https://o\nUsername=u", "Password"},
		{"ServerUrl=https://o\nUsername=u\nAuthMethod=OAUTH", "OAuthClientID"},
		{"ServerUrl=https://o\nUsername=u\nAuthMethod=OAUTH\nOAuthClientID=c", "OAuthClientSecret"},
	} {
		cfg, err := config.Parse("x.cfg", []byte("[FetchTasks]\nNumber=1\n0=T\n[T]\n"+c.text+"\n"), TaskKeys)
		require.NoError(t, err)
		err = Check(cfg)
		require.Error(t, err, c.text)
		require.Contains(t, err.Error(), c.want, c.text)
	}
}

// TestViewAndCollectGiveAnInheritedACL: a document without permissions
// of its own takes its folder's, and Synchronize's document has their
// ACL. View and Collect gave it none (their document said SECURITYTYPE
// and no AUTONOMYMETADATA), though the docs say Collect's IDX file has
// the document's fields: an IDX file collected for a legal hold and
// indexed elsewhere made the document everyone's. They now work the
// inherited permissions out as Synchronize does (up through the
// parents), and give the ACL it gives.
func TestViewAndCollectGiveAnInheritedACL(t *testing.T) {
	e := newEnv(t, "")
	top := e.srv.AddFolder(objectivetest.RootID, "Board", user("alice", "read", "browse"), group("Directors", "read"))
	sub := e.srv.AddFolder(top, "Minutes") // inherits Board's
	d := e.srv.AddDocument(sub, objectivetest.Doc{Name: "q3.txt", Data: []byte("minutes of Q3")})
	require.Zero(t, e.sync().Errors)
	want := field1(e.doc(kindDocument, d), "AUTONOMYMETADATA")
	require.NotEmpty(t, want)

	id := identifier("MYOBJECTIVE", kindDocument, sub, d, "")
	v, err := e.repo.View(context.Background(), id, nil)
	require.NoError(t, err)
	got := ""
	for _, p := range v.Metadata {
		if p.GetName() == "AUTONOMYMETADATA" {
			got = p.GetValue()
		}
	}
	require.Equal(t, want, got, "View's metadata has the inherited ACL")

	_, _, err = e.run("COLLECT", "Identifiers", id, "Destination", "hold")
	require.NoError(t, err)
	idx, err := os.ReadFile(filepath.Join(e.dir, "collect", "hold", "q3.txt.idx"))
	require.NoError(t, err)
	require.Contains(t, string(idx), "#DREFIELD AUTONOMYMETADATA=\""+want+"\"")
}
