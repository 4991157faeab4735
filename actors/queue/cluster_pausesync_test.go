package queue

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// A node that missed the queue's Resume (its message lost, or overtaken by
// an older Pause from another node, or sent before the node was in the
// sender's member list) follows the store's flag within a lease: it
// claims again, and the action the Pause paused runs on. It stayed paused
// for good: it never claimed again, and its paused action never resumed,
// while QueueStatus said the queue was not paused. Likewise a missed
// Pause.
func TestClusterNodeFollowsTheStoresPauseFlag(t *testing.T) {
	ctx := context.Background()
	db, conn := soloStore(t)
	q, _, _ := startSoloClusterLease(t, db, time.Second)
	run, _ := submitRunning(t, q, messages.Params{{Name: "Mode", Value: "block"}})

	// A Pause this node never heard of.
	_, err := conn.Exec(ctx, `UPDATE connector_queues SET paused = true`)
	require.NoError(t, err)
	waitState(t, q, run, messages.State_STATE_PAUSED)

	// The queue paused here, then a Resume this node never heard of: the
	// paused action runs on, and the queued one runs.
	_, err = q.Pause(ctx)
	require.NoError(t, err)
	waiting, err := q.Submit(ctx, &messages.ActionSpec{FetchAction: "SYNCHRONIZE"})
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `UPDATE connector_queues SET paused = false`)
	require.NoError(t, err)
	waitState(t, q, run, messages.State_STATE_PROCESSING)
	waitState(t, q, waiting, messages.State_STATE_FINISHED)
}
