package fetch

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The pause gate: Checkpoint passes while the job runs, waits while it is
// paused, goes on at Resume, and returns the context's cause when the
// context ends, paused or not.
func TestJobCheckpointGate(t *testing.T) {
	t.Parallel()
	j := NewJob("tok", ActionSynchronize, nil, []string{"a"})
	ctx := context.Background()
	require.NoError(t, j.Checkpoint(ctx))
	require.False(t, j.Paused())

	j.Pause()
	j.Pause() // twice: one gate
	require.True(t, j.Paused())
	passed := make(chan error, 1)
	go func() { passed <- j.Checkpoint(ctx) }()
	select {
	case err := <-passed:
		t.Fatalf("Checkpoint passed a paused job: %v", err)
	case <-time.After(20 * time.Millisecond): // it waits (a pass would have come at once)
	}
	j.Resume()
	require.NoError(t, <-passed)
	require.False(t, j.Paused())
	j.Resume() // without a pause: harmless

	stop := errors.New("stop")
	cctx, cancel := context.WithCancelCause(ctx)
	j.Pause()
	go func() { passed <- j.Checkpoint(cctx) }()
	cancel(stop)
	require.ErrorIs(t, <-passed, stop, "a paused job's Checkpoint ends with the context, giving its cause")
	require.ErrorIs(t, j.Checkpoint(cctx), stop, "and so does one after the context ended")
}

// Counts are per task, case-insensitively, in output order, and a
// snapshot restores into fresh counters.
func TestJobCounts(t *testing.T) {
	t.Parallel()
	j := NewJob("tok", ActionSynchronize, nil, []string{"One", "two"})
	require.Nil(t, j.Counts("three"))
	j.Counts("ONE").Seen.Add(3)
	j.Counts("Two").Added.Add(2)
	snap := j.Snapshot()
	require.Equal(t, "ONE", snap[0].Task)
	require.Equal(t, uint64(3), snap[0].Seen)
	require.Equal(t, uint64(2), snap[1].Added)
	var c Counts
	c.Restore(snap[1])
	require.Equal(t, uint64(2), c.Added.Load())
}
