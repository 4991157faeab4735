package httpfetch

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/store/pgstore"
)

// Two tasks that let a shared page go in runs at the same time on two
// nodes of a cluster (two processes on one shared store): the page is
// removed, by the second. The repository's turn (sharedMu) is a mutex of
// one process: task A, on one node, found B's record holding the page and
// kept it; B, on the other node, looked before A wrote its record
// forgotten, found A's holding it and kept it too. The page stayed in the
// index with no task left to remove it. The test holds A between its look
// and its write (keepSharedChecked) while B runs.
func TestSharedPageLetGoByTasksOnTwoNodesIsRemoved(t *testing.T) {
	srv := pgtest.StartT(t, pgtest.Options{})
	url := srv.DatabaseT(t)
	open := func() *pgstore.Store {
		s, err := pgstore.Open(context.Background(), pgstore.Config{URL: url})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	}
	s := newSite(t, map[string]*page{
		"/":  htmlPage("Home", "/x"),
		"/b": htmlPage("B root", "/x"),
		"/x": htmlPage("X"),
	})
	cfg := "[FetchTasks]\n0=A\n1=B\n[A]\nUrl=" + s.URL + "/\n[B]\nUrl=" + s.URL + "/b\n"
	nodeA := setup(t, cfg, setupOpts{store: open()})
	nodeB := setup(t, cfg, setupOpts{store: open()})
	nodeB.repo.target = nodeA.target // one index
	nodeA.sync(t, "TaskSections", "A")
	nodeB.sync(t, "TaskSections", "B")
	x := s.URL + "/x"
	require.True(t, nodeA.target.holds(x))

	s.set("/", htmlPage("Home"))
	s.set("/b", htmlPage("B root"))
	checked, resume := make(chan struct{}), make(chan struct{})
	keepSharedChecked = func(task string) {
		if task == "A" {
			close(checked)
			<-resume
		}
	}
	t.Cleanup(func() { keepSharedChecked = nil })
	aDone := syncInBackground(t, nodeA, "A")
	testwait.Recv(t, checked, 20*time.Second, "A kept /x (B's record holds it)")
	bDone := syncInBackground(t, nodeB, "B")
	// B either ends (nothing orders it after A) or waits for its turn.
	pool := nodeA.st.(*pgstore.Store).Pool()
	testwait.For(t, 20*time.Second, func() bool {
		select {
		case <-bDone:
			return true
		default:
			return pgtest.AdvisoryWaiters(context.Background(), pool) > 0
		}
	}, "B to end or wait for its turn")
	close(resume)
	testwait.Recv(t, aDone, 20*time.Second, "A's Synchronize to end")
	testwait.Recv(t, bDone, 20*time.Second, "B's Synchronize to end")
	require.False(t, nodeA.target.holds(x), "no task reaches /x: it is removed")
}
