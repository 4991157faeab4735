package queue

import (
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
