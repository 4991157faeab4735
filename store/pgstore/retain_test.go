package pgstore

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// Retention leaves an ended action that still holds tasks (its owner has
// not written their release yet): removed with its hold in place, nothing
// would free the hold, and every later action of those tasks would wait,
// never claimed.
func TestRetainKeepsAnActionThatHoldsTasks(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a")
	a := ns[0]
	x, y := newAction("x", 0), newAction("y", 0)
	x.Exclusive, y.Exclusive = []string{"T"}, []string{"T"}
	_, err := a.Submit(ctx, "fetch", "a", "a:1", []NewAction{x}, 100)
	require.NoError(t, err)
	got, err := a.Claim(ctx, "fetch", "a", "a:1", 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
	// It ends; its worker has not exited yet (no release).
	rec := got[0].Record
	rec.Status.State, rec.Status.Running, rec.Status.EndedUnixMs = messages.State_STATE_FINISHED, false, 2000
	fenced, err := a.WriteOwned(ctx, "fetch", "a", []OwnedWrite{{Epoch: got[0].Epoch, Record: rec}})
	require.NoError(t, err)
	require.Empty(t, fenced)
	removed, err := a.Retain(ctx, "fetch", 0, 0)
	require.NoError(t, err)
	require.Empty(t, removed, "x still holds T")

	// Its worker exits: the release is written, and x goes at the next pass.
	fenced, err = a.WriteOwned(ctx, "fetch", "a", []OwnedWrite{{Epoch: got[0].Epoch, Record: rec, Release: true}})
	require.NoError(t, err)
	require.Empty(t, fenced)
	removed, err = a.Retain(ctx, "fetch", 0, 0)
	require.NoError(t, err)
	require.Equal(t, []Removed{{ID: "x", Owner: "a", OwnerAddr: "a:1"}}, removed)

	_, err = a.Submit(ctx, "fetch", "a", "a:1", []NewAction{y}, 100)
	require.NoError(t, err)
	got, err = a.Claim(ctx, "fetch", "a", "a:1", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"y"}, claimIDs(got), "T is free")
}
