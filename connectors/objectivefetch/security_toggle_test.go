package objectivefetch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// MappedSecurity turned on for a task that indexed without it: every
// object gets its permissions, a folder's own included (not its
// parent's, which would let everyone read what is under it).
func TestMappedSecurityTurnedOnReadsOwnPermissions(t *testing.T) {
	e, tr := toggleSecurity(t, "FALSE", "TRUE")
	require.Equal(t, "0:U:alice:NU::G:staff:NG:", field1(e.doc(kindFolder, tr.home), "AUTONOMYMETADATA"), "Home's own")
	require.Equal(t, "0:U:alice:NU::G:staff:NG:", field1(e.doc(kindDocument, tr.report), "AUTONOMYMETADATA"), "inherited from Home")
	require.Equal(t, "0:U:alice:NU:bob:G::NG:", field1(e.doc(kindDocument, tr.notes), "AUTONOMYMETADATA"), "its own")
	require.Equal(t, "1:U::NU::G::NG:", field1(e.doc(kindFolder, tr.archive), "AUTONOMYMETADATA"), "everyone, from fA0")

	c := e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "%+v", c)
}

// MappedSecurity turned off for a task that indexed with it: every object
// is delivered again without its ACLs, once. Before, the documents
// already indexed kept their ACLs (and SECURITYTYPE) for good: the
// search engine went on hiding them from the people they were meant to
// be opened to, until each changed in Objective.
func TestMappedSecurityTurnedOffDropsTheACLs(t *testing.T) {
	e, tr := toggleSecurity(t, "TRUE", "FALSE")
	for _, d := range []struct{ kind, id string }{{kindFolder, tr.home}, {kindDocument, tr.report}, {kindDocument, tr.notes}, {kindFile, tr.policies}, {kindDocument, tr.policy1}} {
		doc := e.doc(d.kind, d.id)
		require.Empty(t, field(doc, "AUTONOMYMETADATA"), "%s %s", d.kind, d.id)
		require.Empty(t, field(doc, "SECURITYTYPE"), "%s %s", d.kind, d.id)
	}
	c := e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "once: %+v", c)
}

// toggleSecurity indexes the tree with MappedSecurity=from (a report with
// an ACL, or without), then synchronizes again with MappedSecurity=to.
func toggleSecurity(t *testing.T, from, to string) (*env, tree) {
	e := newEnv(t, "MappedSecurity="+from)
	tr := buildTree(t, e.srv)
	e.sync()
	require.Equal(t, from == "TRUE", field1(e.doc(kindDocument, tr.report), "AUTONOMYMETADATA") != "")
	e.reconfigure("MappedSecurity=" + to)
	e.sync()
	return e, tr
}
