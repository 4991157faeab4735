package objectivefetch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// MappedSecurity turned on for a task that indexed without it: every
// object gets its permissions, a folder's own included (not its
// parent's, which would let everyone read what is under it).
func TestMappedSecurityTurnedOnReadsOwnPermissions(t *testing.T) {
	e := newEnv(t, "MappedSecurity=FALSE")
	tr := buildTree(t, e.srv)
	e.sync()
	require.Empty(t, field1(e.doc(kindDocument, tr.report), "AUTONOMYMETADATA"))

	e.reconfigure("MappedSecurity=TRUE")
	e.sync()
	require.Equal(t, "0:U:alice:NU::G:staff:NG:", field1(e.doc(kindFolder, tr.home), "AUTONOMYMETADATA"), "Home's own")
	require.Equal(t, "0:U:alice:NU::G:staff:NG:", field1(e.doc(kindDocument, tr.report), "AUTONOMYMETADATA"), "inherited from Home")
	require.Equal(t, "0:U:alice:NU:bob:G::NG:", field1(e.doc(kindDocument, tr.notes), "AUTONOMYMETADATA"), "its own")
	require.Equal(t, "1:U::NU::G::NG:", field1(e.doc(kindFolder, tr.archive), "AUTONOMYMETADATA"), "everyone, from fA0")

	c := e.sync()
	require.Zero(t, c.Added+c.Updated+c.Deleted, "%+v", c)
}
