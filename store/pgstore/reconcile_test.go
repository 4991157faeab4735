package pgstore

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// Owners answers for the ids asked and for every action the node owns that
// has not ended; Reown takes again, at a new epoch, the actions a node
// owns at the epochs it names (a claim whose result it lost): the running
// one is put back by the policy and its task freed; one whose epoch moved
// meanwhile is left alone.
func TestOwnersAndReown(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a", "b")
	a, b := ns[0], ns[1]
	x, y, z := newAction("x", 9), newAction("y", 5), newAction("z", 0)
	x.Exclusive = []string{"T"}
	_, err := a.Submit(ctx, "fetch", "a", "a:1", []NewAction{x, y, z}, 100)
	require.NoError(t, err)
	// b claims x (its result lost, say): b owns it, running, holding T.
	got, err := b.Claim(ctx, "fetch", "b", "b:1", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"x"}, claimIDs(got))

	// a asks about x and y: x is b's now.
	os, err := a.Owners(ctx, "fetch", "a", []string{"x", "y", "gone"})
	require.NoError(t, err)
	byID := map[string]Ownership{}
	for _, o := range os {
		byID[o.ID] = o
	}
	require.Len(t, byID, 3, "x and y asked, and z a's own")
	require.Equal(t, Ownership{ID: "x", Owner: "b", Epoch: 2, State: messages.State_STATE_PROCESSING, Running: true}, byID["x"])
	require.Equal(t, "a", byID["y"].Owner)
	require.Equal(t, "a", byID["z"].Owner)

	// The ended actions a node holds are checked for their absence only.
	_, gone, _, err := a.OwnersPaused(ctx, "fetch", "a", nil, []string{"y", "gone", "x"})
	require.NoError(t, err)
	require.Equal(t, []string{"gone"}, gone)

	// b asks about nothing: it is told of x, which it owns.
	os, err = b.Owners(ctx, "fetch", "b", nil)
	require.NoError(t, err)
	require.Equal(t, []Ownership{{ID: "x", Owner: "b", Epoch: 2, State: messages.State_STATE_PROCESSING, Running: true}}, os)

	// At a stale epoch nothing is taken; at the epoch of record it is.
	rows, err := b.Reown(ctx, "fetch", "b", "b:2", []string{"x"}, []int64{1}, func(*messages.StoredAction) { t.Fatal("fixed at a stale epoch") })
	require.NoError(t, err)
	require.Empty(t, rows)
	rows, err = b.Reown(ctx, "fetch", "b", "b:2", []string{"x", "y"}, []int64{2, 1}, func(a *messages.StoredAction) {
		a.Status.State = messages.State_STATE_QUEUED
		a.Status.Restarts++
	})
	require.NoError(t, err)
	require.Len(t, rows, 1, "y is a's: not b's to take")
	require.Equal(t, "x", rows[0].Record.Id)
	require.EqualValues(t, 3, rows[0].Epoch)
	r, _, err := a.Action(ctx, "fetch", "x")
	require.NoError(t, err)
	require.Equal(t, "b", r.Owner)
	require.Equal(t, "b:2", r.OwnerAddr)
	require.EqualValues(t, 3, r.Epoch)
	require.Equal(t, messages.State_STATE_QUEUED, r.Record.Status.State)
	require.False(t, r.Record.Status.Running)
	require.EqualValues(t, 1, r.Record.Status.Restarts)

	// T is free again: x can be claimed, by anyone.
	again, err := a.Claim(ctx, "fetch", "a", "a:1", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"x"}, claimIDs(again))
}
