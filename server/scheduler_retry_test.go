package server

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
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

// flakyQueue is a queue whose List fails its first failLists calls (a
// store that is briefly down, a QueueManager busy past the read timeout),
// whose Submit fails its first failSubmits calls with submitErr, and which
// counts the actions submitted to it. With queuedOnFail, a failed
// submission was queued all the same (a store that committed it but
// reported a failure): List shows it as a queued Synchronize of its task.
type flakyQueue struct {
	queue.API    // nil: only the methods below are called
	mu           sync.Mutex
	failLists    int
	lists        int
	failSubmits  int
	submitErr    error
	queuedOnFail bool
	attempts     int
	queued       []*messages.ActionStatus
	submitted    []string
}

func (f *flakyQueue) List(context.Context, *messages.ListActions) ([]*messages.ActionStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	if f.lists <= f.failLists {
		return nil, fmt.Errorf("%w: connection refused", messages.ErrStore)
	}
	return append([]*messages.ActionStatus(nil), f.queued...), nil
}

func (f *flakyQueue) Submit(_ context.Context, spec *messages.ActionSpec) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts++
	task := messages.Params(spec.Params).Value("TaskSections")
	if f.attempts <= f.failSubmits {
		if f.queuedOnFail {
			f.queued = append(f.queued, &messages.ActionStatus{Token: fmt.Sprint("uncertain-", f.attempts), FetchAction: spec.FetchAction,
				State: messages.State_STATE_QUEUED, Counts: []*messages.DocumentCount{{Task: strings.ToUpper(task)}}})
		}
		return "", f.submitErr
	}
	f.submitted = append(f.submitted, task)
	return "token-" + spec.Params[0].GetValue(), nil
}

func (f *flakyQueue) ActionParameters(_ context.Context, token string) (*messages.ActionReply, error) {
	return &messages.ActionReply{Params: []*messages.Param{{Name: "TaskSections", Value: "Nightly"}}}, nil
}

func (f *flakyQueue) tries() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts
}

func (f *flakyQueue) Status(context.Context, string) (*messages.ActionStatus, error) {
	return &messages.ActionStatus{State: messages.State_STATE_FINISHED}, nil
}

func (f *flakyQueue) submissions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.submitted...)
}

// scheduleNightly starts a scheduler that submits a Synchronize of
// NIGHTLY to q at once, and returns its log.
func scheduleNightly(t *testing.T, q queue.API) *testlog.Buffer {
	t.Helper()
	var log testlog.Buffer
	sys := actor.NewActorSystem()
	t.Cleanup(sys.Shutdown)
	_, err := startScheduler(sys, q, []fetch.Schedule{{Task: "Nightly"}}, time.Time{}, nil, slog.New(slog.NewTextHandler(&log, nil)))
	require.NoError(t, err)
	return &log
}

// A scheduled run whose check of the previous run fails for a moment (the
// queue could not list its actions) is submitted once the check succeeds.
// On main the run was skipped, its cycle used up: a store that was down
// for a second at 02:00 lost the night's Synchronize (a one-off schedule's
// only run), with one warning in the log.
func TestScheduledRunSurvivesAFailedCheck(t *testing.T) {
	t.Parallel()
	q := &flakyQueue{failLists: 1}
	log := scheduleNightly(t, q)
	testwait.For(t, 10*time.Second, func() bool { return len(q.submissions()) > 0 }, "the scheduled run to be submitted")
	require.Equal(t, []string{"Nightly"}, q.submissions())
	require.Contains(t, log.String(), "store unavailable")
}

// A scheduled run whose submission the queue refuses for a moment (full
// at MaximumQueueSize, its store failing, too busy to answer in time:
// nothing was queued) is submitted again until the queue accepts it. On
// main it was logged as not submitted and its cycle used up: a burst of
// clients' actions that filled the queue at 02:00 lost the night's
// Synchronize, and a one-off schedule's only run.
func TestScheduledRunSurvivesARefusedSubmission(t *testing.T) {
	t.Parallel()
	for _, refusal := range []error{messages.ErrQueueFull, messages.ErrStore, messages.ErrTimeout} {
		t.Run(refusal.Error(), func(t *testing.T) {
			t.Parallel()
			q := &flakyQueue{failSubmits: 1, submitErr: fmt.Errorf("%w: refused", refusal)}
			log := scheduleNightly(t, q)
			testwait.For(t, 10*time.Second, func() bool { return len(q.submissions()) > 0 }, "the scheduled run to be submitted")
			require.Equal(t, []string{"Nightly"}, q.submissions())
			require.Equal(t, 2, q.tries())
			require.Contains(t, log.String(), "refused")
		})
	}
}

// A submission that failed may still have been queued (a cluster's store
// that committed it and then reported a failure): before it submits the
// run again, the scheduler looks for a Synchronize of the task queued
// meanwhile, and takes it for the run instead of queuing a second one.
func TestScheduledRunNotSubmittedTwiceAfterAnUncertainFailure(t *testing.T) {
	t.Parallel()
	q := &flakyQueue{failSubmits: 1, submitErr: fmt.Errorf("%w: commit outcome unknown", messages.ErrStore), queuedOnFail: true}
	log := scheduleNightly(t, q)
	testwait.For(t, 10*time.Second, func() bool { return strings.Contains(log.String(), "scheduled run skipped") }, "the scheduler to find the run queued")
	require.Equal(t, 1, q.tries())
	require.Empty(t, q.submissions())
	require.Contains(t, log.String(), "uncertain-1")
}

// endedQueue is a queue whose first submission fails (no answer in time)
// but was queued all the same, late, and ended at once: List shows it as
// a Finished Synchronize of its task, and applies the filters' states and
// queued times, as the queue does.
type endedQueue struct {
	flakyQueue
}

func (e *endedQueue) Submit(ctx context.Context, spec *messages.ActionSpec) (string, error) {
	e.mu.Lock()
	first := e.attempts == 0
	e.mu.Unlock()
	if !first {
		return e.flakyQueue.Submit(ctx, spec)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.attempts++
	task := messages.Params(spec.Params).Value("TaskSections")
	e.queued = append(e.queued, &messages.ActionStatus{Token: "late-and-ended", FetchAction: spec.FetchAction,
		State: messages.State_STATE_FINISHED, QueuedUnixMs: time.Now().UnixMilli(), Counts: []*messages.DocumentCount{{Task: strings.ToUpper(task)}}})
	return "", fmt.Errorf("%w: no answer in time", messages.ErrTimeout)
}

func (e *endedQueue) List(_ context.Context, f *messages.ListActions) ([]*messages.ActionStatus, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*messages.ActionStatus
	for _, st := range e.queued {
		switch {
		case len(f.States) > 0 && !slices.Contains(f.States, st.State),
			f.QueuedAfterUnixMs != 0 && st.QueuedUnixMs <= f.QueuedAfterUnixMs,
			f.QueuedBeforeUnixMs != 0 && st.QueuedUnixMs >= f.QueuedBeforeUnixMs:
			continue
		}
		out = append(out, st)
	}
	return out, nil
}

func (e *endedQueue) ActionParameters(_ context.Context, token string) (*messages.ActionReply, error) {
	return nil, fmt.Errorf("%w: the action ended as Finished", messages.ErrActionEnded)
}

// A submission that failed (no answer in time) but was queued all the
// same, and had ended by the time the scheduler looked again (a quick
// incremental Synchronize, within the second before the next try), is the
// run: it is not submitted again. On main the scheduler looked only for a
// Synchronize of the task still queued or running, found none, and
// submitted a second run.
func TestScheduledRunNotSubmittedAgainAfterAFailedSubmissionThatRanAlready(t *testing.T) {
	t.Parallel()
	q := &endedQueue{}
	log := scheduleNightly(t, q)
	testwait.For(t, 10*time.Second, func() bool {
		return strings.Contains(log.String(), "scheduled run skipped") || len(q.submissions()) > 0
	}, "the scheduler to find the run queued or submit it again")
	require.Empty(t, q.submissions(), "runs submitted again; the log:\n%s", log.String())
	require.Equal(t, 1, q.tries())
	require.Contains(t, log.String(), "late-and-ended")
}
