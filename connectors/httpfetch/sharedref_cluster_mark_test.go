package httpfetch

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/pgstore"
)

// twoNodesAndZ is twoTasksAndZ on two nodes of a cluster (two
// repositories on one shared store, one ingestion target): B synchronized
// on node B, then A on node A (the documents in the index are A's).
func twoNodesAndZ(t *testing.T) (nodeA, nodeB *bundle, s *site, x string) {
	t.Helper()
	url := pgtest.StartT(t, pgtest.Options{}).DatabaseT(t)
	open := func() *pgstore.Store {
		st, err := pgstore.Open(context.Background(), pgstore.Config{URL: url})
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		return st
	}
	s = newSite(t, map[string]*page{
		"/":  htmlPage("Home", "/x"),
		"/b": htmlPage("B root", "/x", "/z"),
		"/x": htmlPage("X"),
		"/z": htmlPage("Z"),
	})
	cfg := "[FetchTasks]\n0=A\n1=B\n[A]\nUrl=" + s.URL + "/\n[B]\nUrl=" + s.URL + "/b\n"
	nodeA = setup(t, cfg, setupOpts{store: open(), flushInterval: time.Hour})
	nodeB = setup(t, cfg, setupOpts{store: open(), flushInterval: time.Hour})
	nodeB.repo.target, nodeB.target = nodeA.target, nodeA.target // one index
	nodeB.sync(t, "TaskSections", "B")
	nodeA.sync(t, "TaskSections", "A")
	return nodeA, nodeB, s, s.URL + "/x"
}

// noMarkNotes checks that no note of a mark is left in task's datastore
// once its runs have ended.
func noMarkNotes(t *testing.T, b *bundle, task string) {
	t.Helper()
	ds, err := b.st.Datastore(task)
	require.NoError(t, err)
	n := 0
	require.NoError(t, store.ForEachPrefix(ds, []byte(markPrefix), func(_, _ []byte) error { n++; return nil }))
	require.Zero(t, n, "notes of marks left in %s's datastore", task)
}

// TestMarkByOneTaskSurvivesAnotherTasksRun with B's run on another node
// than A's: node A's turns (restsync.Turns) did not know that B ran, so
// the mark A made on B's record of /x was not made again when B's run
// ended, and B's run's write of its record, read before the mark, undid
// it: B's next runs were answered 304 and /x stayed in the index as A's
// document (AUTN_IDENTIFIER naming A, which no longer has it).
func TestMarkByOneTaskSurvivesAnotherTasksRunOnAnotherNode(t *testing.T) {
	nodeA, nodeB, s, x := twoNodesAndZ(t)
	taskOf := func() string {
		id, err := DecodeIdentifier(fieldValue(nodeA.target.doc(x), FieldIdentifier))
		require.NoError(t, err)
		return id.Task
	}
	require.Equal(t, "A", taskOf())

	s.set("/", htmlPage("Home"))
	s.set("/z", htmlPage("Z, changed"))
	release := holdingB(t, nodeB)
	nodeA.sync(t, "TaskSections", "A") // A lets /x go meanwhile, on node A
	require.True(t, nodeA.target.holds(x), "B indexes it: it stays")
	release()

	nodeB.sync(t, "TaskSections", "B")
	require.Equal(t, "B", taskOf(), "B delivered its own document again")
	noMarkNotes(t, nodeB, "B")
}

// TestDeleteByOneTaskSurvivesAnotherTasksRun with the Delete on another
// node than B's run: B's run wrote its record back as delivered, and /x
// was missing from the index for good.
func TestDeleteByOneTaskSurvivesAnotherTasksRunOnAnotherNode(t *testing.T) {
	nodeA, nodeB, s, x := twoNodesAndZ(t)
	s.set("/z", htmlPage("Z, changed"))
	release := holdingB(t, nodeB)
	nodeA.run(t, fetch.ActionDelete, params("Identifiers", EncodeIdentifier("A", x)))
	require.False(t, nodeA.target.holds(x))
	release()

	nodeB.sync(t, "TaskSections", "B")
	require.True(t, nodeA.target.holds(x), "B delivered it again")
	noMarkNotes(t, nodeB, "B")
}
