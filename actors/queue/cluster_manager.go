package queue

import (
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/connectorhq/connector/internal/panics"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store/pgstore"
)

// The cluster QueueManager: one per node and queue. It owns this node's
// share of the cluster's actions (their task actors are its children, the
// same task actors as in process), its worker threads (MaximumThreads per
// node) and its writes to the shared store. What a single node keeps in
// memory (the queue's order, counts, retention) lives in the store:
//
//   - a submission is inserted (sequence number from the database) in a
//     group commit, owned by this node; the token is sent after COMMIT;
//   - with free threads it claims queued actions in the cluster's priority
//     order, wherever they were submitted; a claimed action's previous
//     owner retires its task actor (ActionMoved);
//   - every change of an owned action is written in a group commit,
//     conditional on still owning it at its epoch (fencing): an action
//     lost to another node is retired, its requesters told NotOwner;
//   - when members leave, it adopts their actions (each survivor takes
//     what it can lock first): running ones are re-run or ended as
//     [Actions] ProcessingOnRestart says, as after a crash in process;
//   - every lease, and when members leave, it reconciles its task actors
//     with the owners of record (notices and results can be lost): an
//     actor of an action owned elsewhere retires, an action it owns
//     without an actor is taken again (pgstore's Owners and Reown).

type (
	// cAdopt asks the manager to take over the actions of dead members
	// (and of nobody).
	cAdopt struct{ dead []string }
	// cTick drives claims when idle, orphan checks and retention.
	cTick struct{}
	// cDone reports the end of one store operation of the pipeline.
	cDone struct {
		op  *cOp
		err error
	}
)

// cObserved is a change of an action (its state before, its status
// after) to tell the Observer once it is in the store.
type cObserved struct {
	id     uuid.UUID
	old    messages.State
	status *messages.ActionStatus
}

// centry is the cluster manager's view of an action it owns.
type centry struct {
	pid    *actor.PID
	spec   *messages.ActionSpec
	id     uuid.UUID
	token  string
	excl   []string
	epoch  int64
	status *messages.ActionStatus // as last reported by its task actor
	// recorded is the status the shared store has for it, as far as this
	// node knows (as spawned or renewed, then as last written; nil once
	// this node's claim started it): a client's change of an action that
	// waits for a thread, which the store could not record, is undone to
	// it (undoUnrecorded).
	recorded *messages.ActionStatus
	live     bool
	slot     bool
	thread   int
	crash    string
	retired  bool // no longer ours: its actor goes once its worker exits
	release  bool // its exclusive tasks are freed with its next write
	// claimed: this node's claim made the action's row Processing and
	// running (connector_claim), and no write of it has gone since: the
	// task actor's report that it started says nothing the row does not,
	// and is not written (one row of a group commit per action).
	claimed bool
	// What the Observer was told (observe): the start it last heard of,
	// whether it heard the end, and when a stop found the worker running.
	startedMs int64
	endSeen   bool
	stopAt    time.Time
}

// cOp is one operation of the store pipeline (one at a time, in order).
type cOp struct {
	// commit: submissions and owned writes, with the replies they wait for.
	submits []*pendingSubmit
	writes  []pgstore.OwnedWrite
	replies map[string][]pendingReply // by action id
	// observe: clients' changes of actions that wait for a thread, told
	// to the Observer once the commit is done (observeCommitted)
	observe  []cObserved
	qreplies []*actor.PID
	seqs     []uint64
	fenced   []string
	// claim
	claim   int
	claimed []pgstore.Claimed
	// adopt
	adopt   []string
	unowned bool
	took    []string // the dead owners it took actions of (adopt and the orphans found)
	adopted []pgstore.Row
	// batch is the most actions the take-over takes (adoptBatchNow);
	// spent is how long its transaction took, and outOfTime says it
	// failed because the operation's time ran out.
	batch     int
	spent     time.Duration
	outOfTime bool
	// settle: submissions whose commit's outcome is not known
	// (unsettled), and where Resubmit found each
	settle  []*pendingSubmit
	settled []pgstore.Resubmitted
	// retain
	retain  bool
	removed []pgstore.Removed
	// reconcile: this node's task actors (epoch by id) against the
	// owners of record; the actions it owns but had no actor for, taken
	// again
	reconcile bool
	check     map[uuid.UUID]cheld
	// unwritten: actions whose latest change (an end, a freed thread)
	// waits in the pending commit or for a retry: the store's row is
	// older than the node's state, so a reconciliation leaves them be.
	unwritten map[string]bool
	owners    []pgstore.Ownership
	gone      []uuid.UUID // ended actions of check the store no longer has
	reowned   []pgstore.Row
	// the queue's pause flag in the store, and pauseChanges when the
	// reconciliation began
	paused       bool
	pauseChanges uint64
}

// cheld is a task actor of this node as a reconciliation saw it when it
// began.
type cheld struct {
	epoch int64
	slot  bool
	pid   *actor.PID
	ended bool // checked only for its row's removal (reconcileOp)
}

type cmanager struct {
	cfg   Config
	sh    *shared
	props *actor.Props
	upper string
	db    *pgstore.Store
	mem   Membership
	node  string
	addr  string
	name  string // the manager's actor name

	// spawning is the task spawn has initialised, for the producer of
	// props (as in process: manager.spawning).
	spawning *task

	entries map[uuid.UUID]*centry
	byPID   map[string]uuid.UUID
	running int
	threads []*centry
	paused  bool
	// pauseChanges counts the queue's Pause and Resume messages this
	// node got: a reconciliation applies the store's flag (a message this
	// node missed) only when none came while it read it.
	pauseChanges uint64
	self         *actor.PID
	root         *actor.RootContext

	shutting   bool
	released   bool
	shutWaiter *actor.PID
	evicted    bool

	ops      chan *cOp
	opsDone  chan struct{}
	inflight bool
	pending  *cOp
	// retry holds owned writes whose commit failed (the store was
	// unreachable), latest per action; they go with the next commit.
	retry   map[string]pgstore.OwnedWrite
	retryAt time.Time
	// gaveUp: while shutting down, a write failed: the shutdown no longer
	// waits for the failed changes (retry) before it hands the actions
	// back. Until then a shutdown writes them at once, before it does.
	gaveUp bool
	// unsettled holds submissions whose commit failed with an outcome
	// not known (pgstore.ErrUncertain: it may have landed, or land yet):
	// their requesters wait until a Resubmit says whether they are
	// queued (settle), tried first thing, then every second (settleAt)
	// until the store answers; a shutdown tries once more.
	unsettled []*pendingSubmit
	settleAt  time.Time
	// unsure holds the actions whose last write failed with an outcome
	// not known (pgstore.ErrUncertain), until one is written (or
	// fenced): a client's change to such an action, when it waits for a
	// thread, is not undone (undoUnrecorded) but answered once written.
	unsure map[string]bool
	// writeFailures counts the commits in a row that failed (the store
	// unreachable or misconfigured, for as long as that lasts): the
	// first is logged at level error, the others at debug level, and
	// the next commit that succeeds says, at info level, how many failed.
	// A failure of another kind than the last (writeFailure) is logged at
	// level error again: a statement PostgreSQL refuses while it was out
	// of reach is news, not a retry.
	writeFailures int
	writeFailure  string
	// opFailures is the same for the node's other operations on the
	// store, by what they do (their claims, take-overs,
	// reconciliations, retention: opClaim...): each is tried again
	// (every second, for some) for as long as the store fails, and was
	// logged at level warn every time (opFailed).
	opFailures  map[string]opFailure
	claimWanted bool
	claimFull   bool // the last claim filled every free thread: claim again
	// lastClaim is when this node last asked for queued actions;
	// idleClaims counts its claims in a row that found none: the idle
	// poll (tick) waits longer after each (idlePoll).
	lastClaim  time.Time
	idleClaims int
	// unannounced: this node queued actions since its last claim and
	// has not told the others (it meant to claim them itself).
	unannounced bool
	adoptDead   []string
	adoptAll    bool
	// adoptMore: the last take-over took a full batch (adoptBatch) of
	// these owners' actions (nil: none to continue; empty: only actions
	// nobody owns): the next batch is due. adoptedLast: the last store
	// operation was a take-over, so a waiting commit goes before the
	// next batch.
	adoptMore   []string
	adoptedLast bool
	// adoptBatch is the batch the next take-over takes (adoptBatchNow);
	// 0 until one ran out of time.
	adoptBatch int
	// takeOverFailed: the last take-over failed, and no reconciliation
	// went since: one that is due goes before it is tried again (next).
	takeOverFailed bool
	lastOrphans    time.Time
	lastRetain     time.Time
	// reconcileWanted: compare this node's task actors with the owners
	// of record (every lease, and when members leave).
	reconcileWanted bool
	lastReconcile   time.Time
	tickStop        chan struct{}
	// moved remembers ActionMoved notices for actions this node had no
	// actor for yet: a node may claim an action between this node's
	// commit of its submission or adoption and the manager's handling of
	// that commit, and the notice then arrives first. Without it the
	// task actor spawned afterwards would answer for an action owned
	// elsewhere (its stale state, forever, to every local request).
	moved map[uuid.UUID]movedNotice
	// stopHeld: actions a client's Stop ended while their worker was
	// still running, whose Stopped is not written yet (since when).
	// Their task actor reports again once the worker has exited (or the
	// StopTimeout has passed), with the Stop's reply and the final
	// counts: that report is written, so a Stop costs one group commit,
	// and its reply waits for one, not for two in a row (issue 17: a
	// Stop on an idle node wrote Stopped at once, and the final report,
	// arriving while that commit was in flight, waited for it and then
	// went in a commit of its own). Nothing held was acknowledged: a
	// Stop is answered once its final report is written. The tick
	// writes what waited longer than a tick (a Stop that nobody waits
	// for, whose worker does not exit).
	stopHeld map[uuid.UUID]time.Time
	// takeoverAt: a take-over or reconciliation that failed goes again
	// no sooner than this (they go before the pending commit: retried at
	// once, a failing one held every commit off).
	takeoverAt time.Time
	// stopped is closed once the QueueManager has stopped
	// (replies.stopped): a change asked of this node's own task actor
	// waits for its answer without a timeout, and the answer of a commit
	// in flight when the QueueManager stops (its shutdown out of time)
	// never comes.
	stopped chan struct{}
}

// movedNotice is an ActionMoved that found no actor: the claimer's epoch,
// and when it came (notices are forgotten after a while).
type movedNotice struct {
	epoch int64
	at    time.Time
}

func newClusterManager(cfg Config, sh *shared, root *actor.RootContext, db *pgstore.Store, mem Membership, name string) *cmanager {
	m := &cmanager{
		cfg: cfg, sh: sh, root: root, upper: strings.ToUpper(cfg.Name), db: db, mem: mem,
		node: mem.ID(), addr: mem.Addr(), name: name,
		entries: make(map[uuid.UUID]*centry), byPID: make(map[string]uuid.UUID),
		threads: make([]*centry, cfg.MaximumThreads), stopHeld: make(map[uuid.UUID]time.Time),
		stopped: make(chan struct{}),
	}
	// The producer hands protoactor the task spawn has initialised
	// (m.spawning), so that the task has its identity before protoactor
	// registers it by name: a request by token may reach it from then on
	// (any node sends to the owner of record's actor), and it is held by
	// the mailbox only until Started (taskBox.system). Given in a first
	// message (taskInit), it came after such a request, which then ran on
	// an uninitialised task, panicked and made the action an Error
	// tombstone (TestClusterTaskAnswersARequestThatCameDuringItsSpawn).
	m.props = actor.PropsFromProducer(taskProducer(&m.spawning),
		actor.WithMailbox(taskMailbox(root)),
		actor.WithDispatcher(actor.NewSynchronizedDispatcher(300)))
	return m
}

// Receive implements actor.Actor. The next store operation starts as soon
// as one is due and none is in flight: what arrives meanwhile joins the
// pending group. (Holding it until the mailbox had no message waiting, for
// larger groups, took no fewer commits per action in interleaved runs at
// N = 1, 2, 3 and finished fewer actions per second: bench/RESULTS.md.)
func (m *cmanager) Receive(ctx actor.Context) {
	m.receive(ctx)
	m.next(ctx)
}

func (m *cmanager) receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *messages.SubmitAction:
		if why := malformedSubmit(msg); why != "" {
			m.sh.log.Warn("refused a malformed submission", "why", why, "sender", ctx.Sender())
			ctx.Respond(&messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_INVALID_PARAM, Message: "malformed SubmitAction: " + why})
			return
		}
		m.submit(ctx, msg)
	case *messages.TaskChanged:
		if why := malformedChange(msg); why != "" {
			m.sh.log.Warn("ignored a malformed report of a task actor", "why", why, "sender", ctx.Sender())
			for _, to := range msg.ReplyTo {
				ctx.Send(to, &messages.ActionReply{Code: messages.ErrorCode_ERROR_CODE_INTERNAL, Message: "malformed TaskChanged: " + why})
			}
			return
		}
		m.changed(ctx, msg)
	case *messages.SlotReleased:
		if id, err := uuid.FromBytes(msg.Id); err == nil {
			m.slotFreed(ctx, id)
		}
	case *cDone:
		m.done(ctx, msg)
	case *messages.ThreadStatusRequest:
		ctx.Respond(m.threadStatus())
	case *messages.QueueStatusRequest:
		ctx.Respond(&messages.QueueStatusReply{Queue: m.cfg.Name, Paused: m.paused, MaximumThreads: uint32(m.cfg.MaximumThreads)})
	case *messages.PauseQueue:
		m.pauseChanges++
		m.setPaused(ctx, true)
		ctx.Respond(&messages.QueueStatusReply{Queue: m.cfg.Name, Paused: true})
	case *messages.ResumeQueue:
		m.pauseChanges++
		m.setPaused(ctx, false)
		ctx.Respond(&messages.QueueStatusReply{Queue: m.cfg.Name})
	case *messages.QueueNudge:
		m.claimWanted, m.idleClaims = true, 0
	case *messages.ActionMoved:
		if id, err := uuid.FromBytes(msg.Id); err == nil {
			if e := m.entries[id]; e != nil {
				if e.epoch < msg.Epoch {
					m.retire(ctx, e, "another node claimed it")
				}
			} else if n, ok := m.moved[id]; !ok || n.epoch < msg.Epoch {
				if m.moved == nil {
					m.moved = map[uuid.UUID]movedNotice{}
				}
				m.moved[id] = movedNotice{epoch: msg.Epoch, at: time.Now()}
			}
		}
	case *messages.ActionsRemoved:
		for _, b := range msg.Ids {
			if id, err := uuid.FromBytes(b); err == nil {
				if e := m.entries[id]; e != nil && !e.slot {
					m.drop(ctx, e)
				}
			}
		}
	case *messages.OwnerLookup:
		id, _ := uuid.FromBytes(msg.Id)
		e := m.entries[id]
		r := &messages.OwnerLookupReply{Owned: e != nil && !e.retired, Node: m.node}
		if r.Owned {
			r.Epoch = e.epoch
		}
		ctx.Respond(r)
	case *lookupTombstone:
		m.tombstone(ctx, msg)
	case *withdrawSubmit:
		m.withdraw(ctx, msg)
	case *cAdopt:
		m.adoptDead = append(m.adoptDead, msg.dead...)
		m.reconcileWanted = true
		m.idleClaims = 0 // what the adopter cannot run is queued for everyone
	case *cTick:
		m.tick()
	case *childFailed:
		// HandleFailure has recorded the tombstone; next (after
		// Receive) writes it.
	case *beginShutdown:
		m.beginShutdown(ctx)
	case *actor.Started:
		m.self = ctx.Self()
		m.startPipeline(ctx)
		m.startTicker(ctx)
		m.adoptAll = true // what earlier processes left unowned or orphaned
		m.claimWanted = true
	case *actor.Stopping:
		if m.tickStop != nil {
			close(m.tickStop)
			m.tickStop = nil
		}
		m.stopPipeline()
	case *actor.Stopped:
		// Requests without a timeout stop waiting (replies.stopped).
		select {
		case <-m.stopped:
		default:
			close(m.stopped)
		}
	}
}

// setPaused pauses (or resumes) the queue on this node: its running
// actions pause (or all its unended ones resume), and it claims nothing
// while paused.
func (m *cmanager) setPaused(ctx actor.Context, paused bool) {
	m.paused = paused
	if paused {
		for _, e := range m.entries {
			if e.slot && !e.retired {
				ctx.Send(e.pid, pauseRunMsg)
			}
		}
		return
	}
	for _, e := range m.entries {
		if !e.retired && e.crash == "" && (e.status == nil || !messages.Terminal(e.status.State)) {
			ctx.Send(e.pid, resumeRunMsg)
		}
	}
	m.claimWanted, m.idleClaims = true, 0
}

// HandleFailure: as in process, a task actor that failed outside the
// recover middleware is stopped and kept as an Error tombstone, recorded
// before the actor is stopped (on the cluster QueueManager's goroutine),
// so that the requests its mailbox held, which come to the QueueManager
// (taskBox.orphan), find it. childFailed, sent after, only has the next
// store operation start (Receive, next). The request whose handling
// failed (message) is answered from the tombstone too (answerFailing).
func (m *cmanager) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason any, message any) {
	m.failed(child, fmt.Sprint(reason))
	sup.StopChildren(child)
	if m.self != nil {
		answerFailing(m.root, m.self, taskActorID(child), message)
		m.root.Send(m.self, &childFailed{pid: child})
	}
}

// failed makes the action of child a tombstone, written with the next
// group commit. A panic here is logged: it must not reach the supervisor
// of the QueueManager.
func (m *cmanager) failed(child *actor.PID, reason string) {
	defer func() {
		if r := recover(); r != nil {
			m.sh.log.Error("cluster queue manager panicked recording a failed task actor", "panic", panics.Text(r), "stack", string(debug.Stack()))
		}
	}()
	id, ok := m.byPID[child.Id]
	if !ok {
		return
	}
	e := m.entries[id]
	if e == nil || e.crash != "" {
		return
	}
	// First, before anything that can panic: a panic the recover above
	// swallows then still leaves a tombstone, so tombstone never
	// forwards a request to this actor, which is stopped next (its dead
	// letter would come back through askManager as "queue has stopped").
	e.crash = reason
	delete(m.stopHeld, id)
	m.sh.log.Error("task actor failed; keeping a tombstone", "id", id, "reason", reason)
	st := m.tombstoneStatus(e)
	if e.slot {
		m.freeSlot(e)
	}
	if !messages.Terminal(st.State) {
		st.State, st.EndedUnixMs, st.Running = messages.State_STATE_ERROR, m.sh.now().UnixMilli(), false
	}
	e.status = st
	if !e.endSeen {
		e.endSeen = true
		m.sh.ended(m.cfg.Observer, e.spec, st)
	}
	m.write(e, nil)
}

func (m *cmanager) tombstoneStatus(e *centry) *messages.ActionStatus {
	st := &messages.ActionStatus{Token: e.token, FetchAction: e.spec.FetchAction}
	if e.status != nil {
		st = cloneStatus(e.status)
	}
	st.Error = "task actor failed: " + e.crash
	return st
}

func (m *cmanager) tombstone(ctx actor.Context, msg *lookupTombstone) {
	e := m.entries[msg.id]
	switch {
	case e == nil:
		ctx.Respond(&messages.ActionReply{Code: messages.ErrorCode_ERROR_CODE_UNKNOWN_TOKEN, Message: "no action has this token"})
	case e.retired:
		ctx.Respond(&messages.NotOwner{Message: "this node no longer owns the action"})
	case e.crash == "":
		ctx.RequestWithCustomSender(e.pid, msg.msg, ctx.Sender())
	default:
		ctx.Respond(tombstoneReply(msg.msg, m.tombstoneStatus(e)))
	}
}

// Messages that may come from another node (protobuf, over remoting) are
// checked for the fields the QueueManager needs before it handles them: a
// SubmitAction without its spec panicked in submit (the requester got an
// internal error about a nil pointer), and a TaskChanged without its
// status would have written a record without one. The sender is told
// what was wrong.

// malformedSubmit says what a SubmitAction lacks, or "". Its spec has been
// through admit on the node that sent it: admit never leaves its fetch
// action or action empty.
func malformedSubmit(msg *messages.SubmitAction) string {
	switch {
	case msg.Spec == nil:
		return "no action spec"
	case msg.Spec.FetchAction == "":
		return "no fetch action"
	case msg.Spec.Action == "":
		return "no action"
	}
	return ""
}

// malformedChange says what a TaskChanged lacks, or "".
func malformedChange(msg *messages.TaskChanged) string {
	switch {
	case len(msg.Id) != 16:
		return fmt.Sprintf("an action id of %d bytes, not 16", len(msg.Id))
	case msg.Status == nil:
		return "no status"
	}
	return ""
}

// --- submissions -----------------------------------------------------------

func (m *cmanager) submit(ctx actor.Context, msg *messages.SubmitAction) {
	if m.shutting || m.evicted {
		m.cfg.Observer.Rejected("shutting_down")
		ctx.Respond(&messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_SHUTTING_DOWN, Message: "the node is leaving the cluster and accepts no new actions; submit to another node"})
		return
	}
	id, err := m.cfg.NewID()
	if err != nil {
		ctx.Respond(&messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_INTERNAL, Message: "generate id: " + err.Error()})
		return
	}
	token := messages.NewToken(m.cfg.TokenHost, m.cfg.TokenPort, m.upper, id)
	st := &messages.ActionStatus{
		Token: token, State: messages.State_STATE_QUEUED, Priority: msg.Spec.Priority,
		QueuedUnixMs: m.sh.now().UnixMilli(), FetchAction: msg.Spec.FetchAction,
	}
	op := m.op()
	op.submits = append(op.submits, &pendingSubmit{sender: ctx.Sender(), id: id, token: token, spec: msg.Spec, status: st})
}

func (m *cmanager) op() *cOp {
	if m.pending == nil {
		m.pending = &cOp{replies: map[string][]pendingReply{}}
	}
	return m.pending
}

func (m *cmanager) withdraw(ctx actor.Context, w *withdrawSubmit) {
	if m.pending == nil {
		return
	}
	for i, p := range m.pending.submits {
		if p.sender.Equal(w.sender) {
			m.pending.submits = slices.Delete(m.pending.submits, i, i+1)
			ctx.Send(p.sender, &submitWithdrawn{})
			return
		}
	}
}

// spawn creates the task actor of an action this node now owns.
func (m *cmanager) spawn(ctx actor.Context, id uuid.UUID, spec *messages.ActionSpec, st *messages.ActionStatus, epoch int64) (*centry, error) {
	m.spawning = newTaskOf(m.sh, ctx.Self(), id, st.Token, spec, st)
	pid, err := ctx.SpawnNamed(m.props, id.String())
	m.spawning = nil // taken by the producer, unless the spawn failed first
	if err != nil {
		return nil, fmt.Errorf("queue: spawn task actor %s: %w", id, err)
	}
	e := &centry{pid: pid, spec: spec, id: id, token: st.Token, epoch: epoch, status: st, recorded: st, excl: exclusiveTasks(m.sh.repo, spec),
		startedMs: st.StartedUnixMs}
	m.entries[id] = e
	m.byPID[pid.Id] = id
	return e, nil
}

// --- task reports ------------------------------------------------------------

func (m *cmanager) changed(ctx actor.Context, msg *messages.TaskChanged) {
	id, err := uuid.FromBytes(msg.Id)
	if err != nil {
		return
	}
	e := m.entries[id]
	if e == nil || e.retired || e.crash != "" {
		for _, to := range msg.ReplyTo {
			ctx.Send(to, &messages.NotOwner{Message: "this node no longer owns the action"})
		}
		return
	}
	old := e.status.GetState()
	// A client's change of an action that waits for a thread holds only
	// once the store has it (undoUnrecorded): the Observer hears of it
	// then (the metrics, the line of its end), not of one undone.
	deferObserve := len(msg.ReplyTo) > 0 && !msg.Live && !e.slot && waiting(e.recorded)
	e.status, e.live = msg.Status, msg.Live
	_, held := m.stopHeld[id]
	delete(m.stopHeld, id)
	stopped := msg.Status.GetState() == messages.State_STATE_STOPPED
	if m.shutting && e.slot && stopped && len(msg.ReplyTo) == 0 && !held {
		// Stopped by this node's shutdown, not by a client: the action
		// is handed to the other nodes (release), not ended.
		return
	}
	// As on a single node (the metrics, the line of each action's end).
	if deferObserve {
		op := m.op()
		op.observe = append(op.observe, cObserved{id: id, old: old, status: msg.Status})
	} else {
		switch m.sh.observe(m.cfg.Observer, e.spec, old, msg.Status, msg.Live, e.startedMs, e.endSeen, e.stopAt) {
		case observedStopping:
			e.stopAt = time.Now()
		case observedEnd:
			e.endSeen = true
		}
	}
	if t := msg.Status.GetStartedUnixMs(); t != 0 {
		e.startedMs = t
	}
	if stopped && msg.Live && len(msg.ReplyTo) == 0 && !m.shutting && !held {
		// A client's Stop, its worker still exiting: written with the
		// worker's final report (stopHeld).
		m.stopHeld[id] = time.Now()
		return
	}
	if e.claimed && len(msg.ReplyTo) == 0 && msg.Live && msg.Status.GetRunning() &&
		msg.Status.GetState() == messages.State_STATE_PROCESSING {
		// Its start, which the claim recorded: the row says Processing,
		// running, started at the claim (readers take the start time from
		// the row), and the record's other fields are as queued, as are
		// the task's (counts and failures of an interrupted run included).
		// Its next change (its end, a Stop) writes the whole record.
		e.claimed = false
		return
	}
	var replies []pendingReply
	for _, to := range msg.ReplyTo {
		replies = append(replies, pendingReply{to: to, reply: &messages.ActionReply{Status: msg.Status}})
	}
	m.write(e, replies)
}

// write queues e's current status for the next group commit.
func (m *cmanager) write(e *centry, replies []pendingReply) {
	e.claimed = false // the row no longer says only what the claim wrote
	op := m.op()
	op.writes = append(op.writes, pgstore.OwnedWrite{Epoch: e.epoch, Record: m.record(e), Release: e.release})
	e.release = false
	id := e.id.String()
	op.replies[id] = append(op.replies[id], replies...)
	delete(m.retry, id)
}

func (m *cmanager) record(e *centry) *messages.StoredAction {
	st := e.status
	if st == nil {
		st = &messages.ActionStatus{Token: e.token}
	}
	return &messages.StoredAction{Id: e.id.String(), Spec: e.spec, Status: st}
}

func (m *cmanager) slotFreed(ctx actor.Context, id uuid.UUID) {
	e := m.entries[id]
	if e == nil || !e.slot {
		return
	}
	m.freeSlot(e)
	if e.retired {
		m.drop(ctx, e)
		return
	}
	// While shutting down its tasks are freed by the release, which
	// hands the action back queued: a write here would carry the Stopped
	// the shutdown left in memory, and the action would be handed back
	// ended (its row no longer running, the release leaves it so).
	if len(e.excl) > 0 && !m.released && !m.shutting {
		e.release = true
		m.write(e, nil)
	}
	m.claimWanted = true
	m.checkShutdown(ctx)
}

func (m *cmanager) freeSlot(e *centry) {
	e.slot = false
	m.running--
	for i, t := range m.threads {
		if t == e {
			m.threads[i], e.thread = nil, 0
		}
	}
}

// retire gives up an action this node no longer owns: its worker (if
// any) is cancelled without writing, and its actor goes once the worker
// has exited.
func (m *cmanager) retire(ctx actor.Context, e *centry, why string) {
	if e.retired {
		return
	}
	m.sh.log.Warn("action no longer owned by this node; retiring its task actor", "token", e.token, "why", why)
	e.retired = true
	if e.slot {
		ctx.Send(e.pid, &shutdownTask{})
		return
	}
	m.drop(ctx, e)
}

func (m *cmanager) drop(ctx actor.Context, e *centry) {
	delete(m.entries, e.id)
	delete(m.byPID, e.pid.Id)
	delete(m.stopHeld, e.id)
	ctx.Poison(e.pid)
}

func (m *cmanager) threadStatus() *messages.ThreadStatusReply {
	r := &messages.ThreadStatusReply{Queue: m.cfg.Name, Threads: make([]*messages.WorkerThread, len(m.threads))}
	for i, e := range m.threads {
		r.Threads[i] = &messages.WorkerThread{Number: uint32(i + 1)}
		if e != nil {
			r.Threads[i].Id = e.id.String()
		}
	}
	return r
}
