package store

import (
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// A journal fdatasync that fails with an I/O error (EIO), not for lack of
// room, fails the store (ErrFailed) until it is opened again, by design:
// after EIO the kernel may have dropped the pages it could not write and
// a later fdatasync may succeed all the same (fsyncgate), so the journal
// cannot be folded from what the file holds, nor trusted to take more.
// The write is refused naming the cause, every later one too, reads go
// on, the failure is logged once, and a reopen finds every acknowledged
// action (the failed batch may be there too: its fate is unknown).
func TestJournalSyncIOErrorFailsTheStore(t *testing.T) {
	t.Parallel()
	s, dir, logged := loggedStore(t)
	want := putQueued(t, s, 3)
	s.j.mu.Lock()
	s.j.syncAt = func(f *os.File) error { return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: syscall.EIO} }
	s.j.mu.Unlock()

	err := s.ApplyActions("fetch", []ActionMutation{{Put: rec("failed", 4, messages.State_STATE_QUEUED)}})
	require.ErrorIs(t, err, ErrFailed)
	require.ErrorIs(t, err, syscall.EIO)
	require.NotErrorIs(t, err, ErrNoSpace)
	require.Contains(t, err.Error(), "journal: sync")
	require.True(t, s.journaling(), "not suspended: an I/O error is not a full disk")
	err = s.ApplyActions("fetch", []ActionMutation{{Put: rec("later", 5, messages.State_STATE_QUEUED)}})
	require.ErrorIs(t, err, ErrFailed, "every later write is refused")
	require.ErrorIs(t, err, syscall.EIO, "naming the first cause")
	got := ids(t, s)
	delete(got, "failed")
	require.Equal(t, want, got, "reads go on")
	require.Equal(t, 1, strings.Count(logged.String(), "store refuses further writes"), logged.String())
	require.Contains(t, logged.String(), "level=ERROR")

	crash(t, s)
	s2 := openJ(t, dir)
	got = ids(t, s2)
	delete(got, "failed")
	require.Equal(t, want, got, "every acknowledged action after the reopen")
	require.NoError(t, s2.ApplyActions("fetch", []ActionMutation{{Put: rec("after", 6, messages.State_STATE_QUEUED)}}), "writable again")
	require.NoError(t, s2.Close())
}
