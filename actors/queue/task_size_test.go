package queue

import (
	"testing"
	"unsafe"

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
