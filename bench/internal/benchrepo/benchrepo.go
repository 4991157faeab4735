// Package benchrepo holds the fetch.Repository the in-process benchmarks
// queue actions on: the shared test double (fetchtest.Repo) set up to do
// no work. An action either ends at once with no result, or runs until it
// is stopped (Block), so that what is measured is the queue, not a crawl.
// It is bench code, never linked into the shipped binary.
package benchrepo

import (
	"time"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/fetch/fetchtest"
	"github.com/connectorhq/connector/messages"
)

// FetchAction is the only fetch action Repo performs, and Task the task
// section it reports counts for.
const (
	FetchAction = fetch.ActionSynchronize
	Task        = "BENCH"
)

// Repo is a no-op repository, safe for concurrent use (Ran counts the
// Run calls that returned).
type Repo = fetchtest.Repo

// Options shape a Repo.
type Options struct {
	// Block makes Run wait until its context ends (a long action that
	// only Stop or shutdown ends); otherwise Run returns at once.
	Block bool
	// Started, when set, is called as Run begins.
	Started func(token string)
	// Observed, when set, is called by a blocking Run when it sees its
	// context end, with the time it saw it.
	Observed func(token string, at time.Time)
}

// New returns a no-op repository. It keeps no per-action record (the
// benchmarks submit millions of actions).
func New(o Options) *Repo {
	mode := "nothing"
	if o.Block {
		mode = "untilstop"
	}
	return &fetchtest.Repo{Actions: []string{FetchAction}, Tasks: []string{Task}, DefaultMode: mode,
		OnRun: o.Started, OnStop: o.Observed, Untracked: true}
}

// Spec returns the ActionSpec of one benchmark action, as the ACI front
// end would build it for /action=Fetch&FetchAction=Synchronize.
func Spec() *messages.ActionSpec {
	return &messages.ActionSpec{Action: "FETCH", FetchAction: FetchAction, Tasks: []string{Task}}
}
