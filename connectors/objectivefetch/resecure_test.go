package objectivefetch

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/connectors/objectivefetch/objectivetest"
	"github.com/connectorhq/connector/store"
)

// When a folder's permissions change, a document that inherits them and
// could not be read that run (its content failed) gets the new
// permissions from the next run, although its folder's record already
// has them: a document is never left with permissions it no longer has.
func TestInheritedPermissionsReachADocumentThatFailedOnce(t *testing.T) {
	e := newEnv(t, "")
	tr := buildTree(t, e.srv)
	e.sync()
	require.Equal(t, "0:U:alice:NU::G:staff:NG:", field1(e.doc(kindDocument, tr.report), "AUTONOMYMETADATA"))

	// Home is no longer readable by the group Staff, but by carol;
	// report.docx's content fails this run.
	e.srv.Update(tr.home, func(o *objectivetest.Object) {
		o.Permissions = []objectivetest.Permission{user("alice", "read", "browse", "write"), user("carol", "read", "browse")}
	})
	var failing atomic.Bool
	failing.Store(true)
	e.srv.SetFault(func(r *http.Request) *objectivetest.Fault {
		if failing.Load() && strings.Contains(r.URL.Path, "/documents/"+tr.report+"/content") {
			return &objectivetest.Fault{Status: http.StatusInternalServerError}
		}
		return nil
	})
	c := e.sync()
	require.NotZero(t, c.Errors, "%+v", c)
	require.Equal(t, "0:U:alice,carol:NU::G::NG:", field1(e.doc(kindFolder, tr.aliceF), "AUTONOMYMETADATA"))
	require.Equal(t, "0:U:alice:NU::G:staff:NG:", field1(e.doc(kindDocument, tr.report), "AUTONOMYMETADATA"), "not read this run")

	failing.Store(false)
	c = e.sync()
	require.Zero(t, c.Errors, "%+v", c)
	require.Equal(t, "0:U:alice,carol:NU::G::NG:", field1(e.doc(kindDocument, tr.report), "AUTONOMYMETADATA"), "the folder's new permissions")
	require.Equal(t, uint64(1), c.Updated, "%+v", c)

	c = e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "%+v", c)
}

// A name in an ACL is percent-encoded (docs/connectors/objective.md),
// so that IDOL Content's escaped (X) entries read it back: a space was
// written as "+" (url.QueryEscape's form encoding), which percent-decoding
// leaves a "+", so that a group such as "Records Managers" matched no
// one. A space is %20 now; a "+" of the name itself stays %2B.
func TestACLNamesArePercentEncoded(t *testing.T) {
	a := aclsOf([]permission{
		{Principal: "Records Managers", PrincipalType: "group", Privileges: []string{"read"}},
		{Principal: "Ann+Ops@Example.com", PrincipalType: "user", Privileges: []string{"read"}},
		{Principal: "Sales, Europe: North", PrincipalType: "group", Privileges: []string{"read"}, Deny: true},
	})
	require.Equal(t, "0:U:ann%2Bops%40example.com:NU::G:records%20managers:NG:sales%2C%20europe%3A%20north", a.read)
}

// An entry that denies a privilege to the group Everyone denies it to
// everyone, whoever else it is granted to (a denial wins, as the
// stand-in's model says: objectivetest's allowed). aclsOf dropped such an
// entry: an object readable by alice and denied to Everyone got the ACL
// 0:U:alice, so that IDOL showed alice a document Objective refuses her.
// Its ACL now grants no one that privilege.
func TestEveryoneDeniedGrantsNoOne(t *testing.T) {
	everyone := objectivetest.Permission{Principal: "Everyone", PrincipalType: "group", Privileges: []string{"read"}, Deny: true}
	a := aclsOf([]permission{
		{Principal: "alice", PrincipalType: "user", Privileges: []string{"read", "browse"}},
		{Principal: "Staff", PrincipalType: "group", Privileges: []string{"read"}},
		{Principal: everyone.Principal, PrincipalType: everyone.PrincipalType, Privileges: everyone.Privileges, Deny: everyone.Deny},
		{Principal: "bob", PrincipalType: "user", Privileges: []string{"read"}, Deny: true},
	})
	require.Equal(t, "0:U::NU:bob:G::NG:", a.read, "no one may read")
	require.Equal(t, "0:U:alice:NU::G::NG:", a.browse, "Everyone is denied read only")
}

// A document with permissions of its own whose record says it was
// delivered with another ACL than those permissions give now (a server
// from before the ACL's format was corrected: a space in a name written
// "+", a denial to Everyone dropped) was not delivered again: its own
// permissions were compared with its record only when its folder's had
// changed, so that the index kept the wrong ACL until the document
// itself changed. It is delivered again with the ACL they give now.
func TestDocumentWithItsOwnPermissionsGetsTheCurrentACLFormat(t *testing.T) {
	e := newEnv(t, "")
	tr := buildTree(t, e.srv)
	e.sync()
	want := field1(e.doc(kindDocument, tr.notes), "AUTONOMYMETADATA")
	require.Equal(t, "0:U:alice:NU:bob:G::NG:", want)

	// As an older server recorded it: another ACL.
	ds, err := e.st.Datastore("MYOBJECTIVE")
	require.NoError(t, err)
	key := restsync.RecordKey(objectKey(tr.notes))
	require.NoError(t, ds.Update(func(w store.Writer) error {
		b, err := w.Get(key)
		require.NoError(t, err)
		var rec restsync.Record
		require.NoError(t, json.Unmarshal(b, &rec))
		var st objState
		require.NoError(t, json.Unmarshal(rec.Extra, &st))
		st.ACL = aclsOf([]permission{{Principal: "alice", PrincipalType: "user", Privileges: []string{"read", "browse", "write"}}}).hash()
		rec.Extra, _ = json.Marshal(st)
		b, _ = json.Marshal(&rec)
		return w.Put(key, b)
	}))
	ref := e.doc(kindDocument, tr.notes).Reference
	adds := e.target.AddsOf(ref)

	c := e.sync()
	require.Equal(t, uint64(1), c.Updated, "%+v", c)
	require.Equal(t, adds+1, e.target.AddsOf(ref), "delivered again")
	require.Equal(t, want, field1(e.doc(kindDocument, tr.notes), "AUTONOMYMETADATA"))
	c = e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "%+v", c)
}
