package store_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/storetest"
)

// TestValidateAgainstModel applies random batches (new actions above the
// bounds, moves, deletes, seqs of other actions, the same id twice) with
// checkpoints and reopens between them, and checks each answer and the
// store's content against a model: a batch is refused (ErrInvalid) when,
// applied in order, a put takes a seq another action holds.
func TestValidateAgainstModel(t *testing.T) {
	t.Parallel()
	const queued = messages.State_STATE_QUEUED
	dir := t.TempDir()
	open := func() store.Store {
		s, err := store.Open(store.Config{Dir: dir, CheckpointInterval: time.Hour})
		require.NoError(t, err)
		return s
	}
	s := open()
	defer func() { _ = s.Close() }()
	r := rand.New(rand.NewPCG(5, 6))
	model := map[string]uint64{} // id → seq
	next := 0                    // ids above every id so far
	for round := range 3000 {
		var muts []store.ActionMutation
		after := map[string]uint64{}
		for k, v := range model {
			after[k] = v
		}
		ok := true
		for range 1 + r.IntN(5) {
			var id string
			switch r.IntN(3) {
			case 0:
				next++
				id = fmt.Sprintf("id%06d", next)
			default:
				id = fmt.Sprintf("id%06d", r.IntN(next+1))
			}
			if r.IntN(5) == 0 {
				muts = append(muts, storetest.Del(id))
				delete(after, id)
				continue
			}
			seq := uint64(1 + r.IntN(2*len(model)+10))
			if r.IntN(2) == 0 {
				seq = uint64(1000000 + round*10 + r.IntN(10)) // above every seq
			}
			for other, os := range after {
				if os == seq && other != id {
					ok = false
				}
			}
			after[id] = seq
			muts = append(muts, storetest.Put(storetest.Record(id, seq, queued)))
		}
		err := s.ApplyActions("fetch", muts)
		if ok {
			require.NoError(t, err, "round %d", round)
			model = after
		} else {
			require.True(t, errors.Is(err, store.ErrInvalid), "round %d: %v, want ErrInvalid", round, err)
		}
		switch r.IntN(40) {
		case 0:
			require.NoError(t, store.Checkpoint(s))
		case 1:
			require.NoError(t, s.Close())
			s = open()
		}
	}
	got := map[string]uint64{}
	require.NoError(t, s.LoadActions("fetch", func(a *messages.StoredAction) error {
		got[a.Id] = a.Status.GetSeq()
		return nil
	}))
	require.Equal(t, model, got)
}
