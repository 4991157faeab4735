// Package benchrepo holds the fetch.Repository the in-process benchmarks
// queue actions on. It does no work: an action either ends at once
// (Instant) or runs until it is stopped (Block), so that what is measured
// is the queue, not a crawl. It is bench code, never linked into the
// shipped binary.
package benchrepo

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
)

// FetchAction is the only fetch action Repo performs, and Task the task
// section it reports counts for.
const (
	FetchAction = "SYNCHRONIZE"
	Task        = "BENCH"
)

// Repo is a no-op repository, safe for concurrent use.
type Repo struct {
	// Block makes Run wait until its context ends (a long action that
	// only Stop or shutdown ends); otherwise Run returns at once.
	Block bool
	// Started, when set, is called as Run begins.
	Started func(token string)
	// Observed, when set, is called by a blocking Run when it sees its
	// context end, with the time it saw it.
	Observed func(token string, at time.Time)

	ran atomic.Int64
}

var _ fetch.Repository = (*Repo)(nil)

// FetchActions implements fetch.Repository.
func (r *Repo) FetchActions() []string { return []string{FetchAction} }

// Validate implements fetch.Repository: every parameter is accepted.
func (r *Repo) Validate(string, messages.Params) ([]string, error) {
	return []string{Task}, nil
}

// Run implements fetch.Repository.
func (r *Repo) Run(ctx context.Context, job *fetch.Job) ([]*messages.Element, error) {
	defer r.ran.Add(1)
	if r.Started != nil {
		r.Started(job.Token)
	}
	if !r.Block {
		return nil, nil
	}
	<-ctx.Done()
	if r.Observed != nil {
		r.Observed(job.Token, time.Now())
	}
	return nil, context.Cause(ctx)
}

// Ran returns how many Run calls have returned.
func (r *Repo) Ran() int64 { return r.ran.Load() }

// Spec returns the ActionSpec of one benchmark action, as the ACI front
// end would build it for /action=Fetch&FetchAction=Synchronize.
func Spec() *messages.ActionSpec {
	return &messages.ActionSpec{Action: "FETCH", FetchAction: FetchAction, Tasks: []string{Task}}
}
