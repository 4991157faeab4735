package queue

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
)

// Retention passes an ended action whose worker still runs (a Stop that
// outlived StopTimeout) and evicts it when its thread is released. When
// its task actor failed meanwhile (a tombstone: crash releases the thread
// itself, and no SlotReleased comes), it was never evicted: the entry
// stayed for good, and counted as on its way out (ndefer), so the queue
// kept one ended action more than MaximumFinishedActions from then on.
func TestRetentionEvictsDeferredActionWhoseActorFailed(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) {
		c.MaximumThreads, c.MaximumFinishedActions, c.StopTimeout = 1, -1, 100*time.Millisecond
	})
	tok := b.submit(t, "ignorectx", 0)
	b.waitState(t, tok, messages.State_STATE_PROCESSING)
	_, err := b.q.Stop(context.Background(), tok) // answered at StopTimeout; the worker runs on
	require.NoError(t, err)
	_, id, err := messages.ParseToken(tok)
	require.NoError(t, err)
	var e *entry
	b.inspectManager(t, func(m *manager) { e = m.entries[id] })
	require.NotNil(t, e)
	var deferred bool
	b.inspectManager(t, func(m *manager) { deferred = e.deferred })
	require.True(t, deferred, "retention waits for the worker")

	failing, _ := failWithQueued(t, b.sys, e.pid, nil)
	_, err = failing.Result()
	require.NoError(t, err)
	b.repo.Release(tok) // the worker ends; its report goes to the stopped actor

	testwait.For(t, 5*time.Second, func() bool {
		gone := false
		b.inspectManager(t, func(m *manager) { gone = m.entries[id] == nil && m.ndefer == 0 && m.nended == 0 })
		return gone
	}, "the failed action is evicted (MaximumFinishedActions keeps none)")
}
