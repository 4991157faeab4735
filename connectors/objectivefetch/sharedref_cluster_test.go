package objectivefetch

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/store/pgstore"
)

// Two tasks that let a shared object go in runs at the same time on two
// nodes of a cluster (two processes on one shared store): its document
// is removed, by the second to decide. The repository's turn
// (restsync.Turns) orders one process's tasks only: task A, on one node,
// found B's record holding the object and kept it; B, on the other node,
// looked before A wrote its record forgotten, found A's holding it and
// kept it too, and the document stayed in the index with no task left to
// remove it. The test holds A between its look and its write
// (restsync.KeepSharedChecked) while B runs.
func TestSharedObjectLetGoByTasksOnTwoNodesIsRemoved(t *testing.T) {
	srv := pgtest.StartT(t, pgtest.Options{})
	url := srv.DatabaseT(t)
	open := func() *pgstore.Store {
		s, err := pgstore.Open(context.Background(), pgstore.Config{URL: url})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	}
	stA, stB := open(), open()
	e := newEnv(t, "")
	tr := buildTree(t, e.srv)
	node := func(st *pgstore.Store) *Repository {
		r, err := New(Options{Config: e.cfg, Store: st, Target: e.target, Sleep: e.waits.Sleep,
			Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		require.NoError(t, err)
		return r
	}
	run := func(r *Repository, task string) <-chan error {
		ps := resttest.Params("TaskSections", task)
		tasks, err := r.Validate("SYNCHRONIZE", ps)
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() {
			_, err := r.Run(context.Background(), fetch.NewJob("tok-"+task, "SYNCHRONIZE", ps, tasks))
			done <- err
		}()
		return done
	}
	e.twoTasks(tr.home+","+tr.archive, tr.home)
	require.NoError(t, testwait.Recv(t, run(node(stA), "A"), 20*time.Second, "A's first Synchronize"))
	require.NoError(t, testwait.Recv(t, run(node(stB), "B"), 20*time.Second, "B's first Synchronize"))
	require.False(t, e.gone(kindDocument, tr.report))

	// Both let Home go, on two nodes at once.
	e.twoTasks(tr.archive, tr.archive)
	checked, resume := make(chan struct{}), make(chan struct{})
	restsync.KeepSharedChecked = func(task string) {
		if task == "A" {
			close(checked)
			<-resume
		}
	}
	t.Cleanup(func() { restsync.KeepSharedChecked = nil })
	aDone := run(node(stA), "A")
	testwait.Recv(t, checked, 20*time.Second, "A kept Home's objects (B's records hold them)")
	bDone := run(node(stB), "B")
	// B either ends (nothing orders it after A) or waits for its turn.
	var bErr error
	bEnded := false
	testwait.For(t, 20*time.Second, func() bool {
		select {
		case bErr = <-bDone:
			bEnded = true
			return true
		default:
			return pgtest.AdvisoryWaiters(context.Background(), stA.Pool()) > 0
		}
	}, "B to end or wait for its turn")
	close(resume)
	require.NoError(t, testwait.Recv(t, aDone, 20*time.Second, "A's Synchronize to end"))
	if !bEnded {
		bErr = testwait.Recv(t, bDone, 20*time.Second, "B's Synchronize to end")
	}
	require.NoError(t, bErr)
	require.True(t, e.gone(kindDocument, tr.report), "no task indexes it: it is removed")
	require.True(t, e.gone(kindFolder, tr.home))
}
