package queue

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestTaskPIDOf: the address a request by token is sent to is the one
// the task actor was spawned under (taskPID of the id's text).
func TestTaskPIDOf(t *testing.T) {
	b := setup(t, nil)
	for range 100 {
		id := uuid.Must(uuid.NewV7())
		require.Equal(t, b.q.taskPID(id.String()), b.q.taskPIDOf(id))
	}
	require.Equal(t, b.q.taskPID(uuid.Nil.String()), b.q.taskPIDOf(uuid.Nil))
}
