package restsync

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
)

// A task whose sync a Stop interrupts keeps the progress it had reached:
// its stage does not read Finished at 100% (docs/protocol.md, Progress:
// the percentages are those reached when the action ended, and only
// stages that had finished read Finished), and the tasks after it are
// not started.
func TestSyncTasksStoppedTaskIsNotFinished(t *testing.T) {
	job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"A", "B"})
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stop := errors.New("stop requested")
	var ran []string
	err := SyncTasks(ctx, job, []string{"A", "B"}, func(task string, progress func(float64, string)) error {
		ran = append(ran, task)
		progress(40, "room 1")
		cancel(stop)
		return context.Cause(ctx)
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, []string{"A"}, ran)
	p := job.Progress()
	require.NotNil(t, p)
	require.Len(t, p.Stages, 2)
	require.Equal(t, "A", p.Stages[0].Name)
	require.NotEqual(t, messages.State_STATE_FINISHED, p.Stages[0].State, "a stopped task's stage read Finished")
	require.InDelta(t, 40, p.Stages[0].Percent, 0.001)
	require.InDelta(t, 20, p.Percent, 0.001)
}
