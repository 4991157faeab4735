package pgstore

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Resubmit settles submissions whose commit's outcome is not known: one
// the store has (the commit landed; claimed since by another node) is
// found where it is, not queued twice; one it lacks is queued now, as
// many as MaxWaiting lets wait; and what it returns is what the store
// holds.
func TestResubmitFindsOrQueuesEachAction(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a", "b")
	a, b := ns[0], ns[1]
	seqs, err := a.Submit(ctx, "q", "a", "a:1", []NewAction{newAction("landed", 0)}, 10)
	require.NoError(t, err)
	claimed, err := b.Claim(ctx, "q", "b", "b:1", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"landed"}, claimIDs(claimed))

	got, err := a.Resubmit(ctx, "q", "a", "a:1", []NewAction{newAction("landed", 0), newAction("lost", 0), newAction("full", 0)}, 1)
	require.NoError(t, err)
	require.Equal(t, Resubmitted{Seq: seqs[0], Owner: "b", Epoch: claimed[0].Epoch}, got[0])
	require.NotZero(t, got[1].Seq)
	require.Equal(t, "a", got[1].Owner)
	require.EqualValues(t, 1, got[1].Epoch)
	require.Zero(t, got[2].Seq, "MaxWaiting=1: the queue is full")

	var n int
	require.NoError(t, a.pool.QueryRow(ctx, `SELECT count(*) FROM connector_actions WHERE queue = 'q'`).Scan(&n))
	require.Equal(t, 2, n)

	// Asked again (its own answer lost): the same.
	again, err := a.Resubmit(ctx, "q", "a", "a:1", []NewAction{newAction("lost", 0)}, 1)
	require.NoError(t, err)
	require.Equal(t, got[1], again[0])
}
