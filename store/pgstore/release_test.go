package pgstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/messages"
)

// A node leaving cleanly hands its running actions back however many
// actions it owns. The release was one transaction that un-owned every
// one of them, its ended ones included (100,000 with MaximumFinishedActions
// raised), within the queue's store deadline (5 s): past it the release
// failed, the node left without handing anything back, and its running
// actions were taken over as a crashed node's (ended as Error with
// ProcessingOnRestart=Error, not queued again as a clean stop promises).
// Here each row un-owned costs 1.5 ms (a trigger), so that 6,000 of them
// cost what 100,000 may cost for real. The running actions go first, with
// the node declared dead, in one transaction; the others after, a batch at
// a time, and those the deadline leaves are taken over as a departed
// node's.
func TestReleaseOfManyActionsHandsTheRunningOnesBack(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "leaving", "staying")
	leaving, staying := ns[0], ns[1]
	const ended = 6000
	acts := make([]NewAction, ended+1)
	for i := range acts {
		acts[i] = newAction(fmt.Sprintf("a%05d", i), 0)
	}
	acts[ended].Record.Spec.Priority, acts[ended].Record.Status.Priority = 1, 1
	_, err := leaving.Submit(ctx, "fetch", "leaving", "leaving:1", acts, len(acts))
	require.NoError(t, err)
	got, err := leaving.Claim(ctx, "fetch", "leaving", "leaving:1", 1)
	require.NoError(t, err)
	require.Equal(t, []string{acts[ended].Record.Id}, claimIDs(got))
	pool := leaving.Pool()
	_, err = pool.Exec(ctx, `UPDATE connector_actions SET state = 4, ended_ms = 2000 WHERE owner = 'leaving' AND NOT running`)
	require.NoError(t, err)
	pgtest.SlowOwnerChanges(t, pool, "leaving")

	c, cancel := context.WithTimeout(ctx, 5*time.Second) // the queue's
	defer cancel()
	require.NoError(t, leaving.Release(c, "fetch", "leaving", func(a *messages.StoredAction) {
		a.Status.State, a.Status.Running = messages.State_STATE_QUEUED, false
		a.Status.Restarts++
	}))
	alive, err := staying.NodeAlive(ctx, "leaving")
	require.NoError(t, err)
	require.False(t, alive, "the node that left is declared dead")
	row, ok, err := staying.Action(ctx, "fetch", acts[ended].Record.Id)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, messages.State_STATE_QUEUED, row.Record.Status.State, "its running action is queued again")
	require.False(t, row.Record.Status.Running)
	require.EqualValues(t, 1, row.Record.Status.Restarts)
	require.Empty(t, row.Owner)

	// What it still owns is a departed node's: taken over in batches.
	orphans, _, err := staying.Orphaned(ctx, "fetch", []string{"staying"}, 0)
	require.NoError(t, err)
	for range 100 {
		adopted, err := staying.Adopt(ctx, "fetch", "staying", "staying:1", orphans, 1000, func(*messages.StoredAction) {})
		require.NoError(t, err)
		if len(adopted) < 1000 {
			break
		}
	}
	var left int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM connector_actions WHERE owner <> 'staying'`).Scan(&left))
	require.Zero(t, left)
}
