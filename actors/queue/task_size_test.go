package queue

import (
	"context"
	"testing"
	"unsafe"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// A task actor (one per queued action) stays in the 128-byte size class:
// what a run leaves (error, counts, failures, results, progress) is in its
// outcome, allocated only when there is one.
func TestTaskSize(t *testing.T) {
	require.LessOrEqual(t, unsafe.Sizeof(task{}), uintptr(128))
}

// A queued action's task has no outcome, and its status reads as before:
// no error, no results, a zero count per task; a restored status with an
// error, counts and failures keeps them.
func TestTaskOutcomeOnlyWhenThereIsOne(t *testing.T) {
	sh := &shared{}
	spec := &messages.ActionSpec{FetchAction: "SYNCHRONIZE", Tasks: []string{"A", "B"}}
	q := newTaskOf(sh, nil, [16]byte{1}, "tok", spec, &messages.ActionStatus{State: messages.State_STATE_QUEUED, Seq: 3})
	require.Nil(t, q.out)
	st := q.status()
	require.Empty(t, st.Error)
	require.Nil(t, st.Results)
	require.Len(t, st.Counts, 2)
	require.Equal(t, "B", st.Counts[1].Task)
	require.Zero(t, noOutcome)

	counts := []*messages.DocumentCount{{Task: "A", Added: 4}}
	r := newTaskOf(sh, nil, [16]byte{2}, "tok2", spec, &messages.ActionStatus{State: messages.State_STATE_ERROR,
		Error: "boom", Counts: counts, Failures: []*messages.Failure{{Task: "A", Url: "u", Reason: "r"}}, FailuresTotal: 7})
	require.NotNil(t, r.out)
	st = r.status()
	require.Equal(t, "boom", st.Error)
	require.Equal(t, counts, st.Counts)
	require.EqualValues(t, 7, st.FailuresTotal)
	require.Len(t, st.Failures, 1)
}

// An action's entry and task actor, allocated together (spawnAs), stay in
// the 240-byte size class: 112 + 128 bytes, as they were apart.
func TestTaskEntrySize(t *testing.T) {
	require.LessOrEqual(t, unsafe.Sizeof(taskEntry{}), uintptr(240))
}

// A task given no token (an action submitted to the in-memory queue) makes
// its token from its id, the queue's name and the token host and port, as
// the QueueManager made the one it handed out, when a status first needs
// it, and keeps it from then on; a task given one (restored, cluster)
// keeps it.
func TestTaskMakesItsTokenWhenItKeepsNone(t *testing.T) {
	sh := &shared{tokenHost: "10.0.0.7", tokenPort: 7000, queue: "FETCH"}
	spec := &messages.ActionSpec{FetchAction: "SYNCHRONIZE", Tasks: []string{"A"}}
	id := uuid.UUID{1, 2, 3}
	lazy := newTaskOf(sh, nil, id, "", spec, &messages.ActionStatus{State: messages.State_STATE_QUEUED})
	require.Empty(t, lazy.token)
	want := messages.NewToken("10.0.0.7", 7000, "fetch", id)
	require.Equal(t, want, lazy.status().Token)
	require.Equal(t, want, lazy.token, "kept once a status needed it")
	require.Equal(t, want, lazy.status().Token)
	kept := newTaskOf(sh, nil, id, "given", spec, &messages.ActionStatus{State: messages.State_STATE_QUEUED})
	require.Equal(t, "given", kept.status().Token)
}

// The in-memory queue's tokens read back the same everywhere although its
// task actors keep none: Submit's, a queued action's status, the job's,
// the finished action's status and list.
func TestInMemoryTokensReadBack(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.TokenHost = "192.0.2.1"; c.TokenPort = 9010; c.Name = "Fetch" })
	ran := make(chan string, 1)
	b.repo.OnRun = func(tok string) { ran <- tok }
	tok := submitPausedToken(t, b)
	_, err := b.q.Resume(context.Background())
	require.NoError(t, err)
	require.Equal(t, tok, <-ran, "the job's token")
	require.Equal(t, tok, b.waitState(t, tok, messages.State_STATE_FINISHED).Token)
	list, err := b.q.List(context.Background(), &messages.ListActions{})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, tok, list[0].Token)
}

// An idle task mailbox (one per queued action) is 64 bytes: its queues
// are made only when a message has to wait.
func TestTaskBoxSize(t *testing.T) {
	require.LessOrEqual(t, unsafe.Sizeof(taskBox{}), uintptr(64))
}

// A durable queue's task actors keep no token either (answer spawns them
// without one): its tokens read back the same from the submission, a
// queued action's status, the store's record, the job, the finished
// action's status and list, and after a crash and restart.
func TestDurableTokensReadBack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mutate := func(c *Config) { c.TokenHost = "192.0.2.1"; c.TokenPort = 9010 }
	d := openDurable(t, dir, nil, mutate)
	b := d.bundle()
	ran := make(chan string, 1)
	b.repo.OnRun = func(tok string) { ran <- tok }
	tok := submitPausedToken(t, b)
	queued := b.submit(t, "instant", 0)
	d.waitDurable(t, tok, func(*messages.ActionStatus) bool { return true })
	_, err := b.q.Cancel(context.Background(), queued) // a change the task records with its token
	require.NoError(t, err)
	d.waitDurable(t, queued, func(s *messages.ActionStatus) bool { return s.State == messages.State_STATE_CANCELLED })
	_, err = b.q.Resume(context.Background())
	require.NoError(t, err)
	require.Equal(t, tok, <-ran, "the job's token")
	require.Equal(t, tok, b.waitState(t, tok, messages.State_STATE_FINISHED).Token)
	d.waitDurable(t, tok, func(s *messages.ActionStatus) bool { return s.State == messages.State_STATE_FINISHED })
	list, err := b.q.List(context.Background(), &messages.ListActions{})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{tok, queued}, []string{list[0].Token, list[1].Token})
	d.crash(t)

	d2 := openDurable(t, dir, nil, mutate)
	defer d2.shutdown(t)
	for _, want := range []string{tok, queued} {
		st, err := d2.q.Status(context.Background(), want)
		require.NoError(t, err)
		require.Equal(t, want, st.Token)
	}
}

// submitPausedToken pauses the queue, submits one action and checks that
// its token has the form the tests configure (192.0.2.1:9010, FETCH) and
// reads back the same from the queued action's status.
func submitPausedToken(t *testing.T, b *bundle) string {
	t.Helper()
	_, err := b.q.Pause(context.Background())
	require.NoError(t, err)
	tok := b.submit(t, "instant", 0)
	_, id, err := messages.ParseToken(tok)
	require.NoError(t, err)
	require.Equal(t, messages.NewToken("192.0.2.1", 9010, "FETCH", id), tok)
	st, err := b.q.Status(context.Background(), tok)
	require.NoError(t, err)
	require.Equal(t, tok, st.Token)
	return tok
}
