package webexfetch

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/store"
)

// TestMarkByOneTaskSurvivesAnotherTasksRun with B's run killed (kill -9)
// after it wrote its space's record over A's mark and before it ended,
// where it would have marked the record again: the restarted process's
// next run of B must deliver the older message again. Before, the marks
// to make again were kept in memory only (outside a cluster): after the
// restart B's record of the space said it was up to date, and the older
// message stayed in the index as A's document (AUTN_IDENTIFIER naming A,
// which no longer indexes it; A's security and fields) until it changed.
func TestMarkByOneTaskSurvivesACrashDuringAnotherTasksRun(t *testing.T) {
	e := newEnv(t)
	// The embedded durable store (the memory store does not outlive the
	// process); the restarted process is a repository of its own on it,
	// where the writes the dead one made are.
	st, err := store.Open(store.Config{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	e.st = st
	general := e.srv.AddRoom("General", "group", e.alice, e.bob)
	zed := e.srv.AddRoom("Zed", "group", e.alice, e.bob)
	last := e.srv.AddRoom("Last", "group", e.alice, e.bob)
	m := e.srv.Post(general, e.bob, "hello")
	e.srv.Post(zed, e.bob, "zed")
	e.gated = &resttest.Gated{Inner: e.target}
	taskOf := e.bothDeliverALast("Concurrency=1")
	require.Equal(t, "A", taskOf(msgRef(e, m)))

	// B's run reads General (its new message held while A lets the
	// space go), writes General's record with Zed's message, then dies
	// delivering Last's.
	e.twoTasks("Concurrency=1\nRoomTitleCantHaveRegex=General", "Concurrency=1")
	e.repo.batchSize = 1
	// Rooms are read most recently active first: General, Zed, Last.
	y := e.srv.Post(last, e.bob, "last")
	e.srv.Post(zed, e.bob, "zed")
	n := e.srv.Post(general, e.bob, "later")
	h := e.gated.HoldAdd(msgRef(e, n))
	defer h.Release()
	ps := resttest.Params("TaskSections", "B")
	tasks, err := e.repo.Validate("SYNCHRONIZE", ps)
	require.NoError(t, err)
	ended := make(chan error, 1)
	old := e.repo
	go func() {
		_, err := old.Run(context.Background(), fetch.NewJob("tok-b", "SYNCHRONIZE", ps, tasks))
		ended <- err
	}()
	testwait.Recv(t, h.Reached(), 20*time.Second, "B delivering the new message")
	e.repo = e.newRepo()
	_, _, err = e.run("SYNCHRONIZE", "TaskSections", "A") // A lets the space go meanwhile
	require.NoError(t, err)
	require.NotNil(t, e.target.Get(msgRef(e, m)), "B indexes it: it stays")
	dead := e.gated.HoldAdd(msgRef(e, y)) // B's, A's went through
	h.Release()
	testwait.Recv(t, dead.Reached(), 20*time.Second, "B delivering Zed's messages, General's record written")
	ds, err := st.Datastore("B")
	require.NoError(t, err)
	rec, err := restsync.GetRecord(ds, roomKey(general))
	require.NoError(t, err)
	require.NotEmpty(t, rec.Version, "B's run wrote General's record over A's mark")

	// The restarted process: a repository of its own on the same store.
	e.repo = e.newRepo()
	_, _, err = e.run("SYNCHRONIZE", "TaskSections", "B")
	require.NoError(t, err)
	require.Equal(t, "B", taskOf(msgRef(e, m)), "B delivered its own document again")
	dead.Release() // the old process's run may end
	testwait.Recv(t, ended, 20*time.Second, "the dead process's run of B to end")
}
