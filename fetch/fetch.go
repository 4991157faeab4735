// Package fetch is the contract between the action queue and a connector
// repository. The queue owns actions (their state, priority and life cycle);
// a Repository performs the work of one fetch action (Synchronize, Collect,
// ...) when the queue tells it to, on a goroutine of its own, reporting live
// counts and progress through the Job it is given.
//
// A connector type describes itself with a Descriptor (its product type,
// embedded default configuration, task keys, fetch actions and
// constructor); package connectors maps [Connector] Type to descriptors.
// The standard fetch-action names are constants here. fetchtest holds the
// one shared Repository test double and the conformance suite every
// repository runs.
package fetch

import (
	"context"
	"strings"
	"sync/atomic"

	"github.com/connectorhq/connector/messages"
)

// Repository performs fetch actions. Implementations must be safe for
// concurrent use: several jobs run at once (up to MaximumThreads).
type Repository interface {
	// FetchActions returns the FetchAction names (upper case) this
	// repository performs. They are fixed for the repository's lifetime:
	// a queue reads them once, when it starts.
	FetchActions() []string

	// Validate checks a fetch action's parameters when it is submitted,
	// before it is queued, and returns the task sections the action will
	// report document counts for (in output order). Bad input is reported
	// as a *messages.ParamError naming the parameter or setting.
	Validate(fetchAction string, params messages.Params) (tasks []string, err error)

	// Run performs a validated action and returns its result elements
	// (tasks/success, identifiers, ...). It runs on its own goroutine and
	// must return promptly once ctx is done: context.Cause(ctx) tells a
	// user's Stop from a shutdown. On cancellation it still returns
	// whatever partial results it has; counts live in the Job. A non-nil
	// error (other than the context's) ends the action as Error.
	Run(ctx context.Context, job *Job) ([]*messages.Element, error)
}

// Job is one running action as its Repository sees it. The task actor that
// owns the action creates it; Run updates counts and progress; the actor
// reads them to answer GetStatus and Progress while Run works. Counts are
// atomics and progress is an immutable snapshot swapped atomically, so
// neither side ever blocks the other.
type Job struct {
	Token       string
	FetchAction string
	Params      messages.Params
	// Restarts is how many times this action was started before and
	// interrupted by a crash; 0 on a first run.
	Restarts uint32

	counts   []*Counts
	progress atomic.Pointer[messages.Progress]
	gate     gate
	failures failures
}

// NewJob returns a Job reporting counts for the given task sections.
func NewJob(token, fetchAction string, params messages.Params, tasks []string) *Job {
	j := &Job{Token: token, FetchAction: fetchAction, Params: params}
	j.counts = make([]*Counts, len(tasks))
	for i, t := range tasks {
		j.counts[i] = &Counts{Task: strings.ToUpper(t)}
	}
	return j
}

// Counts returns the counters of task section name (case-insensitive), or
// nil if the action does not report on that task.
func (j *Job) Counts(name string) *Counts {
	for _, c := range j.counts {
		if strings.EqualFold(c.Task, name) {
			return c
		}
	}
	return nil
}

// AllCounts returns every task's counters, in output order.
func (j *Job) AllCounts() []*Counts { return j.counts }

// Snapshot returns the current counts as messages.
func (j *Job) Snapshot() []*messages.DocumentCount {
	out := make([]*messages.DocumentCount, len(j.counts))
	for i, c := range j.counts {
		out[i] = c.Snapshot()
	}
	return out
}

// SetProgress publishes a progress snapshot. p must not be changed after.
func (j *Job) SetProgress(p *messages.Progress) { j.progress.Store(p) }

// Progress returns the last published progress, or nil.
func (j *Job) Progress() *messages.Progress { return j.progress.Load() }

// Checkpoint returns at once while the job is not paused. While it is
// paused it waits for Resume. It returns the context's cause if ctx ends
// first. Repositories call it between units of work (before each request).
func (j *Job) Checkpoint(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	ch := j.gate.wait.Load()
	if ch == nil {
		return nil
	}
	select {
	case <-*ch:
		return context.Cause(ctx)
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Pause makes Checkpoint block until Resume. Only the owning task actor
// calls it.
func (j *Job) Pause() {
	ch := make(chan struct{})
	j.gate.wait.CompareAndSwap(nil, &ch)
}

// Resume releases Checkpoint. Only the owning task actor calls it.
func (j *Job) Resume() {
	if ch := j.gate.wait.Swap(nil); ch != nil {
		close(*ch)
	}
}

// Paused reports whether Pause is in effect.
func (j *Job) Paused() bool { return j.gate.wait.Load() != nil }

type gate struct {
	wait atomic.Pointer[chan struct{}]
}

// Counts are one task section's document counters (connectors.xsd
// DocumentCount), updated atomically while the action runs.
type Counts struct {
	Task          string
	Seen          atomic.Uint64
	Added         atomic.Uint64
	Updated       atomic.Uint64
	Deleted       atomic.Uint64
	Unchanged     atomic.Uint64
	Collected     atomic.Uint64
	Inserted      atomic.Uint64
	Holds         atomic.Uint64
	ReleasedHolds atomic.Uint64
	IngestAdded   atomic.Uint64
	IngestUpdated atomic.Uint64
	IngestDeleted atomic.Uint64
	IngestFailed  atomic.Uint64
	Errors        atomic.Uint64
	Stubbed       atomic.Uint64
}

// Snapshot copies the counters into a message.
func (c *Counts) Snapshot() *messages.DocumentCount {
	return &messages.DocumentCount{
		Task:          c.Task,
		Seen:          c.Seen.Load(),
		Added:         c.Added.Load(),
		Updated:       c.Updated.Load(),
		Deleted:       c.Deleted.Load(),
		Unchanged:     c.Unchanged.Load(),
		Collected:     c.Collected.Load(),
		Inserted:      c.Inserted.Load(),
		Holds:         c.Holds.Load(),
		Releasedholds: c.ReleasedHolds.Load(),
		Ingestadded:   c.IngestAdded.Load(),
		Ingestupdated: c.IngestUpdated.Load(),
		Ingestdeleted: c.IngestDeleted.Load(),
		Ingestfailed:  c.IngestFailed.Load(),
		Errors:        c.Errors.Load(),
		Stubbed:       c.Stubbed.Load(),
	}
}

// Restore sets the counters from a message (used when an interrupted action
// is run again after a crash, so its counts continue).
func (c *Counts) Restore(m *messages.DocumentCount) {
	c.Seen.Store(m.Seen)
	c.Added.Store(m.Added)
	c.Updated.Store(m.Updated)
	c.Deleted.Store(m.Deleted)
	c.Unchanged.Store(m.Unchanged)
	c.Collected.Store(m.Collected)
	c.Inserted.Store(m.Inserted)
	c.Holds.Store(m.Holds)
	c.ReleasedHolds.Store(m.Releasedholds)
	c.IngestAdded.Store(m.Ingestadded)
	c.IngestUpdated.Store(m.Ingestupdated)
	c.IngestDeleted.Store(m.Ingestdeleted)
	c.IngestFailed.Store(m.Ingestfailed)
	c.Errors.Store(m.Errors)
	c.Stubbed.Store(m.Stubbed)
}
