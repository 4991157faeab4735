package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/panics"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/secret"
)

// Causes given to a running action's context, so a Repository can tell why
// it is being interrupted (context.Cause).
var (
	// ErrStopRequested: a client sent QueueAction=Stop.
	ErrStopRequested = errors.New("queue: stop requested")
	// ErrShutdown: the server is shutting down.
	ErrShutdown = errors.New("queue: server shutting down")
)

// shared is what every task actor of one queue needs and nobody mutates
// after the queue starts.
type shared struct {
	repo        fetch.Repository
	log         *slog.Logger
	now         func() time.Time
	stopTimeout time.Duration
	listEntry   ListEncoder // nil: no list entries (Config.ListEntry)
	// fetchActions: Config.fetchActions (nil: admit asks the repository).
	fetchActions []string
	// tokenHost, tokenPort and queue (upper case) make the tokens of
	// task actors that keep none (see task.tok).
	tokenHost string
	tokenPort int
	queue     string
}

// Local messages: they never leave the process.
type (
	// taskInit gives a task actor its identity (id, token) and its
	// owner, the QueueManager it reports to, explicitly (not found as its
	// parent), so that it does not depend on where or how it was spawned.
	// A new task actor gets them from its producer instead (newTaskOf),
	// before protoactor registers it by name; the cluster manager sends
	// taskInit to renew an actor that runs nothing (cmanager.renew).
	taskInit struct {
		sh     *shared
		owner  *actor.PID
		id     uuid.UUID
		token  string
		spec   *messages.ActionSpec
		status *messages.ActionStatus // queued status, or restored from the store
	}
	startTask    struct{}
	shutdownTask struct{} // stop a running action because the server stops
	pauseRun     struct{} // the queue was paused
	resumeRun    struct{} // the queue was resumed
	stopDeadline struct{} // StopTimeout passed while waiting for the worker
)

// task is the actor that owns one action. All fields belong to the actor's
// goroutine; the worker goroutine gets copies and the *fetch.Job, whose
// shared parts are atomics.
type task struct {
	sh        *shared
	owner     *actor.PID // the QueueManager this task reports to
	id        uuid.UUID
	token     string
	spec      *messages.ActionSpec
	state     messages.State
	priority  int32
	seq       uint64
	queuedMs  int64
	startedMs int64
	endedMs   int64
	// restarts sits with the flags: apart, their padding made a task (one
	// per action) a size class larger.
	restarts uint32
	started  bool // a worker was started: Paused means paused while running
	// The two reasons to be Paused (see apply): the action's own Pause
	// (selfPaused, until its Resume or the queue's), and the queue's Pause
	// (queuePaused, until the queue's Resume), which holds only an action
	// that runs; a queued one just does not start while the queue is
	// paused.
	selfPaused  bool
	queuePaused bool
	run         *run
	// out is what the action's run left (or its restored status held);
	// nil until it has any (outcome, got).
	out *outcome
}

// outcome is the part of a task that a worker's run leaves: a queued
// action (most task actors) has none of it. With these fields inline a
// task took 192 bytes; without, 128.
type outcome struct {
	errMsg   string
	counts   []*messages.DocumentCount // counts once the worker is gone
	failures *fetch.FailureList        // failures once the worker is gone
	results  []*messages.Element
	progress *messages.Progress
}

// noOutcome is what got returns for a task without one. Never written.
var noOutcome outcome

// got returns t's outcome for reading: &noOutcome when it has none.
func (t *task) got() *outcome {
	if t.out == nil {
		return &noOutcome
	}
	return t.out
}

// outcome returns t's outcome for writing, allocated on first use.
func (t *task) outcome() *outcome {
	if t.out == nil {
		t.out = &outcome{}
	}
	return t.out
}

// run is the worker of a running action. The Stop requests waiting for it
// to exit (stopWait) and their StopTimeout (stopTimer) live here, not in the
// task (one per queued action): only a running action has any.
type run struct {
	job       *fetch.Job
	cancel    context.CancelCauseFunc
	stopWait  []*actor.PID // Stop requests answered when the worker exits
	stopTimer *time.Timer
}

func newTask() actor.Actor { return &task{} }

// newTaskOf returns the task actor of an action, initialised as a taskInit
// would (the QueueManager hands it to protoactor through its producer, so
// that a spawn costs no init message).
func newTaskOf(sh *shared, owner *actor.PID, id uuid.UUID, token string, spec *messages.ActionSpec, st *messages.ActionStatus) *task {
	t := &task{}
	t.setup(sh, owner, id, token, spec, st)
	return t
}

// tok returns the action's token: the one the task keeps, or, for a task
// given none (an action submitted to the in-memory queue, whose token is
// made from its id: see manager.submit), the same token made again. A
// queued action's task keeps no token string (80 bytes per queued action)
// until a status or its run needs it, and keeps it from then on.
func (t *task) tok() string {
	if t.token != "" {
		return t.token
	}
	return messages.NewToken(t.sh.tokenHost, t.sh.tokenPort, t.sh.queue, t.id)
}

// setup initialises t, a zero task, as newTaskOf does.
func (t *task) setup(sh *shared, owner *actor.PID, id uuid.UUID, token string, spec *messages.ActionSpec, st *messages.ActionStatus) {
	t.sh, t.owner, t.id, t.token, t.spec = sh, owner, id, token, spec
	t.setStatus(st)
}

// Receive implements actor.Actor. It is the first line of defence: a
// panic while a task actor handles a message becomes the action's Error
// state instead of reaching protoactor's supervisor (whose default would
// silently restart the actor with fresh, wrong state). The recovery sits
// here rather than in a receiver middleware, with which protoactor gives
// every actor an extra context (~200 bytes per queued action, and CPU at
// every spawn).
func (t *task) Receive(ctx actor.Context) {
	defer func() {
		if r := recover(); r != nil {
			t.panicked(ctx, r)
		}
	}()
	t.receive(ctx)
}

func (t *task) receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if t.sh != nil { // initialised by its producer (newTaskOf)
			t.restoredEnded(ctx)
		}
	case *taskInit:
		t.init(m)
		t.restoredEnded(ctx)
	case *startTask:
		t.start(ctx)
	case *messages.WorkDone:
		t.done(ctx, m)
	case *stopDeadline:
		if t.run != nil {
			t.run.stopTimer = nil // a later Stop arms a new one
			waiting := t.run.stopWait
			t.run.stopWait = nil
			t.answerStops(ctx, waiting)
		}
	case *pauseRun:
		t.queuePaused = true
		t.apply(ctx, nil)
	case *resumeRun:
		// The queue's Resume resumes every paused action, its own pause
		// included.
		t.queuePaused, t.selfPaused = false, false
		t.apply(ctx, nil)
	case *shutdownTask:
		if t.run != nil && !messages.Terminal(t.state) {
			t.run.cancel(ErrShutdown)
			t.end(ctx, messages.State_STATE_STOPPED)
		}
	case *messages.GetActionStatus:
		ctx.Respond(&messages.ActionReply{Status: t.status()})
	case *messages.CancelAction:
		t.cancel(ctx)
	case *messages.StopAction:
		t.stop(ctx)
	case *messages.PauseAction:
		t.pause(ctx)
	case *messages.ResumeAction:
		switch {
		case messages.Terminal(t.state):
			t.refuse(ctx, messages.ErrActionEnded, t.endedAs())
		case t.state != messages.State_STATE_PAUSED:
			t.refuse(ctx, messages.ErrNotPaused, "the action is "+messages.StatusName(t.state))
		default:
			// An action the queue's Pause holds stays Paused until the
			// queue resumes; the reply's status says so.
			t.selfPaused = false
			t.apply(ctx, ctx.Sender())
		}
	case *messages.ChangePriority:
		switch {
		case messages.Terminal(t.state):
			t.refuse(ctx, messages.ErrActionEnded, t.endedAs())
		case t.started:
			t.refuse(ctx, messages.ErrNotQueued, "the action has already started")
		default:
			t.priority = m.Priority
			t.notifyReply(ctx, ctx.Sender())
		}
	case *messages.GetProgress:
		ctx.Respond(&messages.ActionReply{Status: t.status(), Progress: t.currentProgress()})
	case *messages.GetActionParameters:
		if messages.Terminal(t.state) {
			t.refuse(ctx, messages.ErrActionEnded, t.endedAs()+"; parameters are kept only for queued and running actions")
			return
		}
		ctx.Respond(&messages.ActionReply{Status: t.status(), Params: t.spec.Params})
	case *messages.DuplicateAction:
		t.duplicate(ctx)
	case *actor.Stopping:
		// The queue is going away (shutdown or retention): never leak a worker.
		if t.run != nil {
			t.run.cancel(ErrShutdown)
			if t.run.stopTimer != nil {
				t.run.stopTimer.Stop()
			}
		}
	}
}

// restoredEnded gives the QueueManager the list entry of an action restored
// as ended, as changed gives it for an action that ends.
func (t *task) restoredEnded(ctx actor.Context) {
	if t.sh.listEntry != nil && messages.Terminal(t.state) && t.endedMs != 0 {
		ctx.Send(t.owner, &messages.TaskListEntry{Id: t.id[:], Entry: t.sh.listEntry(make([]byte, 0, listEntrySize), t.status())})
	}
}

func (t *task) init(m *taskInit) {
	t.sh, t.owner, t.id, t.token, t.spec = m.sh, m.owner, m.id, m.token, m.spec
	t.setStatus(m.status)
}

// setStatus takes the action's queued or restored status (its fields, not
// s itself, so that a submission's status need not outlive the spawn).
func (t *task) setStatus(s *messages.ActionStatus) {
	t.state = s.State
	t.priority = s.Priority
	t.seq = s.Seq
	t.queuedMs, t.startedMs, t.endedMs = s.QueuedUnixMs, s.StartedUnixMs, s.EndedUnixMs
	t.restarts = s.Restarts
	t.selfPaused = s.State == messages.State_STATE_PAUSED // restored paused: resumed by a Resume
	// A renewed actor (cluster renew) keeps none of its old failures, and
	// takes its error, counts and results from s; its progress stays,
	// unless s has the one its worker ended with (a restored action, or
	// one renewed from the shared store).
	progress := t.got().progress
	if s.Progress != nil {
		progress = s.Progress
	}
	t.out = nil
	if s.Error != "" || s.Counts != nil || len(s.Failures) > 0 || s.FailuresTotal > 0 || s.Results != nil || progress != nil {
		o := t.outcome()
		o.errMsg, o.counts, o.results, o.progress = s.Error, s.Counts, s.Results, progress
		if len(s.Failures) > 0 || s.FailuresTotal > 0 {
			o.failures = &fetch.FailureList{Items: s.Failures, Total: s.FailuresTotal}
		}
	}
	t.started = false // no worker exists yet in this process
}

func (t *task) nowMs() int64 { return t.sh.now().UnixMilli() }

// start runs the action if it is still waiting. Every startTask is answered
// by exactly one SlotReleased, now or when the worker exits.
func (t *task) start(ctx actor.Context) {
	if t.state != messages.State_STATE_QUEUED || t.run != nil {
		ctx.Send(t.owner, &messages.SlotReleased{Id: t.id[:]})
		return
	}
	t.started = true
	t.startedMs = t.nowMs()
	t.endedMs = 0
	if t.token == "" {
		// Kept from now on: a run's statuses (each report) and its
		// finished action's need it, and few actions run at a time.
		t.token = t.tok()
	}
	job := fetch.NewJob(t.token, t.spec.FetchAction, t.spec.Params, t.spec.Tasks)
	job.Restarts = t.restarts
	for _, c := range t.got().counts { // continue counts of an interrupted run
		if jc := job.Counts(c.Task); jc != nil {
			jc.Restore(c)
		}
	}
	if fl := t.got().failures; fl != nil { // and its failures
		job.RestoreFailures(fl.Items, fl.Total)
	}
	runCtx, cancel := context.WithCancelCause(context.Background())
	t.run = &run{job: job, cancel: cancel}
	t.state = messages.State_STATE_PROCESSING
	if t.queuePaused { // not expected (nothing starts while the queue is paused), but never run then
		job.Pause()
		t.state = messages.State_STATE_PAUSED
	}
	t.notify(ctx)

	self, root, repo, log := ctx.Self(), ctx.ActorSystem().Root, t.sh.repo, t.sh.log
	go func() {
		d := &messages.WorkDone{}
		defer func() {
			if r := recover(); r != nil {
				d.Panic = panics.Text(r)
				log.Error("action panicked", "token", job.Token, "panic", d.Panic, "stack", string(debug.Stack()))
			}
			cancel(nil)
			root.Send(self, d)
		}()
		var err error
		d.Results, err = repo.Run(runCtx, job)
		if err != nil {
			// A connector's error may quote a URL with the password
			// the user configured: the status, the store and the log
			// keep it redacted, whichever connector made it.
			d.Error = secret.RedactURLs(err.Error())
			if d.Error == "" {
				d.Error = fmt.Sprintf("%T with no message", err)
			}
		}
	}()
}

// done records the worker's end. The action may already be Stopped (the
// user's Stop or shutdown): it keeps that state and takes the final counts.
func (t *task) done(ctx actor.Context, d *messages.WorkDone) {
	if t.run == nil {
		return
	}
	o := t.outcome()
	o.counts = t.run.job.Snapshot()
	o.progress = t.run.job.Progress()
	o.failures = t.run.job.Failures()
	t.logFailures()
	o.results = d.Results
	if t.run.stopTimer != nil {
		t.run.stopTimer.Stop()
	}
	waiting := t.run.stopWait
	t.run = nil
	if !messages.Terminal(t.state) {
		switch {
		case d.Panic != "":
			o.errMsg = "panic: " + d.Panic
			t.end(ctx, messages.State_STATE_ERROR)
		case d.Error != "":
			o.errMsg = d.Error
			t.end(ctx, messages.State_STATE_ERROR)
		default:
			t.end(ctx, messages.State_STATE_FINISHED)
		}
	} else if len(waiting) == 0 {
		t.notify(ctx) // final counts and results of a stopped action
	}
	t.answerStops(ctx, waiting) // carries the final counts too
	ctx.Send(t.owner, &messages.SlotReleased{Id: t.id[:]})
}

func (t *task) cancel(ctx actor.Context) {
	switch {
	case messages.Terminal(t.state):
		t.refuse(ctx, messages.ErrActionEnded, t.endedAs())
	case t.started:
		t.refuse(ctx, messages.ErrActionRunning, "the action has started")
	default:
		t.state, t.endedMs = messages.State_STATE_CANCELLED, t.nowMs()
		t.notifyReply(ctx, ctx.Sender())
	}
}

// stop ends the action at once (its status reads Stopped from now on). A
// running worker has its context cancelled, which aborts in-flight I/O; the
// reply waits until the worker has exited, so when a client reads the reply
// no further work of this action starts. StopTimeout bounds that wait.
func (t *task) stop(ctx actor.Context) {
	switch {
	case messages.Terminal(t.state) && t.run == nil:
		t.refuse(ctx, messages.ErrActionEnded, t.endedAs())
		return
	case t.run == nil:
		t.state, t.endedMs = messages.State_STATE_STOPPED, t.nowMs()
		t.notifyReply(ctx, ctx.Sender())
		return
	}
	if !messages.Terminal(t.state) {
		t.run.cancel(ErrStopRequested)
		t.end(ctx, messages.State_STATE_STOPPED)
	}
	if ctx.Sender() != nil {
		t.run.stopWait = append(t.run.stopWait, ctx.Sender())
	}
	if t.run.stopTimer == nil {
		self, root := ctx.Self(), ctx.ActorSystem().Root
		t.run.stopTimer = time.AfterFunc(t.sh.stopTimeout, func() { root.Send(self, &stopDeadline{}) })
	}
}

// answerStops answers the Stop requests waiting for the worker (when it
// has exited, or StopTimeout passed), taken out of the run by the caller,
// through the QueueManager so the answer follows the durable record of the
// stop.
func (t *task) answerStops(ctx actor.Context, waiting []*actor.PID) {
	if len(waiting) == 0 {
		return
	}
	tc := t.changed()
	tc.ReplyTo = waiting
	ctx.Send(t.owner, tc)
}

func (t *task) pause(ctx actor.Context) {
	if messages.Terminal(t.state) {
		t.refuse(ctx, messages.ErrActionEnded, t.endedAs())
		return
	}
	already := t.state == messages.State_STATE_PAUSED
	t.selfPaused = true
	if already {
		ctx.Respond(&messages.ActionReply{Status: t.status()})
		return
	}
	t.apply(ctx, ctx.Sender())
}

// apply brings a live action's state in line with its pause flags: Paused
// while its own Pause holds, or while the queue's holds and a worker runs
// it; otherwise Processing with a worker, Queued without. The worker's
// gate follows. The QueueManager hears of a change, and replyTo (if any)
// gets the status once it is recorded. Since the QueueManager's pause and
// resume messages reach the action in the order they were sent, and the
// action's own requests are handled in the order they arrive, the state
// after any interleaving is the one the last of them implies.
func (t *task) apply(ctx actor.Context, replyTo *actor.PID) {
	if messages.Terminal(t.state) {
		if replyTo != nil {
			t.refuse(ctx, messages.ErrActionEnded, t.endedAs())
		}
		return
	}
	want := messages.State_STATE_QUEUED
	if t.run != nil {
		want = messages.State_STATE_PROCESSING
	}
	if t.selfPaused || t.queuePaused && t.run != nil {
		want = messages.State_STATE_PAUSED
	}
	if t.run != nil {
		if want == messages.State_STATE_PAUSED {
			t.run.job.Pause()
		} else {
			t.run.job.Resume()
		}
	}
	if want == t.state && replyTo == nil {
		return
	}
	t.state = want
	t.notifyReply(ctx, replyTo)
}

// duplicate validates and submits a copy of this action to the queue and
// answers with the new token. Receive never waits: the copy is checked
// (admit: the repository's Validate and Seal of the stored parameters,
// which may hold a Config fragment of up to MaxRequestBytes and take a
// minute) in a goroutine, which then submits it to the QueueManager; the
// outcome comes back to a future whose continuation answers on this
// actor's goroutine, so that GetStatus, Stop and the other controls of
// this action are answered meanwhile. The copy is independent of this
// action: a Stop or Cancel of this one while the copy is checked does not
// withdraw it (its reply then shows this action's new status).
func (t *task) duplicate(ctx actor.Context) {
	if messages.Terminal(t.state) {
		t.refuse(ctx, messages.ErrActionEnded, t.endedAs()+"; only queued and running actions can be duplicated")
		return
	}
	// The copy is checked as every submission is (admit): the
	// configuration may have changed since this action was queued. The
	// goroutine gets copies of what it reads; the parameters are never
	// changed once queued (the worker shares them too).
	sh, owner := t.sh, t.owner
	orig := &messages.ActionSpec{
		Action: t.spec.Action, FetchAction: t.spec.FetchAction, Params: t.spec.Params, Priority: t.priority,
		Client: t.spec.Client, Role: t.spec.Role, // the original's submitter (docs/operations.md)
	}
	// No timeout: the goroutine always answers the future (a refusal, or
	// the QueueManager's reply, which answers every submission: its token
	// once on disk, or a refusal), and giving up before that could leave a
	// copy queued whose token nobody was told.
	root := ctx.ActorSystem().Root
	f := actor.NewFuture(ctx.ActorSystem(), -1)
	go admitCopy(sh, owner, orig, root, f.PID())
	ctx.ReenterAfter(f, func(res any, err error) {
		switch r := res.(type) {
		case *copyRefused:
			t.refuse(ctx, r.err, r.why)
			return
		case *messages.SubmitReply:
			ctx.Respond(&messages.ActionReply{Status: t.status(), NewToken: r.Token, Code: r.Code, Message: r.Message})
			return
		}
		if err == nil {
			err = fmt.Errorf("unexpected reply %T", res)
		}
		ctx.Respond(&messages.ActionReply{Status: t.status(), Code: messages.ErrorCode_ERROR_CODE_INTERNAL, Message: "duplicate: " + err.Error()})
	})
}

// copyRefused is admitCopy's answer for a copy that is not queued: admit
// refused it (err, as Submit would return it), or the repository
// panicked. why is the reply's description (refuse). It never leaves the
// node.
type copyRefused struct {
	err error
	why string
}

// admitCopy runs a Duplicate's admit outside any actor (task.duplicate)
// and submits the copy to the QueueManager owner, whose reply goes to
// answer; a refusal goes there as a copyRefused. A panic in the
// repository's Validate or Seal is the copy's refusal (an internal
// error), not the original action's: it is logged with its stack.
func admitCopy(sh *shared, owner *actor.PID, orig *messages.ActionSpec, root *actor.RootContext, answer *actor.PID) {
	spec, err := admitCaught(sh, orig)
	switch {
	case errors.Is(err, panics.ErrPanic):
		root.Send(answer, &copyRefused{err: messages.ErrInternal, why: err.Error()})
	case err != nil:
		root.Send(answer, &copyRefused{err: err, why: err.Error()})
	default:
		root.RequestWithCustomSender(owner, &messages.SubmitAction{Spec: spec}, answer)
	}
}

// admitCaught is admit, with a panic its error (wrapping panics.ErrPanic),
// logged with the stack.
func admitCaught(sh *shared, orig *messages.ActionSpec) (spec *messages.ActionSpec, err error) {
	defer panics.Catch(sh.log, "duplicate", &err, "fetch_action", orig.FetchAction)
	return admit(sh.repo, sh.fetchActions, orig)
}

// endedAs says how the action ended, for the refusal of a control that
// needs an action that has not.
func (t *task) endedAs() string {
	return "the action ended as " + messages.StatusName(t.state)
}

// refuse answers the request with err; why is the error's description,
// which must not repeat the hint the ACI codec adds for err
// (docs/errors.md).
func (t *task) refuse(ctx actor.Context, err error, why string) {
	code, _ := messages.Code(err)
	ctx.Respond(&messages.ActionReply{Status: t.status(), Code: code, Message: why})
}

func (t *task) end(ctx actor.Context, s messages.State) {
	t.state = s
	t.endedMs = t.nowMs()
	t.notify(ctx)
}

// fail turns a panic in Receive into the Error state; the actor lives on to
// answer for its token.
func (t *task) fail(ctx actor.Context, reason any) {
	o := t.outcome()
	o.errMsg = "panic: " + panics.Text(reason)
	t.sh.log.Error("task actor panicked", "token", t.tok(), "panic", panics.Text(reason), "stack", string(debug.Stack()))
	if t.run != nil {
		t.run.cancel(fmt.Errorf("queue: %s", o.errMsg))
	}
	if !messages.Terminal(t.state) {
		t.end(ctx, messages.State_STATE_ERROR)
	}
}

// notify tells the QueueManager the action's observable state.
func (t *task) notify(ctx actor.Context) {
	ctx.Send(t.owner, t.changed())
}

// notifyReply is notify plus an answer to requester, which the
// QueueManager sends once the change is recorded (durably, with a store).
func (t *task) notifyReply(ctx actor.Context, requester *actor.PID) {
	tc := t.changed()
	if requester != nil {
		tc.ReplyTo = []*actor.PID{requester}
	}
	ctx.Send(t.owner, tc)
}

// listEntrySize is room for most list entries (an action with a task's
// counts and a result takes ~700 bytes), so that encoding one grows its
// buffer once at most; the QueueManager keeps an exact copy.
const listEntrySize = 1024

// changed is the TaskChanged that reports the action's state: with its
// list entry, encoded here once, when the action has ended and no worker
// runs it (nothing can change its status any more; see Config.ListEntry).
func (t *task) changed() *messages.TaskChanged {
	tc := &messages.TaskChanged{Id: t.id[:], Status: t.status(), Live: t.run != nil}
	if t.sh.listEntry != nil && t.run == nil && messages.Terminal(t.state) && t.endedMs != 0 {
		tc.ListEntry = t.sh.listEntry(make([]byte, 0, listEntrySize), tc.Status)
	}
	return tc
}

func (t *task) status() *messages.ActionStatus {
	if t.token == "" {
		// Kept once asked for: an action whose status is read is
		// usually read again (a client polling it).
		t.token = t.tok()
	}
	return t.statusAs(t.token)
}

// unspawnedReply is the task actor's answer to a read (GetActionStatus,
// GetActionParameters) for a queued action whose actor has not been
// spawned: the QueueManager, which owns the task's memory until it spawns
// the actor (manager.spawnAs), answers a list's requests with it instead
// of spawning the actor (manager.tombstone). It writes nothing (the token
// is made, not kept), so the task is as it was when its actor comes. nil
// for any other message: those go to the actor.
func (t *task) unspawnedReply(msg any) *messages.ActionReply {
	v := t.view()
	return v.reply(msg, t.tok())
}

// taskView is a copy of what the status of a task without a worker shows,
// taken by whoever owns the task's memory (the QueueManager until it spawns
// the actor: listViews), so that the status itself (its allocations, its
// token) can be made by another goroutine: a list's requester makes the
// statuses of a page of queued actions, not the QueueManager, which the
// submissions wait for. What its outcome's fields hold is shared, as a
// status shares it (a task replaces those fields, it never writes into
// what they hold).
type taskView struct {
	id        uuid.UUID
	token     string // the task's ("": none kept, made from id)
	spec      *messages.ActionSpec
	out       *outcome // nil: none
	queuedMs  int64
	startedMs int64
	endedMs   int64
	seq       uint64
	state     messages.State
	priority  int32
	restarts  uint32
}

// view returns t's view. Its outcome is t's own, not a copy (the task
// writes its fields): see manager.listViews for a view that is read
// elsewhere.
func (t *task) view() taskView {
	return taskView{id: t.id, token: t.token, spec: t.spec, out: t.out, queuedMs: t.queuedMs, startedMs: t.startedMs,
		endedMs: t.endedMs, seq: t.seq, state: t.state, priority: t.priority, restarts: t.restarts}
}

// reply is unspawnedReply's answer to msg from v, whose token is token.
func (v *taskView) reply(msg any, token string) *messages.ActionReply {
	switch msg.(type) {
	case *messages.GetActionStatus:
		return &messages.ActionReply{Status: v.statusAs(token, nil)}
	case *messages.GetActionParameters:
		return &messages.ActionReply{Status: v.statusAs(token, nil), Params: v.spec.Params}
	}
	return nil
}

// statusAs is the action's status, given its token.
func (t *task) statusAs(token string) *messages.ActionStatus {
	v := t.view()
	return v.statusAs(token, t.run)
}

// statusAs is the status v shows, given its token and its worker (nil:
// none runs it).
func (v *taskView) statusAs(token string, r *run) *messages.ActionStatus {
	o := v.out
	if o == nil {
		o = &noOutcome
	}
	s := &messages.ActionStatus{
		Token:         token,
		State:         v.state,
		Priority:      v.priority,
		QueuedUnixMs:  v.queuedMs,
		StartedUnixMs: v.startedMs,
		EndedUnixMs:   v.endedMs,
		FetchAction:   v.spec.FetchAction,
		Results:       o.results,
		Error:         o.errMsg,
		Restarts:      v.restarts,
		Seq:           v.seq,
		Running:       r != nil,
	}
	fl := o.failures
	if r != nil {
		fl = r.job.Failures()
	} else {
		// The progress its worker ended with, stored with the action so
		// that Progress answers the same after a restart or on another
		// node (storedProgress).
		s.Progress = o.progress
	}
	if fl != nil {
		s.Failures, s.FailuresTotal = fl.Items, fl.Total
	}
	switch {
	case r != nil:
		s.Counts = r.job.Snapshot()
	case o.counts != nil:
		s.Counts = o.counts
	default:
		s.Counts = make([]*messages.DocumentCount, len(v.spec.Tasks))
		for i, name := range v.spec.Tasks {
			s.Counts[i] = &messages.DocumentCount{Task: name}
		}
	}
	return s
}

// currentProgress answers QueueAction=Progress: the worker's last snapshot
// while it runs (or a placeholder), a fixed answer for queued and finished
// actions, the last snapshot for the others. The stages of an action that
// has ended end with it, and the running stages of a paused action read
// Paused (stagesAs).
func (t *task) currentProgress() *messages.Progress {
	p := t.lastProgress()
	if messages.Terminal(t.state) || (t.state == messages.State_STATE_PAUSED && t.started) {
		p = stagesAs(p, t.state)
	}
	return p
}

func (t *task) lastProgress() *messages.Progress {
	if t.run != nil {
		if p := t.run.job.Progress(); p != nil {
			return p
		}
		return &messages.Progress{Stage: "running"}
	}
	switch t.state {
	case messages.State_STATE_FINISHED:
		return &messages.Progress{Percent: 100, Stage: "finished"}
	case messages.State_STATE_QUEUED, messages.State_STATE_PAUSED:
		return &messages.Progress{Percent: 0, Stage: "queued"}
	}
	if p := t.got().progress; p != nil {
		return p
	}
	return &messages.Progress{Stage: "ended"}
}

// panicked turns a panic while handling the current message into the
// action's Error state (see Receive). It answers the sender even if the
// handler answered before it panicked: the requester takes the first
// answer only (replies drops the second).
func (t *task) panicked(ctx actor.Context, r any) {
	if t.sh == nil {
		panic(r) // not initialised: let the supervisor backstop handle it
	}
	t.fail(ctx, r)
	if _, starting := ctx.Message().(*startTask); starting && t.run == nil {
		// Every startTask is answered by one SlotReleased, even
		// when handling it panicked before a worker started.
		ctx.Send(t.owner, &messages.SlotReleased{Id: t.id[:]})
	}
	if sender := ctx.Sender(); sender != nil {
		ctx.Send(sender, &messages.ActionReply{Status: t.status(), Code: messages.ErrorCode_ERROR_CODE_INTERNAL, Message: t.got().errMsg})
	}
}

// logFailures says, once per action (when its worker has ended), which
// items failed and why: the listed failures, and how many there were in
// all. Each failure was logged at debug level as it happened. A URL is
// written as the crawl's own lines write it (secret.LogURL: its query,
// which may carry a token, cut to "?…", a password redacted), and a
// reason with the password of any URL in it redacted; GetStatus shows
// them as they are.
func (t *task) logFailures() {
	fl := t.got().failures
	if fl == nil || fl.Total == 0 {
		return
	}
	list := make([]string, len(fl.Items))
	for i, f := range fl.Items {
		list[i] = fmt.Sprintf("[%s] %s: %s", f.Task, secret.LogURL(f.Url), secret.RedactURLs(f.Reason))
		if f.Count > 1 {
			list[i] += fmt.Sprintf(" (%d times)", f.Count)
		}
	}
	t.sh.log.Info("action had failures", "token", t.tok(), "fetch_action", t.spec.FetchAction,
		"failures_total", fl.Total, "failures_listed", len(fl.Items), "failures", list)
}
