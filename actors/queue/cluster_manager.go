package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

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

// centry is the cluster manager's view of an action it owns.
type centry struct {
	pid     *actor.PID
	spec    *messages.ActionSpec
	id      uuid.UUID
	token   string
	excl    []string
	epoch   int64
	status  *messages.ActionStatus // as last reported by its task actor
	live    bool
	slot    bool
	thread  int
	crash   string
	retired bool // no longer ours: its actor goes once its worker exits
	release bool // its exclusive tasks are freed with its next write
}

// cOp is one operation of the store pipeline (one at a time, in order).
type cOp struct {
	// commit: submissions and owned writes, with the replies they wait for.
	submits  []*pendingSubmit
	writes   []pgstore.OwnedWrite
	replies  map[string][]pendingReply // by action id
	qreplies []*actor.PID
	seqs     []uint64
	fenced   []string
	// claim
	claim   int
	claimed []pgstore.Claimed
	// adopt
	adopt   []string
	unowned bool
	adopted []pgstore.Row
	// retain
	retain  bool
	removed []pgstore.Removed
	// reconcile: this node's task actors (epoch by id) against the
	// owners of record; the actions it owns but had no actor for, taken
	// again
	reconcile bool
	check     map[uuid.UUID]cheld
	owners    []pgstore.Ownership
	reowned   []pgstore.Row
}

// cheld is a task actor of this node as a reconciliation saw it when it
// began.
type cheld struct {
	epoch int64
	slot  bool
	pid   *actor.PID
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

	entries map[uuid.UUID]*centry
	byPID   map[string]uuid.UUID
	running int
	threads []*centry
	paused  bool
	self    *actor.PID
	root    *actor.RootContext

	backlog backlog
	held    int // messages in a row that put off the next store operation

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
	retry       map[string]pgstore.OwnedWrite
	retryAt     time.Time
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
	lastOrphans time.Time
	lastRetain  time.Time
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
		threads: make([]*centry, cfg.MaximumThreads),
	}
	m.props = actor.PropsFromProducer(newTask,
		actor.WithMailbox(taskMailbox(root)),
		actor.WithDispatcher(actor.NewSynchronizedDispatcher(300)))
	return m
}

// Receive implements actor.Actor.
//
// The next store operation starts once the messages already waiting in
// the mailbox are handled (at most maxHeld of them), so that they join it:
// started after the first of them, it carried one change and the rest
// waited a whole round trip for the next (issue 17: a node of three
// batches a third of the load, and its groups were that much smaller).
// Nothing waits for a message that has not arrived.
func (m *cmanager) Receive(ctx actor.Context) {
	m.receive(ctx)
	if m.backlog.waiting() && m.held < maxHeld {
		m.held++
		return
	}
	m.held = 0
	m.next(ctx)
}

// maxHeld bounds how many messages in a row may put off the next store
// operation (a mailbox that never empties must not hold it forever).
const maxHeld = 256

// backlog counts the manager's messages posted and not yet handled (a
// mailbox middleware). System messages do not count: some reach no
// Receive (which must then not have waited for them).
type backlog struct{ n atomic.Int64 }

func counted(msg any) bool {
	switch msg.(type) {
	case actor.SystemMessage, actor.MailboxMessage:
		return false
	}
	return true
}

func (b *backlog) MailboxStarted() {}
func (b *backlog) MessagePosted(msg any) {
	if counted(msg) {
		b.n.Add(1)
	}
}
func (b *backlog) MessageReceived(msg any) {
	if counted(msg) {
		b.n.Add(-1)
	}
}
func (b *backlog) MailboxEmpty() {}

// waiting reports, from a Receive, whether other messages wait behind the
// one being handled (which counts until it has been handled).
func (b *backlog) waiting() bool { return b.n.Load() > 1 }

func (m *cmanager) receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *messages.SubmitAction:
		m.submit(ctx, msg)
	case *messages.TaskChanged:
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
		m.paused = true
		for _, e := range m.entries {
			if e.slot && !e.retired {
				ctx.Send(e.pid, pauseRunMsg)
			}
		}
		ctx.Respond(&messages.QueueStatusReply{Queue: m.cfg.Name, Paused: true})
	case *messages.ResumeQueue:
		m.paused = false
		for _, e := range m.entries {
			if !e.retired && e.crash == "" && (e.status == nil || !messages.Terminal(e.status.State)) {
				ctx.Send(e.pid, resumeRunMsg)
			}
		}
		m.claimWanted, m.idleClaims = true, 0
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
		ctx.Respond(&messages.OwnerLookupReply{Owned: e != nil && !e.retired})
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
		m.childFailed(ctx, msg)
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
	}
}

// HandleFailure: as in process, a task actor that failed outside the
// recover middleware is stopped and kept as an Error tombstone.
func (m *cmanager) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason any, _ any) {
	sup.StopChildren(child)
	if m.self != nil {
		m.root.Send(m.self, &childFailed{pid: child, reason: fmt.Sprint(reason)})
	}
}

func (m *cmanager) childFailed(ctx actor.Context, msg *childFailed) {
	id, ok := m.byPID[msg.pid.Id]
	if !ok {
		return
	}
	e := m.entries[id]
	if e == nil || e.crash != "" {
		return
	}
	e.crash = msg.reason
	m.sh.log.Error("task actor failed; keeping a tombstone", "id", id, "reason", msg.reason)
	st := m.tombstoneStatus(e)
	if e.slot {
		m.freeSlot(e)
	}
	if !messages.Terminal(st.State) {
		st.State, st.EndedUnixMs, st.Running = messages.State_STATE_ERROR, m.sh.now().UnixMilli(), false
	}
	e.status = st
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
		ctx.Respond(&messages.ActionReply{Status: m.tombstoneStatus(e)})
	}
}

// --- submissions -----------------------------------------------------------

func (m *cmanager) submit(ctx actor.Context, msg *messages.SubmitAction) {
	if m.shutting || m.evicted {
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
	pid, err := ctx.SpawnNamed(m.props, id.String())
	if err != nil {
		return nil, fmt.Errorf("queue: spawn task actor %s: %w", id, err)
	}
	ctx.Send(pid, &taskInit{sh: m.sh, owner: ctx.Self(), id: id, token: st.Token, spec: spec, status: st})
	e := &centry{pid: pid, spec: spec, id: id, token: st.Token, epoch: epoch, status: st, excl: exclusiveTasks(m.sh.repo, spec)}
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
	e.status, e.live = msg.Status, msg.Live
	if m.shutting && e.slot && msg.Status.State == messages.State_STATE_STOPPED && len(msg.ReplyTo) == 0 {
		// Stopped by this node's shutdown, not by a client: the action
		// is handed to the other nodes (release), not ended.
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
	if len(e.excl) > 0 && !m.released {
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

// --- the store pipeline --------------------------------------------------------

// next starts the next store operation unless one is in flight: the
// pending commit first, then a claim for free threads, an adoption, or
// retention.
func (m *cmanager) next(ctx actor.Context) {
	if m.inflight || m.ops == nil {
		return
	}
	if len(m.retry) > 0 && !time.Now().Before(m.retryAt) {
		op := m.op()
		for _, w := range m.retry {
			op.writes = append([]pgstore.OwnedWrite{w}, op.writes...)
		}
		m.retry = nil
	}
	if m.evicted && m.pending != nil {
		// Declared dead: nothing more reaches the store.
		for _, p := range m.pending.submits {
			ctx.Send(p.sender, &messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_SHUTTING_DOWN,
				Message: "this node was dropped from the cluster and accepts no new actions; submit to another node"})
		}
		for _, rs := range m.pending.replies {
			for _, r := range rs {
				ctx.Send(r.to, &messages.NotOwner{Message: "this node was dropped from the cluster"})
			}
		}
		m.pending = nil
	}
	var op *cOp
	switch {
	case m.pending != nil && (len(m.pending.submits) > 0 || len(m.pending.writes) > 0 || len(m.pending.qreplies) > 0):
		op, m.pending = m.pending, nil
		if !m.evicted && !m.shutting && len(m.adoptDead) == 0 && !m.adoptAll &&
			(m.claimWanted || m.claimFull) && !m.paused && m.running < m.cfg.MaximumThreads {
			// The claim rides the commit: one round trip, not two.
			op.claim = m.cfg.MaximumThreads - m.running
			m.claimWanted, m.claimFull = false, false
			m.lastClaim = time.Now()
		}
	case m.evicted || m.released:
		return
	case m.shutting:
		return
	case len(m.adoptDead) > 0 || m.adoptAll:
		op = &cOp{adopt: m.adoptDead, unowned: true}
		m.adoptDead, m.adoptAll = nil, false
	case m.reconcileWanted && len(m.retry) == 0:
		// Nothing of this node is in flight (one operation at a time,
		// each handled before the next): its actors are what the store
		// should say it owns.
		op = &cOp{reconcile: true, check: make(map[uuid.UUID]cheld, len(m.entries))}
		for id, e := range m.entries {
			// Only an action that has not ended can have moved: an
			// ended one stays ended wherever it is asked.
			if !e.retired && e.crash == "" && (e.status == nil || !messages.Terminal(e.status.State)) {
				op.check[id] = cheld{epoch: e.epoch, slot: e.slot, pid: e.pid}
			}
		}
		m.reconcileWanted = false
		m.lastReconcile = time.Now()
	case (m.claimWanted || m.claimFull) && !m.paused && m.running < m.cfg.MaximumThreads:
		op = &cOp{claim: m.cfg.MaximumThreads - m.running}
		m.claimWanted, m.claimFull = false, false
		m.lastClaim = time.Now()
	case !m.lastRetain.IsZero() && time.Since(m.lastRetain) >= m.retainEvery() && m.isRetainer():
		op = &cOp{retain: true}
		m.lastRetain = time.Now()
	default:
		if m.lastRetain.IsZero() {
			m.lastRetain = time.Now()
		}
		return
	}
	m.inflight = true
	m.ops <- op
}

// isRetainer: one node (the member with the lowest id) applies the
// cluster's retention.
func (m *cmanager) isRetainer() bool {
	for id := range m.mem.Members() {
		if id < m.node {
			return false
		}
	}
	return true
}

func (m *cmanager) startPipeline(ctx actor.Context) {
	m.ops = make(chan *cOp, 1)
	m.opsDone = make(chan struct{})
	self, root, ops, done := ctx.Self(), ctx.ActorSystem().Root, m.ops, m.opsDone
	go func() {
		defer close(done)
		for op := range ops {
			err := m.run(op)
			root.Send(self, &cDone{op: op, err: err})
		}
	}()
}

func (m *cmanager) stopPipeline() {
	if m.ops == nil {
		return
	}
	close(m.ops)
	<-m.opsDone
	m.ops = nil
}

// run performs op against the store, on the pipeline's goroutine (it reads
// only op and the manager's immutable fields).
func (m *cmanager) run(op *cOp) error {
	ctx, cancel := context.WithTimeout(context.Background(), max(m.cfg.AskTimeout, 5*time.Second))
	defer cancel()
	var err error
	switch {
	case len(op.submits) > 0 || len(op.writes) > 0 || len(op.qreplies) > 0:
		// One transaction: the owned writes, the submissions, and the
		// datastore writes the node's tasks deferred (an action's end
		// is never committed without its task's record of it).
		acts := make([]pgstore.NewAction, len(op.submits))
		for i, p := range op.submits {
			acts[i] = pgstore.NewAction{
				Record:    &messages.StoredAction{Id: p.id.String(), Spec: p.spec, Status: p.status},
				Exclusive: exclusiveTasks(m.sh.repo, p.spec),
			}
		}
		if len(op.writes) > 0 || len(acts) > 0 || op.claim > 0 {
			var r pgstore.GroupResult
			r, err = m.db.Commit(ctx, m.cfg.Name, m.node, m.addr,
				pgstore.Group{Writes: op.writes, Submits: acts, MaxWaiting: m.cfg.MaximumQueueSize, Claim: op.claim})
			op.seqs, op.fenced, op.claimed = r.Seqs, r.Fenced, r.Claimed
		}
	case op.claim > 0:
		op.claimed, err = m.db.Claim(ctx, m.cfg.Name, m.node, m.addr, op.claim)
	case op.adopt != nil || op.unowned:
		dead := op.adopt
		// The orphans: owners that are not members. Only once the
		// membership has given this node the member list (it comes just
		// after joining, itself among them): with none yet, every other
		// node would look orphaned and be declared dead. The next scan,
		// a lease later, looks then.
		members := m.mem.Members()
		if _, seen := members[m.node]; op.unowned && seen {
			live := make([]string, 0, len(members))
			for id := range members {
				live = append(live, id)
			}
			grace := int(2 * m.mem.LeaseTTL() / time.Second)
			orphans, unowned, oerr := m.db.Orphaned(ctx, m.cfg.Name, live, grace)
			if oerr != nil {
				return oerr
			}
			dead = append(dead, orphans...)
			if len(dead) == 0 && !unowned {
				// Nothing to take over: no transaction (the scan runs
				// every lease on every node).
				return nil
			}
		}
		op.adopted, err = m.db.Adopt(ctx, m.cfg.Name, m.node, m.addr, dead, m.interrupted)
	case op.retain:
		var before int64
		if m.cfg.FinishedActionMaxAge > 0 {
			before = m.sh.now().Add(-m.cfg.FinishedActionMaxAge).UnixMilli()
		}
		op.removed, err = m.db.Retain(ctx, m.cfg.Name, m.cfg.MaximumFinishedActions, before)
	case op.reconcile:
		err = m.runReconcile(ctx, op)
	}
	return err
}

// interrupted turns the record of an action whose worker's node died (or
// left) into what it becomes, as after a crash in process: queued again
// (its restart count up; one paused while running stays paused), or ended
// as Error under ProcessingOnRestart=Error.
func (m *cmanager) interrupted(a *messages.StoredAction) {
	st := a.Status
	st.Running = false
	switch {
	case messages.Terminal(st.State):
	case m.cfg.OnRestart == RestartError:
		st.State, st.Error, st.EndedUnixMs = messages.State_STATE_ERROR, ErrInterrupted.Error(), m.sh.now().UnixMilli()
	case st.State == messages.State_STATE_PAUSED:
		st.Restarts++
	default:
		st.State = messages.State_STATE_QUEUED
		st.Restarts++
	}
}

func (m *cmanager) done(ctx actor.Context, d *cDone) {
	m.inflight = false
	op := d.op
	switch {
	case len(op.submits) > 0 || len(op.writes) > 0 || len(op.qreplies) > 0:
		m.committed(ctx, op, d.err)
		if op.claim > 0 { // the claim that rode the commit: after it, so that its submissions have their actors
			m.claimedDone(ctx, op, d.err)
		}
	case op.claim > 0:
		m.claimedDone(ctx, op, d.err)
	case op.adopt != nil || op.unowned:
		m.adoptedDone(ctx, op, d.err)
	case op.retain:
		m.retained(ctx, op, d.err)
	case op.reconcile:
		m.reconciled(ctx, op, d.err)
	}
	m.checkShutdown(ctx)
}

// fencedOut: the store says this node is no longer a live member.
func (m *cmanager) fencedOut(ctx actor.Context, err error) bool {
	if !errors.Is(err, pgstore.ErrFenced) {
		return false
	}
	if !m.evicted {
		m.evicted = true
		m.sh.log.Error("the cluster declared this node dead; it stops its work", "err", err)
		for _, e := range m.entries {
			if e.slot {
				ctx.Send(e.pid, &shutdownTask{})
			}
		}
		m.mem.Evict(err)
	}
	return true
}

func (m *cmanager) committed(ctx actor.Context, op *cOp, err error) {
	if err != nil && m.fencedOut(ctx, err) {
		for _, p := range op.submits {
			ctx.Send(p.sender, &messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_SHUTTING_DOWN,
				Message: "this node was dropped from the cluster and accepts no new actions; submit to another node"})
		}
		for _, rs := range op.replies {
			for _, r := range rs {
				ctx.Send(r.to, &messages.NotOwner{Message: "this node was dropped from the cluster"})
			}
		}
		return
	}
	if err != nil {
		m.sh.log.Error("shared store write failed; changes will be written again", "changes", len(op.writes), "submissions", len(op.submits), "err", err)
		if m.retry == nil {
			m.retry = map[string]pgstore.OwnedWrite{}
		}
		for _, w := range op.writes {
			if _, newer := m.pendingWrite(w.Record.Id); !newer {
				m.retry[w.Record.Id] = w
			}
		}
		m.retryAt = time.Now().Add(m.retryEvery())
		self, root := ctx.Self(), ctx.ActorSystem().Root
		time.AfterFunc(m.retryEvery(), func() { root.Send(self, &cTick{}) })
	}
	fenced := map[string]bool{}
	for _, id := range op.fenced {
		fenced[id] = true
		uid, _ := uuid.Parse(id)
		e := m.entries[uid]
		if e == nil {
			continue
		}
		var epoch int64
		for _, w := range op.writes {
			if w.Record.Id == id {
				epoch = w.Epoch
			}
		}
		if e.epoch > epoch && !e.retired {
			// This node claimed it meanwhile (a newer epoch): write again.
			m.write(e, op.replies[id])
			delete(op.replies, id)
			continue
		}
		m.retire(ctx, e, "another node owns it now")
	}
	for id, rs := range op.replies {
		for _, r := range rs {
			switch {
			case fenced[id]:
				ctx.Send(r.to, &messages.NotOwner{Message: "another node owns the action now"})
			case err != nil:
				what := "the action is now " + messages.StatusName(r.reply.Status.GetState())
				ctx.Send(r.to, &messages.ActionReply{Status: r.reply.Status, Code: messages.ErrorCode_ERROR_CODE_STORE,
					Message: fmt.Sprintf("%s, but the shared store could not record it yet: it is written again as soon as the store answers, and lost if this node dies first: %v", what, err)})
			default:
				ctx.Send(r.to, r.reply)
			}
		}
	}
	queued := 0
	for i, p := range op.submits {
		if err != nil {
			ctx.Send(p.sender, &messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_STORE,
				Message: fmt.Sprintf("the action was not accepted and has no token: the shared store could not record it (if the store received it, it waits queued under a token nobody was told): %v", err)})
			continue
		}
		if op.seqs[i] == 0 {
			ctx.Send(p.sender, &messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_QUEUE_FULL,
				Message: fmt.Sprintf("the %s queue already holds MaximumQueueSize=%d waiting actions across the cluster", m.cfg.Name, m.cfg.MaximumQueueSize)})
			continue
		}
		p.status.Seq = op.seqs[i]
		if m.movedAway(p.id, 1) {
			// Already claimed by another node: the token is valid, the
			// action is the claimer's.
			ctx.Send(p.sender, &messages.SubmitReply{Token: p.token})
			continue
		}
		if _, serr := m.spawn(ctx, p.id, p.spec, p.status, 1); serr != nil {
			ctx.Send(p.sender, &messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_INTERNAL, Message: serr.Error()})
			continue
		}
		ctx.Send(p.sender, &messages.SubmitReply{Token: p.token})
		queued++
	}
	if queued > 0 {
		// Whether the others are told (nudgeOthers) is decided after
		// the claim that rode this commit, if one did (claimedDone).
		m.unannounced = true
		if op.claim == 0 {
			// Its next operation claims them: the others are told only
			// if it has no thread for them (or cannot claim any more).
			// Telling them anyway made every node claim (a round
			// trip, mostly in vain, or taking an action from its
			// submitter, whose task actor then retires) for every
			// group any node queued: a cost per action that grew
			// with the number of nodes (issue 17).
			m.claimWanted = true
			if m.running >= m.cfg.MaximumThreads || m.shutting {
				m.nudgeOthers(ctx)
				m.unannounced = false
			}
		}
	}
}

// movedAway reports (and forgets) whether another node claimed action id
// at an epoch above epoch before this node had its actor for it.
func (m *cmanager) movedAway(id uuid.UUID, epoch int64) bool {
	n, ok := m.moved[id]
	if !ok {
		return false
	}
	delete(m.moved, id)
	if n.epoch <= epoch {
		return false
	}
	m.sh.log.Warn("action claimed by another node before this node started its task actor; not starting it", "id", id, "epoch", epoch, "claimed_epoch", n.epoch)
	return true
}

// pendingWrite reports whether a newer write of action id waits.
func (m *cmanager) pendingWrite(id string) (pgstore.OwnedWrite, bool) {
	if m.pending == nil {
		return pgstore.OwnedWrite{}, false
	}
	for _, w := range m.pending.writes {
		if w.Record.Id == id {
			return w, true
		}
	}
	return pgstore.OwnedWrite{}, false
}

// nudgeOthers tells the other members that actions were queued, so that
// an idle node claims them now rather than at its next poll.
func (m *cmanager) nudgeOthers(ctx actor.Context) {
	for id, addr := range m.mem.Members() {
		if id != m.node {
			ctx.Send(actor.NewPID(addr, m.name), &messages.QueueNudge{})
		}
	}
}

func (m *cmanager) claimedDone(ctx actor.Context, op *cOp, err error) {
	if err != nil {
		if !m.fencedOut(ctx, err) {
			m.sh.log.Warn("claiming queued actions failed; trying again", "err", err)
		}
		return
	}
	for _, c := range op.claimed {
		id, perr := uuid.Parse(c.Record.Id)
		if perr != nil {
			continue
		}
		e := m.entries[id]
		if e == nil || e.retired {
			if e != nil {
				m.drop(ctx, e) // an old actor of ours, retired: a fresh one
			}
			st := c.Record.Status
			st.State, st.Running = messages.State_STATE_QUEUED, false
			var serr error
			if e, serr = m.spawn(ctx, id, c.Record.Spec, st, c.Epoch); serr != nil {
				m.sh.log.Error("cannot start a claimed action", "id", id, "err", serr)
				continue
			}
		}
		e.epoch = c.Epoch
		e.slot = true
		m.running++
		for i, t := range m.threads {
			if t == nil {
				m.threads[i], e.thread = e, i+1
				break
			}
		}
		ctx.Send(e.pid, startMsg)
		if c.PrevOwner != "" && c.PrevOwner != m.node {
			ctx.Send(actor.NewPID(c.PrevAddr, m.name), &messages.ActionMoved{Id: id[:], Epoch: c.Epoch})
		}
	}
	m.claimFull = len(op.claimed) == op.claim
	if m.unannounced {
		// This node queued actions and did not tell the others. A claim
		// that left threads free took every queued action it could
		// (its own with them); one that filled them may have left some:
		// the others are told now.
		if m.claimFull {
			m.nudgeOthers(ctx)
		}
		m.unannounced = false
	}
	if len(op.claimed) == 0 {
		m.idleClaims++
	} else {
		m.idleClaims = 0
	}
}

func (m *cmanager) adoptedDone(ctx actor.Context, op *cOp, err error) {
	if err != nil {
		if !m.fencedOut(ctx, err) {
			m.sh.log.Warn("taking over the actions of departed nodes failed; trying again", "dead", op.adopt, "err", err)
			m.adoptDead = append(m.adoptDead, op.adopt...)
			m.adoptAll = true
		}
		return
	}
	if len(op.adopted) == 0 {
		return
	}
	m.takeOver(ctx, op.adopted)
	m.sh.log.Info("took over actions of departed nodes", "actions", len(op.adopted), "dead", op.adopt)
	m.claimWanted = true
	for _, r := range op.adopted {
		if r.Record.Status.GetState() == messages.State_STATE_QUEUED {
			// Queued for everyone: the others need not wait for their
			// idle poll to run what this node has no thread for.
			m.nudgeOthers(ctx)
			break
		}
	}
}

// takeOver gives rows, which this node now owns at their epochs, their
// task actors: a fresh one, or this node's idle old actor of the action
// made new. (An actor poisoned here stops at once, on this goroutine, by
// the synchronized dispatcher, unless another goroutine is running its
// mailbox at that moment, answering a request: then it still holds the
// action's name, and a spawn under that name fails until it has stopped.
// The next reconciliation takes such an action again.)
func (m *cmanager) takeOver(ctx actor.Context, rows []pgstore.Row) {
	for _, r := range rows {
		id, perr := uuid.Parse(r.Record.Id)
		if perr != nil {
			continue
		}
		if m.movedAway(id, r.Epoch) {
			// Claimed by another node since: its action now.
			if e := m.entries[id]; e != nil {
				m.retire(ctx, e, "another node claimed it")
			}
			continue
		}
		if e := m.entries[id]; e != nil {
			if !e.slot && e.crash == "" {
				m.renew(ctx, e, r.Record.Spec, r.Record.Status, r.Epoch)
				continue
			}
			m.drop(ctx, e)
		}
		if _, serr := m.spawn(ctx, id, r.Record.Spec, r.Record.Status, r.Epoch); serr != nil {
			// The old actor has not stopped yet: the next reconciliation
			// finds the action owned here without an actor and takes it
			// again.
			m.sh.log.Error("cannot take over an action; the next reconciliation takes it again", "id", id, "err", serr)
		}
	}
}

// renew makes e's task actor (which runs nothing) the action as the store
// has it now, at epoch.
func (m *cmanager) renew(ctx actor.Context, e *centry, spec *messages.ActionSpec, st *messages.ActionStatus, epoch int64) {
	ctx.Send(e.pid, &taskInit{sh: m.sh, owner: ctx.Self(), id: e.id, token: st.Token, spec: spec, status: st})
	e.spec, e.token, e.epoch, e.status = spec, st.Token, epoch, st
	e.excl = exclusiveTasks(m.sh.repo, spec)
	e.retired, e.release, e.live = false, false, false
}

// runReconcile reads who owns op.check's actions and the actions this node
// owns, and takes again those it owns without a task actor that stands for
// them: none, one at an older epoch (a claim or take-over of this node
// whose result it did not get), or one that runs nothing while the store
// says a worker runs it.
func (m *cmanager) runReconcile(ctx context.Context, op *cOp) error {
	ids := make([]string, 0, len(op.check))
	for id := range op.check {
		ids = append(ids, id.String())
	}
	var err error
	if op.owners, err = m.db.Owners(ctx, m.cfg.Name, m.node, ids); err != nil {
		return err
	}
	var again []string
	var epochs []int64
	for _, o := range op.owners {
		if o.Owner != m.node || messages.Terminal(o.State) {
			continue
		}
		id, perr := uuid.Parse(o.ID)
		if perr != nil {
			continue
		}
		h, ok := op.check[id]
		if !ok || h.epoch != o.Epoch || o.Running && !h.slot {
			again, epochs = append(again, o.ID), append(epochs, o.Epoch)
		}
	}
	if len(again) > 0 {
		op.reowned, err = m.db.Reown(ctx, m.cfg.Name, m.node, m.addr, again, epochs, m.interrupted)
	}
	return err
}

// reconciled applies what the store said: an actor of an action another
// node owns, or that is gone, retires (a notice that never came); actions
// taken again get their actors.
func (m *cmanager) reconciled(ctx actor.Context, op *cOp, err error) {
	if err != nil {
		if !m.fencedOut(ctx, err) {
			m.sh.log.Warn("reconciling this node's actions with the shared store failed; trying again", "err", err)
			m.reconcileWanted = true
		}
		return
	}
	of := make(map[uuid.UUID]pgstore.Ownership, len(op.owners))
	for _, o := range op.owners {
		if id, perr := uuid.Parse(o.ID); perr == nil {
			of[id] = o
		}
	}
	for id, h := range op.check {
		e := m.entries[id]
		if e == nil || e.retired || e.pid != h.pid || e.epoch != h.epoch {
			continue // changed since: the next reconciliation sees it
		}
		o, ok := of[id]
		switch {
		case !ok && !e.slot && e.crash == "":
			m.sh.log.Warn("action removed from the shared store; retiring its task actor", "token", e.token)
			m.drop(ctx, e)
		case ok && o.Owner != m.node:
			m.retire(ctx, e, fmt.Sprintf("the shared store says node %s owns it (epoch %d, this node had %d): its notice never came", o.Owner, o.Epoch, e.epoch))
		}
	}
	if len(op.reowned) > 0 {
		m.sh.log.Warn("took again actions this node owned without a task actor for them", "actions", len(op.reowned))
		m.takeOver(ctx, op.reowned)
		m.claimWanted = true
	}
}

func (m *cmanager) retained(ctx actor.Context, op *cOp, err error) {
	if err != nil {
		m.sh.log.Warn("retention in the shared store failed", "err", err)
		return
	}
	byOwner := map[string][][]byte{}
	addrOf := map[string]string{}
	for _, r := range op.removed {
		id, perr := uuid.Parse(r.ID)
		if perr != nil {
			continue
		}
		if r.Owner == m.node {
			if e := m.entries[id]; e != nil && !e.slot {
				m.drop(ctx, e)
			}
			continue
		}
		byOwner[r.Owner] = append(byOwner[r.Owner], id[:])
		addrOf[r.Owner] = r.OwnerAddr
	}
	for owner, ids := range byOwner {
		if addr, ok := m.mem.Member(owner); ok {
			ctx.Send(actor.NewPID(addr, m.name), &messages.ActionsRemoved{Ids: ids})
		}
	}
}

// --- timers, shutdown ------------------------------------------------------------

func (m *cmanager) startTicker(ctx actor.Context) {
	every := m.tickEvery()
	stop := make(chan struct{})
	m.tickStop = stop
	self, root := ctx.Self(), ctx.ActorSystem().Root
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				root.Send(self, &cTick{})
			}
		}
	}()
}

// tick: claim when threads are free (another node's submissions reach us
// by nudge, this is the fallback; idlePoll says how often), and look for
// orphaned actions every lease (a departure whose event this node missed).
func (m *cmanager) tick() {
	// (Half a tick of slack: the claim went a little after its tick.)
	if m.running < m.cfg.MaximumThreads && time.Since(m.lastClaim) >= m.idlePoll()-m.tickEvery()/2 {
		m.claimWanted = true
	}
	if time.Since(m.lastOrphans) >= m.mem.LeaseTTL() {
		m.lastOrphans = time.Now()
		m.adoptAll = true
	}
	if time.Since(m.lastReconcile) >= m.mem.LeaseTTL() {
		m.reconcileWanted = true
	}
	// A notice waits at most for the commit being handled when it came
	// (one store operation, bounded by its timeout); the others were for
	// actors already gone.
	for id, n := range m.moved {
		if time.Since(n.at) > max(movedKeep, 2*m.cfg.AskTimeout) {
			delete(m.moved, id)
		}
	}
}

// beginShutdown: no more submissions or claims; running actions' workers
// are stopped; once they have exited, this node's actions are handed back
// to the cluster (running ones queued again for the others) and the reply
// goes to the waiter.
func (m *cmanager) beginShutdown(ctx actor.Context) {
	m.shutting = true
	m.shutWaiter = ctx.Sender()
	for _, e := range m.entries {
		if e.slot {
			ctx.Send(e.pid, &shutdownTask{})
		}
	}
	m.checkShutdown(ctx)
}

func (m *cmanager) checkShutdown(ctx actor.Context) {
	if !m.shutting || m.released || m.running > 0 || m.inflight || m.shutWaiter == nil {
		return
	}
	if m.pending != nil && (len(m.pending.submits) > 0 || len(m.pending.writes) > 0) {
		return // the last changes first (next runs them)
	}
	m.released = true
	if !m.evicted {
		c, cancel := context.WithTimeout(context.Background(), max(m.cfg.AskTimeout, 5*time.Second))
		err := m.db.Release(c, m.cfg.Name, m.node, func(a *messages.StoredAction) {
			a.Status.Running = false
			if !messages.Terminal(a.Status.State) && a.Status.State != messages.State_STATE_PAUSED {
				a.Status.State = messages.State_STATE_QUEUED
			}
			a.Status.Restarts++
		})
		cancel()
		if err != nil {
			m.sh.log.Error("could not hand this node's actions back to the cluster; the others take them over when its membership lapses", "err", err)
		}
	}
	ctx.Send(m.shutWaiter, &shutdownDone{})
}

// --- construction ------------------------------------------------------------------

// StartCluster starts the queue as a node of a cluster: its QueueManager
// owns this node's share of the actions in db, the shared store, and mem
// is the node's membership. cfg.Store is not used (db is the store).
func StartCluster(sys *actor.ActorSystem, cfg Config, db *pgstore.Store, mem Membership) (*ClusterQueue, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	if db == nil || mem == nil {
		return nil, errors.New("queue: a cluster queue needs the shared store and the membership")
	}
	c, cancel := context.WithTimeout(context.Background(), max(cfg.AskTimeout, 10*time.Second))
	defer cancel()
	if err := db.RegisterNode(c, mem.ID(), mem.Addr(), cfg.MaximumThreads); err != nil {
		return nil, fmt.Errorf("queue: register node %s in the shared store: %w", mem.ID(), err)
	}
	_, _, paused, err := db.Counts(c, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("queue: read the %s queue's state: %w", cfg.Name, err)
	}
	sh := &shared{
		repo: cfg.Repository, log: cfg.Logger.With("queue", cfg.Name, "node", mem.ID()), now: cfg.Now,
		stopTimeout: cfg.StopTimeout,
	}
	name := "queue-" + strings.ToLower(cfg.Name)
	m := newClusterManager(cfg, sh, sys.Root, db, mem, name)
	m.paused = paused
	props := actor.PropsFromProducer(func() actor.Actor { return m },
		actor.WithReceiverMiddleware(managerPanic(sh.log)), actor.WithMailbox(actor.Unbounded(&m.backlog)))
	pid, err := sys.Root.SpawnNamed(props, name)
	if err != nil {
		return nil, fmt.Errorf("queue: start %s: %w", cfg.Name, err)
	}
	mem.OnLeft(func(ids []string) { sys.Root.Send(pid, &cAdopt{dead: ids}) })
	q := &ClusterQueue{cfg: cfg, sys: sys, pid: pid, name: name, prefix: pid.Id + "/", upper: strings.ToUpper(cfg.Name),
		replies: newReplies(sys, 1024), db: db, mem: mem}
	return q, nil
}

// Shutdown stops admission and claims, stops this node's running actions
// (their work continues on another node: they are queued again), hands
// every action it owns back to the cluster, and stops its actors.
func (q *ClusterQueue) Shutdown(ctx context.Context) error {
	wait := q.cfg.AskTimeout
	if d, ok := ctx.Deadline(); ok {
		wait = time.Until(d)
	}
	var err error
	if wait > 0 {
		_, err = q.sys.Root.RequestFuture(q.pid, &beginShutdown{}, wait).Result()
		if errors.Is(err, actor.ErrTimeout) {
			err = fmt.Errorf("queue %s: running actions did not stop in time: %w", q.cfg.Name, context.DeadlineExceeded)
		}
	}
	if serr := q.sys.Root.StopFuture(q.pid).Wait(); serr != nil && err == nil {
		err = fmt.Errorf("queue %s: stop actors: %w", q.cfg.Name, serr)
	}
	return err
}

func cloneStatus(st *messages.ActionStatus) *messages.ActionStatus {
	return proto.Clone(st).(*messages.ActionStatus)
}

// retainEvery is how often the retainer applies retention; retryEvery how
// long after a failed commit its changes go again.
func (m *cmanager) retainEvery() time.Duration {
	return min(max(m.cfg.FinishedActionMaxAge/10, time.Second), time.Minute)
}

func (m *cmanager) retryEvery() time.Duration { return time.Second }

// tickEvery is the period of the manager's tick: a quarter of the lease,
// at most a second.
func (m *cmanager) tickEvery() time.Duration { return min(m.mem.LeaseTTL()/4, time.Second) }

// idlePoll is how long a node with free threads waits after its last
// claim before it looks for queued actions again, unless told sooner (a
// nudge from the node that queued them, a departure, a thread freed): a
// tick after a claim that found work, then twice as long after each
// claim in a row that found nothing, up to the lease. An idle cluster
// then asks the store about once a lease per node instead of four times
// a second, and the poll (a fallback for a lost nudge) still comes
// within a lease.
func (m *cmanager) idlePoll() time.Duration {
	return min(m.tickEvery()<<min(m.idleClaims, 3), m.mem.LeaseTTL())
}

// movedKeep: how long at least an ActionMoved notice without an actor is
// kept (and twice AskTimeout: well beyond a store operation's timeout,
// max(AskTimeout, 5s)).
const movedKeep = time.Minute
