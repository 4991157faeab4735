package queue

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// A cluster's QueueStatus counts the actions holding a worker thread
// (running) and those waiting for one or for their Resume (waiting), as a
// single node's does: the metrics' running and pending gauges.
func TestClusterQueueStatusCountsRunningAndWaiting(t *testing.T) {
	ctx := context.Background()
	db, _ := soloStore(t)
	q, _, _ := startSoloCluster(t, db)

	run, err := q.Submit(ctx, &messages.ActionSpec{FetchAction: "SYNCHRONIZE",
		Params: messages.Params{{Name: "Mode", Value: "untilstop"}}})
	require.NoError(t, err)
	waitState(t, q, run, messages.State_STATE_PROCESSING)
	_, err = q.Pause(ctx)
	require.NoError(t, err)
	_, err = q.Submit(ctx, &messages.ActionSpec{FetchAction: "SYNCHRONIZE"})
	require.NoError(t, err)

	qs, err := q.QueueStatus(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, qs.Running, "the running action, paused with the queue")
	require.EqualValues(t, 1, qs.Waiting, "the queued one")
}
