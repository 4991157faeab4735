package httpfetch

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/store"
)

// A task's mark on another task's record survives a crash of the process
// during that task's run (kill -9): the mark, made while B's run was under
// way, is undone by B's write of its record as it read it, and B's run,
// killed before it ends, never marks it again. The restarted process's
// next run of B must deliver the page again. Before, the marks to make
// again were kept in memory only: after the restart B's record said the
// target held /x, which A's Delete had removed, a 304 kept it so, and /x
// was missing from the index until it changed.
func TestDeleteByOneTaskSurvivesACrashDuringAnotherTasksRun(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":  htmlPage("Home", "/x"),
		"/b": htmlPage("B root", "/x", "/z", "/w"),
		"/x": htmlPage("X"),
		"/z": htmlPage("Z"),
		"/w": htmlPage("W"),
	})
	// The embedded durable store (the memory store does not outlive
	// the process); the restarted process is a repository of its own
	// on it, where the writes the dead one made are.
	st, err := store.Open(store.Config{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	b := setup(t, "[FetchTasks]\n0=A\n1=B\n[A]\nUrl="+s.URL+"/\n[B]\nUrl="+s.URL+"/b\n", setupOpts{flushInterval: time.Hour, store: st})
	b.sync(t, "TaskSections", "B")
	b.sync(t, "TaskSections", "A")
	x := s.URL + "/x"

	// B's run reads its record of /x (304) and delivers /z; it then
	// removes /w, no longer linked, and the process dies during that
	// removal, before the run ends.
	s.set("/z", htmlPage("Z, changed"))
	s.set("/b", htmlPage("B root", "/x", "/z"))
	dead, removing := make(chan struct{}), make(chan struct{}, 1)
	b.target.mu.Lock()
	b.target.removeGate, b.target.removing = dead, removing
	b.target.mu.Unlock()
	release, ended := holdingBUntilEnd(t, b)
	b.target.mu.Lock()
	b.target.removeGate = nil // the Delete's removal goes through
	b.target.mu.Unlock()
	b.run(t, fetch.ActionDelete, params("Identifiers", EncodeIdentifier("A", x)))
	require.False(t, b.target.holds(x))
	b.target.mu.Lock()
	b.target.removeGate = dead // B's removal of /w never returns
	b.target.mu.Unlock()
	release()
	testwait.Recv(t, removing, 20*time.Second, "B removing /w, its batch with /x written")
	b.target.mu.Lock()
	b.target.removeGate = nil
	b.target.mu.Unlock()

	// The restarted process: a repository of its own on the same store.
	repo, err := New(Options{Config: b.cfg, Store: b.st, Logger: quietLogger(), Target: b.target, FlushInterval: time.Hour})
	require.NoError(t, err)
	tasks, err := repo.Validate(fetch.ActionSynchronize, params("TaskSections", "B"))
	require.NoError(t, err)
	_, err = repo.Run(context.Background(), fetch.NewJob("token2", fetch.ActionSynchronize, params("TaskSections", "B"), tasks))
	require.NoError(t, err)
	require.True(t, b.target.holds(x), "B delivered /x again")
	close(dead)                                                                   // the old process's goroutines may end
	testwait.Recv(t, ended, 20*time.Second, "the dead process's run of B to end") // what it ends with does not matter
}
