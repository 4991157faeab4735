package queue

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// A QueueManager that does not finish restoring its stored actions within
// Start's bound is stopped, not left running on the store its caller
// closes (and holding its name, which a new Start would find taken). Its
// restore is held here by the clock it reads for an interrupted action.
// Not parallel: it lowers startTimeout.
func TestStartTimeoutStopsTheQueueManager(t *testing.T) {
	defer func(d time.Duration) { startTimeout = d }(startTimeout)
	startTimeout = 100 * time.Millisecond
	st, err := store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.ApplyActions("fetch", []store.ActionMutation{{Put: &messages.StoredAction{
		Id:     "0190a8a4-8d3e-7000-8000-000000000001",
		Spec:   &messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE"},
		Status: &messages.ActionStatus{Seq: 1, State: messages.State_STATE_PROCESSING, Running: true},
	}}}))
	release := make(chan struct{})
	var held atomic.Bool
	sys := actor.NewActorSystem()
	defer sys.Shutdown()
	cfg := Config{Name: "fetch", Repository: newTestRepo(), Store: st, AskTimeout: 10 * time.Millisecond,
		OnRestart: RestartError, Now: func() time.Time {
			if held.CompareAndSwap(false, true) {
				<-release // the restore of the interrupted action
			}
			return time.Now()
		}}
	_, err = Start(sys, cfg)
	require.ErrorContains(t, err, "did not finish restoring the queue's 1 stored actions within 100ms")
	close(release)
	pid := actor.NewPID(sys.Address(), "queue-fetch")
	testwait.For(t, 10*time.Second, func() bool {
		_, ok := sys.ProcessRegistry.Get(pid)
		return !ok
	}, "the QueueManager to stop once its restore is over")
	cfg.Now = nil
	q, err := Start(sys, cfg)
	require.NoError(t, err, "a new Start finds the name free")
	require.NoError(t, sys.Root.StopFuture(q.pid).Wait())
}
