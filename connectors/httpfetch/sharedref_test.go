package httpfetch

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testwait"
)

// twoTasksSharingAPage is a site of which task A crawls / and task B /b,
// both linking to x, after a Synchronize of each.
func twoTasksSharingAPage(t *testing.T) (b *bundle, s *site, x string) {
	t.Helper()
	b, s = twoTasks(t, map[string]*page{
		"/":  htmlPage("Home", "/x"),
		"/b": htmlPage("B root", "/x"),
		"/x": htmlPage("X"),
	}, setupOpts{}, "A", "B")
	return b, s, s.URL + "/x"
}

// twoTasks is a site of pages of which task A crawls / and task B /b, set
// up with o, after a Synchronize of each task of order, in that order.
func twoTasks(t *testing.T, pages map[string]*page, o setupOpts, order ...string) (*bundle, *site) {
	t.Helper()
	s := newSite(t, pages)
	b := setup(t, "[FetchTasks]\n0=A\n1=B\n[A]\nUrl="+s.URL+"/\n[B]\nUrl="+s.URL+"/b\n", o)
	for _, task := range order {
		b.sync(t, "TaskSections", task)
	}
	return b, s
}

// Two tasks deliver the same page under one reference (its URL) to the
// one ingestion target. When task A no longer reaches the page (its home
// page stopped linking to it) and removes it, task B still indexes it:
// the page must stay in the target, or come back with B's next run.
// Before, A's removal took B's document out of the index, and B's next
// run, answered 304, counted the page unchanged: it stayed missing for
// as long as the page did not change.
func TestRemovalByOneTaskKeepsAnotherTasksPage(t *testing.T) {
	t.Parallel()
	b, s, x := twoTasksSharingAPage(t)
	require.True(t, b.target.holds(x))

	s.set("/", htmlPage("Home"))
	job := b.sync(t, "TaskSections", "A")
	require.NotContains(t, b.records(t, "A"), x, "A forgot the page")
	require.True(t, b.target.holds(x), "B's page stays in the index")
	require.Equal(t, cnt{Seen: 1, Updated: 1, Deleted: 1, IngestUpdated: 1}, countsOf(job, "A"))

	// B delivers its own document again (the one in the target was A's,
	// whose identifier names A), then its runs are as before.
	b.target.reset()
	b.sync(t, "TaskSections", "B")
	require.True(t, b.target.holds(x), "B's page is in the index")
	id, err := DecodeIdentifier(fieldValue(b.target.doc(x), FieldIdentifier))
	require.NoError(t, err)
	require.Equal(t, "B", id.Task)
	b.target.reset()
	require.Equal(t, cnt{Seen: 2, Unchanged: 2}, countsOf(b.sync(t, "TaskSections", "B"), "B"))

	// Once no task has it, it is removed.
	s.set("/b", htmlPage("B root"))
	b.sync(t, "TaskSections", "B")
	require.False(t, b.target.holds(x))
}

// Delete of task A's page removes the document both tasks delivered
// under its URL: task B's next Synchronize delivers it again (before, its
// record still said the target held it, a 304 kept it so, and the page
// stayed out of the index), as A's does.
func TestDeleteByOneTaskIsUndoneByAnotherTasksSync(t *testing.T) {
	t.Parallel()
	b, _, x := twoTasksSharingAPage(t)
	b.run(t, fetch.ActionDelete, params("Identifiers", EncodeIdentifier("A", x)))
	require.False(t, b.target.holds(x))
	b.sync(t, "TaskSections", "B")
	require.True(t, b.target.holds(x), "B delivered it again")
}

// Two tasks that let a shared page go in runs at the same time: the page
// is removed, by the second. Before, A kept it (B's record said held)
// and, until A's record was written at the end of its batch, B found A's
// record holding it too and kept it as well: the page stayed in the index
// with no task left to remove it. A's removal of another page is held
// (the target's removeGate) while B runs.
func TestSharedPageLetGoByTwoTasksAtOnceIsRemoved(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":  htmlPage("Home", "/x", "/y"),
		"/b": htmlPage("B root", "/x"),
		"/x": htmlPage("X"),
		"/y": htmlPage("Y"),
	})
	b := setup(t, "[FetchTasks]\n0=A\n1=B\n[A]\nUrl="+s.URL+"/\n[B]\nUrl="+s.URL+"/b\n")
	b.sync(t, "TaskSections", "A")
	b.sync(t, "TaskSections", "B")
	x := s.URL + "/x"
	require.True(t, b.target.holds(x))

	s.set("/", htmlPage("Home"))
	s.set("/b", htmlPage("B root"))
	gate, removing := make(chan struct{}), make(chan struct{}, 1)
	b.target.mu.Lock()
	b.target.removeGate, b.target.removing = gate, removing
	b.target.mu.Unlock()
	done := syncInBackground(t, b, "A")
	testwait.Recv(t, removing, 20*time.Second, "A removing /y, having let /x go")
	b.target.mu.Lock()
	b.target.removeGate = nil
	b.target.mu.Unlock()
	b.sync(t, "TaskSections", "B") // B lets /x go meanwhile
	close(gate)
	testwait.Recv(t, done, 20*time.Second, "A's Synchronize to end")
	require.False(t, b.target.holds(x), "no task reaches /x: it is removed")
}

// holdingB starts a Synchronize of task B (of a configuration of tasks A,
// crawling /, and B, crawling /b, one batch per run) whose delivery is
// held, once it has read its records, until the function returned is
// called; that function waits for B's run to end.
func holdingB(t *testing.T, b *bundle) (release func()) {
	t.Helper()
	open, done := holdingBUntilEnd(t, b)
	return func() {
		open()
		require.NoError(t, testwait.Recv(t, done, 20*time.Second, "B's Synchronize to end"))
	}
}

// holdingBUntilEnd is holdingB whose release does not wait for B's run
// to end: done receives its outcome when it has.
func holdingBUntilEnd(t *testing.T, b *bundle) (release func(), done <-chan error) {
	t.Helper()
	gate, adding := make(chan struct{}), make(chan struct{}, 1)
	b.target.mu.Lock()
	b.target.gate, b.target.adding = gate, adding
	b.target.mu.Unlock()
	out := make(chan error, 1)
	go func() {
		tasks, err := b.repo.Validate(fetch.ActionSynchronize, params("TaskSections", "B"))
		if err == nil {
			_, err = b.repo.Run(context.Background(), fetch.NewJob("token", fetch.ActionSynchronize, params("TaskSections", "B"), tasks))
		}
		out <- err
	}()
	testwait.Recv(t, adding, 20*time.Second, "B delivering, having read its records")
	b.target.mu.Lock()
	b.target.gate = nil
	b.target.mu.Unlock()
	return func() { close(gate) }, out
}

// twoTasksAndZ is a site of which task A crawls / and task B /b, both
// linking to /x, B also to /z, after a Synchronize of B and then A (the
// documents in the index are A's), one batch per run (no timed flush).
func twoTasksAndZ(t *testing.T) (b *bundle, s *site, x string) {
	t.Helper()
	b, s = twoTasks(t, map[string]*page{
		"/":  htmlPage("Home", "/x"),
		"/b": htmlPage("B root", "/x", "/z"),
		"/x": htmlPage("X"),
		"/z": htmlPage("Z"),
	}, setupOpts{flushInterval: time.Hour}, "B", "A")
	return b, s, s.URL + "/x"
}

// A task's mark on another task's record survives that task's run under
// way: A lets /x go while B's run, which read its record of /x (answered
// 304), is delivering /z (its record of /x is written with that batch).
// A keeps /x (B indexes it) and marks B's record Stale (the document in
// the index is A's: A delivered last); B's run then writes its record of
// /x as it read it, before the mark. Before, that write undid the mark:
// B's next runs were answered 304 and never delivered /x again, which
// stayed in the index as A's document (AUTN_IDENTIFIER naming A, which
// no longer has it).
func TestMarkByOneTaskSurvivesAnotherTasksRun(t *testing.T) {
	t.Parallel()
	b, s, x := twoTasksAndZ(t)
	taskOf := func() string {
		id, err := DecodeIdentifier(fieldValue(b.target.doc(x), FieldIdentifier))
		require.NoError(t, err)
		return id.Task
	}
	require.Equal(t, "A", taskOf())

	s.set("/", htmlPage("Home"))
	s.set("/z", htmlPage("Z, changed"))
	release := holdingB(t, b)
	b.sync(t, "TaskSections", "A") // A lets /x go meanwhile
	require.True(t, b.target.holds(x), "B indexes it: it stays")
	release()

	b.sync(t, "TaskSections", "B")
	require.Equal(t, "B", taskOf(), "B delivered its own document again")
}

// The same with a Delete of A's identifier of /x while B's run is under
// way: the Delete removes the document and marks B's record no longer
// delivered. Before, B's run wrote its record back as delivered, and
// /x was missing from the index for good (answered 304, unchanged).
func TestDeleteByOneTaskSurvivesAnotherTasksRun(t *testing.T) {
	t.Parallel()
	b, s, x := twoTasksAndZ(t)
	s.set("/z", htmlPage("Z, changed"))
	release := holdingB(t, b)
	b.run(t, fetch.ActionDelete, params("Identifiers", EncodeIdentifier("A", x)))
	require.False(t, b.target.holds(x))
	release()

	b.sync(t, "TaskSections", "B")
	require.True(t, b.target.holds(x), "B delivered it again")
}

// syncInBackground starts a Synchronize of task on b's repository; the
// channel is closed when it has ended (a failure fails the test).
func syncInBackground(t *testing.T, b *bundle, task string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tasks, err := b.repo.Validate(fetch.ActionSynchronize, params("TaskSections", task))
		if err == nil {
			_, err = b.repo.Run(context.Background(), fetch.NewJob("token", fetch.ActionSynchronize, params("TaskSections", task), tasks))
		}
		if err != nil {
			t.Errorf("%s's Synchronize: %v", task, err)
		}
	}()
	return done
}
