package objectivefetch

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/objectivefetch/objectivetest"
)

// A document deleted from a folder while the folder's pages are read
// shifts the pages after it (offset paging): the document that moved
// from the second page to the first is not in either page. It is still
// in the folder, so its document stays in the index (and is not
// delivered again); only the document deleted is removed.
func TestListingShiftedByADeletionRemovesOnlyTheDeleted(t *testing.T) {
	e := newEnv(t, "")
	folder, docs := bigFolder(e, "a", 9) // pages of 4: a-00..a-03, a-04..a-07, a-08
	e.sync()
	var deleted atomic.Bool
	e.srv.SetFault(func(r *http.Request) *objectivetest.Fault {
		if r.URL.Query().Get("parentId") == folder && r.URL.Query().Get("offset") == "4" && deleted.CompareAndSwap(false, true) {
			e.srv.Remove(docs[0]) // a-04 moves to the first page, read already
		}
		return nil
	})
	c := e.sync()
	require.True(t, deleted.Load())
	for _, id := range docs[1:] {
		require.False(t, e.gone(kindDocument, id), "%s is still in the folder", id)
	}
	require.Zero(t, c.Deleted, "a-00 was read before it was deleted: the next run removes it; %+v", c)

	e.srv.SetFault(nil)
	c = e.sync()
	require.True(t, e.gone(kindDocument, docs[0]), "deleted")
	require.Equal(t, uint64(1), c.Deleted, "%+v", c)
	require.Zero(t, c.Added+c.Updated, "%+v", c)
	requireAllOnce(t, e)
}
