package store

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

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

// A frame whose fdatasync failed with an I/O error is never built on
// (syncLocked): the next frame would go at its offset. An ApplyActions
// that was already on its way when the store failed (it had looked at
// s.failed before the failing one released applyMu: another queue's
// group commit) was appended there all the same, acknowledged on a
// failed store, and a failed frame longer than it left its leftovers
// after the data's end: the next Open refused the store (ErrCorrupt),
// the acknowledged actions with it.
func TestJournalNoFrameAfterAFailedSync(t *testing.T) {
	t.Parallel()
	s, dir, _ := loggedStore(t)
	want := putQueued(t, s, 3)
	inSync, release := make(chan struct{}), make(chan struct{})
	var armed atomic.Bool
	armed.Store(true)
	s.j.mu.Lock()
	s.j.syncAt = func(f *os.File) error {
		if !armed.CompareAndSwap(true, false) {
			return fdatasync(f)
		}
		close(inSync)
		<-release
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: syscall.EIO}
	}
	s.j.mu.Unlock()

	errA := make(chan error, 1)
	go func() {
		// A long frame: a shorter one written at its offset leaves its
		// end after the data.
		var batch []ActionMutation
		for i := range 20 {
			batch = append(batch, ActionMutation{Put: rec(fmt.Sprintf("failed%02d", i), uint64(10+i), messages.State_STATE_QUEUED)})
		}
		errA <- s.ApplyActions("fetch", batch)
	}()
	<-inSync
	errB := make(chan error, 1)
	go func() {
		errB <- s.ApplyActions("other", []ActionMutation{{Put: rec("b", 1, messages.State_STATE_QUEUED)}})
	}()
	// B waits for applyMu, past its look at s.failed.
	deadline := time.Now().Add(10 * time.Second)
	for !waitingForApplyMu() {
		require.True(t, time.Now().Before(deadline), "the second ApplyActions never waited for applyMu")
		runtime.Gosched()
	}
	close(release)
	require.ErrorIs(t, <-errA, ErrFailed)
	require.ErrorIs(t, <-errB, ErrFailed, "a write after a failed fdatasync is refused, not appended after the failed frame")

	crash(t, s)
	s2, err := Open(Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err, "the store opens again")
	got := ids(t, s2)
	for id := range got {
		if strings.HasPrefix(id, "failed") {
			delete(got, id)
		}
	}
	require.Equal(t, want, got, "every acknowledged action after the reopen")
	require.NoError(t, s2.Close())
}

// waitingForApplyMu reports whether a goroutine waits in applyJournaled
// for applyMu (not one that holds it and syncs).
func waitingForApplyMu() bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "applyJournaled") && strings.Contains(g, "(*Mutex).Lock") && !strings.Contains(g, "syncLocked") {
			return true
		}
	}
	return false
}
