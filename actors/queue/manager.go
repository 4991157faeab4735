package queue

import (
	"container/heap"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// Local messages to the QueueManager.
type (
	// taskChanged reports a task's new observable state (or priority).
	taskChanged struct {
		id      uuid.UUID
		status  *messages.ActionStatus
		live    bool         // a worker is running it
		replyTo []*actor.PID // answer these with the status once recorded
	}
	// committed reports the end of a group commit.
	committed struct {
		b   *batch
		err error
	}
	// slotReleased answers every startTask: the action no longer holds a
	// thread (its worker exited, or it declined to start).
	slotReleased struct{ id uuid.UUID }
	// retentionTick drives age-based retention.
	retentionTick struct{}
	// retryTick wakes the QueueManager to write failed changes again.
	retryTick struct{}
	// beginShutdown stops admission, stops running actions, and is
	// answered (with shutdownDone) when every worker has exited.
	beginShutdown struct{}
	shutdownDone  struct{}
	// childFailed reports a task actor stopped by HandleFailure.
	childFailed struct {
		id     uuid.UUID
		reason string
	}
	// lookupTombstone follows a request that found no actor: the
	// QueueManager forwards it to the action's actor if there is one by now,
	// answers from a tombstone (an actor that failed outside the recover
	// middleware), or answers ErrUnknownToken.
	lookupTombstone struct {
		id  uuid.UUID
		msg any
	}
	// withdrawSubmit follows a SubmitAction whose requester (sender) has
	// waited AskTimeout: the submission is withdrawn if it has not been
	// sent to the disk yet; otherwise its outcome answers the requester
	// when known (see Queue.Submit).
	withdrawSubmit struct{ sender *actor.PID }
	// submitWithdrawn answers a withdrawn submission: it is not queued.
	submitWithdrawn struct{}
)

// entry is the QueueManager's view of one action: what it needs for
// scheduling, filters and retention. The task actor holds the rest.
type entry struct {
	pid       *actor.PID
	spec      *messages.ActionSpec
	id        uuid.UUID
	state     messages.State
	priority  int32
	seq       uint64
	queuedMs  int64
	startedMs int64
	endedMs   int64
	heapIdx   int // index in its wait heap (heapOf), -1 when not waiting
	// excl are the tasks it holds exclusively while it runs (exclusive.go);
	// parkedOn is the busy task it waits for ("" in the main heap).
	excl     []string
	parkedOn string
	slot     bool   // holds a thread: dispatched and not yet released
	thread   int    // the worker thread's number (1..MaximumThreads) while slot
	live     bool   // a worker is running it (reported by the task)
	deferred bool   // retention wanted it gone while its worker unwound
	crash    string // set when the actor failed outside the middleware
	// endSeen: its end was reported (observe.go); stopAt: when it was
	// stopped while its worker still ran.
	endSeen bool
	stopAt  time.Time
}

// waiting reports whether the action counts against MaximumQueueSize: it
// has not ended and no worker runs it.
func (e *entry) waiting() bool { return !messages.Terminal(e.state) && !e.live }

type manager struct {
	cfg    Config
	sh     *shared
	props  *actor.Props
	host   string
	upper  string // queue name in tokens
	tokens func(uuid.UUID) string

	entries  map[uuid.UUID]*entry
	waiting  waitHeap
	busy     map[string]*entry    // task → the exclusive action holding it (exclusive.go)
	parked   map[string]*waitHeap // task → actions waiting for it
	running  int                  // slots held
	threads  []*entry             // worker threads by number-1: the action holding each, or nil
	nwait    int                  // actions for which entry.waiting() holds
	byState  [8]int
	paused   bool
	seq      uint64
	ended    []*entry // retention FIFO in order of ending
	endedOff int
	nended   int // ended actions kept (entries in a terminal state)
	ndefer   int // of which retention has already passed (entry.deferred)
	root     *actor.RootContext
	self     *actor.PID

	shutting   bool
	shutWaiter *actor.PID
	// gaveUp: while shutting down, a retried write failed again; the
	// changes are tried once more when the writer stops, and the shutdown
	// no longer waits for them.
	gaveUp   bool
	tickStop chan struct{}

	// Durability (nil store: none). Mutations and the replies that must
	// wait for them gather in pending while one batch is being written.
	st       store.Store
	pending  *batch
	inflight bool
	sent     *batch // the batch being written (while inflight)
	writes   chan *batch
	wdone    chan struct{}
	recover  []*messages.StoredAction // loaded at start, spawned on Started
	// retry holds status changes whose commit failed, latest per action.
	// They go out with the next batch that is written, or on their own a
	// second later; a newer change of the same action replaces its entry.
	retry   map[string]store.ActionMutation
	retryAt time.Time
	// pausedDirty: the queue's pause flag was set by a client and must be
	// written; pausedRetry: writing it failed, and it is written again as
	// failed changes are (retry).
	pausedDirty bool
	pausedRetry bool
}

// batch is one group commit: the mutations of many messages, and what to do
// once they are on disk. The first nsubmit mutations are the new actions of
// submits (never retried: a refused submission is gone).
type batch struct {
	nsub    int
	muts    []store.ActionMutation
	submits []*pendingSubmit
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
}

type pendingSubmit struct {
	sender *actor.PID
	id     uuid.UUID
	token  string
	spec   *messages.ActionSpec
	status *messages.ActionStatus
}

type pendingReply struct {
	to    *actor.PID
	reply *messages.ActionReply
}

var (
	startMsg     = &startTask{}
	pauseRunMsg  = &pauseRun{}
	resumeRunMsg = &resumeRun{}
)

func newManager(cfg Config, sh *shared, root *actor.RootContext) *manager {
	m := &manager{
		cfg:     cfg,
		sh:      sh,
		root:    root,
		upper:   strings.ToUpper(cfg.Name),
		entries: make(map[uuid.UUID]*entry),
		busy:    make(map[string]*entry),
		parked:  make(map[string]*waitHeap),
		threads: make([]*entry, cfg.MaximumThreads),
	}
	m.props = actor.PropsFromProducer(newTask,
		actor.WithReceiverMiddleware(recoverMiddleware),
		actor.WithMailbox(taskMailbox(root)),
		// A task actor's messages are handled on the goroutine that sends
		// them (a request's goroutine, the worker's, the QueueManager's)
		// instead of waking a goroutine per burst: it never blocks in
		// Receive, so nothing is held up, and a GetStatus costs no
		// goroutine switch.
		actor.WithDispatcher(actor.NewSynchronizedDispatcher(300)))
	return m
}

// Receive implements actor.Actor.
func (m *manager) Receive(ctx actor.Context) {
	m.receive(ctx)
	m.flush(ctx)
}

func (m *manager) receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *messages.SubmitAction:
		m.submit(ctx, msg)
	case *taskChanged:
		m.changed(ctx, msg)
	case *slotReleased:
		m.released(ctx, msg)
	case *committed:
		m.committed(ctx, msg)
	case *messages.ListActions:
		ctx.Respond(m.list(msg))
	case *messages.QueueStatusRequest:
		ctx.Respond(m.queueStatus())
	case *messages.ThreadStatusRequest:
		ctx.Respond(m.threadStatus())
	case *messages.PauseQueue:
		m.pauseQueue(ctx)
		m.answerQueue(ctx)
	case *messages.ResumeQueue:
		m.resumeQueue(ctx)
		m.answerQueue(ctx)
	case *retentionTick:
		m.retain(ctx)
	case *retryTick:
		// flush (after every message) writes the retries
	case *lookupTombstone:
		m.tombstone(ctx, msg)
	case *withdrawSubmit:
		m.withdraw(ctx, msg)
	case *childFailed:
		m.childFailed(ctx, msg)
	case *beginShutdown:
		m.beginShutdown(ctx)
	case *actor.Started:
		m.self = ctx.Self()
		m.startWriter(ctx)
		m.recoverActions(ctx)
		m.startTicker(ctx)
	case *actor.Stopping:
		if m.tickStop != nil {
			close(m.tickStop)
			m.tickStop = nil
		}
		m.stopWriter(ctx)
	case *actor.Terminated:
		// Children stop on retention (entry already gone), on shutdown,
		// or after HandleFailure stopped them (entry kept as a tombstone).
	}
}

// HandleFailure is the supervisor backstop for a task actor that failed
// outside the recover middleware: never restart it (that would come back
// with fresh, wrong state); stop it, and record it (as a message to self,
// handled like any other) as an Error tombstone, so its token still answers.
func (m *manager) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason any, _ any) {
	sup.StopChildren(child)
	if id, ok := m.idOf(child); ok && m.self != nil {
		m.root.Send(m.self, &childFailed{id: id, reason: fmt.Sprint(reason)})
	}
}

func (m *manager) childFailed(ctx actor.Context, msg *childFailed) {
	e := m.entries[msg.id]
	if e == nil || e.crash != "" {
		return
	}
	e.crash = msg.reason
	m.sh.log.Error("task actor failed; keeping a tombstone", "id", msg.id, "reason", msg.reason)
	if e.slot {
		// Its worker, if any, reports to a stopped actor: release the
		// thread now rather than never.
		e.slot = false
		m.running--
		m.freeThread(e.id)
		m.unhold(e)
	}
	st := m.tombstoneStatus(e)
	if !messages.Terminal(e.state) {
		if e.waiting() {
			m.nwait--
		}
		m.unqueue(e)
		m.move(e, messages.State_STATE_ERROR)
		e.endedMs = m.sh.now().UnixMilli()
		st = m.tombstoneStatus(e)
		m.ended = append(m.ended, e)
		m.nended++
		if !e.endSeen {
			e.endSeen = true
			m.cfg.Observer.Ended(e.spec, st)
			m.logEnd(e.spec, st)
		}
	}
	m.persist(e, st)
	m.retain(ctx)
	m.dispatch(ctx)
}

func (m *manager) idOf(pid *actor.PID) (uuid.UUID, bool) {
	i := strings.LastIndexByte(pid.Id, '/')
	id, err := uuid.Parse(pid.Id[i+1:])
	return id, err == nil
}

func (m *manager) submit(ctx actor.Context, msg *messages.SubmitAction) {
	switch {
	case m.shutting:
		m.cfg.Observer.Rejected("shutting_down")
		ctx.Respond(&messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_SHUTTING_DOWN, Message: "the server is shutting down and accepts no new actions"})
		return
	case m.nwait >= m.cfg.MaximumQueueSize:
		m.cfg.Observer.Rejected("queue_full")
		ctx.Respond(&messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_QUEUE_FULL,
			Message: fmt.Sprintf("the %s queue already holds MaximumQueueSize=%d waiting actions", m.cfg.Name, m.cfg.MaximumQueueSize)})
		return
	}
	id, err := m.cfg.NewID()
	if err != nil {
		ctx.Respond(&messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_INTERNAL, Message: "generate id: " + err.Error()})
		return
	}
	m.seq++
	now := m.sh.now().UnixMilli()
	token := messages.NewToken(m.cfg.TokenHost, m.cfg.TokenPort, m.upper, id)
	st := &messages.ActionStatus{
		Token: token, State: messages.State_STATE_QUEUED, Priority: msg.Spec.Priority,
		QueuedUnixMs: now, FetchAction: msg.Spec.FetchAction, Seq: m.seq,
	}
	if m.st != nil {
		// The token is given out only once the action is on disk.
		b := m.batchOf()
		b.submits = append(b.submits, &pendingSubmit{sender: ctx.Sender(), id: id, token: token, spec: msg.Spec, status: st})
		m.nwait++ // counts against MaximumQueueSize from now on
		return
	}
	if _, err := m.spawn(ctx, id, token, msg.Spec, st); err != nil {
		ctx.Respond(&messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_INTERNAL, Message: err.Error()})
		return
	}
	m.cfg.Observer.Submitted(msg.Spec.FetchAction)
	ctx.Respond(&messages.SubmitReply{Token: token})
	m.dispatch(ctx)
}

// spawn creates the task actor of an action and its entry.
func (m *manager) spawn(ctx actor.Context, id uuid.UUID, token string, spec *messages.ActionSpec, st *messages.ActionStatus) (*entry, error) {
	pid, err := ctx.SpawnNamed(m.props, id.String())
	if err != nil {
		return nil, fmt.Errorf("queue: spawn task actor %s: %w", id, err)
	}
	ctx.Send(pid, &taskInit{sh: m.sh, id: id, token: token, spec: spec, status: st})
	e := &entry{
		pid: pid, spec: spec, id: id, state: st.State, priority: st.Priority, seq: st.Seq,
		queuedMs: st.QueuedUnixMs, startedMs: st.StartedUnixMs, endedMs: st.EndedUnixMs, heapIdx: -1,
		excl: exclusiveTasks(m.sh.repo, spec),
	}
	m.entries[id] = e
	m.byState[e.state]++
	if e.waiting() {
		m.nwait++
	}
	switch {
	case messages.Terminal(e.state):
		m.ended = append(m.ended, e)
		m.nended++
	case e.state == messages.State_STATE_QUEUED:
		heap.Push(&m.waiting, e)
	}
	return e, nil
}

// dispatch starts waiting actions while threads are free, in priority
// order, passing over (parking) those whose task is held by another.
func (m *manager) dispatch(ctx actor.Context) {
	for !m.paused && !m.shutting && m.running < m.cfg.MaximumThreads && m.waiting.Len() > 0 {
		e := heap.Pop(&m.waiting).(*entry)
		if t := m.busyTask(e); t != "" {
			m.park(e, t)
			continue
		}
		m.hold(e)
		e.slot = true
		m.running++
		m.takeThread(e)
		ctx.Send(e.pid, startMsg)
	}
}

// takeThread gives e the lowest-numbered free worker thread.
func (m *manager) takeThread(e *entry) {
	for i, t := range m.threads {
		if t == nil {
			m.threads[i], e.thread = e, i+1
			return
		}
	}
}

// freeThread frees the worker thread of action id (whose entry may be
// gone already).
func (m *manager) freeThread(id uuid.UUID) {
	for i, t := range m.threads {
		if t != nil && t.id == id {
			m.threads[i], t.thread = nil, 0
			return
		}
	}
}

// threadStatus lists the worker threads and the action each runs.
func (m *manager) threadStatus() *messages.ThreadStatusReply {
	r := &messages.ThreadStatusReply{Queue: m.cfg.Name, Threads: make([]*messages.WorkerThread, len(m.threads))}
	for i, e := range m.threads {
		r.Threads[i] = &messages.WorkerThread{Number: uint32(i + 1)}
		if e != nil {
			r.Threads[i].Id = e.id.String()
		}
	}
	return r
}

func (m *manager) move(e *entry, s messages.State) {
	if e.state == s {
		return
	}
	m.byState[e.state]--
	m.byState[s]++
	e.state = s
}

func (m *manager) changed(ctx actor.Context, msg *taskChanged) {
	e := m.entries[msg.id]
	if e == nil || e.crash != "" {
		for _, to := range msg.replyTo {
			ctx.Send(to, &messages.ActionReply{Status: msg.status})
		}
		return
	}
	m.persist(e, msg.status)
	if len(msg.replyTo) > 0 {
		reply := &messages.ActionReply{Status: msg.status}
		for _, to := range msg.replyTo {
			if m.st != nil {
				b := m.batchOf()
				b.replies = append(b.replies, pendingReply{to: to, reply: reply})
			} else {
				ctx.Send(to, reply)
			}
		}
	}
	s := msg.status
	wasTerminal, wasWaiting := messages.Terminal(e.state), e.waiting()
	m.observeChange(e, e.state, s, msg.live)
	m.move(e, s.State)
	e.live = msg.live
	e.startedMs, e.endedMs = s.StartedUnixMs, s.EndedUnixMs
	if w := e.waiting(); w != wasWaiting {
		if w {
			m.nwait++
		} else {
			m.nwait--
		}
	}
	prioChanged := e.priority != s.Priority
	e.priority = s.Priority
	switch {
	case s.State == messages.State_STATE_QUEUED && !e.slot:
		if e.heapIdx < 0 {
			heap.Push(&m.waiting, e)
		} else if prioChanged {
			m.reprioritize(e)
		}
	case e.heapIdx >= 0 && s.State != messages.State_STATE_QUEUED:
		m.unqueue(e)
	}
	if messages.Terminal(s.State) && !wasTerminal {
		m.ended = append(m.ended, e)
		m.nended++
		m.retain(ctx)
	}
	m.dispatch(ctx)
}

func (m *manager) released(ctx actor.Context, msg *slotReleased) {
	e := m.entries[msg.id]
	if e != nil {
		if !e.slot {
			return // already released (a task actor that failed)
		}
		e.slot = false
		m.unhold(e)
	}
	m.running--
	m.freeThread(msg.id)
	if e != nil && e.deferred {
		// Retention passed it while its worker unwound: it goes now, or
		// back to the end of the line if there is room again.
		e.deferred = false
		m.ndefer--
		if m.overRetention(e) {
			m.evict(ctx, e)
		} else {
			m.ended = append(m.ended, e)
		}
	}
	m.retain(ctx)
	m.dispatch(ctx)
}

// topK returns the k first entries of sel in cmp order (unsorted), keeping
// a heap of the best k seen so far with the worst of them on top.
func topK(sel []*entry, k int, cmp func(a, b *entry) int) []*entry {
	h := &worstFirst{cmp: cmp, e: make([]*entry, 0, k)}
	for _, e := range sel {
		switch {
		case len(h.e) < k:
			heap.Push(h, e)
		case cmp(e, h.e[0]) < 0:
			h.e[0] = e
			heap.Fix(h, 0)
		}
	}
	return h.e
}

type worstFirst struct {
	cmp func(a, b *entry) int
	e   []*entry
}

func (h *worstFirst) Len() int           { return len(h.e) }
func (h *worstFirst) Less(i, j int) bool { return h.cmp(h.e[i], h.e[j]) > 0 }
func (h *worstFirst) Swap(i, j int)      { h.e[i], h.e[j] = h.e[j], h.e[i] }
func (h *worstFirst) Push(x any)         { h.e = append(h.e, x.(*entry)) }
func (h *worstFirst) Pop() any {
	x := h.e[len(h.e)-1]
	h.e = h.e[:len(h.e)-1]
	return x
}

// shutdownDone is sent once no worker runs and every change is on disk.
func (m *manager) checkShutdown(ctx actor.Context) {
	if m.shutting && m.shutWaiter != nil && m.running == 0 && !m.inflight && m.pending == nil && (len(m.retry) == 0 && !m.pausedRetry || m.gaveUp) {
		ctx.Send(m.shutWaiter, &shutdownDone{})
		m.shutWaiter = nil
	}
}

// retain evicts ended actions beyond MaximumFinishedActions or older than
// FinishedActionMaxAge, oldest first. An action whose worker has not exited
// yet (a Stop that outlived StopTimeout) is set aside and evicted when its
// thread is released, so it never holds up the others.
func (m *manager) retain(ctx actor.Context) {
	for m.endedOff < len(m.ended) {
		e := m.ended[m.endedOff]
		if m.entries[e.id] == e && !m.overRetention(e) {
			break
		}
		m.ended[m.endedOff] = nil
		m.endedOff++
		switch {
		case m.entries[e.id] != e: // already evicted
		case e.slot:
			e.deferred = true
			m.ndefer++
		default:
			m.evict(ctx, e)
		}
	}
	if m.endedOff > 1024 && m.endedOff*2 > len(m.ended) {
		m.ended = slices.Clone(m.ended[m.endedOff:])
		m.endedOff = 0
	}
}

// overRetention reports whether ended action e should go: there are more
// ended actions than MaximumFinishedActions (not counting those already on
// their way out), or e is too old.
func (m *manager) overRetention(e *entry) bool {
	if m.nended-m.ndefer > m.cfg.MaximumFinishedActions {
		return true
	}
	maxAge := m.cfg.FinishedActionMaxAge
	return maxAge > 0 && e.endedMs < m.sh.now().Add(-maxAge).UnixMilli()
}

func (m *manager) evict(ctx actor.Context, e *entry) {
	if m.st != nil {
		b := m.batchOf()
		b.muts = append(b.muts, store.ActionMutation{Delete: e.id.String()})
		delete(m.retry, e.id.String()) // superseded
	}
	delete(m.entries, e.id)
	m.byState[e.state]--
	m.nended--
	if e.crash == "" {
		ctx.Poison(e.pid) // Poison, not Stop: see retireGuard
	}
}

// pauseQueue pauses the queue: nothing more is dispatched, and every action
// that holds a thread is told to pause. Only those can be running: an
// action without a thread cannot start before the queue resumes. Which
// ones hold a thread is the QueueManager's own knowledge (e.slot), never
// a state reported by a task, which may be out of date. A dispatched action
// whose startTask is still in its mailbox gets this message after it, and
// pauses once started.
func (m *manager) pauseQueue(ctx actor.Context) {
	m.paused = true
	for _, e := range m.entries {
		if e.slot {
			ctx.Send(e.pid, pauseRunMsg)
		}
	}
}

// resumeQueue resumes the queue and every paused action. It tells every
// action that has not ended, not only those the QueueManager knows to be
// Paused: a pause may still be on its way (the queue's own pauseRun, or
// the action's own Pause whose report has not arrived yet), and the
// message, which arrives after it, undoes it. An action that is not
// paused ignores it.
func (m *manager) resumeQueue(ctx actor.Context) {
	m.paused = false
	for _, e := range m.entries {
		if !messages.Terminal(e.state) && e.crash == "" {
			ctx.Send(e.pid, resumeRunMsg)
		}
	}
	m.dispatch(ctx)
}

// answerQueue answers a queue Pause or Resume: at once without a store;
// with one, once the pause flag is on disk (it is written with the next
// group commit, even when it did not change, so that the reply never comes
// before the state it reports is durable).
func (m *manager) answerQueue(ctx actor.Context) {
	if m.st == nil {
		ctx.Respond(m.queueStatus())
		return
	}
	m.pausedDirty = true
	if s := ctx.Sender(); s != nil {
		b := m.batchOf()
		b.queueReplies = append(b.queueReplies, s)
	}
}

func (m *manager) queueStatus() *messages.QueueStatusReply {
	return &messages.QueueStatusReply{
		Queue:            m.cfg.Name,
		Paused:           m.paused,
		Queued:           uint64(m.byState[messages.State_STATE_QUEUED]),
		Processing:       uint64(m.byState[messages.State_STATE_PROCESSING]),
		PausedActions:    uint64(m.byState[messages.State_STATE_PAUSED]),
		Finished:         uint64(m.byState[messages.State_STATE_FINISHED]),
		Cancelled:        uint64(m.byState[messages.State_STATE_CANCELLED]),
		Stopped:          uint64(m.byState[messages.State_STATE_STOPPED]),
		Error:            uint64(m.byState[messages.State_STATE_ERROR]),
		MaximumThreads:   uint32(m.cfg.MaximumThreads),
		MaximumQueueSize: uint32(m.cfg.MaximumQueueSize),
	}
}

// list selects and orders actions for GetStatus without a token.
func (m *manager) list(f *messages.ListActions) *messages.ListActionsReply {
	var want [8]bool
	for _, s := range f.States {
		if int(s) < len(want) {
			want[s] = true
		}
	}
	sel := make([]*entry, 0, 64)
	for _, e := range m.entries {
		if len(f.States) > 0 && !want[e.state] {
			continue
		}
		if f.NotStarted && (messages.Terminal(e.state) || e.live) {
			continue
		}
		if f.QueuedAfterUnixMs != 0 && e.queuedMs <= f.QueuedAfterUnixMs ||
			f.QueuedBeforeUnixMs != 0 && e.queuedMs >= f.QueuedBeforeUnixMs {
			continue
		}
		if f.FinishedAfterUnixMs != 0 && (e.endedMs == 0 || e.endedMs <= f.FinishedAfterUnixMs) ||
			f.FinishedBeforeUnixMs != 0 && (e.endedMs == 0 || e.endedMs >= f.FinishedBeforeUnixMs) {
			continue
		}
		if f.HasMinPriority && e.priority < f.MinPriority || f.HasMaxPriority && e.priority > f.MaxPriority {
			continue
		}
		sel = append(sel, e)
	}
	key := func(e *entry) int64 {
		switch f.SortBy {
		case messages.SortBy_SORT_BY_START_TIME:
			return e.startedMs
		case messages.SortBy_SORT_BY_FINISH_TIME:
			return e.endedMs
		case messages.SortBy_SORT_BY_PRIORITY:
			return int64(e.priority)
		}
		return e.queuedMs
	}
	cmp := func(a, b *entry) int {
		ka, kb := key(a), key(b)
		if ka == kb { // ties in arrival order, following the direction
			ka, kb = int64(a.seq), int64(b.seq)
		}
		c := cmpInt64(ka, kb)
		if !f.Ascending {
			c = -c
		}
		return c
	}
	skip := int(f.Skip)
	if k := int(f.MaxResults); k > 0 && skip+k < len(sel) {
		sel = topK(sel, skip+k, cmp) // O(n log k), not a sort of every match
	}
	slices.SortFunc(sel, cmp)
	sel = sel[min(skip, len(sel)):] // paging: the first Skip matches are left out
	ids := make([]string, len(sel))
	for i, e := range sel {
		ids[i] = e.id.String()
	}
	return &messages.ListActionsReply{Ids: ids}
}

func (m *manager) tombstone(ctx actor.Context, msg *lookupTombstone) {
	id := msg.id
	e := m.entries[id]
	if e == nil {
		ctx.Respond(&messages.ActionReply{Code: messages.ErrorCode_ERROR_CODE_UNKNOWN_TOKEN, Message: "no action has this token"})
		return
	}
	if e.crash == "" {
		ctx.RequestWithCustomSender(e.pid, msg.msg, ctx.Sender())
		return
	}
	ctx.Respond(&messages.ActionReply{Status: m.tombstoneStatus(e)})
}

func (m *manager) tombstoneStatus(e *entry) *messages.ActionStatus {
	return &messages.ActionStatus{
		Token: messages.NewToken(m.cfg.TokenHost, m.cfg.TokenPort, m.upper, e.id), State: e.state,
		Priority: e.priority, QueuedUnixMs: e.queuedMs, StartedUnixMs: e.startedMs, EndedUnixMs: e.endedMs,
		FetchAction: e.spec.FetchAction, Error: "task actor failed: " + e.crash, Seq: e.seq,
	}
}

func (m *manager) beginShutdown(ctx actor.Context) {
	m.shutting = true
	for _, e := range m.entries {
		if e.slot {
			ctx.Send(e.pid, &shutdownTask{})
		}
	}
	m.shutWaiter = ctx.Sender()
}

func (m *manager) startTicker(ctx actor.Context) {
	if m.cfg.FinishedActionMaxAge <= 0 {
		return
	}
	every := min(max(m.cfg.FinishedActionMaxAge/10, time.Second), time.Minute)
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
				root.Send(self, &retentionTick{})
			}
		}
	}()
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
		m.pending = &batch{}
	}
	return m.pending
}

// flush starts a group commit of everything pending unless one is already
// being written; what arrives meanwhile waits for the next one. So under
// load each fsync carries every submission that arrived during the last.
// Changes whose last commit failed ride along with any batch; alone, they
// are retried a second after the failure (at once while shutting down).
func (m *manager) flush(ctx actor.Context) {
	if m.st == nil || m.inflight || m.writes == nil {
		m.checkShutdown(ctx)
		return
	}
	retryDue := (len(m.retry) > 0 || m.pausedRetry) &&
		(m.shutting && !m.gaveUp || !time.Now().Before(m.retryAt)) // wall clock, like the timer
	if m.pending == nil && !retryDue && !m.pausedDirty {
		m.checkShutdown(ctx)
		return
	}
	b := m.pending
	if b == nil {
		b = &batch{}
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
	muts := make([]store.ActionMutation, 0, len(b.submits)+len(m.retry)+len(b.muts))
	for _, p := range b.submits {
		muts = append(muts, store.ActionMutation{Put: &messages.StoredAction{Id: p.id.String(), Spec: p.spec, Status: p.status}})
	}
	for _, r := range m.retry {
		muts = append(muts, r)
	}
	m.retry = nil
	b.nsub = len(b.submits)
	b.muts = append(muts, b.muts...)
	m.inflight = true
	m.sent = b
	m.writes <- b
}

func (m *manager) committed(ctx actor.Context, c *committed) {
	if c.b.answered {
		return
	}
	m.inflight = false
	m.sent = nil
	if c.err != nil {
		m.sh.log.Error("store write failed; changes will be written again",
			"changes", len(c.b.muts), "err", c.err)
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
		if m.shutting && !m.gaveUp {
			// Retrying at once, as a shutdown otherwise does, would
			// spin against a disk that keeps refusing: the writer's
			// stop tries once more, and the shutdown goes on.
			m.gaveUp = true
			m.sh.log.Warn("store still failing during shutdown; failed changes are written once more when the queue stops",
				"changes", len(m.retry))
		}
		m.retryAt = time.Now().Add(time.Second)
		self, root := ctx.Self(), ctx.ActorSystem().Root
		time.AfterFunc(time.Second, func() { root.Send(self, &retryTick{}) })
	}
	m.answer(ctx, c.b, c.err, false)
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
			ctx.Send(p.sender, &messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_STORE, Message: refusedSubmit(err)})
		case stopping:
			ctx.Send(p.sender, &messages.SubmitReply{Token: p.token})
		default:
			if _, serr := m.spawn(ctx, p.id, p.token, p.spec, p.status); serr != nil {
				ctx.Send(p.sender, &messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_INTERNAL, Message: serr.Error()})
				continue
			}
			m.cfg.Observer.Submitted(p.spec.FetchAction)
			ctx.Send(p.sender, &messages.SubmitReply{Token: p.token})
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
			root.Send(self, &committed{b: b, err: b.err})
		}
	}()
}

// pausedKey holds the queue's pause flag in its meta datastore, whose name
// ("\x00queue/<name>") no task section can have.
var pausedKey = []byte("paused")

func metaDatastore(queue string) string { return "\x00queue/" + queue }

// writeBatch applies one group commit.
func writeBatch(st store.Store, queue string, b *batch) error {
	if len(b.muts) > 0 {
		if err := st.ApplyActions(queue, b.muts); err != nil {
			return err
		}
	}
	if b.paused != nil {
		ds, err := st.Datastore(metaDatastore(queue))
		if err != nil {
			return err
		}
		v := []byte{0}
		if *b.paused {
			v[0] = 1
		}
		return ds.Update(func(w store.Writer) error { return w.Put(pausedKey, v) })
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

// ErrInterrupted is the error of an action that was running when the server
// crashed, under ProcessingOnRestart=Error.
var ErrInterrupted = errors.New("queue: interrupted by a server crash")

// recoverActions re-creates the actions loaded from the store, in arrival
// order. A stored status with Running set was taken while a worker ran the
// action, so the process died under it: the action is queued again (its
// restart count goes up; one paused while running stays paused) or ends as
// Error, as the policy says. After a clean shutdown nothing is running, so
// nothing is re-run.
func (m *manager) recoverActions(ctx actor.Context) {
	recs := m.recover
	m.recover = nil
	for _, r := range recs {
		id, err := uuid.Parse(r.Id)
		if err != nil || r.Spec == nil || r.Status == nil {
			m.sh.log.Error("skipping unreadable stored action", "id", r.Id)
			continue
		}
		st := r.Status
		if st.Seq > m.seq {
			m.seq = st.Seq
		}
		changed := false
		switch {
		case st.State <= messages.State_STATE_UNSPECIFIED || st.State > messages.State_STATE_ERROR:
			m.sh.log.Error("stored action has an unknown state; ending it as Error", "id", r.Id, "state", int32(st.State))
			st.Error = fmt.Sprintf("queue: stored with an unknown state (%d)", int32(st.State))
			st.State, st.Running, changed = messages.State_STATE_ERROR, false, true
			if st.EndedUnixMs == 0 {
				st.EndedUnixMs = m.sh.now().UnixMilli()
			}
		case messages.Terminal(st.State):
			if st.Running { // final counts not written yet when it died
				st.Running, changed = false, true
			}
		case st.Running:
			changed = true
			st.Running = false
			switch {
			case m.cfg.OnRestart == RestartError:
				st.State = messages.State_STATE_ERROR
				st.Error = ErrInterrupted.Error()
				st.EndedUnixMs = m.sh.now().UnixMilli()
			case st.State == messages.State_STATE_PAUSED:
				st.Restarts++ // the user paused it: it waits, paused, for Resume
			default:
				st.State = messages.State_STATE_QUEUED
				st.Restarts++
			}
		case st.State == messages.State_STATE_PROCESSING: // dispatched, never started
			st.State = messages.State_STATE_QUEUED
			changed = true
		}
		token := st.Token
		if token == "" {
			token = messages.NewToken(m.cfg.TokenHost, m.cfg.TokenPort, m.upper, id)
			st.Token = token
		}
		e, err := m.spawn(ctx, id, token, r.Spec, st)
		if err != nil {
			m.sh.log.Error("cannot restore action", "id", r.Id, "err", err)
			continue
		}
		if changed {
			m.persist(e, st)
		}
	}
	// Age-based retention walks the ended actions in order of ending.
	slices.SortStableFunc(m.ended, func(a, b *entry) int { return cmpInt64(a.endedMs, b.endedMs) })
	if len(recs) > 0 {
		m.sh.log.Info("restored actions", "actions", len(recs), "queued", m.queuedLen(), "paused", m.paused)
	}
	m.retain(ctx)
	m.dispatch(ctx)
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
