package fetch

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/connectorhq/connector/messages"
)

// The failures an action lists are bounded, so that the ended actions the
// queue keeps (MaximumFinishedActions) stay small: the first MaxFailures
// distinct (task, URL, reason) triples are listed with their counts, as
// long as their URLs and reasons add up to at most MaxFailureBytes; later
// ones are only counted in the total. A reason is cut at MaxFailureReason
// bytes.
const (
	MaxFailures      = 20
	MaxFailureBytes  = 8 << 10
	MaxFailureReason = 300
)

// failures collects a job's failures. Writers (the repository's workers,
// several goroutines) take mu; readers (the task actor answering GetStatus)
// load the last published snapshot and never wait for a writer.
type failures struct {
	mu    sync.Mutex
	items []*messages.Failure
	index map[failureKey]int
	bytes int // of the listed URLs and reasons
	total uint64
	snap  atomic.Pointer[FailureList]
}

type failureKey struct{ task, url, reason string }

// FailureList is a snapshot of an action's failures: the listed ones, in
// the order they first happened, and the total number of failures.
type FailureList struct {
	Items []*messages.Failure
	Total uint64
}

// Fail records that url failed for reason while the job worked on task. A
// repeat of the same (task, URL, reason) adds to its count; beyond
// MaxFailures distinct ones, a failure is only counted in the total.
// Repositories call it for every item they give up on (a page not fetched,
// not stored or not delivered), next to the errors count it goes with.
func (j *Job) Fail(task, url, reason string) {
	if len(reason) > MaxFailureReason {
		reason = strings.ToValidUTF8(reason[:MaxFailureReason], "") + "…"
	}
	f := &j.failures
	f.mu.Lock()
	defer f.mu.Unlock()
	f.total++
	k := failureKey{strings.ToUpper(task), url, reason}
	if i, ok := f.index[k]; ok {
		f.items[i].Count++
	} else if len(f.items) < MaxFailures && f.bytes+len(url)+len(reason) <= MaxFailureBytes {
		if f.index == nil {
			f.index = map[failureKey]int{}
		}
		f.index[k] = len(f.items)
		f.bytes += len(url) + len(reason)
		f.items = append(f.items, &messages.Failure{Task: k.task, Url: url, Reason: reason, Count: 1})
	}
	f.publish()
}

// publish stores a deep copy of the current failures as the snapshot
// readers see. Called with mu held.
func (f *failures) publish() {
	items := make([]*messages.Failure, len(f.items))
	for i, it := range f.items {
		items[i] = &messages.Failure{Task: it.Task, Url: it.Url, Reason: it.Reason, Count: it.Count}
	}
	f.snap.Store(&FailureList{Items: items, Total: f.total})
}

// Failures returns the job's failures so far (nil when there are none).
// The snapshot must not be changed.
func (j *Job) Failures() *FailureList { return j.failures.snap.Load() }

// RestoreFailures sets the failures from a stored status (an interrupted
// action run again after a crash continues its list and total).
func (j *Job) RestoreFailures(items []*messages.Failure, total uint64) {
	if len(items) == 0 && total == 0 {
		return
	}
	f := &j.failures
	f.mu.Lock()
	defer f.mu.Unlock()
	f.items, f.index, f.bytes, f.total = nil, map[failureKey]int{}, 0, total
	for _, it := range items {
		if it == nil || len(f.items) >= MaxFailures || f.bytes+len(it.Url)+len(it.Reason) > MaxFailureBytes {
			continue
		}
		k := failureKey{it.Task, it.Url, it.Reason}
		if _, dup := f.index[k]; dup {
			continue
		}
		f.index[k] = len(f.items)
		f.bytes += len(it.Url) + len(it.Reason)
		f.items = append(f.items, &messages.Failure{Task: it.Task, Url: it.Url, Reason: it.Reason, Count: it.Count})
	}
	f.publish()
}
