package queue

import (
	"context"
	"time"

	"github.com/connectorhq/connector/messages"
)

// API is what the front end (and any other client: the scheduler, a
// dashboard) asks of a queue. *Queue implements it in process; wrappers
// that add access control, metrics or tracing implement it around another
// API, and so will a cluster router that forwards a request to the node
// that owns the action. Every method is typed: no request travels as an
// untyped message.
//
// The context carries the request's deadline and values (the caller's
// identity, trace spans). A read (Status, Progress, ActionParameters, the
// listings) waits for its answer at most until the deadline; one whose
// deadline passes (or whose context is cancelled) meanwhile fails with
// ErrTimeout, also while it reads a cluster's shared store (not with
// ErrStore: the store did not fail). A request
// that changes an action or the queue (Cancel, Stop, ChangePriority,
// PauseAction, ResumeAction, Duplicate, Pause, Resume) is answered once
// its change is on disk whatever the deadline, since giving up first would
// answer "busy, retry later" for a change already in effect; only a
// context that has already ended when it is called stops it from being
// sent. Submit honours the deadline as it honours AskTimeout: a submission
// either gets its token or is not queued.
//
// The per-action methods return the action's reply: its status, and what
// the request asked for (its progress, its parameters, a duplicate's
// token). A reply that carries an error code is returned together with
// that error, so callers can still show the action's status.
type API interface {
	// Name is the queue's name (QueueName).
	Name() string
	// FetchActions are the fetch actions the queue's repository
	// performs, upper case.
	FetchActions() []string

	// Submit validates a fetch action (its FetchAction and parameters,
	// with the repository's Validate; Tasks is filled in from it), seals
	// its secrets and queues it: the one way an action enters a queue.
	// spec is neither changed nor kept: the queue holds a copy (which
	// shares spec's Params), so the caller may reuse spec's memory once
	// Submit has returned.
	Submit(ctx context.Context, spec *messages.ActionSpec) (token string, err error)
	// Duplicate queues a copy of a queued or running action, validated
	// as Submit validates, and returns the copy's reply (NewToken). The
	// check runs outside the action's actor, which answers the action's
	// other requests meanwhile; a Stop or Cancel of the original then
	// does not withdraw the copy.
	Duplicate(ctx context.Context, token string) (*messages.ActionReply, error)

	Status(ctx context.Context, token string) (*messages.ActionStatus, error)
	Progress(ctx context.Context, token string) (*messages.ActionReply, error)
	ActionParameters(ctx context.Context, token string) (*messages.ActionReply, error)
	Cancel(ctx context.Context, token string) (*messages.ActionReply, error)
	Stop(ctx context.Context, token string) (*messages.ActionReply, error)
	ChangePriority(ctx context.Context, token string, priority int32) (*messages.ActionReply, error)
	PauseAction(ctx context.Context, token string) (*messages.ActionReply, error)
	ResumeAction(ctx context.Context, token string) (*messages.ActionReply, error)

	// List returns the statuses of the actions f selects, in f's order.
	List(ctx context.Context, f *messages.ListActions) ([]*messages.ActionStatus, error)
	// ListParams returns the parameters of the queued and running actions
	// (GetActionParameters without a token), oldest first.
	ListParams(ctx context.Context, skip, maxResults uint32) ([]*messages.ActionReply, error)
	// CancelQueued cancels every action f selects that has not started.
	CancelQueued(ctx context.Context, f *messages.ListActions, dryRun bool, list int) (*CancelResult, error)

	QueueStatus(ctx context.Context) (*messages.QueueStatusReply, error)
	Pause(ctx context.Context) (*messages.QueueStatusReply, error)
	Resume(ctx context.Context) (*messages.QueueStatusReply, error)
	ThreadStatus(ctx context.Context) ([]Thread, error)
}

var _ API = (*Queue)(nil)

// readTimeout is how long a read may wait: AskTimeout, or less when ctx
// has an earlier deadline.
func (q *Queue) readTimeout(ctx context.Context) time.Duration {
	t := q.cfg.AskTimeout
	if d, ok := ctx.Deadline(); ok {
		t = min(t, max(time.Until(d), time.Nanosecond))
	}
	return t
}

var (
	cancelMsg    = &messages.CancelAction{}
	stopMsg      = &messages.StopAction{}
	pauseMsg     = &messages.PauseAction{}
	resumeMsg    = &messages.ResumeAction{}
	progressMsg  = &messages.GetProgress{}
	paramsMsg    = &messages.GetActionParameters{}
	duplicateMsg = &messages.DuplicateAction{}
)

// Progress implements API.
func (q *Queue) Progress(ctx context.Context, token string) (*messages.ActionReply, error) {
	return q.request(ctx, token, progressMsg)
}

// ActionParameters implements API: the action's parameters as queued
// (secrets sealed).
func (q *Queue) ActionParameters(ctx context.Context, token string) (*messages.ActionReply, error) {
	return q.request(ctx, token, paramsMsg)
}

// Cancel implements API: a queued action ends as Cancelled.
func (q *Queue) Cancel(ctx context.Context, token string) (*messages.ActionReply, error) {
	return q.request(ctx, token, cancelMsg)
}

// Stop implements API: a running action's work is cancelled and it ends
// as Stopped (the reply waits for the worker, up to StopTimeout).
func (q *Queue) Stop(ctx context.Context, token string) (*messages.ActionReply, error) {
	return q.request(ctx, token, stopMsg)
}

// ChangePriority implements API.
func (q *Queue) ChangePriority(ctx context.Context, token string, priority int32) (*messages.ActionReply, error) {
	return q.request(ctx, token, &messages.ChangePriority{Priority: priority})
}

// PauseAction implements API.
func (q *Queue) PauseAction(ctx context.Context, token string) (*messages.ActionReply, error) {
	return q.request(ctx, token, pauseMsg)
}

// ResumeAction implements API.
func (q *Queue) ResumeAction(ctx context.Context, token string) (*messages.ActionReply, error) {
	return q.request(ctx, token, resumeMsg)
}

// Duplicate implements API.
func (q *Queue) Duplicate(ctx context.Context, token string) (*messages.ActionReply, error) {
	return q.request(ctx, token, duplicateMsg)
}
