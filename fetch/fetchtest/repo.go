// Package fetchtest holds what tests of the fetch contract share: Repo,
// the one test double of fetch.Repository (used by the queue, the front
// end, the server and the benchmarks), and Run, the conformance suite
// that every connector's repository runs (docs/adding-a-connector.md).
package fetchtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
)

// Task is the task section Repo reports counts for unless Tasks says
// otherwise.
const Task = "MYTASK"

// Repo is a fetch.Repository double, safe for concurrent use; its zero
// value performs SYNCHRONIZE for task MYTASK and finishes each action at
// once. The Mode parameter of an action picks its behaviour (DefaultMode
// when it has none):
//
//	instant     finish at once, with one tasks/success element
//	nothing     finish at once, with no result element
//	block       run until Release or Stop, honouring Pause (Checkpoint)
//	untilstop   run until the context ends, nothing else
//	ignorectx   run until Release, ignoring the context
//	count       add Seen 7 and Added 3, publish progress, then block
//	stages      publish Staged as progress, then block
//	stagesfail  publish Staged, wait for Release, then fail
//	panic       panic
//	fail        return an error
//
// RunFunc, when set, replaces the modes.
type Repo struct {
	// Actions are the fetch actions; default SYNCHRONIZE.
	Actions []string
	// Tasks are what Validate returns for an action without a
	// TaskSections parameter (with one: its sections, upper case);
	// default MYTASK.
	Tasks []string
	// ValidateFunc, when set, replaces the default Validate.
	ValidateFunc func(fetchAction string, params messages.Params) ([]string, error)
	// RunFunc, when set, performs every action (after Repo's bookkeeping).
	RunFunc func(ctx context.Context, job *fetch.Job) ([]*messages.Element, error)
	// DefaultMode is the mode of an action without a Mode parameter;
	// default instant.
	DefaultMode string
	// Staged is the progress the stages modes publish.
	Staged *messages.Progress
	// OnRun, when set, is called as Run begins.
	OnRun func(token string)
	// OnStop, when set, is called by the untilstop mode when it sees its
	// context end, with the time it saw it.
	OnStop func(token string, at time.Time)
	// Untracked keeps no start order and no causes (benchmarks submit
	// millions of actions); Started and Cause then report nothing.
	Untracked bool

	mu      sync.Mutex
	gates   map[string]chan struct{}
	order   []string
	causes  map[string]error
	running atomic.Int32
	maxRun  atomic.Int32
	ran     atomic.Int64
}

var _ fetch.Repository = (*Repo)(nil)

// FetchActions implements fetch.Repository.
func (r *Repo) FetchActions() []string {
	if len(r.Actions) == 0 {
		return []string{fetch.ActionSynchronize}
	}
	return r.Actions
}

// Validate implements fetch.Repository.
func (r *Repo) Validate(fetchAction string, params messages.Params) ([]string, error) {
	if r.ValidateFunc != nil {
		return r.ValidateFunc(fetchAction, params)
	}
	if ts := params.Value("TaskSections"); ts != "" {
		var tasks []string
		for t := range strings.SplitSeq(ts, ",") {
			if t = strings.TrimSpace(t); t != "" {
				tasks = append(tasks, strings.ToUpper(t))
			}
		}
		return tasks, nil
	}
	if len(r.Tasks) == 0 {
		return []string{Task}, nil
	}
	return r.Tasks, nil
}

func (r *Repo) gate(token string) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gates == nil {
		r.gates = map[string]chan struct{}{}
	}
	g, ok := r.gates[token]
	if !ok {
		g = make(chan struct{})
		r.gates[token] = g
	}
	return g
}

// Release lets the action of token finish (block, ignorectx,
// stagesfail), whether it has started or not; releasing twice is harmless.
func (r *Repo) Release(token string) {
	g := r.gate(token)
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-g:
	default:
		close(g)
	}
}

// Gate is closed when the action of token is released.
func (r *Repo) Gate(token string) <-chan struct{} { return r.gate(token) }

// ReleaseAll releases every action that waits for Release and has not
// been released.
func (r *Repo) ReleaseAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.gates {
		select {
		case <-g:
		default:
			close(g)
		}
	}
}

// Started returns the tokens of the actions run so far, in start order.
func (r *Repo) Started() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.order...)
}

// Cause returns the context cause an action of token ended with (nil
// while it runs, or when its context did not end).
func (r *Repo) Cause(token string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.causes[token]
}

// Running returns how many Run calls are in progress.
func (r *Repo) Running() int32 { return r.running.Load() }

// MaxRunning returns the most Run calls that were in progress at once.
func (r *Repo) MaxRunning() int32 { return r.maxRun.Load() }

// Ran returns how many Run calls have returned.
func (r *Repo) Ran() int64 { return r.ran.Load() }

// ErrSiteUnreachable is the error of the fail modes.
var ErrSiteUnreachable = errors.New("site unreachable")

// URLWithPassword is the URL of the "failurl" and "panicurl" modes'
// error and panic: its password (PasswordInURL) must never show in a
// status, a log or the store.
const URLWithPassword = "http://crawler:" + PasswordInURL + "@site.example/private"

// PasswordInURL is URLWithPassword's password.
const PasswordInURL = "hunter2-url-secret"

// Run implements fetch.Repository.
func (r *Repo) Run(ctx context.Context, job *fetch.Job) ([]*messages.Element, error) {
	defer r.ran.Add(1)
	n := r.running.Add(1)
	defer r.running.Add(-1)
	for {
		m := r.maxRun.Load()
		if n <= m || r.maxRun.CompareAndSwap(m, n) {
			break
		}
	}
	if r.OnRun != nil {
		r.OnRun(job.Token)
	}
	if !r.Untracked {
		r.mu.Lock()
		r.order = append(r.order, job.Token)
		r.mu.Unlock()
		defer func() {
			r.mu.Lock()
			if r.causes == nil {
				r.causes = map[string]error{}
			}
			r.causes[job.Token] = context.Cause(ctx)
			r.mu.Unlock()
		}()
	}
	if r.RunFunc != nil {
		return r.RunFunc(ctx, job)
	}
	results := []*messages.Element{{Name: "tasks", Children: []*messages.Element{{Name: "success", Text: "doc1", List: true}}}}
	mode := job.Params.Value("Mode")
	if mode == "" {
		mode = r.DefaultMode
	}
	switch mode {
	case "instant", "":
		return results, nil
	case "nothing":
		return nil, nil
	case "panic":
		panic("repository exploded")
	case "fail":
		return nil, ErrSiteUnreachable
	case "failurl": // an error naming a URL with its password
		return nil, fmt.Errorf("GET %s: %w", URLWithPassword, ErrSiteUnreachable)
	case "panicurl":
		panic("fetching " + URLWithPassword + ": index out of range")
	case "stages", "stagesfail":
		job.SetProgress(r.Staged)
		if mode == "stagesfail" {
			<-r.gate(job.Token)
			return nil, ErrSiteUnreachable
		}
		return r.Block(ctx, job, results)
	case "count":
		if c := job.Counts(firstTask(job)); c != nil {
			c.Seen.Add(7)
			c.Added.Add(3)
		}
		job.SetProgress(&messages.Progress{Percent: 42, Stage: "crawling"})
		return r.Block(ctx, job, results)
	case "block":
		return r.Block(ctx, job, results)
	case "untilstop":
		<-ctx.Done()
		if r.OnStop != nil {
			r.OnStop(job.Token, time.Now())
		}
		return nil, context.Cause(ctx)
	case "ignorectx":
		<-r.gate(job.Token)
		return results, nil
	}
	return nil, fmt.Errorf("unknown mode %q", mode)
}

// firstTask is the first task the job reports counts for.
func firstTask(job *fetch.Job) string {
	if cs := job.AllCounts(); len(cs) > 0 {
		return cs[0].Task
	}
	return Task
}

// Block waits until the action of job is released (results) or stopped, honouring
// pauses.
func (r *Repo) Block(ctx context.Context, job *fetch.Job, results []*messages.Element) ([]*messages.Element, error) {
	g := r.gate(job.Token)
	for {
		if err := job.Checkpoint(ctx); err != nil {
			return results[:0], err
		}
		select {
		case <-g:
			if err := job.Checkpoint(ctx); err != nil { // honour a pause that came meanwhile
				return results[:0], err
			}
			return results, nil
		case <-ctx.Done():
			return results[:0], context.Cause(ctx)
		case <-time.After(time.Millisecond): // loop to honour Checkpoint (pause)
		}
	}
}
