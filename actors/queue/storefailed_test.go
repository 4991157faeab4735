package queue

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testlog"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/storetest"
	"github.com/connectorhq/connector/transport/aci"
)

// An fdatasync of the journal that fails with an I/O error (EIO: not for
// lack of room) fails the store until the server restarts: after EIO the
// kernel may have dropped the pages it could not write, and a later
// fdatasync may report success all the same (fsyncgate), so nothing
// written since can be trusted. What a client and an operator see: the
// submission whose write failed is refused with ERRORSTOREFAILED, saying
// it may be found queued after the restart and that the store takes no
// more changes until then, with the cause; every later change is refused
// the same way, naming the first cause; status is still answered. The
// store logs "store refuses further writes" once, and the queue says once
// (not at every retry of its pending changes, as it did with "changes
// will be written again", which they never are) what this means. It no
// longer retries them (they used to be written, and refused, every
// RetryInterval until the restart): they stay in memory, a shutdown does
// not wait for them, and they are written once more as the queue stops.
func TestStoreFailedByAnIOErrorSaysSo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	faults := &storetest.Faults{}
	var storeLog, queueLog testlog.Buffer
	st, err := store.Open(store.Config{Dir: dir, Faults: faults, Logger: slog.New(slog.NewTextHandler(&storeLog, nil))})
	require.NoError(t, err)
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond))
	repo := newTestRepo()
	counting := &countingStore{Store: st}
	q, err := Start(sys, Config{Name: "fetch", Repository: repo, MaximumThreads: 1, TokenPort: 7000, Store: counting,
		StopTimeout: time.Second, RetryInterval: time.Nanosecond,
		Logger: slog.New(slog.NewTextHandler(&queueLog, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	d := &durable{dir: dir, st: st, sys: sys, q: q, repo: repo}
	t.Cleanup(func() {
		repo.ReleaseAll()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = q.Shutdown(ctx)
		sys.Shutdown()
		_ = st.Close()
	})
	b := d.bundle()
	running := b.submit(t, "block", 0)
	b.waitState(t, running, messages.State_STATE_PROCESSING)
	d.waitDurable(t, running, func(s *messages.ActionStatus) bool { return s.State == messages.State_STATE_PROCESSING })

	eio := &os.PathError{Op: "fdatasync", Path: dir + "/connector.db.wal.000001", Err: syscall.EIO}
	faults.ArmSync(eio)
	spec := &messages.ActionSpec{FetchAction: "SYNCHRONIZE", Tasks: []string{"MYTASK"}, Params: messages.Params{{Name: "Mode", Value: "instant"}}}
	_, err = q.Submit(context.Background(), spec)
	first := aci.ErrorFor("FETCH", err, time.Now())
	require.Equal(t, "ERRORSTOREFAILED", first.Code, "%v", err)
	for _, want := range []string{"not accepted", "not known whether it reached the disk", "may be found queued after the server restarts",
		"accepts no more changes", "input/output error"} {
		require.Contains(t, first.Description, want)
	}

	// Every later change is refused the same way, naming the cause.
	_, err = q.Submit(context.Background(), spec)
	later := aci.ErrorFor("FETCH", err, time.Now())
	require.Equal(t, "ERRORSTOREFAILED", later.Code)
	require.Contains(t, later.Description, "input/output error")
	require.Contains(t, later.Description, "accepts no more changes")
	// Status is answered; the running action's end, refused (a new change
	// still goes to the store), is kept in memory, and not retried.
	repo.Release(running)
	b.waitState(t, running, messages.State_STATE_FINISHED)
	_, rid, err := messages.ParseToken(running)
	require.NoError(t, err)
	settled := func(m *manager) bool { return !m.inflight && m.pending == nil }
	testwait.For(t, 10*time.Second, func() bool {
		var kept bool
		b.inspectManager(t, func(m *manager) {
			_, ok := m.retry[rid.String()]
			kept = settled(m) && ok
		})
		return kept
	}, "the end of the running action, refused, kept in memory with no write in flight (retrying it, every RetryInterval, keeps one in flight)")

	// No retry goes to the store: a retry would be due at any message
	// the QueueManager handles (RetryInterval 1ns; flush runs after every
	// message), and used to be written, and refused, every RetryInterval
	// until the restart.
	applies := counting.applies.Load()
	for range 3 {
		b.inspectManager(t, func(*manager) {})
		testwait.For(t, 10*time.Second, func() bool {
			var done bool
			b.inspectManager(t, func(m *manager) { done = settled(m) })
			return done
		}, "no write in flight")
	}
	require.Equal(t, applies, counting.applies.Load(), "the failed store was written to again: its changes were retried")
	b.inspectManager(t, func(m *manager) {
		require.Contains(t, m.retry, rid.String(), "the change is still kept in memory")
	})

	require.Equal(t, 1, strings.Count(storeLog.String(), "store refuses further writes"), storeLog.String())
	require.Contains(t, storeLog.String(), "level=ERROR")
	logged := queueLog.String()
	require.Equal(t, 1, strings.Count(logged, "takes no more writes until the server restarts: the queue stops retrying its pending changes, "+
		"which are kept in memory only"), logged)
	require.NotContains(t, logged, "changes will be written again")

	// The shutdown does not wait for the kept changes: they are written
	// once more as the queue stops (refused: lost, as the log says).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, q.Shutdown(ctx))
	require.Contains(t, queueLog.String(), "store write at stop failed; these changes are lost")
}

// countingStore counts the store's ApplyActions calls.
type countingStore struct {
	store.Store
	applies atomic.Int64
}

func (c *countingStore) ApplyActions(queue string, muts []store.ActionMutation) error {
	c.applies.Add(1)
	return c.Store.ApplyActions(queue, muts)
}
