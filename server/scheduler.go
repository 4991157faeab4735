package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/connectorhq/connector/actors/queue"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
)

// scheduler is an actor that submits each scheduled task's Synchronize at
// its times, through the queue like any client, so scheduled runs show in
// QueueInfo. A run that comes due while the previous run of the same task
// is still queued or running is skipped (one cycle is used up), as IDOL
// does not run a task twice at once. Until the scheduler has submitted a
// run of a task, the previous run is a Synchronize of the task (not of
// some of its Identifiers) queued before the scheduler started that is
// still queued, running or paused (unendedRun): after a restart, one
// restored from before it. When the queue cannot tell whether the
// previous run still goes (it could not list or read its actions), the
// scheduler asks again until it can, and the run is submitted then. A
// submission the queue refuses for the moment (full, its store failing,
// no answer in time: retrySubmit) is tried again the same way, each time
// after a look for a Synchronize of the task queued meanwhile (one the
// failed submission may have queued after all, which may have ended
// already), which is then the run.
// Missed times while the server was down are not caught up: the next run
// is the next time still ahead. A time that passed while the server was
// starting (after the repository read its schedules, while the queue was
// restored) was not missed: its run is submitted as soon as the
// scheduler starts.
//
// In a cluster every node has the schedules (one configuration) and fires
// at the same times; one of them submits each run. rank orders the nodes
// (0 for the first): a node of rank r waits r*schedStagger before its
// check, and skips the run when a Synchronize of the task has been queued
// since it fell due (submittedSince), by whichever node. The check and
// the submission are made in the cluster's turn of the task (turn, one
// node at a time): the ranks are each node's own view of the members,
// which may differ while a node joins or leaves (two nodes of rank 0),
// and a check and submission may outlast the stagger (a slow store, a
// list waiting for a node that does not answer); the check of the next
// node then still came before the submission showed, and the run was
// submitted twice.
type scheduler struct {
	q      queue.API
	clu    *clusterSched // nil: a single node
	log    *slog.Logger
	runs   []*schedRun
	timers []*time.Timer
	start  time.Time // when it started
	// since is when the schedules were read (before the queue was
	// restored): a run that fell due since then runs as soon as the
	// scheduler starts. Zero: when it starts.
	since time.Time
	// ctx is cancelled when the scheduler stops: a submission waiting to
	// ask the queue again gives up.
	ctx    context.Context
	cancel context.CancelFunc
}

// clusterSched is what the scheduler of a cluster's node takes turns by.
type clusterSched struct {
	rank func() int // this node's rank among the members it sees
	// turn runs fn in the cluster's turn called name (store.Turns): no
	// other node's fn of that name runs meanwhile.
	turn func(name string, fn func() error) error
	// one is held by the run that takes a turn, one run of this node at
	// a time: a turn holds one of the store's pooled connections, and
	// the runs of many tasks that fall due together (every night at
	// 02:00) held them all, their submissions waiting for a connection.
	one chan struct{}
}

type schedRun struct {
	fetch.Schedule
	done     int
	due      time.Time // when the timer armed last fires
	token    string    // last submitted
	inflight bool      // a submission is under way
}

type (
	schedFire   struct{ i int }
	schedResult struct {
		i     int
		token string // "" when skipped or failed
	}
)

// startScheduler starts the scheduler of schedules, which submits their
// runs to q; clu is a cluster node's ranking and turns (nil on a single
// node). since is when the server began to read the schedules (zero:
// now): a run that fell due since, while the server was starting, is
// submitted at once, not missed.
func startScheduler(sys *actor.ActorSystem, q queue.API, schedules []fetch.Schedule, since time.Time, clu *clusterSched, log *slog.Logger) (*actor.PID, error) {
	s := &scheduler{q: q, clu: clu, log: log, since: since}
	if clu != nil {
		clu.one = make(chan struct{}, 1)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, sc := range schedules {
		s.runs = append(s.runs, &schedRun{Schedule: sc})
	}
	return sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return s }), "scheduler")
}

func (s *scheduler) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.timers = make([]*time.Timer, len(s.runs))
		now := time.Now()
		s.start = now
		from := now
		if !s.since.IsZero() && s.since.Before(now) {
			// The server was starting since then: a run that fell
			// due meanwhile is not one missed while it was down.
			from = s.since
		}
		for i, r := range s.runs {
			// The first run, not the start: a start may be past (the
			// first of its days, the day before).
			first := next(r.Schedule, from, 0)
			if first.IsZero() {
				s.log.Warn("task not scheduled: its one start time is past", "task", r.Task, "start", r.Start)
				continue
			}
			s.arm(ctx, i, first)
			s.log.Info("task scheduled", "task", r.Task, "first", first, "every", r.Every, "cycles", r.Cycles)
		}
	case *schedFire:
		s.fire(ctx, m.i)
	case *schedResult:
		r := s.runs[m.i]
		r.inflight = false
		if m.token != "" {
			r.token = m.token
		}
	case *actor.Stopping:
		s.cancel()
		for _, t := range s.timers {
			if t != nil {
				t.Stop()
			}
		}
	}
}

// next returns when a schedule runs next, after done runs, at now; zero
// when it is over. No Start: first run at once, then every Every. Start
// ahead: first run then. Start past: the next Start+k*Every ahead (missed
// runs are not caught up); a one-off Start in the past never runs. A
// repeat of a whole number of days steps in calendar days of Start's (or
// now's) location, so that it keeps its time of day across a change of
// daylight saving time (a nightly 02:00 run stays at 02:00; a start the
// clocks skipped on its day, Moved, runs at its written time on the days
// after); any other repeat is a fixed number of seconds.
func next(sc fetch.Schedule, now time.Time, done int) time.Time {
	if sc.Cycles > 0 && done >= sc.Cycles || done > 0 && sc.Every <= 0 {
		return time.Time{}
	}
	days := wholeDays(sc.Every)
	switch {
	case sc.Start.IsZero() && done == 0:
		return now
	case sc.Start.IsZero() && days > 0:
		return now.AddDate(0, 0, days)
	case sc.Start.IsZero():
		return now.Add(sc.Every)
	case sc.Start.After(now):
		return sc.Start
	case sc.Every <= 0:
		return time.Time{}
	}
	if days == 0 {
		// A start so long ago that the time since does not fit a
		// Duration (about 292 years) first moves ahead by whole
		// repeats, so that the count of them below cannot overflow.
		start := sc.Start
		leap := (math.MaxInt64 / 2 / sc.Every) * sc.Every
		for leap > 0 && now.Sub(start) > leap {
			start = start.Add(leap)
		}
		return start.Add((now.Sub(start)/sc.Every + 1) * sc.Every)
	}
	k := now.Sub(sc.Start)/sc.Every + 1
	// The k-th step in calendar days is at most the hour of a clock
	// change away from k*Every: the first one ahead of now is step k-1,
	// k or k+1.
	for n := max(1, int(k)-1); ; n++ {
		t := sc.Start.AddDate(0, 0, n*days)
		if sc.Moved > 0 {
			// The time of day written, which the clocks skipped on
			// Start's day (and are moved past again on a day they
			// skip it).
			y, mo, d := t.Date()
			h, mi, sec := t.Clock()
			t = time.Date(y, mo, d, h, mi, sec-int(sc.Moved/time.Second), t.Nanosecond(), t.Location())
		}
		if t.After(now) {
			return t
		}
	}
}

// wholeDays is how many days every is when it is a whole number of them,
// else 0.
func wholeDays(every time.Duration) int {
	const day = 24 * time.Hour
	if every <= 0 || every%day != 0 {
		return 0
	}
	return int(every / day)
}

func (s *scheduler) arm(ctx actor.Context, i int, at time.Time) {
	if at.IsZero() {
		return
	}
	s.runs[i].due = at
	self, root := ctx.Self(), ctx.ActorSystem().Root
	s.timers[i] = time.AfterFunc(time.Until(at), func() { root.Send(self, &schedFire{i: i}) })
}

// fire counts one cycle and submits it on a goroutine (asking the queue
// whether the previous run still goes, then submitting), so Receive never
// waits; the outcome comes back as a schedResult.
func (s *scheduler) fire(ctx actor.Context, i int) {
	r := s.runs[i]
	r.done++
	due := r.due
	if r.Every > 0 {
		s.arm(ctx, i, next(r.Schedule, time.Now(), r.done))
	}
	if r.inflight {
		s.log.Warn("scheduled run skipped: the previous submission is still under way", "task", r.Task)
		return
	}
	r.inflight = true
	self, root := ctx.Self(), ctx.ActorSystem().Root
	stopped, q, log, task, prev, cycle, start := s.ctx.Done(), s.q, s.log, r.Task, r.token, r.done, s.start
	clu, stagger := s.clu, time.Duration(0)
	if clu != nil {
		stagger = time.Duration(clu.rank()) * schedStagger
	}
	go func() {
		res := &schedResult{i: i}
		defer func() { root.Send(self, res) }()
		if stagger > 0 {
			// The nodes before this one submit the run first.
			t := time.NewTimer(stagger)
			select {
			case <-stopped:
				t.Stop()
				return
			case <-t.C:
			}
		}
		// A check that fails (a store down for a moment, a queue too busy
		// to answer in time) is asked again, ever less often, until it
		// answers or the scheduler stops: the run is not lost to it. So is
		// a submission the queue refuses for a moment (retrySubmit). Runs
		// that come due meanwhile are skipped as under way. (The queue is
		// asked without the scheduler's context, as before: a run that
		// came due as the server stops is still submitted, and restored
		// at the next start.)
		since, failed := start, false
		var tried time.Time // when the first submission that failed was made
		for wait := schedRetry; ; wait = min(2*wait, schedRetryMax) {
			// attempt checks and submits the run; true when that is
			// settled (submitted, skipped or refused for good), false
			// when it is asked again after wait.
			attempt := func() bool {
				var going string
				var err error
				if clu != nil {
					going, err = submittedSince(context.Background(), q, task, due.Add(-schedSkew))
					if err == nil && going != "" {
						log.Info("scheduled run skipped: another node of the cluster submitted it", "task", task, "token", going)
						res.token = going // the previous run, for the next time
						return true
					}
				}
				if err == nil && failed && clu == nil {
					// The failed submission may have been queued late,
					// and may have run already: a Synchronize of the
					// task queued since, ended or not, is the run (in a
					// cluster, submittedSince above took it).
					going, err = submittedSince(context.Background(), q, task, tried.Add(-time.Millisecond))
					if err == nil && going != "" {
						log.Warn("scheduled run skipped: a Synchronize of the task was queued since the failed submission (it may have queued it)", "task", task, "token", going)
						res.token = going
						return true
					}
				}
				if err == nil {
					going, err = previousRun(context.Background(), q, task, prev, since)
				}
				switch {
				case err == nil && going != "" && failed:
					log.Warn("scheduled run skipped: a Synchronize of the task is queued or running (the failed submission may have queued it)", "task", task, "token", going)
					res.token = going
					return true
				case err == nil && going != "" && prev == "":
					log.Warn("scheduled run skipped: a Synchronize of the task is still going (queued before the restart)", "task", task, "token", going)
					res.token = going // the previous run, for the next time
					return true
				case err == nil && going != "":
					log.Warn("scheduled run skipped: the previous run is still going", "task", task, "token", prev)
					return true
				case err == nil:
					params := messages.Params{{Name: "TaskSections", Value: task}}
					if !failed {
						tried = time.Now()
					}
					tok, serr := q.Submit(context.Background(), &messages.ActionSpec{FetchAction: fetch.ActionSynchronize, Params: params})
					if serr == nil {
						res.token = tok
						log.Info("scheduled run submitted", "task", task, "token", tok, "cycle", cycle)
						return true
					}
					if !retrySubmit(serr) {
						log.Error("scheduled run not submitted", "task", task, "err", serr)
						return true
					}
					// A failed submission may still have been queued (a
					// cluster's store that committed it, then failed to say
					// so): the next check takes a Synchronize of the task
					// queued until now for the run, not only one from
					// before the start.
					prev, since, failed = "", time.Now().Add(time.Millisecond), true
					log.Warn("scheduled run not submitted yet: the queue refused it for now; trying again", "task", task, "err", serr, "in", wait)
				default:
					log.Warn("scheduled run delayed: the queue could not tell whether the previous run still goes; asking again", "task", task, "err", err, "in", wait)
				}
				return false
			}
			done := false
			if clu == nil {
				done = attempt()
			} else {
				select {
				case <-stopped:
					log.Warn("scheduled run not submitted: the scheduler stopped", "task", task)
					return
				case clu.one <- struct{}{}:
				}
				terr := clu.turn("scheduled run of "+strings.ToUpper(task), func() error { done = attempt(); return nil })
				<-clu.one
				if terr != nil {
					log.Warn("scheduled run delayed: this node could not take the cluster's turn to check and submit it; asking again", "task", task, "err", terr, "in", wait)
				}
			}
			if done {
				return
			}
			t := time.NewTimer(wait)
			select {
			case <-stopped:
				t.Stop()
				log.Warn("scheduled run not submitted: the scheduler stopped", "task", task)
				return
			case <-t.C:
			}
		}
	}()
}

// retrySubmit reports whether a scheduled run whose submission failed
// with err is submitted again: the queue was full, its store failed, or
// it did not answer in time. Other refusals (the task's settings no
// longer valid, the server shutting down) would not change by asking
// again.
func retrySubmit(err error) bool {
	return errors.Is(err, messages.ErrQueueFull) || errors.Is(err, messages.ErrStore) || errors.Is(err, messages.ErrTimeout)
}

// schedRetry and schedRetryMax are the first and the longest waits
// before the scheduler asks again whether the previous run of a task
// still goes, when it could not tell.
const (
	schedRetry    = time.Second
	schedRetryMax = time.Minute
)

// schedStagger is how much later than the node before it a node of a
// cluster checks whether a run has been submitted: long enough for that
// node's check and submission, which then show in the shared store. If
// that node does not submit the run (it has no such schedule, it is
// going away), the next one does. schedSkew is how far apart the nodes'
// clocks may be: a run queued that long before the time it fell due by
// this node's clock is taken for the run too.
const (
	schedStagger = 5 * time.Second
	schedSkew    = time.Second
)

// previousRun returns the token of the previous run of task when it still
// goes (the run is then skipped, and logged so), or "" when a new run may
// be submitted: prev when it has not ended, else (before the scheduler
// submitted a run of its own) a Synchronize of the task queued before
// start (unendedRun). err says what could not be told.
func previousRun(ctx context.Context, q queue.API, task, prev string, start time.Time) (string, error) {
	if prev == "" {
		// No run of ours yet: one from before a restart may still go.
		tok, err := unendedRun(ctx, q, task, start)
		if err != nil {
			return "", fmt.Errorf("cannot tell whether a run of the task is queued or running: %w", err)
		}
		return tok, nil
	}
	st, err := q.Status(ctx, prev)
	switch {
	case errors.Is(err, messages.ErrUnknownToken): // gone: removed by retention
	case err != nil:
		return "", fmt.Errorf("cannot tell whether the previous run ended: %w", err)
	case !messages.Terminal(st.State):
		return prev, nil
	}
	return "", nil
}

// unendedRun returns the token of a Synchronize of task queued before
// start that is queued, running or paused, or "" if there is none. A
// Synchronize of some Identifiers of the task crawls nothing: it is no run
// of the schedule.
func unendedRun(ctx context.Context, q queue.API, task string, start time.Time) (string, error) {
	return runOfTask(ctx, q, task, &messages.ListActions{States: []messages.State{
		messages.State_STATE_QUEUED, messages.State_STATE_PROCESSING, messages.State_STATE_PAUSED,
	}, QueuedBeforeUnixMs: start.UnixMilli()}, false)
}

// submittedSince returns the token of a Synchronize of task queued after
// since, in any state (a run that already ended was the run too), or ""
// if there is none: in a cluster, the run another node submitted.
func submittedSince(ctx context.Context, q queue.API, task string, since time.Time) (string, error) {
	return runOfTask(ctx, q, task, &messages.ListActions{QueuedAfterUnixMs: since.UnixMilli()}, true)
}

// runOfTask returns the token of the first action f selects (oldest
// first) that is a Synchronize of task, not of some of its Identifiers,
// or "" if there is none. The parameters of an action that has ended are
// no longer kept: with ended, such an action counts (it is taken for a
// Synchronize of the whole task); without, it is passed over.
func runOfTask(ctx context.Context, q queue.API, task string, f *messages.ListActions, ended bool) (string, error) {
	const page = 1000
	f.Ascending, f.MaxResults = true, page
	for {
		list, err := q.List(ctx, f)
		if err != nil {
			return "", err
		}
		for _, st := range list {
			if st.FetchAction != fetch.ActionSynchronize {
				continue
			}
			if !slices.ContainsFunc(st.Counts, func(c *messages.DocumentCount) bool { return strings.EqualFold(c.Task, task) }) {
				continue
			}
			r, err := q.ActionParameters(ctx, st.Token)
			switch {
			case errors.Is(err, messages.ErrActionEnded) && ended:
				return st.Token, nil
			case errors.Is(err, messages.ErrUnknownToken), errors.Is(err, messages.ErrActionEnded):
				continue // gone or ended meanwhile
			case err != nil:
				return "", err
			case messages.TrimASCIISpace(messages.Params(r.Params).Value("Identifiers")) == "":
				return st.Token, nil
			}
		}
		if len(list) < page {
			return "", nil
		}
		f.Skip += page
	}
}
