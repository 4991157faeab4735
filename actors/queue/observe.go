package queue

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/connectorhq/connector/messages"
)

// Observer hears of the queue's events, for metrics. Its methods are
// called from the QueueManager (and Committed from its writer goroutine),
// so they must be quick and safe for concurrent use: counters and
// histograms, never I/O or locks held for long.
type Observer interface {
	// Submitted: an action was accepted (its token given out).
	Submitted(fetchAction string)
	// Rejected: a submission was refused; reason is "queue_full",
	// "shutting_down" or "store".
	Rejected(reason string)
	// Started: an action started to run after waiting wait.
	Started(fetchAction string, wait time.Duration)
	// Ended: an action ended and its worker (if any) has exited; st is its
	// final status (state, times, counts).
	Ended(spec *messages.ActionSpec, st *messages.ActionStatus)
	// Stopped: a Stop (or shutdown) took d from the action's stop to its
	// worker's exit.
	Stopped(d time.Duration)
	// Committed: a group commit of n changes took d (fsync included).
	Committed(n int, d time.Duration, err error)
}

type noObserver struct{}

func (noObserver) Submitted(string)                                   {}
func (noObserver) Rejected(string)                                    {}
func (noObserver) Started(string, time.Duration)                      {}
func (noObserver) Ended(*messages.ActionSpec, *messages.ActionStatus) {}
func (noObserver) Stopped(time.Duration)                              {}
func (noObserver) Committed(int, time.Duration, error)                {}

// observeChange reports what a task's change means: a start, a stop
// requested while the worker still runs, or the action's end (once its
// worker has exited), which is also logged, once, as one line.
func (m *manager) observeChange(e *entry, old messages.State, st *messages.ActionStatus, live bool) {
	var stopAt time.Time
	if e.x != nil {
		stopAt = e.x.stopAt
	}
	switch m.sh.observe(m.cfg.Observer, e.spec, old, st, live, e.startedMs, e.endSeen, stopAt) {
	case observedStopping:
		e.more().stopAt = time.Now() // the worker unwinds; its exit ends the action
	case observedEnd:
		e.endSeen = true
	}
}

// observed is what a change reported to the Observer leaves its
// QueueManager to record in the action's entry.
type observed uint8

const (
	observedNothing observed = iota
	// observedStopping: the action was stopped while its worker runs;
	// the entry records when (its stopAt), for the stop's duration.
	observedStopping
	// observedEnd: the action's end was reported (the entry's endSeen).
	observedEnd
)

// observe tells o what a change of an action means, for the QueueManager
// of either mode (manager, cmanager), which keeps the action's entry:
// startedMs is the start o was last told of (a new one, not queued, is
// a start); endSeen, whether its end was reported already; stopAt, when
// a stop found its worker running (zero: none did). An end is reported
// once the worker has exited (live is false), with the stop's duration
// when there was one, and logged as one line (logEnd).
func (sh *shared) observe(o Observer, spec *messages.ActionSpec, old messages.State, st *messages.ActionStatus, live bool,
	startedMs int64, endSeen bool, stopAt time.Time) observed {
	if st.StartedUnixMs != 0 && st.StartedUnixMs != startedMs && st.State != messages.State_STATE_QUEUED {
		o.Started(spec.FetchAction, time.Duration(st.StartedUnixMs-st.QueuedUnixMs)*time.Millisecond)
	}
	if !messages.Terminal(st.State) || endSeen {
		return observedNothing
	}
	if live {
		if !messages.Terminal(old) {
			return observedStopping
		}
		return observedNothing
	}
	if !stopAt.IsZero() {
		o.Stopped(time.Since(stopAt))
	}
	sh.ended(o, spec, st)
	return observedEnd
}

// ended reports an action's end to o, and logs it (logEnd).
func (sh *shared) ended(o Observer, spec *messages.ActionSpec, st *messages.ActionStatus) {
	o.Ended(spec, st)
	sh.logEnd(spec, st)
}

// logEnd writes the one line that reports an action's end: token, fetch
// action, tasks, who submitted it (client and role), status, times and
// counts.
func (sh *shared) logEnd(spec *messages.ActionSpec, st *messages.ActionStatus) {
	if !sh.log.Enabled(context.Background(), slog.LevelInfo) {
		return // the line is not written: build none of it (every action's end passes here)
	}
	var c messages.DocumentCount
	for _, dc := range st.Counts {
		c.Seen += dc.Seen
		c.Added += dc.Added
		c.Updated += dc.Updated
		c.Deleted += dc.Deleted
		c.Unchanged += dc.Unchanged
		c.Collected += dc.Collected
		c.Inserted += dc.Inserted
		c.Ingestadded += dc.Ingestadded + dc.Ingestupdated + dc.Ingestdeleted
		c.Ingestfailed += dc.Ingestfailed
		c.Errors += dc.Errors
	}
	secs := func(from, to int64) float64 {
		if from == 0 || to < from {
			return 0
		}
		return float64(to-from) / 1000
	}
	wait := 0.0 // never started: no wait to report
	if st.StartedUnixMs != 0 {
		wait = secs(st.QueuedUnixMs, st.StartedUnixMs)
	}
	attrs := []any{
		"token", st.Token, "action", spec.FetchAction, "tasks", strings.Join(spec.Tasks, ","),
		"client", spec.Client, "role", spec.Role, "status", messages.StatusName(st.State),
		"queued", time.UnixMilli(st.QueuedUnixMs).UTC(), "wait_s", wait,
		"run_s", secs(st.StartedUnixMs, st.EndedUnixMs), "restarts", st.Restarts,
		slog.Group("counts", "seen", c.Seen, "added", c.Added, "updated", c.Updated, "deleted", c.Deleted,
			"unchanged", c.Unchanged, "collected", c.Collected, "inserted", c.Inserted,
			"ingested", c.Ingestadded, "ingest_failed", c.Ingestfailed, "errors", c.Errors),
	}
	if st.Error != "" {
		attrs = append(attrs, "error", st.Error)
	}
	sh.log.Info("action ended", attrs...)
}
