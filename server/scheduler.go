package server

import (
	"log/slog"
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
// does not run a task twice at once. Missed times while the server was down
// are not caught up: the next run is the next time still ahead.
type scheduler struct {
	q      *queue.Queue
	repo   fetch.Repository
	log    *slog.Logger
	runs   []*schedRun
	timers []*time.Timer
}

type schedRun struct {
	fetch.Schedule
	done  int
	token string // last submitted
}

type schedFire struct{ i int }

func startScheduler(sys *actor.ActorSystem, q *queue.Queue, repo fetch.Repository, schedules []fetch.Schedule, log *slog.Logger) (*actor.PID, error) {
	s := &scheduler{q: q, repo: repo, log: log}
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
		for i, r := range s.runs {
			s.arm(ctx, i, next(r.Schedule, now, 0))
			s.log.Info("task scheduled", "task", r.Task, "first", r.Start, "every", r.Every, "cycles", r.Cycles)
		}
	case *schedFire:
		s.fire(ctx, m.i)
	case *actor.Stopping:
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
// runs are not caught up); a one-off Start in the past never runs.
func next(sc fetch.Schedule, now time.Time, done int) time.Time {
	if sc.Cycles > 0 && done >= sc.Cycles || done > 0 && sc.Every <= 0 {
		return time.Time{}
	}
	switch {
	case sc.Start.IsZero() && done == 0:
		return now
	case sc.Start.IsZero():
		return now.Add(sc.Every)
	case sc.Start.After(now):
		return sc.Start
	case sc.Every <= 0:
		return time.Time{}
	}
	k := now.Sub(sc.Start)/sc.Every + 1
	return sc.Start.Add(k * sc.Every)
}

func (s *scheduler) arm(ctx actor.Context, i int, at time.Time) {
	if at.IsZero() {
		return
	}
	self, root := ctx.Self(), ctx.ActorSystem().Root
	s.timers[i] = time.AfterFunc(time.Until(at), func() { root.Send(self, &schedFire{i: i}) })
}

func (s *scheduler) fire(ctx actor.Context, i int) {
	r := s.runs[i]
	r.done++
	busy := false
	if r.token != "" {
		if st, err := s.q.Status(r.token); err == nil && !messages.Terminal(st.State) {
			busy = true
		}
	}
	if busy {
		s.log.Warn("scheduled run skipped: the previous run is still going", "task", r.Task, "token", r.token)
	} else {
		params := messages.Params{{Name: "TaskSections", Value: r.Task}}
		tasks, err := s.repo.Validate("SYNCHRONIZE", params)
		var tok string
		if err == nil {
			tok, err = s.q.Submit(&messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE", Params: params, Tasks: tasks})
		}
		if err != nil {
			s.log.Error("scheduled run not submitted", "task", r.Task, "err", err)
		} else {
			r.token = tok
			s.log.Info("scheduled run submitted", "task", r.Task, "token", tok, "cycle", r.done)
		}
	}
	if r.Every > 0 {
		s.arm(ctx, i, next(r.Schedule, time.Now(), r.done))
	}
}
