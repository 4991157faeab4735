package queue

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/storetest"
)

// The work a start does after its restore loop (here retention, evicting
// ended actions older than FinishedActionMaxAge) counts as progress:
// Start waits for it as long as it goes on. It advanced no counter, so a
// start that evicted (or parked, in its first dispatch) many actions for
// startTimeout after its last restored one was cut off as a stuck restore
// and the server did not start. Each eviction is made slow here by the
// clock retention reads.
// Not parallel: it lowers startTimeout and restoreLogEvery.
func TestStartWaitsForRetentionThatProgresses(t *testing.T) {
	defer func(d, e time.Duration) { startTimeout, restoreLogEvery = d, e }(startTimeout, restoreLogEvery)
	startTimeout, restoreLogEvery = time.Second, 100*time.Millisecond
	const n, each = 10, 200 * time.Millisecond // 2s in all, 5 evicted a second
	st := storedActions(t, n, func(seq uint64) *messages.ActionStatus {
		return &messages.ActionStatus{Seq: seq, State: messages.State_STATE_FINISHED, EndedUnixMs: time.Now().Add(-2 * time.Hour).UnixMilli()}
	})
	sys := actor.NewActorSystem()
	defer sys.Shutdown()
	var slow atomic.Bool
	slow.Store(true)
	cfg := Config{Name: "fetch", Repository: newTestRepo(), Store: st, AskTimeout: 10 * time.Millisecond,
		FinishedActionMaxAge: time.Hour, Now: func() time.Time {
			if slow.Load() {
				time.Sleep(each)
			}
			return time.Now()
		}}
	begin := time.Now()
	q, err := Start(sys, cfg)
	slow.Store(false)
	require.NoError(t, err, "a start whose retention progresses is waited for")
	require.Greater(t, time.Since(begin), startTimeout, "the start took longer than the bound")
	require.NoError(t, sys.Root.StopFuture(q.pid).Wait())
	require.Empty(t, storetest.Load(t, st, "fetch"), "the old ended actions were evicted")
}

// A start whose context is done while it restores stops at the next
// action, promptly, and loses nothing: the changes made to the actions it
// restored are written, the others are left in the store as they were,
// and the next start restores every one. The server's start-up is stopped
// this way on SIGTERM or Ctrl-C (cmd/connector).
// Not parallel: it lowers startTimeout.
func TestStartContextStopsTheRestore(t *testing.T) {
	defer func(d time.Duration) { startTimeout = d }(startTimeout)
	startTimeout = 10 * time.Second // the test's bound: never reached
	const n = 50
	st := storedActions(t, n, interrupted)
	sys := actor.NewActorSystem()
	defer sys.Shutdown()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int64
	cfg := Config{Name: "fetch", Repository: newTestRepo(), Store: st, AskTimeout: 10 * time.Millisecond,
		OnRestart: RestartError, Now: func() time.Time {
			if calls.Add(1) == 3 {
				cancel() // the signal, during the restore of the third interrupted action
			}
			time.Sleep(100 * time.Millisecond) // 5s for the whole restore
			return time.Now()
		}}
	_, err := StartContext(ctx, sys, cfg)
	require.ErrorIs(t, err, context.Canceled)
	// At the next action, not at the end (50).
	require.ErrorContains(t, err, "restore stopped at 3 of 50 stored actions")

	recs := storetest.Load(t, st, "fetch")
	require.Len(t, recs, n, "no action was lost")
	ended := 0
	for _, r := range recs {
		if r.Status.State == messages.State_STATE_ERROR {
			require.False(t, r.Status.Running)
			ended++
		} else {
			require.True(t, r.Status.Running, "an action not restored is as it was")
		}
	}
	require.Equal(t, 3, ended, "the actions restored have their change written")

	// The next start restores every one.
	cfg.Now, cfg.AskTimeout = nil, 0 // the default AskTimeout for the QueueStatus below
	q, err := Start(sys, cfg)
	require.NoError(t, err)
	r, err := q.QueueStatus(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, n, r.GetError(), "every action is restored (as Error: RestartError)")
	require.NoError(t, sys.Root.StopFuture(q.pid).Wait())
}

// storedActions returns an in-memory store holding n SYNCHRONIZE actions
// of the fetch queue, with the statuses status gives for seq 1 to n (it
// is closed at the end of the test).
func storedActions(t *testing.T, n int, status func(seq uint64) *messages.ActionStatus) store.Store {
	t.Helper()
	st, err := store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	muts := make([]store.ActionMutation, 0, n)
	for i := range n {
		muts = append(muts, store.ActionMutation{Put: &messages.StoredAction{
			Id:     fmt.Sprintf("0190a8a4-8d3e-7000-8000-%012d", i+1),
			Spec:   &messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE"},
			Status: status(uint64(i + 1)),
		}})
	}
	require.NoError(t, st.ApplyActions("fetch", muts))
	return st
}

// interrupted is the status of an action a worker ran when the server
// died (for storedActions).
func interrupted(seq uint64) *messages.ActionStatus {
	return &messages.ActionStatus{Seq: seq, State: messages.State_STATE_PROCESSING, Running: true}
}
