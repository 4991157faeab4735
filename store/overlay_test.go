package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// TestCheckpointReusesOverlay checks that a queue's overlay, once folded,
// becomes its next active one, emptied (no mutation of the folded window
// is left in it to answer reads or validation), and that the store reads
// the same through it.
func TestCheckpointReusesOverlay(t *testing.T) {
	t.Parallel()
	st, err := Open(Config{Dir: t.TempDir(), CheckpointInterval: time.Hour})
	require.NoError(t, err)
	defer func() { _ = st.Close() }()
	s := st.(*boltStore)
	const queued = messages.State_STATE_QUEUED
	put := func(id string, seq uint64) ActionMutation { return ActionMutation{Put: rec(id, seq, queued)} }

	require.NoError(t, s.ApplyActions("fetch", []ActionMutation{put("a", 1), put("b", 2), put("c", 3)}))
	first := s.active["fetch"]
	require.NotNil(t, first)
	require.NoError(t, s.checkpoint())
	require.Same(t, first, s.spare["fetch"], "the folded overlay is kept for the next window")
	require.Empty(t, first.order)
	require.Empty(t, first.latest)
	require.Empty(t, first.seqs)

	// The next window takes it: a's seq moves, b goes, d is new on b's seq.
	require.NoError(t, s.ApplyActions("fetch", []ActionMutation{put("a", 4), {Delete: "b"}, put("d", 2)}))
	require.Same(t, first, s.active["fetch"])
	require.Nil(t, s.spare["fetch"])
	require.Len(t, first.order, 3)
	_, ok := first.get("c")
	require.False(t, ok, "c was folded: bbolt answers for it")
	// c still holds seq 3 (in bbolt), a holds 4 (in the overlay).
	require.ErrorIs(t, s.ApplyActions("fetch", []ActionMutation{put("e", 3)}), ErrInvalid)
	require.ErrorIs(t, s.ApplyActions("fetch", []ActionMutation{put("e", 4)}), ErrInvalid)

	want := []string{"d", "c", "a"} // in seq order
	check := func() {
		t.Helper()
		var got []string
		require.NoError(t, s.LoadActions("fetch", func(a *messages.StoredAction) error {
			got = append(got, a.Id)
			return nil
		}))
		require.Equal(t, want, got)
	}
	check()
	require.NoError(t, s.checkpoint())
	check()
}
