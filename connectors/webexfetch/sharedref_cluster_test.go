package webexfetch

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/pgstore"
)

// TestMarkByOneTaskSurvivesAnotherTasksRun with B's run on another node
// of a cluster than A's (two repositories on one shared store): node A's
// turns (restsync.Turns) did not know that B ran, so the marks A made on
// B's records were not made again when B's run ended, and B's run's write
// of its space's record, read before the marks, undid them: the older
// message stayed in the index as A's document.
func TestMarkByOneTaskSurvivesAnotherTasksRunOnAnotherNode(t *testing.T) {
	url := pgtest.StartT(t, pgtest.Options{}).DatabaseT(t)
	open := func() *pgstore.Store {
		st, err := pgstore.Open(context.Background(), pgstore.Config{URL: url})
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		return st
	}
	stA, stB := open(), open()
	e := newEnv(t)
	room := e.srv.AddRoom("General", "group", e.alice, e.bob)
	m := e.srv.Post(room, e.bob, "hello")
	e.gated = &resttest.Gated{Inner: e.target}
	nodes := func(a, b string) (*Repository, *Repository) {
		e.twoTasks(a, b)
		e.st = stA
		ra := e.newRepo()
		e.st = stB
		return ra, e.newRepo()
	}
	run := func(r *Repository, task string) error {
		ps := resttest.Params("TaskSections", task)
		tasks, err := r.Validate("SYNCHRONIZE", ps)
		if err == nil {
			_, err = r.Run(context.Background(), fetch.NewJob("tok-"+task, "SYNCHRONIZE", ps, tasks))
		}
		return err
	}
	ra, rb := nodes("", "")
	require.NoError(t, run(rb, "B"))
	require.NoError(t, run(ra, "A")) // A's documents in the index
	taskOf := func(ref string) string {
		id, err := decodeIdentifier(field1(e.doc(ref), "AUTN_IDENTIFIER"))
		require.NoError(t, err)
		return id.Task
	}
	require.Equal(t, "A", taskOf(msgRef(e, m)))

	ra, rb = nodes("RoomTitleCantHaveRegex=General", "")
	n := e.srv.Post(room, e.bob, "later")
	h := e.gated.HoldAdd(msgRef(e, n))
	defer h.Release()
	done := make(chan error, 1)
	go func() { done <- run(rb, "B") }()
	testwait.Recv(t, h.Reached(), 20*time.Second, "B delivering the new message")
	require.NoError(t, run(ra, "A")) // A lets the space go meanwhile, on node A
	require.NotNil(t, e.target.Get(msgRef(e, m)), "B indexes it: it stays")
	h.Release()
	require.NoError(t, testwait.Recv(t, done, 20*time.Second, "B's Synchronize to end"))

	require.NoError(t, run(rb, "B"))
	require.Equal(t, "B", taskOf(msgRef(e, m)), "B delivered its own document again")
	require.Equal(t, "B", taskOf(roomRefOf(e, room)))
	ds, err := stB.Datastore("B")
	require.NoError(t, err)
	notes := 0
	require.NoError(t, store.ForEachPrefix(ds, []byte("k:"), func(_, _ []byte) error { notes++; return nil }))
	require.Zero(t, notes, "no note of a mark is left once B's runs have ended")
}
