package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store/pgstore"
)

// --- the store pipeline --------------------------------------------------------

// next starts the next store operation unless one is in flight: an
// adoption (members left, or the scan for orphans is due) or a
// reconciliation that is due, then the pending commit (a claim for free
// threads rides it), a claim alone, or retention. The batches of a
// take-over after its first (adoptBatch) alternate with the pending
// commits.
//
// Adoption and reconciliation go before the pending commit: on a node
// that is never without one (submissions or changes arrive while each
// commit is in flight: closed-loop clients, busy workers), they were
// put off until a commit happened to find nothing pending, and the claim
// does not ride a commit while an adoption is due (the departed nodes'
// actions are taken, and their running ones queued again, before this
// node claims), so queued actions waited seconds with threads free
// (issue 17: the N=1 benchmark's 4 s window stretched to 6–12 s). They
// cost the pending commit one operation, at most once a lease each.
func (m *cmanager) next(ctx actor.Context) {
	if m.inflight || m.ops == nil {
		return
	}
	if len(m.retry) > 0 && (m.shutting && !m.gaveUp || !time.Now().Before(m.retryAt)) {
		op := m.op()
		for _, w := range m.retry {
			op.writes = append([]pgstore.OwnedWrite{w}, op.writes...)
		}
		m.retry = nil
	}
	if m.evicted && m.pending != nil {
		// Declared dead: nothing more reaches the store.
		for _, p := range m.pending.submits {
			m.cfg.Observer.Rejected("shutting_down")
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
	active := !m.evicted && !m.released && !m.shutting && !time.Now().Before(m.takeoverAt)
	switch {
	case len(m.unsettled) > 0 && !m.released && (m.shutting || !time.Now().Before(m.settleAt)):
		// First: their requesters wait.
		op = &cOp{settle: m.unsettled}
		m.unsettled = nil
	case active && m.reconcileWanted && len(m.retry) == 0 && m.takeOverFailed:
		// The last take-over failed and is due again: a reconciliation
		// that is due goes first, once, or a take-over that keeps
		// failing (tried every second) would hold it off for good.
		// When both fail (the store out of reach) they take turns.
		op = m.reconcileOp()
		m.takeOverFailed = false
	case active && (len(m.adoptDead) > 0 || m.adoptAll):
		op = &cOp{adopt: m.adoptDead, unowned: true}
		m.adoptDead, m.adoptAll = nil, false
	case active && m.reconcileWanted && len(m.retry) == 0:
		op = m.reconcileOp()
	case active && m.adoptMore != nil && !m.adoptedLast:
		// The next batch of a take-over, alternating with the node's
		// commits (a take-over of many actions no longer holds them
		// off until it ends).
		op, m.adoptMore = &cOp{adopt: m.adoptMore}, nil
	case m.pending != nil && (len(m.pending.submits) > 0 || len(m.pending.writes) > 0 || len(m.pending.qreplies) > 0):
		op, m.pending = m.pending, nil
		if !m.evicted && !m.shutting && len(m.adoptDead) == 0 && !m.adoptAll &&
			(m.claimWanted || m.claimFull || len(op.submits) > 0) && !m.paused && m.running < m.cfg.MaximumThreads {
			// The claim rides the commit: one round trip, not two.
			// A commit that queues actions always carries one (when
			// threads are free), so that the node claims what it
			// queues in the transaction that queues it: claimed
			// later, by its next operation, another node's claim
			// came first for about one action in ten at N=3, each
			// costing a task actor spawned here and retired on a
			// remote ActionMoved, and a second one there (issue 17:
			// work per action that grew with the number of nodes).
			op.claim = m.cfg.MaximumThreads - m.running
			m.claimWanted, m.claimFull = false, false
			m.lastClaim = time.Now()
		}
	case m.evicted || m.released:
		return
	case m.shutting:
		return
	case (m.claimWanted || m.claimFull) && !m.paused && m.running < m.cfg.MaximumThreads:
		op = &cOp{claim: m.cfg.MaximumThreads - m.running}
		m.claimWanted, m.claimFull = false, false
		m.lastClaim = time.Now()
	case active && m.adoptMore != nil:
		op, m.adoptMore = &cOp{adopt: m.adoptMore}, nil
	case !m.lastRetain.IsZero() && time.Since(m.lastRetain) >= m.retainEvery() && m.isRetainer():
		op = &cOp{retain: true}
		m.lastRetain = time.Now()
	default:
		if m.lastRetain.IsZero() {
			m.lastRetain = time.Now()
		}
		return
	}
	if op.adopt != nil || op.unowned {
		op.batch = m.adoptBatchNow()
	}
	m.inflight = true
	m.ops <- op
}

// reconcileEnded is how many ended actions a reconciliation checks at
// most (reconcileOp).
const reconcileEnded = 250

// reconcileOp is a reconciliation of this node's task actors. Nothing of
// this node is in flight (one operation at a time, each handled before
// the next; its pending submissions have no actors and no rows yet): its
// actors are what the store should say it owns.
func (m *cmanager) reconcileOp() *cOp {
	op := &cOp{reconcile: true, check: make(map[uuid.UUID]cheld, len(m.entries)), pauseChanges: m.pauseChanges}
	ended := 0
	for id, e := range m.entries {
		if e.retired || e.crash != "" {
			continue
		}
		// Only an action that has not ended can have moved: an ended
		// one stays ended wherever it is asked. It can still have been
		// removed by retention whose notice (ActionsRemoved, sent once)
		// never came: it stayed here for good, answering its token
		// while every other node said it is unknown. reconcileEnded of
		// them are checked each time (only whether the store still has
		// them), whichever the map's order gives first (random), so
		// that a node holding many ended actions reads no more.
		if e.status == nil || !messages.Terminal(e.status.State) {
			op.check[id] = cheld{epoch: e.epoch, slot: e.slot, pid: e.pid}
		} else if !e.slot && ended < reconcileEnded {
			op.check[id] = cheld{epoch: e.epoch, pid: e.pid, ended: true}
			ended++
		}
	}
	// Since reconciliation goes before the pending commit, the store
	// may not have this node's latest changes yet: an action that has
	// ended here, its end still pending, is Running in its row, and
	// taking it "again" ran it a second time on another node.
	if m.pending != nil || len(m.retry) > 0 || len(m.stopHeld) > 0 {
		op.unwritten = map[string]bool{}
		for id := range m.stopHeld {
			op.unwritten[id.String()] = true
		}
		if m.pending != nil {
			for _, w := range m.pending.writes {
				op.unwritten[w.Record.Id] = true
			}
		}
		for id := range m.retry {
			op.unwritten[id] = true
		}
	}
	m.reconcileWanted = false
	m.lastReconcile = time.Now()
	return op
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

// opTimeout bounds one store operation of the manager: each of the
// pipeline (run), and the release at shutdown.
func (m *cmanager) opTimeout() time.Duration { return max(m.cfg.AskTimeout, 5*time.Second) }

// run performs op against the store, on the pipeline's goroutine (it reads
// only op and the manager's immutable fields).
func (m *cmanager) run(op *cOp) error {
	ctx, cancel := context.WithTimeout(context.Background(), m.opTimeout())
	defer cancel()
	var err error
	switch {
	case len(op.submits) > 0 || len(op.writes) > 0 || len(op.qreplies) > 0:
		// One transaction: the owned writes, the submissions, and the
		// datastore writes the node's tasks deferred (an action's end
		// is never committed without its task's record of it).
		acts := m.newActions(op.submits)
		if len(op.writes) > 0 || len(acts) > 0 || op.claim > 0 {
			var r pgstore.GroupResult
			t0 := time.Now()
			r, err = m.db.Commit(ctx, m.cfg.Name, m.node, m.addr,
				pgstore.Group{Writes: op.writes, Submits: acts, MaxWaiting: m.cfg.MaximumQueueSize, Claim: op.claim, ClaimAtMs: m.sh.now().UnixMilli()})
			op.seqs, op.fenced, op.claimed = r.Seqs, r.Fenced, r.Claimed
			if n := len(op.writes) + len(acts); n > 0 {
				// As a single node's group commit (Observer.Committed):
				// from this goroutine, as the writer's there.
				m.cfg.Observer.Committed(n, time.Since(t0), err)
			}
		}
	case op.settle != nil:
		op.settled, err = m.db.Resubmit(ctx, m.cfg.Name, m.node, m.addr, m.newActions(op.settle), m.cfg.MaximumQueueSize)
	case op.claim > 0:
		op.claimed, err = m.db.ClaimAt(ctx, m.cfg.Name, m.node, m.addr, op.claim, m.sh.now().UnixMilli())
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
		op.took = dead
		t0 := time.Now()
		op.adopted, err = m.db.Adopt(ctx, m.cfg.Name, m.node, m.addr, dead, op.batch, m.interrupted)
		op.spent, op.outOfTime = time.Since(t0), err != nil && ctx.Err() == context.DeadlineExceeded
	case op.retain:
		var before int64
		if m.cfg.FinishedActionMaxAge > 0 {
			before = m.sh.now().Add(-m.cfg.FinishedActionMaxAge).UnixMilli()
		}
		op.removed, err = m.db.Retain(ctx, m.cfg.Name, m.cfg.MaximumFinishedActions, before, m.cfg.retainBatch)
	case op.reconcile:
		err = m.runReconcile(ctx, op)
	}
	return err
}

// newActions are submissions ps as the store takes them.
func (m *cmanager) newActions(ps []*pendingSubmit) []pgstore.NewAction {
	acts := make([]pgstore.NewAction, len(ps))
	for i, p := range ps {
		acts[i] = pgstore.NewAction{
			Record:    &messages.StoredAction{Id: p.id.String(), Spec: p.spec, Status: p.status},
			Exclusive: exclusiveTasks(m.sh.repo, p.spec),
		}
	}
	return acts
}

// interrupted turns the record of an action whose worker's node died (or
// left) into what it becomes, as after a crash in process: queued again
// (its restart count up; one paused while running stays paused), without
// the start of the run that ended with the node (it has none until it
// starts again; Adopt and Reown write the row's started_ms from the
// record), or ended as Error under ProcessingOnRestart=Error.
func (m *cmanager) interrupted(a *messages.StoredAction) {
	st := a.Status
	st.Running = false
	switch {
	case messages.Terminal(st.State):
	case m.cfg.OnRestart == RestartError:
		st.State, st.Error, st.EndedUnixMs = messages.State_STATE_ERROR, ErrInterrupted.Error(), m.sh.now().UnixMilli()
	default:
		requeued(st)
	}
}

// requeued makes the status of an action whose worker ended with its
// process or node (a crash, a node that left, a node handing its actions
// back) wait again: Queued (or still Paused, if it was paused while it
// ran, until its Resume), its restart count up, and no start time, as any
// action that waits, until it starts again.
func requeued(st *messages.ActionStatus) {
	if st.State != messages.State_STATE_PAUSED {
		st.State = messages.State_STATE_QUEUED
	}
	st.Restarts++
	st.StartedUnixMs = 0
}

func (m *cmanager) done(ctx actor.Context, d *cDone) {
	m.inflight = false
	op := d.op
	m.adoptedLast = op.adopt != nil || op.unowned
	switch {
	case len(op.submits) > 0 || len(op.writes) > 0 || len(op.qreplies) > 0:
		m.committed(ctx, op, d.err)
		if op.claim > 0 { // the claim that rode the commit: after it, so that its submissions have their actors
			m.claimedDone(ctx, op, d.err)
		}
	case op.settle != nil:
		m.settledDone(ctx, op, d.err)
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
		// Nothing more reaches the store: submissions whose commit's
		// outcome is not known stay so.
		m.refuseUnsettled(ctx, m.unsettled, "this node was dropped from the cluster")
		m.unsettled = nil
		for _, e := range m.entries {
			if e.slot {
				ctx.Send(e.pid, &shutdownTask{})
			}
		}
		m.mem.Evict(err)
	}
	return true
}

// writeFailureKind names the kind of a failed commit's error, for the
// log: the database out of reach, its TLS settings, or anything else
// (a statement it refuses, a record that does not encode).
func writeFailureKind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, pgstore.ErrTLS):
		return "tls"
	case errors.Is(err, pgstore.ErrUnavailable):
		return "unavailable"
	default:
		return "other"
	}
}

// The node's operations on the store other than its writes, as their
// failures are logged (opFailed).
const (
	opClaim     = "claiming queued actions"
	opTakeOver  = "taking over the actions of departed nodes"
	opReconcile = "reconciling this node's actions with the shared store"
	opRetain    = "retention in the shared store"
	opSettle    = "asking the shared store whether submissions whose commit failed were queued"
)

// opFailure is a run of failed attempts of one operation (opFailures):
// how many, and the kind of the last one's error (writeFailureKind).
type opFailure struct {
	n    int
	kind string
}

// opFailed logs a failed attempt of the operation what, which is tried
// again: at level warn, with its cause, the first of a run (or one of
// another kind than the last: news, not a retry), at debug level the
// others, as the writes' (committed). Each was logged at level warn: the
// look for orphans every second, claims and retention at their pace,
// several lines a second per node for as long as PostgreSQL was down.
func (m *cmanager) opFailed(what string, err error, attrs ...any) {
	f := m.opFailures[what]
	kind := writeFailureKind(err)
	f.n++
	if f.n == 1 || kind != f.kind {
		m.sh.log.Warn(what+" failed; trying again (the failed attempts that follow are logged at debug level)",
			append(attrs, "attempt", f.n, "err", err)...)
	} else {
		m.sh.log.Debug(what+" failed again; trying again", append(attrs, "attempt", f.n, "err", err)...)
	}
	f.kind = kind
	if m.opFailures == nil {
		m.opFailures = map[string]opFailure{}
	}
	m.opFailures[what] = f
}

// opDone ends a run of failures of the operation what, saying so once, at
// level info, with the number of failed attempts.
func (m *cmanager) opDone(what string) {
	if f, ok := m.opFailures[what]; ok {
		delete(m.opFailures, what)
		m.sh.log.Info(what+" resumed", "failed_attempts", f.n)
	}
}

func (m *cmanager) committed(ctx actor.Context, op *cOp, err error) {
	if err != nil && m.fencedOut(ctx, err) {
		for _, p := range op.submits {
			m.cfg.Observer.Rejected("shutting_down")
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
	switch kind := writeFailureKind(err); {
	case err != nil && (m.writeFailures == 0 || kind != m.writeFailure):
		m.writeFailures++
		m.writeFailure = kind
		m.sh.log.Error("shared store write failed; changes will be written again every second until it succeeds (the failed attempts that follow are logged at debug level)",
			"changes", len(op.writes), "submissions", len(op.submits), "attempt", m.writeFailures, "err", err)
	case err != nil:
		m.writeFailures++
		m.sh.log.Debug("shared store write failed again; changes will be written again",
			"attempt", m.writeFailures, "changes", len(op.writes), "submissions", len(op.submits), "err", err)
	case m.writeFailures > 0:
		m.sh.log.Info("shared store writes resumed", "failed_attempts", m.writeFailures)
		m.writeFailures, m.writeFailure = 0, ""
	}
	if err != nil {
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
		if m.shutting && !m.gaveUp {
			// Retrying every second would hold the shutdown up for as
			// long as the store is out of reach.
			m.gaveUp = true
			m.sh.log.Warn("shared store still failing during shutdown; this node's unwritten changes are lost, and its actions are handed back as the store has them",
				"changes", len(m.retry))
		}
	}
	for _, w := range op.writes {
		switch {
		case err == nil:
			delete(m.unsure, w.Record.Id) // written, or fenced
		case errors.Is(err, pgstore.ErrUncertain):
			if m.unsure == nil {
				m.unsure = map[string]bool{}
			}
			m.unsure[w.Record.Id] = true
		}
	}
	var undone map[string]*messages.ActionStatus
	if err != nil {
		undone = m.undoUnrecorded(ctx, op)
	}
	fenced := map[string]bool{}
	for _, id := range op.fenced {
		fenced[id] = true
	}
	m.observeCommitted(op, undone, fenced)
	for _, id := range op.fenced {
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
			// This node claimed it meanwhile (a newer epoch): write again
			// (and tell the Observer once that is done).
			m.write(e, op.replies[id])
			delete(op.replies, id)
			next := m.op()
			for _, o := range op.observe {
				if o.id == uid {
					next.observe = append(next.observe, o)
				}
			}
			continue
		}
		m.retire(ctx, e, "another node owns it now")
	}
	if err == nil {
		for _, w := range op.writes {
			if fenced[w.Record.Id] {
				continue
			}
			if uid, perr := uuid.Parse(w.Record.Id); perr == nil {
				if e := m.entries[uid]; e != nil && e.epoch == w.Epoch {
					e.recorded = w.Record.Status
				}
			}
		}
	}
	for id, rs := range op.replies {
		for _, r := range rs {
			switch {
			case fenced[id]:
				ctx.Send(r.to, &messages.NotOwner{Message: "another node owns the action now"})
			case undone[id] != nil:
				ctx.Send(r.to, &messages.ActionReply{Status: cloneStatus(undone[id]), Code: messages.ErrorCode_ERROR_CODE_STORE,
					Message: fmt.Sprintf("nothing was changed: the action waits for a thread of any node of the cluster, so a change to it holds only once the shared store has it, and the store could not record it; ask again once it answers: %v", err)})
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
	if err != nil && len(op.submits) > 0 && errors.Is(err, pgstore.ErrUncertain) && !m.shutting && !m.evicted {
		// The commit may have landed, or land yet: answered once a
		// Resubmit settles it (settledDone). Answered "not accepted",
		// such an action was queued and ran all the same, and a client
		// that submitted it again ran it twice.
		for _, p := range op.submits {
			p.failed = err
		}
		m.unsettled = append(m.unsettled, op.submits...)
		m.settleAt = time.Time{}
		op.submits = nil
	}
	for i, p := range op.submits {
		if err != nil {
			m.refuseUnsettled(ctx, []*pendingSubmit{p}, err.Error())
			continue
		}
		if m.accepted(ctx, p, op.seqs[i], 1, true) {
			queued++
		}
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

// accepted answers submission p, which the store has at seq (0: left
// out, the queue full) at epoch: its token, and a task actor if this node
// still owns it (own) and has none; it reports whether it made one.
func (m *cmanager) accepted(ctx actor.Context, p *pendingSubmit, seq uint64, epoch int64, own bool) bool {
	if seq == 0 {
		m.cfg.Observer.Rejected("queue_full")
		ctx.Send(p.sender, &messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_QUEUE_FULL,
			Message: fmt.Sprintf("the %s queue already holds MaximumQueueSize=%d waiting actions across the cluster", m.cfg.Name, m.cfg.MaximumQueueSize)})
		return false
	}
	p.status.Seq = seq
	if m.movedAway(p.id, epoch) || !own || m.entries[p.id] != nil {
		// Already claimed by another node (the token is valid, the
		// action is the claimer's), or this node has its actor.
		m.cfg.Observer.Submitted(p.spec.FetchAction)
		ctx.Send(p.sender, &messages.SubmitReply{Token: p.token})
		return false
	}
	if _, serr := m.spawn(ctx, p.id, p.spec, p.status, epoch); serr != nil {
		ctx.Send(p.sender, &messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_INTERNAL, Message: serr.Error()})
		return false
	}
	m.cfg.Observer.Submitted(p.spec.FetchAction)
	ctx.Send(p.sender, &messages.SubmitReply{Token: p.token})
	return true
}

// refuseUnsettled answers submissions ps that the store may have queued
// (their commit failed, why) with ERRORSTOREFAILED.
func (m *cmanager) refuseUnsettled(ctx actor.Context, ps []*pendingSubmit, why string) {
	for _, p := range ps {
		m.cfg.Observer.Rejected("store")
		ctx.Send(p.sender, &messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_STORE,
			Message: fmt.Sprintf("the action was not accepted and has no token: the shared store could not record it (if the store received it, it waits queued under a token nobody was told): %s", why)})
	}
}

// settledDone: a Resubmit of submissions whose commit's outcome was not
// known. Each is queued (its token, as any accepted submission) or not
// (the queue was full): its commit did not land, and will not. Failed, it
// is tried again a second later; while the node shuts down (or is
// dropped from the cluster), its requesters are answered that the store
// could not record it, as before.
func (m *cmanager) settledDone(ctx actor.Context, op *cOp, err error) {
	if err != nil {
		if m.fencedOut(ctx, err) || m.shutting {
			m.refuseUnsettled(ctx, op.settle, fmt.Sprintf("%v; asked again: %v", op.settle[0].failed, err))
			return
		}
		m.opFailed(opSettle, err)
		m.unsettled = append(op.settle, m.unsettled...)
		m.settleAt = time.Now().Add(m.retryEvery())
		self, root := ctx.Self(), ctx.ActorSystem().Root
		time.AfterFunc(m.retryEvery(), func() { root.Send(self, &cTick{}) })
		return
	}
	m.opDone(opSettle)
	queued := 0
	for i, p := range op.settle {
		r := op.settled[i]
		if r.Seq != 0 && r.Epoch != 1 && r.Owner == m.node && m.entries[p.id] == nil {
			// This node claimed it, by a claim whose commit too may
			// have landed unbeknown: the reconciliation takes it again.
			m.reconcileWanted = true
		}
		if m.accepted(ctx, p, r.Seq, r.Epoch, r.Owner == m.node && r.Epoch == 1) {
			queued++
		}
	}
	if queued > 0 {
		m.claimWanted = true
		if m.running >= m.cfg.MaximumThreads {
			m.nudgeOthers(ctx)
		}
	}
}

// undoUnrecorded undoes the clients' changes of op (whose commit failed)
// to actions that wait for a thread (this node runs no worker for them),
// and returns the status each is back to, by id. Such an action is queued
// for the whole cluster: any node whose store works may claim it
// meanwhile, and run it, however this node answers. A Cancel kept here
// and answered "the action is now Cancelled, ... written again as soon as
// the store answers" was undone by that claim, and the action ran; this
// node answered Cancelled until the claim's notice came. Undone, the
// change is refused (ERRORSTOREFAILED: nothing was changed), its write
// is not tried again, and the task actor is the action as recorded. A
// change of a running action stays in effect (its worker was stopped,
// paused...) and is written again, as before; so is one that a newer
// change waiting in the pending commit follows (it carries both), and
// one to an action a write of which may have landed (unsure): its
// replies wait for the commit that writes it again.
func (m *cmanager) undoUnrecorded(ctx actor.Context, op *cOp) map[string]*messages.ActionStatus {
	var undone map[string]*messages.ActionStatus
	for id, rs := range op.replies {
		if len(rs) == 0 {
			continue
		}
		uid, perr := uuid.Parse(id)
		if perr != nil {
			continue
		}
		e := m.entries[uid]
		if e == nil || e.slot || e.live || e.retired || e.crash != "" || !waiting(e.recorded) {
			continue
		}
		if _, newer := m.pendingWrite(id); newer {
			continue
		}
		if _, retried := m.retry[id]; !retried {
			continue
		}
		if m.unsure[id] && !m.shutting {
			// A write of it may have landed, or land yet: undone, the
			// change was refused while the store had it. It is written
			// again (retry), and answered (and told to the Observer)
			// once that is done, as the commit that carries it says.
			next := m.op()
			next.replies[id] = append(next.replies[id], rs...)
			delete(op.replies, id)
			for _, o := range op.observe {
				if o.id == uid {
					next.observe = append(next.observe, o)
				}
			}
			op.observe = slices.DeleteFunc(op.observe, func(o cObserved) bool { return o.id == uid })
			continue
		}
		delete(m.retry, id)
		st := e.recorded
		e.status = st
		e.endSeen = messages.Terminal(st.GetState())
		ctx.Send(e.pid, &taskInit{sh: m.sh, owner: ctx.Self(), id: e.id, token: e.token, spec: e.spec, status: st})
		if undone == nil {
			undone = map[string]*messages.ActionStatus{}
		}
		undone[id] = st
	}
	return undone
}

// observeCommitted tells the Observer of the changes of op it waited for
// (cObserved), except those undone or fenced (they did not happen): a
// change written, or kept to be written again behind a newer one.
func (m *cmanager) observeCommitted(op *cOp, undone map[string]*messages.ActionStatus, fenced map[string]bool) {
	for _, o := range op.observe {
		id := o.id.String()
		e := m.entries[o.id]
		if e == nil || undone[id] != nil || fenced[id] {
			continue
		}
		if m.sh.observe(m.cfg.Observer, e.spec, o.old, o.status, false, e.startedMs, e.endSeen, time.Time{}) == observedEnd {
			e.endSeen = true
		}
	}
}

// waiting reports whether st is the status of an action that waits for a
// thread: Queued, or Paused without a worker (nil: not known).
func waiting(st *messages.ActionStatus) bool {
	if st == nil || st.Running {
		return false
	}
	return st.State == messages.State_STATE_QUEUED || st.State == messages.State_STATE_PAUSED
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
			m.opFailed(opClaim, err)
		}
		return
	}
	m.opDone(opClaim)
	for _, c := range op.claimed {
		id, perr := uuid.Parse(c.Record.Id)
		if perr != nil {
			continue
		}
		moved := c.PrevOwner != "" && c.PrevOwner != m.node
		if c.Damaged != nil {
			// Its record does not decode: it cannot run. This node
			// owns it, Processing, with no worker: the reconciliation,
			// at once, takes it again, which ends it as Error (the
			// store logged it). Its previous owner is told, as for any
			// claim, so that it retires its task actor now rather than
			// answer Queued until its own reconciliation.
			m.reconcileWanted = true
			if moved {
				ctx.Send(actor.NewPID(c.PrevAddr, m.name), &messages.ActionMoved{Id: id[:], Epoch: c.Epoch})
			}
			continue
		}
		if m.shutting {
			// The node began to stop while the claim was in flight:
			// nothing more starts here (its shutdown stopped the
			// workers it had; one started now would run on, and the
			// shutdown wait for it). The release hands the action
			// back queued, as any that ran here. Its previous owner
			// retires its actor all the same.
			if moved {
				ctx.Send(actor.NewPID(c.PrevAddr, m.name), &messages.ActionMoved{Id: id[:], Epoch: c.Epoch})
			}
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
		e.claimed = true // the claim wrote its start (changed)
		e.recorded = nil // it runs: a change to it is never undone (undoUnrecorded)
		m.running++
		for i, t := range m.threads {
			if t == nil {
				m.threads[i], e.thread = e, i+1
				break
			}
		}
		ctx.Send(e.pid, startMsg)
		if moved {
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
