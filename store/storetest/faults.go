package storetest

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// Faults is a store.FaultInjector whose failures are armed by the test. Its
// zero value injects nothing. Safe for concurrent use.
type Faults struct {
	mu        sync.Mutex
	writes    int   // Write calls since the last Arm
	failWrite int   // 1-based Write call to fail; 0: none
	writeErr  error // returned by that call
	commitErr error // returned by the next Commit
	syncErr   error // returned by the next Synced
	syncDelay time.Duration
	hold      *syncHold // the next Synced waits for its release
}

type syncHold struct {
	held    chan struct{} // closed when a Synced call waits
	release chan struct{} // closed to let it return
}

// DelaySync makes every Synced call from now take d longer, as a slow
// fdatasync would (0: no delay).
func (f *Faults) DelaySync(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncDelay = d
}

// HoldSync makes the next Synced call wait (the commit is then in
// progress, its data written, its fdatasync not returned) until release is
// called. held is closed once that call waits.
func (f *Faults) HoldSync() (held <-chan struct{}, release func()) {
	h := &syncHold{held: make(chan struct{}), release: make(chan struct{})}
	f.mu.Lock()
	f.hold = h
	f.mu.Unlock()
	var once sync.Once
	return h.held, func() { once.Do(func() { close(h.release) }) }
}

// ArmWrite makes the nth Write call from now fail with err (once).
func (f *Faults) ArmWrite(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes, f.failWrite, f.writeErr = 0, n, err
}

// ArmCommit makes the next Commit fail with err.
func (f *Faults) ArmCommit(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commitErr = err
}

// ArmSync makes the next Synced fail with err.
func (f *Faults) ArmSync(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncErr = err
}

// Writes returns the number of Write calls since the last ArmWrite.
func (f *Faults) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

// Write implements store.FaultInjector.
func (f *Faults) Write() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if f.failWrite > 0 && f.writes == f.failWrite {
		f.failWrite = 0
		return f.writeErr
	}
	return nil
}

// Commit implements store.FaultInjector.
func (f *Faults) Commit() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.commitErr
	f.commitErr = nil
	return err
}

// Synced implements store.FaultInjector.
func (f *Faults) Synced() error {
	f.mu.Lock()
	err, delay, hold := f.syncErr, f.syncDelay, f.hold
	f.syncErr, f.hold = nil, nil
	f.mu.Unlock()
	if hold != nil {
		close(hold.held)
		<-hold.release
	}
	if delay > 0 {
		time.Sleep(delay) // the slow disk being simulated, not a wait for an outcome
	}
	return err
}

// FaultOpenFunc returns a new, empty store that consults f.
type FaultOpenFunc func(t *testing.T, f store.FaultInjector) store.Store

// errInjected is the write error the suite injects; the store must return
// an error that wraps it.
var errInjected = errors.New("storetest: injected write error")

// RunFaults checks that injected failures surface as errors and that a
// failed batch leaves nothing applied: for every step of a representative
// batch, failing that step leaves the previous state intact and the store
// usable; an out-of-space commit gives ErrNoSpace; a failed sync gives
// ErrFailed, stops later writes, and leaves either the old or the new state,
// never a mix (also after reopen, when reopen is given).
func RunFaults(t *testing.T, open FaultOpenFunc, reopen ReopenFunc) {
	setup := func(t *testing.T) (store.Store, *Faults) {
		t.Helper()
		f := &Faults{}
		s := open(t, f)
		t.Cleanup(func() { _ = s.Close() })
		return s, f
	}
	// base and next: the state before, and the batch under test (a new
	// record, a replaced one, a moved one, a deleted one, a missing delete).
	base := func() []store.ActionMutation {
		return []store.ActionMutation{Put(Record("a", 1, 1)), Put(Record("b", 2, 1)), Put(Record("c", 3, 1))}
	}
	next := func() []store.ActionMutation {
		return []store.ActionMutation{
			Put(Record("d", 4, 1)), Put(Record("a", 1, 4)), Put(Record("b", 9, 2)), Del("c"), Del("zz"),
		}
	}
	before := []*messages.StoredAction{Record("a", 1, 1), Record("b", 2, 1), Record("c", 3, 1)}
	after := []*messages.StoredAction{Record("a", 1, 4), Record("d", 4, 1), Record("b", 9, 2)}

	// Count the write steps of next.
	s, f := setup(t)
	require.NoError(t, s.ApplyActions("fetch", base()))
	f.ArmWrite(0, nil)
	require.NoError(t, s.ApplyActions("fetch", next()))
	steps := f.Writes()
	require.Positive(t, steps, "the store must call FaultInjector.Write")
	RequireActions(t, s, "fetch", after...)

	t.Run("NthWriteFails", func(t *testing.T) {
		t.Parallel()
		for n := 1; n <= steps; n++ {
			s, f := setup(t)
			require.NoError(t, s.ApplyActions("fetch", base()))
			f.ArmWrite(n, errInjected)
			err := s.ApplyActions("fetch", next())
			require.ErrorIs(t, err, errInjected, "step %d of %d", n, steps)
			RequireActions(t, s, "fetch", before...)
			// Still usable: the same batch goes through now.
			require.NoError(t, s.ApplyActions("fetch", next()), "step %d", n)
			RequireActions(t, s, "fetch", after...)
		}
	})

	t.Run("CommitOutOfSpace", func(t *testing.T) {
		t.Parallel()
		s, f := setup(t)
		require.NoError(t, s.ApplyActions("fetch", base()))
		f.ArmCommit(fmt.Errorf("write: %w", syscall.ENOSPC))
		err := s.ApplyActions("fetch", next())
		require.ErrorIs(t, err, store.ErrNoSpace)
		require.ErrorIs(t, err, syscall.ENOSPC)
		RequireActions(t, s, "fetch", before...)
		require.NoError(t, s.ApplyActions("fetch", next()), "space freed: writable again")
		RequireActions(t, s, "fetch", after...)
	})

	t.Run("SyncFails", func(t *testing.T) {
		t.Parallel()
		s, f := setup(t)
		require.NoError(t, s.ApplyActions("fetch", base()))
		d := datastore(t, s, "t")
		put(t, d, "k", "v")
		f.ArmSync(fmt.Errorf("fdatasync: %w", syscall.EIO))
		err := s.ApplyActions("fetch", next())
		require.ErrorIs(t, err, store.ErrFailed)
		require.ErrorIs(t, err, syscall.EIO)
		got := Load(t, s, "fetch")
		oneOf(t, got, before, after)
		// Later writes are refused; reads still work.
		err = s.ApplyActions("fetch", []store.ActionMutation{Put(Record("e", 5, 1))})
		require.ErrorIs(t, err, store.ErrFailed)
		require.ErrorIs(t, d.Update(func(w store.Writer) error { return w.Put([]byte("k"), []byte("w")) }), store.ErrFailed)
		require.ErrorIs(t, d.Clear(), store.ErrFailed)
		v, err := d.Get([]byte("k"))
		require.NoError(t, err)
		require.Equal(t, "v", string(v))
		oneOf(t, Load(t, s, "fetch"), before, after)
		if reopen == nil {
			return
		}
		s = reopen(t, s)
		t.Cleanup(func() { _ = s.Close() })
		oneOf(t, Load(t, s, "fetch"), before, after)
		require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{Put(Record("e", 5, 1))}), "writable after reopen")
	})

	t.Run("DatastoreNthWriteFails", func(t *testing.T) {
		t.Parallel()
		s, f := setup(t)
		d := datastore(t, s, "t")
		put(t, d, "a", "1", "b", "2")
		update := func(w store.Writer) error {
			for _, kv := range [][2]string{{"a", "10"}, {"c", "3"}, {"d", "4"}} {
				if err := w.Put([]byte(kv[0]), []byte(kv[1])); err != nil {
					return err
				}
			}
			return w.Delete([]byte("b"))
		}
		f.ArmWrite(0, nil)
		probe := datastore(t, s, "probe") // count steps on a copy of the state
		put(t, probe, "a", "1", "b", "2")
		f.ArmWrite(0, nil)
		require.NoError(t, probe.Update(update))
		dsteps := f.Writes()
		require.Positive(t, dsteps)
		for n := 1; n <= dsteps; n++ {
			f.ArmWrite(n, errInjected)
			err := d.Update(update)
			require.ErrorIs(t, err, errInjected, "step %d of %d", n, dsteps)
			require.Equal(t, [][2]string{{"a", "1"}, {"b", "2"}}, Entries(t, d))
			l, err := d.Len()
			require.NoError(t, err)
			require.Equal(t, 2, l)
		}
		f.ArmWrite(0, nil)
		f.ArmCommit(fmt.Errorf("write: %w", syscall.ENOSPC))
		require.ErrorIs(t, d.Clear(), store.ErrNoSpace)
		require.Equal(t, [][2]string{{"a", "1"}, {"b", "2"}}, Entries(t, d))
		f.ArmCommit(fmt.Errorf("write: %w", syscall.ENOSPC))
		require.ErrorIs(t, d.Update(update), store.ErrNoSpace)
		require.Equal(t, [][2]string{{"a", "1"}, {"b", "2"}}, Entries(t, d))
		f.ArmCommit(errInjected)
		_, err := s.Datastore("new")
		require.ErrorIs(t, err, errInjected)
		names, err := s.DatastoreNames()
		require.NoError(t, err)
		require.Equal(t, []string{"probe", "t"}, names)
		require.NoError(t, d.Update(update))
		require.Equal(t, [][2]string{{"a", "10"}, {"c", "3"}, {"d", "4"}}, Entries(t, d))
	})

	t.Run("DatastoreSyncFails", func(t *testing.T) {
		t.Parallel()
		s, f := setup(t)
		d := datastore(t, s, "t")
		put(t, d, "a", "1")
		f.ArmSync(syscall.EIO)
		err := d.Update(func(w store.Writer) error { return w.Put([]byte("b"), []byte("2")) })
		require.ErrorIs(t, err, store.ErrFailed)
		got := Entries(t, d)
		require.Contains(t, [][][2]string{{{"a", "1"}}, {{"a", "1"}, {"b", "2"}}}, got)
		require.ErrorIs(t, s.ApplyActions("fetch", base()), store.ErrFailed)
	})
}

func oneOf(t testing.TB, got, a, b []*messages.StoredAction) {
	t.Helper()
	if sameActions(got, a) || sameActions(got, b) {
		return
	}
	require.Failf(t, "half-applied batch", "got ids %v, want %v or %v", ids(got), ids(a), ids(b))
}

func sameActions(x, y []*messages.StoredAction) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if !proto.Equal(x[i], y[i]) {
			return false
		}
	}
	return true
}
