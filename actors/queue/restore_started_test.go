package queue

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// An action that was running when the process died, and that a restart
// queues again (or keeps Paused, when it had been paused while running),
// has no worker: until it starts again its status shows no start time,
// as any action that waits does (docs/protocol.md, "Times that have not
// happened"), not the start of the run the crash ended, with
// time_processing counting up from it while it waits. On main it kept
// the old start: GetStatus showed a Queued (or Paused) action
// "processing" for as long as it waited, Sort-By=start-time ordered it
// among the running ones, and a Cancel of it showed a process_start_time
// although it never ran again.
func TestRestoredInterruptedActionShowsNoStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openDurable(t, dir, nil, func(c *Config) { c.MaximumThreads = 2 })
	b := d.bundle()
	queued := b.submit(t, "block", 0)
	paused := b.submit(t, "block", 0)
	b.waitState(t, queued, messages.State_STATE_PROCESSING)
	b.waitState(t, paused, messages.State_STATE_PROCESSING)
	d.waitDurable(t, queued, started)
	d.waitDurable(t, paused, started)
	_, err := b.q.PauseAction(context.Background(), paused)
	require.NoError(t, err)
	// Waiting for a thread; it takes the only one after the restart
	// (priority 9), so that the other two wait.
	first := b.submit(t, "block", 9)
	d.crash(t)

	d2 := openDurable(t, dir, nil, func(c *Config) { c.MaximumThreads = 1 })
	defer d2.shutdown(t)
	d2.bundle().waitState(t, first, messages.State_STATE_PROCESSING)
	for tok, want := range map[string]messages.State{queued: messages.State_STATE_QUEUED, paused: messages.State_STATE_PAUSED} {
		s, err := d2.q.Status(context.Background(), tok)
		require.NoError(t, err)
		require.Equal(t, want, s.State)
		require.EqualValues(t, 1, s.Restarts, "%v", want)
		require.Zero(t, s.StartedUnixMs, "%v after the restart: it has not started again", want)
		require.Zero(t, s.EndedUnixMs)
	}
	list, err := d2.q.List(context.Background(), &messages.ListActions{SortBy: messages.SortBy_SORT_BY_START_TIME,
		States: []messages.State{messages.State_STATE_QUEUED, messages.State_STATE_PAUSED}})
	require.NoError(t, err)
	require.Len(t, list, 2)
	for _, s := range list {
		require.Zero(t, s.StartedUnixMs, "listed: %v", s.State)
	}
	// Cancelled before it started again: no start time either.
	r, err := d2.q.Cancel(context.Background(), queued)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_CANCELLED, r.Status.State)
	require.Zero(t, r.Status.StartedUnixMs)

	// Once it runs again, it has the start of that run.
	_, err = d2.q.ResumeAction(context.Background(), paused)
	require.NoError(t, err)
	d2.repo.Release(first)
	s := d2.bundle().waitState(t, paused, messages.State_STATE_PROCESSING)
	require.NotZero(t, s.StartedUnixMs)
}

// A cluster node that takes over a departed node's actions queues again
// the ones that ran there (or keeps one paused while it ran Paused), as a
// restart does in process, and they show no start until they start again
// (the record it writes gives the row's started_ms: pgstore's Adopt and
// Reown write it from the record). On main they kept the start of the run
// that ended with the node: a Queued action with a process_start_time and
// a time_processing counting up (the differential test's cluster side
// showed one once a loaded node's lease lapsed).
func TestClusterInterruptedActionShowsNoStart(t *testing.T) {
	t.Parallel()
	m := &cmanager{cfg: Config{OnRestart: RestartRerun}, sh: &shared{now: time.Now}}
	for _, was := range []messages.State{messages.State_STATE_PROCESSING, messages.State_STATE_PAUSED} {
		a := &messages.StoredAction{Id: "x", Status: &messages.ActionStatus{State: was, Running: true,
			QueuedUnixMs: 1_000, StartedUnixMs: 2_000}}
		m.interrupted(a)
		require.False(t, a.Status.Running)
		require.EqualValues(t, 1, a.Status.Restarts)
		require.Zero(t, a.Status.StartedUnixMs, "%v: it waits again", was)
		require.EqualValues(t, 1_000, a.Status.QueuedUnixMs)
	}
	m.cfg.OnRestart = RestartError
	a := &messages.StoredAction{Id: "x", Status: &messages.ActionStatus{State: messages.State_STATE_PROCESSING, Running: true,
		QueuedUnixMs: 1_000, StartedUnixMs: 2_000}}
	m.interrupted(a)
	require.Equal(t, messages.State_STATE_ERROR, a.Status.State)
	require.EqualValues(t, 2_000, a.Status.StartedUnixMs, "an action that ends keeps the start of the run it ended with")
}
