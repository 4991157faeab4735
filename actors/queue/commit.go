package queue

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// batch is one group commit: the mutations of many messages, and what to do
// once they are on disk. The first nsub mutations are the new actions of
// submits (never retried: a refused submission is gone).
//
// A batch is used again once its commit is over (recycle): the
// QueueManager keeps the last one as its spare, so that under load the
// commits take turns with two batches and reuse their slices instead of
// allocating a batch, a list of waiting submissions grown from nothing,
// a list of mutations and a report for every commit.
type batch struct {
	nsub    int
	muts    []store.ActionMutation
	submits []*pendingSubmit
	// free is a mutation list to build the next commit's in (flush):
	// muts, once flush has copied it into the list written.
	free    []store.ActionMutation
	replies []pendingReply
	paused  *bool // the queue's pause flag, when it changed
	// queueReplies are answered with the queue's status once the pause
	// flag is written (queue Pause and Resume).
	queueReplies []*actor.PID
	// Set by the writer once written (see stopWriter).
	written bool
	err     error
	// answered: stopWriter sent its replies (its committed report, if it
	// still comes, is ignored).
	answered bool
	// report is the writer's committed message for this batch.
	report committed
}

// maxSpare bounds the capacity of the slices a recycled batch keeps: a
// burst's commit of many thousands is not kept around for ever.
const maxSpare = 4096

type pendingSubmit struct {
	sender *actor.PID
	id     uuid.UUID
	token  string
	spec   *messages.ActionSpec
	status *messages.ActionStatus
	// failed is why a cluster node's commit of it failed, its outcome
	// not known (cmanager.unsettled).
	failed error
	// rec is the record to write (nil: flush makes one): see localSubmit.
	rec *messages.StoredAction
	// reply is the answer sent once the action is durable (answer): the
	// submission's own, so that the commit's report allocates nothing per
	// submission. The requester only reads it once it has received it.
	reply messages.SubmitReply
}

// localSubmit is a submission to the QueueManager of a durable queue with
// its status and its record inline: one allocation instead of three per
// submission (and the record's id string is the task actor's name).
type localSubmit struct {
	p   pendingSubmit
	st  messages.ActionStatus
	rec messages.StoredAction
}

type pendingReply struct {
	to    *actor.PID
	reply *messages.ActionReply
}

// persist records an action's new status (with a store).
func (m *manager) persist(e *entry, st *messages.ActionStatus) {
	if m.st == nil {
		return
	}
	b := m.batchOf()
	b.muts = append(b.muts, store.ActionMutation{Put: &messages.StoredAction{Id: e.id.String(), Spec: e.spec, Status: st}})
	delete(m.retry, e.id.String()) // the new record supersedes the failed one
}

func (m *manager) batchOf() *batch {
	if m.pending == nil {
		m.pending = m.newBatch()
	}
	return m.pending
}

// newBatch returns the spare batch if there is one, else a new one.
func (m *manager) newBatch() *batch {
	if b := m.spare; b != nil {
		m.spare = nil
		return b
	}
	return &batch{}
}

// recycle empties batch b, whose commit is over and whose replies are all
// sent, and keeps it as the spare. Its slices keep their capacity (up to
// maxSpare), emptied of their pointers so that the answered submissions
// and their records are not kept alive.
func (m *manager) recycle(b *batch) {
	if cap(b.submits) > maxSpare || cap(b.muts) > maxSpare || cap(b.free) > maxSpare {
		return
	}
	clear(b.submits)
	clear(b.muts)
	clear(b.replies)
	clear(b.queueReplies)
	*b = batch{submits: b.submits[:0], muts: b.muts[:0], free: b.free[:0],
		replies: b.replies[:0], queueReplies: b.queueReplies[:0]}
	m.spare = b
}

// flush starts a group commit of everything pending unless one is already
// being written; what arrives meanwhile waits for the next one. So under
// load each fsync carries every submission that arrived during the last.
// Changes whose last commit failed ride along with any batch; alone, they
// are retried a second after the failure (at once while shutting down),
// unless the store failed for good (storeFailed): it refuses every write
// until the server restarts.
func (m *manager) flush(ctx actor.Context) {
	if m.st == nil || m.inflight || m.writes == nil {
		m.checkShutdown(ctx)
		return
	}
	retryDue := (len(m.retry) > 0 || m.pausedRetry) && !m.storeFailed &&
		(m.shutting && !m.gaveUp || !time.Now().Before(m.retryAt)) // wall clock, like the timer
	if m.pending == nil && !retryDue && !m.pausedDirty {
		m.checkShutdown(ctx)
		return
	}
	if m.holdCommit(ctx, retryDue) {
		return
	}
	m.holding, m.holdOver = false, false
	b := m.pending
	if b == nil {
		b = m.newBatch()
	}
	m.pending = nil
	if m.pausedDirty || m.pausedRetry {
		p := m.paused
		b.paused = &p
		m.pausedDirty, m.pausedRetry = false, false
	}
	// New actions first, then retried changes, then this round's changes.
	// No action has both a retry and a change in this round (a change
	// removes the action's retry), so no record overwrites a newer one.
	muts := b.free[:0]
	if n := len(b.submits) + len(m.retry) + len(b.muts); cap(muts) < n {
		muts = make([]store.ActionMutation, 0, n)
	}
	for _, p := range b.submits {
		rec := p.rec
		if rec == nil {
			rec = &messages.StoredAction{Id: p.id.String(), Spec: p.spec, Status: p.status}
		}
		muts = append(muts, store.ActionMutation{Put: rec})
	}
	for _, r := range m.retry {
		muts = append(muts, r)
	}
	m.retry = nil
	b.nsub = len(b.submits)
	muts = append(muts, b.muts...)
	clear(b.muts)
	b.free, b.muts = b.muts[:0], muts
	m.inflight = true
	m.sent = b
	m.writes <- b
	// The writer, woken by the send, waits on this goroutine's P
	// (runnext) until the QueueManager yields it: after the rest of its
	// mailbox and, from committed, after answering the batch just
	// written (its replies and its task actors' spawns), while the disk
	// has nothing to do. Yielding here lets the writer encode and write
	// the batch at once; its fdatasync hands the P back (store's
	// fdatasync, entersyscallblock). Measured over HTTP (durable submit,
	// 32 clients): the send-to-writer wait went from a mean of 36–41 µs
	// (p90 ≈ 100) to 4 µs of a ≈ 0.8 ms commit cycle, and CPU per submit
	// 0.975 of before (bench/RESULTS.md, "gs18").
	runtime.Gosched()
}

// Defaults of Config.CommitDelay and CommitSiblings.
const (
	defaultCommitDelay    = 200 * time.Microsecond
	defaultCommitSiblings = 5
)

// holdCommit reports whether the pending batch, which the disk is free to take,
// waits for more submissions first (Config.CommitDelay): only when other
// clients are submitting (the last two commits acknowledged at least
// CommitSiblings submissions), while it holds fewer than half of those,
// and for CommitDelay at most (a commitTick ends the wait). Under load a
// commit otherwise takes whatever arrived during the last one, and the
// commits alternate between a few submissions and many: each costs the
// same fdatasync. Batches that carry anything urgent for the queue itself
// (retries, the pause flag, a shutdown) never wait.
func (m *manager) holdCommit(ctx actor.Context, retryDue bool) bool {
	b := m.pending
	active := m.recent[0] + m.recent[1]
	if m.holdOver || m.cfg.CommitDelay <= 0 || m.shutting || retryDue || m.pausedDirty || m.pausedRetry ||
		b == nil || len(b.submits) == 0 || active < m.cfg.CommitSiblings || 2*len(b.submits) >= active {
		return false
	}
	if !m.holding {
		m.holding = true
		m.holdGen++
		gen, self, root := m.holdGen, ctx.Self(), ctx.ActorSystem().Root
		time.AfterFunc(m.cfg.CommitDelay, func() { root.Send(self, &commitTick{gen: gen}) })
	}
	return true
}

func (m *manager) committed(ctx actor.Context, c *committed) {
	if c.b.answered {
		return
	}
	m.inflight = false
	m.sent = nil
	m.recent[1], m.recent[0] = m.recent[0], len(c.b.submits)
	if c.err != nil {
		switch {
		case !errors.Is(c.err, store.ErrFailed):
			m.sh.log.Error("store write failed; changes will be written again",
				"changes", len(c.b.muts), "err", c.err)
		case !m.storeFailed:
			m.storeFailed = true
			m.sh.log.Error("the store failed (a write or fdatasync whose outcome is unknown, as the store's 'store refuses further writes' says) "+
				"and takes no more writes until the server restarts: the queue stops retrying its pending changes, "+
				"which are kept in memory only, and lost at the restart, which starts from what is on disk",
				"changes", len(c.b.muts), "err", c.err)
		default:
			m.sh.log.Debug("store write refused: the store failed and takes no more writes until the server restarts",
				"changes", len(c.b.muts), "err", c.err)
		}
		if m.retry == nil {
			m.retry = make(map[string]store.ActionMutation)
		}
		for _, mu := range c.b.muts[c.b.nsub:] {
			id := mu.Delete
			if mu.Put != nil {
				id = mu.Put.Id
			}
			if m.supersededSince(id, c.b) {
				continue // a newer change is already pending
			}
			m.retry[id] = mu // later mutations of the batch win
		}
		if c.b.paused != nil && !m.pausedDirty {
			m.pausedRetry = true // write the (current) flag again, as a retry
		}
		switch {
		case m.storeFailed:
			// No retry: the store refuses every write until it is
			// opened again, which only a restart does (store.ErrFailed).
			// The changes stay in retry: they go with any batch a new
			// change makes (refused in turn) and with the writer's last
			// write at stop, and a shutdown does not wait for them.
		case m.shutting && !m.gaveUp:
			// Retrying at once, as a shutdown otherwise does, would
			// spin against a disk that keeps refusing: the writer's
			// stop tries once more, and the shutdown goes on.
			m.gaveUp = true
			m.sh.log.Warn("store still failing during shutdown; failed changes are written once more when the queue stops",
				"changes", len(m.retry))
			fallthrough
		default:
			m.retryAt = time.Now().Add(m.cfg.RetryInterval)
			self, root := ctx.Self(), ctx.ActorSystem().Root
			time.AfterFunc(m.cfg.RetryInterval, func() { root.Send(self, &retryTick{}) })
		}
	}
	// What arrived during this write goes to the disk now, while the
	// replies below are sent and the batch's actors spawned, instead of
	// after them: the disk and the QueueManager work at the same time.
	// (Nothing pending can concern the actors spawned below.)
	if m.pending != nil && !m.shutting {
		m.flush(ctx)
	}
	m.answer(ctx, c.b, c.err, false)
	m.recycle(c.b)
	m.dispatch(ctx)
}

// answer sends the replies that waited for batch b to be written, now that
// its outcome err is known. Submissions get their token (their actors are
// spawned; not while the queue stops, when the action waits on disk for
// the next start) or a refusal that says what became of them. A change a
// task already made stays in effect even if it could not be recorded: the
// reply is an error that says so, with the action's status, and the change
// is written again later (not when the queue stops: then it is lost).
func (m *manager) answer(ctx actor.Context, b *batch, err error, stopping bool) {
	unrecorded := unrecorded
	if stopping {
		unrecorded = func(what string, err error) string {
			return fmt.Sprintf("%s, but the queue is stopping and could not write this to disk, so it is lost at the next start: %v", what, err)
		}
	}
	for _, p := range b.submits {
		m.nwait-- // spawn counts it again
		switch {
		case err != nil:
			m.cfg.Observer.Rejected("store")
			p.reply.Code, p.reply.Message = messages.ErrorCode_ERROR_CODE_STORE, refusedSubmit(err)
			ctx.Send(p.sender, &p.reply)
		case stopping:
			p.reply.Token = p.token
			ctx.Send(p.sender, &p.reply)
		default:
			name := ""
			if p.rec != nil {
				name = p.rec.Id
			}
			// The task is given no token, as in memory (submit): p.token
			// is the one task.tok makes again from the id, so the task
			// does not keep it (80 bytes) while the action is queued.
			if _, serr := m.spawnAs(ctx, p.id, name, "", p.spec, p.status); serr != nil {
				p.reply.Code, p.reply.Message = messages.ErrorCode_ERROR_CODE_INTERNAL, serr.Error()
				ctx.Send(p.sender, &p.reply)
				continue
			}
			m.cfg.Observer.Submitted(p.spec.FetchAction)
			p.reply.Token = p.token
			ctx.Send(p.sender, &p.reply)
		}
	}
	for _, r := range b.replies {
		reply := r.reply
		if err != nil {
			what := "the action is now " + messages.StatusName(r.reply.Status.GetState())
			reply = &messages.ActionReply{Status: r.reply.Status, Code: messages.ErrorCode_ERROR_CODE_STORE, Message: unrecorded(what, err)}
		}
		ctx.Send(r.to, reply)
	}
	for _, to := range b.queueReplies {
		qs := m.queueStatus()
		if err != nil {
			what := "the queue is now resumed"
			if qs.Paused {
				what = "the queue is now paused"
			}
			qs.Code, qs.Message = messages.ErrorCode_ERROR_CODE_STORE, unrecorded(what, err)
		}
		ctx.Send(to, qs)
	}
}

// refusedSubmit says what became of a submission whose write failed.
func refusedSubmit(err error) string {
	if errors.Is(err, store.ErrFailed) {
		return fmt.Sprintf("the action was not accepted and has no token, but the store failed while writing it and it is not known whether it reached the disk: it may be found queued after the server restarts (the store accepts no more changes until then): %v", err)
	}
	return fmt.Sprintf("the action was not accepted and is not queued: the store could not record it: %v", err)
}

// unrecorded says, in one message, that a change took effect (what) but
// is not durable, and what becomes of it.
func unrecorded(what string, err error) string {
	if errors.Is(err, store.ErrFailed) {
		return fmt.Sprintf("%s, but the store failed while writing this and it is not known whether it reached the disk; the store accepts no more changes until the server restarts, after which this may be undone: %v", what, err)
	}
	return fmt.Sprintf("%s, but this is not on disk yet: it is written again as soon as the disk allows, and a crash before then would undo it: %v", what, err)
}

// withdraw handles a requester's withdrawSubmit: a submission still
// waiting in the pending batch is taken out and refused (it was never
// written, so it is not queued); one already sent to the disk, or already
// answered, is left alone: its outcome answers (or answered) the
// requester.
func (m *manager) withdraw(ctx actor.Context, w *withdrawSubmit) {
	if m.pending == nil {
		return
	}
	for i, p := range m.pending.submits {
		if p.sender.Equal(w.sender) {
			m.pending.submits = slices.Delete(m.pending.submits, i, i+1)
			m.nwait--
			ctx.Send(p.sender, &submitWithdrawn{})
			return
		}
	}
}

// supersededSince reports whether a change of action id waits in the
// pending batch (made after batch b was sent to the writer).
func (m *manager) supersededSince(id string, b *batch) bool {
	if m.pending == nil || m.pending == b {
		return false
	}
	for _, mu := range m.pending.muts {
		if mu.Delete == id || mu.Put != nil && mu.Put.Id == id {
			return true
		}
	}
	return false
}

// startWriter starts the goroutine that performs group commits, one at a
// time, and reports each back as a message.
func (m *manager) startWriter(ctx actor.Context) {
	if m.st == nil {
		return
	}
	m.writes = make(chan *batch, 1)
	m.wdone = make(chan struct{})
	self, root, st, name, writes, done, obs := ctx.Self(), ctx.ActorSystem().Root, m.st, m.cfg.Name, m.writes, m.wdone, m.cfg.Observer
	go func() {
		defer close(done)
		for b := range writes {
			t0 := time.Now()
			b.err = writeBatch(st, name, b)
			obs.Committed(len(b.muts), time.Since(t0), b.err)
			b.written = true // read by stopWriter, should this report be lost
			b.report = committed{b: b, err: b.err}
			root.Send(self, &b.report)
		}
	}()
}

// pausedKey holds the queue's pause flag in its meta datastore, whose name
// ("\x00queue/<name>") no task section can have.
var pausedKey = []byte("paused")

func metaDatastore(queue string) string { return "\x00queue/" + queue }

// writeBatch applies one group commit. The pause flag goes first: the
// batch's outcome is one error for all its replies, so the write that may
// fail after the other must be the one whose failure the replies can
// afford. Written after the actions, a failed flag refused submissions
// that were on disk (queued, run after the next restart); written first,
// a failed ApplyActions only reports the flag, which is on disk, as not
// yet written (and writes it again).
func writeBatch(st store.Store, queue string, b *batch) error {
	if b.paused != nil {
		ds, err := st.Datastore(metaDatastore(queue))
		if err != nil {
			return err
		}
		v := []byte{0}
		if *b.paused {
			v[0] = 1
		}
		if err := ds.Update(func(w store.Writer) error { return w.Put(pausedKey, v) }); err != nil {
			return err
		}
	}
	if len(b.muts) > 0 {
		return st.ApplyActions(queue, b.muts)
	}
	return nil
}

// stopWriter ends the writer after its last batch; anything still pending
// or waiting for a retry (nothing after a clean shutdown, unless the store
// keeps failing) is written synchronously, one last time. Every reply that
// waited for a write is sent: the outcome of the batch the writer had (its
// report to the actor, which is stopping, would be lost), then that of the
// last write. Submissions that were never written are refused: they are
// not queued.
func (m *manager) stopWriter(ctx actor.Context) {
	if m.writes == nil {
		return
	}
	close(m.writes)
	<-m.wdone
	m.writes = nil
	if b := m.sent; m.inflight && b != nil && b.written {
		m.inflight, m.sent, b.answered = false, nil, true
		m.answer(ctx, b, b.err, true)
	}
	b := m.pending
	if b == nil {
		b = &batch{}
	}
	for _, p := range b.submits {
		m.nwait--
		ctx.Send(p.sender, &messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_SHUTTING_DOWN,
			Message: "the server is shutting down; the action was not queued"})
	}
	b.submits = nil
	for _, r := range m.retry {
		b.muts = append([]store.ActionMutation{r}, b.muts...)
	}
	if m.pausedDirty || m.pausedRetry {
		p := m.paused
		b.paused = &p
	}
	var err error
	if len(b.muts) > 0 || b.paused != nil {
		if err = writeBatch(m.st, m.cfg.Name, b); err != nil {
			m.sh.log.Error("store write at stop failed; these changes are lost", "changes", len(b.muts), "err", err)
		}
	}
	m.answer(ctx, b, err, true)
	m.pending, m.retry, m.pausedDirty, m.pausedRetry = nil, nil, false, false
}
