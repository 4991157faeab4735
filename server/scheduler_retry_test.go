package server

import (
	"context"
	"fmt"
	"log/slog"
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

// flakyQueue is a queue whose List fails its first failLists calls (a
// store that is briefly down, a QueueManager busy past the read timeout)
// and which counts the actions submitted to it.
type flakyQueue struct {
	queue.API // nil: only the methods below are called
	mu        sync.Mutex
	failLists int
	lists     int
	submitted []string
}

func (f *flakyQueue) List(context.Context, *messages.ListActions) ([]*messages.ActionStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	if f.lists <= f.failLists {
		return nil, fmt.Errorf("%w: connection refused", messages.ErrStore)
	}
	return nil, nil
}

func (f *flakyQueue) Submit(_ context.Context, spec *messages.ActionSpec) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.submitted = append(f.submitted, messages.Params(spec.Params).Value("TaskSections"))
	return "token-" + spec.Params[0].GetValue(), nil
}

func (f *flakyQueue) Status(context.Context, string) (*messages.ActionStatus, error) {
	return &messages.ActionStatus{State: messages.State_STATE_FINISHED}, nil
}

func (f *flakyQueue) submissions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.submitted...)
}

// A scheduled run whose check of the previous run fails for a moment (the
// queue could not list its actions) is submitted once the check succeeds.
// On main the run was skipped, its cycle used up: a store that was down
// for a second at 02:00 lost the night's Synchronize (a one-off schedule's
// only run), with one warning in the log.
func TestScheduledRunSurvivesAFailedCheck(t *testing.T) {
	t.Parallel()
	q := &flakyQueue{failLists: 1}
	var log testlog.Buffer
	sys := actor.NewActorSystem()
	defer sys.Shutdown()
	_, err := startScheduler(sys, q, []fetch.Schedule{{Task: "Nightly"}}, slog.New(slog.NewTextHandler(&log, nil)))
	require.NoError(t, err)
	testwait.For(t, 10*time.Second, func() bool { return len(q.submissions()) > 0 }, "the scheduled run to be submitted")
	require.Equal(t, []string{"Nightly"}, q.submissions())
	require.Contains(t, log.String(), "store unavailable")
}
