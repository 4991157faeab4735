package queue

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store/pgstore"
)

// --- take-over, reconciliation, retention ------------------------------------

func (m *cmanager) adoptedDone(ctx actor.Context, op *cOp, err error) {
	m.takeOverFailed = err != nil
	if err != nil {
		if !m.fencedOut(ctx, err) {
			if op.outOfTime && op.batch > minAdoptBatch {
				m.adoptBatch = max(op.batch/2, minAdoptBatch)
				m.sh.log.Warn("a take-over ran out of time; the next takes fewer actions at once",
					"actions", op.batch, "next", m.adoptBatch, "spent", op.spent)
			}
			m.opFailed(opTakeOver, err, "dead", op.adopt)
			m.adoptDead = append(m.adoptDead, op.adopt...)
			m.adoptAll = true
			m.takeoverAt = time.Now().Add(m.retryEvery()) // the tick brings it back
		}
		return
	}
	m.opDone(opTakeOver)
	if m.adoptBatch > 0 && op.batch == m.adoptBatch && op.spent < m.opTimeout()/4 {
		// Well within its time: take more at once again, up to the
		// configured batch.
		m.adoptBatch = min(2*op.batch, m.cfg.adoptBatch)
	}
	m.adoptMore = moreToAdopt(m.adoptMore, op.took, len(op.adopted) >= op.batch)
	if len(op.adopted) == 0 {
		return
	}
	m.takeOver(ctx, op.adopted)
	m.sh.log.Info("took over actions of departed nodes", "actions", len(op.adopted), "dead", op.took, "more", m.adoptMore != nil)
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

// moreToAdopt is what remains to take over (cmanager.adoptMore) after a
// take-over of the actions of took (and of nobody) that filled its batch
// (full: there may be more of them) or not (it took all there were).
// Owners in more that the take-over did not cover stay.
func moreToAdopt(more, took []string, full bool) []string {
	if more != nil {
		more = slices.DeleteFunc(slices.Clone(more), func(id string) bool { return slices.Contains(took, id) })
	}
	if full {
		for _, id := range took {
			if !slices.Contains(more, id) {
				more = append(more, id)
			}
		}
		if more == nil {
			more = []string{} // the actions nobody owns
		}
	}
	if !full && len(more) == 0 {
		return nil // those of nobody were taken too
	}
	return more
}

// renew makes e's task actor (which runs nothing) the action as the store
// has it now, at epoch.
func (m *cmanager) renew(ctx actor.Context, e *centry, spec *messages.ActionSpec, st *messages.ActionStatus, epoch int64) {
	ctx.Send(e.pid, &taskInit{sh: m.sh, owner: ctx.Self(), id: e.id, token: st.Token, spec: spec, status: st})
	e.spec, e.token, e.epoch, e.status, e.recorded = spec, st.Token, epoch, st, st
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
	var ended []string
	for id, h := range op.check {
		if h.ended {
			ended = append(ended, id.String())
			continue
		}
		ids = append(ids, id.String())
	}
	var err error
	var gone []string
	if op.owners, gone, op.paused, err = m.db.OwnersPaused(ctx, m.cfg.Name, m.node, ids, ended); err != nil {
		return err
	}
	for _, id := range gone {
		if uid, perr := uuid.Parse(id); perr == nil {
			op.gone = append(op.gone, uid)
		}
	}
	var again []string
	var epochs []int64
	for _, o := range op.owners {
		if o.Owner != m.node || messages.Terminal(o.State) || op.unwritten[o.ID] {
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
			m.opFailed(opReconcile, err)
			m.reconcileWanted = true
			m.takeoverAt = time.Now().Add(m.retryEvery())
		}
		return
	}
	m.opDone(opReconcile)
	if op.paused != m.paused && op.pauseChanges == m.pauseChanges && !m.shutting {
		// A Pause or Resume of the queue this node missed (its message
		// lost, or overtaken by an older one from another node): it
		// stayed paused for good, claiming nothing while the store said
		// the queue ran, or ran while it was paused.
		m.sh.log.Warn("the queue's pause flag in the shared store differs from this node's; following the store", "paused", op.paused)
		m.setPaused(ctx, op.paused)
	}
	of := make(map[uuid.UUID]pgstore.Ownership, len(op.owners))
	for _, o := range op.owners {
		if id, perr := uuid.Parse(o.ID); perr == nil {
			of[id] = o
		}
	}
	for id, h := range op.check {
		e := m.entries[id]
		if h.ended || e == nil || e.retired || e.pid != h.pid || e.epoch != h.epoch {
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
	gone := 0
	for _, id := range op.gone {
		// Ended, and removed by retention whose notice never came (or
		// is still on its way: a pass removes thousands, so not one
		// line each).
		h := op.check[id]
		if e := m.entries[id]; e != nil && !e.retired && !e.slot && e.pid == h.pid && e.epoch == h.epoch {
			m.drop(ctx, e)
			gone++
		}
	}
	if gone > 0 {
		m.sh.log.Info("ended actions removed from the shared store by retention without this node hearing of it; dropped", "actions", gone)
	}
	if len(op.reowned) > 0 {
		m.sh.log.Warn("took again actions this node owned without a task actor for them", "actions", len(op.reowned))
		m.takeOver(ctx, op.reowned)
		m.claimWanted = true
	}
}

func (m *cmanager) retained(ctx actor.Context, op *cOp, err error) {
	if err != nil {
		m.opFailed(opRetain, err)
		return
	}
	m.opDone(opRetain)
	if len(op.removed) >= m.cfg.retainBatch {
		// A full batch: there may be more. The next pass is due at
		// once (after what is pending: retention comes last), not a
		// retainEvery later, so that a backlog of millions goes at a
		// batch per store operation.
		m.lastRetain = time.Now().Add(-m.retainEvery())
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
			to := actor.NewPID(addr, m.name)
			for len(ids) > 0 {
				n := min(len(ids), removedPerNotice)
				ctx.Send(to, &messages.ActionsRemoved{Ids: ids[:n:n]})
				ids = ids[n:]
			}
		}
	}
}

// removedPerNotice bounds the ids of one ActionsRemoved. A retention pass
// removes up to retainBatch actions, and the
// notice of all of one owner's went in one message: from about 230,000
// ids on it was larger than the 4 MB a gRPC server accepts, remoting
// could not send it, and the owner kept the task actors of those actions
// for good (its reconciliation checks only actions that have not ended).
// Remoting also packs up to 1000 queued messages into one gRPC message
// (EndpointWriterBatchSize), so a notice is kept small enough that a
// batch of them still fits: 128 ids are about 2.3 KB on the wire, and
// 1000 notices about 2.3 MB. A variable so that tests can lower it.
var removedPerNotice = 128

// adoptBatch is the most actions one take-over transaction takes
// (Config.adoptBatch): each is read, decoded, written back and given a task
// actor. A departed node may own a hundred thousand (queued, or ended and
// kept): taken in one transaction, they outlasted the store operation's
// timeout (AskTimeout, at least 5 s), which cancelled it, every time.
// A batch of 1,000 is a fraction of a second on a loaded 2-core machine
// (10,000 took 1.3 s).
const adoptBatch = 1000

// minAdoptBatch is the fewest actions a take-over takes at once when its
// batches keep running out of time (adoptBatchNow).
const minAdoptBatch = 16

// adoptBatchNow is the most actions the next take-over transaction takes:
// the configured batch (Config.adoptBatch), halved after each that ran out
// of the store operation's time (a slow or loaded PostgreSQL: each try of
// the same batch was cancelled at the same point, every second, for ever,
// and the departed node's actions were never taken), and doubled back
// after each that took under a quarter of it.
func (m *cmanager) adoptBatchNow() int {
	if m.adoptBatch > 0 {
		return m.adoptBatch
	}
	return m.cfg.adoptBatch
}

// retainBatch is the most ended actions one retention pass of a cluster
// removes (Config.retainBatch). 10,000 rows are a fraction of a second's
// DELETE, well within the store operation's timeout (AskTimeout, at
// least 5 s), during which the node's other store operations wait.
const retainBatch = 10_000
