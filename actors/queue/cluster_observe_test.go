package queue

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// eventLog is an Observer that records what it hears, for tests.
type eventLog struct {
	mu        sync.Mutex
	submitted []string
	rejected  []string
	started   []string
	ended     []string // fetch action/status
	stopped   int
	commits   int
}

func (o *eventLog) Submitted(fa string) {
	o.mu.Lock()
	o.submitted = append(o.submitted, fa)
	o.mu.Unlock()
}
func (o *eventLog) Rejected(r string) { o.mu.Lock(); o.rejected = append(o.rejected, r); o.mu.Unlock() }
func (o *eventLog) Started(fa string, _ time.Duration) {
	o.mu.Lock()
	o.started = append(o.started, fa)
	o.mu.Unlock()
}
func (o *eventLog) Ended(spec *messages.ActionSpec, st *messages.ActionStatus) {
	o.mu.Lock()
	o.ended = append(o.ended, spec.FetchAction+"/"+messages.StatusName(st.State))
	o.mu.Unlock()
}
func (o *eventLog) Stopped(time.Duration) { o.mu.Lock(); o.stopped++; o.mu.Unlock() }
func (o *eventLog) Committed(n int, _ time.Duration, err error) {
	o.mu.Lock()
	if n > 0 && err == nil {
		o.commits++
	}
	o.mu.Unlock()
}

func (o *eventLog) snapshot() eventLog {
	o.mu.Lock()
	defer o.mu.Unlock()
	return eventLog{submitted: append([]string(nil), o.submitted...), rejected: append([]string(nil), o.rejected...),
		started: append([]string(nil), o.started...), ended: append([]string(nil), o.ended...), stopped: o.stopped, commits: o.commits}
}

// In cluster mode the queue tells its Observer (the Prometheus metrics)
// what it tells it on a single node, and writes the same "action ended"
// line: the cluster QueueManager called neither, so on a cluster node
// connector_actions_submitted_total, _ended_total, the wait, run and stop
// histograms, connector_documents_total and the commit metrics stayed at
// zero whatever the node ran, and docs/operations.md's line of each
// action was never written.
func TestClusterQueueTellsItsObserver(t *testing.T) {
	ctx := context.Background()
	db, _ := soloStore(t)
	obs := &eventLog{}
	var logs syncBuffer
	q, _, _ := startSoloCluster(t, db, func(c *Config) {
		c.Observer = obs
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})

	done, err := q.Submit(ctx, &messages.ActionSpec{FetchAction: "SYNCHRONIZE", Client: "10.1.2.3"})
	require.NoError(t, err)
	waitState(t, q, done, messages.State_STATE_FINISHED)

	stop, err := q.Submit(ctx, &messages.ActionSpec{FetchAction: "SYNCHRONIZE",
		Params: messages.Params{{Name: "Mode", Value: "untilstop"}}})
	require.NoError(t, err)
	waitState(t, q, stop, messages.State_STATE_PROCESSING)
	_, err = q.Stop(ctx, stop)
	require.NoError(t, err)

	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		got := obs.snapshot()
		assert.Equal(ct, []string{"SYNCHRONIZE", "SYNCHRONIZE"}, got.submitted)
		assert.Equal(ct, []string{"SYNCHRONIZE", "SYNCHRONIZE"}, got.started)
		assert.ElementsMatch(ct, []string{"SYNCHRONIZE/Finished", "SYNCHRONIZE/Stopped"}, got.ended)
		assert.Equal(ct, 1, got.stopped, "stops timed")
		assert.Positive(ct, got.commits, "group commits")
	}, 30*time.Second, 10*time.Millisecond)
	require.Empty(t, obs.snapshot().rejected)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Equal(ct, 2, strings.Count(logs.String(), `msg="action ended"`), logs.String())
	}, 10*time.Second, 10*time.Millisecond)
	assert.Contains(t, logs.String(), "client=10.1.2.3")
}
