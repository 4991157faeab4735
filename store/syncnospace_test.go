package store_test

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/storetest"
)

// TestSyncWithoutRoomIsFailedNotNoSpace: a bbolt commit whose fdatasync
// fails for lack of room (ENOSPC: NFS or thin-provisioned storage) has an
// unknown outcome: bbolt wrote the meta page through the file it also
// maps, so the commit is visible at once, and the page may reach the disk
// later. It must be reported as ErrFailed (FaultInjector.Synced), not as
// ErrNoSpace, which says that nothing is applied: here the action is in
// the store, and stays there after a reopen. Later writes are refused.
// Direct commits (Config.MaxSize, or a journal suspended for lack of room)
// take this path. (Found by review15, F9.)
func TestSyncWithoutRoomIsFailedNotNoSpace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := &storetest.Faults{}
	s, err := store.Open(store.Config{Dir: dir, MaxSize: 64 << 20, Faults: f})
	require.NoError(t, err)
	defer s.Close()
	put := func(s store.Store, id string, seq uint64) error {
		return s.ApplyActions("fetch", []store.ActionMutation{{Put: &messages.StoredAction{Id: id,
			Spec:   &messages.ActionSpec{FetchAction: "SYNCHRONIZE"},
			Status: &messages.ActionStatus{Seq: seq, State: messages.State_STATE_QUEUED}}}})
	}
	ids := func(s store.Store) []string {
		var got []string
		require.NoError(t, s.LoadActions("fetch", func(a *messages.StoredAction) error {
			got = append(got, a.Id)
			return nil
		}))
		return got
	}
	require.NoError(t, put(s, "a", 1))
	f.ArmSync(fmt.Errorf("fdatasync: %w", syscall.ENOSPC))
	err = put(s, "b", 2)
	require.ErrorIs(t, err, store.ErrFailed, "a failed fdatasync (ENOSPC) must not read as ErrNoSpace; the store holds %v", ids(s))
	require.NotErrorIs(t, err, store.ErrNoSpace)
	require.Equal(t, []string{"a", "b"}, ids(s))
	require.ErrorIs(t, put(s, "c", 3), store.ErrFailed)
	require.NoError(t, s.Close())

	s2, err := store.Open(store.Config{Dir: dir, MaxSize: 64 << 20})
	require.NoError(t, err)
	defer s2.Close()
	require.Equal(t, []string{"a", "b"}, ids(s2))
}
