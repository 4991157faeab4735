package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/actors/queue"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testlog"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
)

// clusterQueue is the queue of a cluster of two nodes: an action either
// submits shows in both one's lists. A submission waits (up to a few
// seconds) for the other node to have listed the actions too, as a
// submission takes a while to commit.
type clusterQueue struct {
	mu     sync.Mutex
	listed [2]bool // by node
	queued []*messages.ActionStatus
}

// nodeQueue is the clusterQueue as node sees it.
type nodeQueue struct {
	queue.API // nil: only the methods below are called
	*clusterQueue
	node int
}

func (c nodeQueue) List(context.Context, *messages.ListActions) ([]*messages.ActionStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listed[c.node] = true
	return append([]*messages.ActionStatus(nil), c.queued...), nil
}

func (c nodeQueue) Submit(_ context.Context, spec *messages.ActionSpec) (string, error) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		c.mu.Lock()
		if c.listed[1-c.node] || time.Now().After(deadline) {
			break
		}
		c.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	defer c.mu.Unlock()
	tok := fmt.Sprint("token-", len(c.queued)+1)
	task := messages.Params(spec.Params).Value("TaskSections")
	c.queued = append(c.queued, &messages.ActionStatus{Token: tok, FetchAction: spec.FetchAction,
		State: messages.State_STATE_QUEUED, Counts: []*messages.DocumentCount{{Task: strings.ToUpper(task)}}})
	return tok, nil
}

func (c nodeQueue) ActionParameters(context.Context, string) (*messages.ActionReply, error) {
	return &messages.ActionReply{Params: []*messages.Param{{Name: "TaskSections", Value: "Nightly"}}}, nil
}

func (c *clusterQueue) submitted() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queued)
}

// Two nodes of a cluster that both take the first turn for a scheduled
// run (each ranks the nodes from its own view of the members: a node that
// joins with a lower id, or one that left, is not seen by all at once; or
// the first node's check and submission outlast the five seconds the next
// node waits) submit it once: the check of the second waits for the
// submission of the first (a turn in the shared store), and finds it. On
// main both checked, found nothing, and both submitted: the task crawled
// twice, one run after the other.
func TestClusterNodesTakingOneTurnSubmitAScheduledRunOnce(t *testing.T) {
	t.Parallel()
	q := &clusterQueue{}
	var turns sync.Mutex // the shared store's turns
	turn := func(_ string, fn func() error) error {
		turns.Lock()
		defer turns.Unlock()
		return fn()
	}
	var logs [2]testlog.Buffer
	for i := range logs {
		sys := actor.NewActorSystem()
		t.Cleanup(sys.Shutdown)
		_, err := startScheduler(sys, nodeQueue{clusterQueue: q, node: i}, []fetch.Schedule{{Task: "Nightly"}},
			time.Time{}, &clusterSched{rank: func() int { return 0 }, turn: turn}, slog.New(slog.NewTextHandler(&logs[i], nil)))
		require.NoError(t, err)
	}
	testwait.For(t, 30*time.Second, func() bool {
		return strings.Contains(logs[0].String(), "scheduled run") && strings.Contains(logs[1].String(), "scheduled run")
	}, "both nodes' schedulers to submit the run or leave it to the other")
	require.Equal(t, 1, q.submitted(), "runs submitted; the nodes' logs:\n%s\n%s", logs[0].String(), logs[1].String())
}

// The runs of several tasks that fall due together take their turns one
// after the other on a node: a turn holds one of the shared store's
// pooled connections, and many at once would leave none for the
// submissions they wait for.
func TestScheduledRunsOfOneNodeTakeOneTurnAtATime(t *testing.T) {
	t.Parallel()
	q := &flakyQueue{}
	var mu sync.Mutex
	held, most := 0, 0
	turn := func(_ string, fn func() error) error {
		mu.Lock()
		held++
		most = max(most, held)
		mu.Unlock()
		defer func() { mu.Lock(); held--; mu.Unlock() }()
		return fn()
	}
	var schedules []fetch.Schedule
	for i := range 8 {
		schedules = append(schedules, fetch.Schedule{Task: fmt.Sprint("Task", i)})
	}
	sys := actor.NewActorSystem()
	t.Cleanup(sys.Shutdown)
	_, err := startScheduler(sys, q, schedules, time.Time{}, &clusterSched{rank: func() int { return 0 }, turn: turn}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	testwait.For(t, 30*time.Second, func() bool { return len(q.submissions()) == len(schedules) }, "every task's run to be submitted")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 1, most, "turns held at once")
}
