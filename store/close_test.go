package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
)

// getAfterReopen reads task's key from the store in dir, opened again.
func getAfterReopen(t *testing.T, dir, task, key string) []byte {
	t.Helper()
	s := openJ(t, dir)
	defer s.Close()
	ds, err := s.Datastore(task)
	require.NoError(t, err)
	v, err := ds.Get([]byte(key))
	require.NoError(t, err)
	return v
}

// An UpdateDeferred that comes once Close has made its final flush is
// refused (ErrClosed): it would apply its writes in memory, where nothing
// journals them any more, and report a success for a write Close loses.
func TestCloseRefusesDeferredUpdateAfterFinalFlush(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openJ(t, dir)
	a, err := s.Datastore("A")
	require.NoError(t, err)
	putDeferred(t, a, "before", "1") // flushed by Close

	flushed, release := make(chan struct{}), make(chan struct{})
	s.closeHook = func(step string) {
		if step == "flushed" {
			close(flushed)
			<-release
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case <-flushed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not reach its final flush")
	}
	err = UpdateDeferred(a, func(w Writer) error { return w.Put([]byte("late"), []byte("2")) })
	close(release)
	require.NoError(t, <-closed)

	late := getAfterReopen(t, dir, "A", "late")
	if err == nil {
		require.Equal(t, "2", string(late), "UpdateDeferred returned nil during Close, but its write is lost")
	}
	require.ErrorIs(t, err, ErrClosed)
	require.Nil(t, late)
	require.Equal(t, "1", string(getAfterReopen(t, dir, "A", "before")))
}

// Close waits for a datastore update under way, whose callback may read
// another datastore (Get takes the store's lock for reading): Close must
// not queue for the store's lock meanwhile, since Go's RWMutex makes a new
// reader wait behind a waiting writer, which waits for the callback. The
// update's writes are in the file Close leaves.
func TestCloseWaitsForUpdateThatReads(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		update func(ds Datastore, fn func(w Writer) error) error
	}{
		{"Update", func(ds Datastore, fn func(w Writer) error) error { return ds.Update(fn) }},
		{"UpdateDeferred", UpdateDeferred},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := openJ(t, dir)
			a, err := s.Datastore("A")
			require.NoError(t, err)
			b, err := s.Datastore("B")
			require.NoError(t, err)
			require.NoError(t, b.Update(func(w Writer) error { return w.Put([]byte("k"), []byte("v")) }))

			waiting := make(chan struct{})
			s.closeHook = func(step string) {
				if step == "updates" {
					close(waiting)
				}
			}
			closed := make(chan error, 1)
			err = tc.update(a, func(w Writer) error {
				go func() { closed <- s.Close() }()
				// Until Close waits for this update, or for the store's
				// lock, or has returned.
				testwait.For(t, 10*time.Second, func() bool {
					select {
					case <-waiting:
						return true
					default:
					}
					if len(closed) > 0 {
						return true
					}
					if s.mu.TryRLock() {
						s.mu.RUnlock()
						return false
					}
					return true
				}, "Close to wait")
				read := make(chan error, 1)
				go func() {
					v, err := b.Get([]byte("k"))
					if err == nil && string(v) != "v" {
						err = fmt.Errorf("read %q, want v", v)
					}
					read <- err
				}()
				select {
				case err := <-read:
					require.NoError(t, err)
				case <-time.After(10 * time.Second):
					t.Fatal("a read in the update's callback waits for Close, which waits for the callback")
				}
				return w.Put([]byte("x"), []byte("y"))
			})
			require.NoError(t, err)
			require.NoError(t, <-closed)
			require.Equal(t, "y", string(getAfterReopen(t, dir, "A", "x")))
		})
	}
}

// An ApplyActions that runs while Close folds the journal for the last
// time (after its final checkpoint froze what was journaled, before the
// journal is closed) was appended to the journal and acknowledged; Close
// then recorded every frame written as folded, its frame included, and
// deleted the segments: the action was gone at the next Open. It is
// refused (ErrClosed) or kept.
func TestCloseKeepsOrRefusesApplyDuringFinalCheckpoint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openJ(t, dir)
	require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec("before", 1, messages.State_STATE_QUEUED)}}))

	// The final checkpoint's fold waits for the gate, having frozen what
	// was journaled and released applyMu.
	s.gate.Lock()
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	testwait.For(t, 10*time.Second, func() bool {
		s.ovMu.RLock()
		defer s.ovMu.RUnlock()
		return s.frozen != nil
	}, "Close's checkpoint froze the journaled actions")
	err := s.ApplyActions("fetch", []ActionMutation{{Put: rec("during", 2, messages.State_STATE_QUEUED)}})
	s.gate.Unlock()
	require.NoError(t, <-closed)

	s2 := openJ(t, dir)
	defer s2.Close()
	got := ids(t, s2)
	require.Contains(t, got, "before")
	if err == nil {
		require.Contains(t, got, "during", "ApplyActions returned nil during Close, but its action is lost")
	}
	require.ErrorIs(t, err, ErrClosed)
	require.NotErrorIs(t, err, ErrFailed, "nothing of it was written")
}
