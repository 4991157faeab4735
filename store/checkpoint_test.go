package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/storetest"
)

// TestCheckpointFolds folds one window of every kind of change into a file
// that holds actions already, with ids and seqs in orders unlike the
// order of the changes (a checkpoint writes in key order): actions that
// move to another seq, one onto a seq another left in the same window, a
// deleted one, one rewritten in place, one changed twice, one deleted and
// put back, new ones. The store holds exactly the latest of each, before
// the checkpoint, after it, and after a reopen.
func TestCheckpointFolds(t *testing.T) {
	t.Parallel()
	const (
		queued     = messages.State_STATE_QUEUED
		processing = messages.State_STATE_PROCESSING
		finished   = messages.State_STATE_FINISHED
	)
	rec := storetest.Record
	s, err := store.Open(store.Config{Dir: t.TempDir(), CheckpointInterval: time.Hour})
	require.NoError(t, err)
	defer func() { _ = s.Close() }()
	var muts []store.ActionMutation
	for i, id := range []string{"b", "d", "f", "a", "c", "e"} {
		muts = append(muts, storetest.Put(rec(id, uint64(i+1), queued)))
	}
	require.NoError(t, s.ApplyActions("fetch", muts))
	require.NoError(t, store.Checkpoint(s))

	require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{
		storetest.Put(rec("b", 20, processing)), // moves from seq 1
		storetest.Del("d"),                      // frees seq 2
		storetest.Put(rec("z", 1, queued)),      // new, on b's old seq
		storetest.Put(rec("f", 3, finished)),    // in place
		storetest.Put(rec("0", 2, queued)),      // new, before every id, on d's seq
	}))
	require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{
		storetest.Put(rec("a", 4, processing)),
		storetest.Put(rec("a", 21, queued)), // twice: the latest counts
		storetest.Del("c"),
		storetest.Put(rec("c", 22, queued)), // deleted, then back
		storetest.Put(rec("y", 9, queued)),  // new, ids against seq order
		storetest.Put(rec("x", 8, queued)),
		storetest.Put(rec("1", 30, queued)),
	}))
	// A new id (after every id held) may not take a seq another holds,
	// in the file or in the journal.
	require.ErrorIs(t, s.ApplyActions("fetch", []store.ActionMutation{storetest.Put(rec("zz", 6, queued))}), store.ErrInvalid)
	require.ErrorIs(t, s.ApplyActions("fetch", []store.ActionMutation{storetest.Put(rec("zz", 30, queued))}), store.ErrInvalid)

	want := []*messages.StoredAction{
		rec("z", 1, queued), rec("0", 2, queued), rec("f", 3, finished), rec("e", 6, queued),
		rec("x", 8, queued), rec("y", 9, queued), rec("b", 20, processing), rec("a", 21, queued),
		rec("c", 22, queued), rec("1", 30, queued),
	}
	storetest.RequireActions(t, s, "fetch", want...)
	require.NoError(t, store.Checkpoint(s))
	storetest.RequireActions(t, s, "fetch", want...)
	require.ErrorIs(t, s.ApplyActions("fetch", []store.ActionMutation{storetest.Put(rec("zz", 30, queued))}), store.ErrInvalid)
	s = reopenDurable(t, s)
	storetest.RequireActions(t, s, "fetch", want...)
}
