package queue

import (
	"container/heap"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/connectorhq/connector/messages"
)

// Local messages to the QueueManager.
type (
	// taskChanged reports a task's new observable state (or priority).
	taskChanged struct {
		id     uuid.UUID
		status *messages.ActionStatus
		live   bool // a worker is running it
	}
	// slotReleased answers every startTask: the action no longer holds a
	// thread (its worker exited, or it declined to start).
	slotReleased struct{ id uuid.UUID }
	// retentionTick drives age-based retention.
	retentionTick struct{}
	// beginShutdown stops admission, stops running actions, and is
	// answered (with shutdownDone) when every worker has exited.
	beginShutdown struct{}
	shutdownDone  struct{}
	// lookupTombstone asks for an action whose actor has gone (crashed
	// outside the recover middleware). Answered with an ActionReply.
	lookupTombstone struct{ id uuid.UUID }
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
	heapIdx   int    // index in the wait heap, -1 when not waiting
	slot      bool   // holds a thread: dispatched and not yet released
	live      bool   // a worker is running it (reported by the task)
	crash     string // set when the actor failed outside the middleware
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
	running  int // slots held
	nwait    int // actions for which entry.waiting() holds
	byState  [8]int
	paused   bool
	seq      uint64
	ended    []*entry // retention FIFO in order of ending
	endedOff int

	shutting   bool
	shutWaiter *actor.PID
	tickStop   chan struct{}
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
		upper:   strings.ToUpper(cfg.Name),
		entries: make(map[uuid.UUID]*entry),
	}
	m.props = actor.PropsFromProducer(newTask,
		actor.WithReceiverMiddleware(recoverMiddleware),
		actor.WithMailbox(taskMailbox(root)))
	return m
}

// Receive implements actor.Actor.
func (m *manager) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *messages.SubmitAction:
		m.submit(ctx, msg)
	case *taskChanged:
		m.changed(ctx, msg)
	case *slotReleased:
		m.released(ctx, msg)
	case *messages.ListActions:
		ctx.Respond(m.list(msg))
	case *messages.QueueStatusRequest:
		ctx.Respond(m.queueStatus())
	case *messages.PauseQueue:
		m.pauseQueue(ctx)
		ctx.Respond(m.queueStatus())
	case *messages.ResumeQueue:
		m.resumeQueue(ctx)
		ctx.Respond(m.queueStatus())
	case *retentionTick:
		m.retain(ctx)
	case *lookupTombstone:
		m.tombstone(ctx, msg.id)
	case *beginShutdown:
		m.beginShutdown(ctx)
	case *actor.Started:
		m.startTicker(ctx)
	case *actor.Stopping:
		if m.tickStop != nil {
			close(m.tickStop)
			m.tickStop = nil
		}
	case *actor.Terminated:
		// Children stop on retention (entry already gone), on shutdown,
		// or after HandleFailure stopped them (entry kept as a tombstone).
	}
}

// HandleFailure is the supervisor backstop for a task actor that failed
// outside the recover middleware: never restart it (that would come back
// with fresh, wrong state); stop it and keep a tombstone in Error state so
// its token still answers.
func (m *manager) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason any, _ any) {
	if id, ok := m.idOf(child); ok {
		if e := m.entries[id]; e != nil {
			e.crash = fmt.Sprint(reason)
			m.sh.log.Error("task actor failed; keeping a tombstone", "id", id, "reason", e.crash)
			if e.slot {
				e.slot = false
				m.running--
			}
			if !messages.Terminal(e.state) {
				if e.waiting() {
					m.nwait--
				}
				if e.heapIdx >= 0 {
					heap.Remove(&m.waiting, e.heapIdx)
				}
				m.move(e, messages.State_STATE_ERROR)
				e.endedMs = m.sh.now().UnixMilli()
				m.ended = append(m.ended, e)
			}
		}
	}
	sup.StopChildren(child)
}

func (m *manager) idOf(pid *actor.PID) (uuid.UUID, bool) {
	i := strings.LastIndexByte(pid.Id, '/')
	id, err := uuid.Parse(pid.Id[i+1:])
	return id, err == nil
}

func (m *manager) submit(ctx actor.Context, msg *messages.SubmitAction) {
	switch {
	case m.shutting:
		ctx.Respond(&messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_SHUTTING_DOWN, Message: "the server is shutting down and accepts no new actions"})
		return
	case m.nwait >= m.cfg.MaximumQueueSize:
		ctx.Respond(&messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_QUEUE_FULL,
			Message: fmt.Sprintf("the %s queue already holds MaximumQueueSize=%d waiting actions", m.cfg.Name, m.cfg.MaximumQueueSize)})
		return
	}
	id, err := uuid.NewV7()
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
	if _, err := m.spawn(ctx, id, token, msg.Spec, st); err != nil {
		ctx.Respond(&messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_INTERNAL, Message: err.Error()})
		return
	}
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
	}
	m.entries[id] = e
	m.byState[e.state]++
	if e.waiting() {
		m.nwait++
	}
	switch {
	case messages.Terminal(e.state):
		m.ended = append(m.ended, e)
	case e.state == messages.State_STATE_QUEUED:
		heap.Push(&m.waiting, e)
	}
	return e, nil
}

// dispatch starts waiting actions while threads are free.
func (m *manager) dispatch(ctx actor.Context) {
	for !m.paused && !m.shutting && m.running < m.cfg.MaximumThreads && m.waiting.Len() > 0 {
		e := heap.Pop(&m.waiting).(*entry)
		e.slot = true
		m.running++
		ctx.Send(e.pid, startMsg)
	}
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
		return
	}
	s := msg.status
	wasTerminal, wasWaiting := messages.Terminal(e.state), e.waiting()
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
			heap.Fix(&m.waiting, e.heapIdx)
		}
	case e.heapIdx >= 0 && s.State != messages.State_STATE_QUEUED:
		heap.Remove(&m.waiting, e.heapIdx)
	}
	if messages.Terminal(s.State) && !wasTerminal {
		m.ended = append(m.ended, e)
		m.retain(ctx)
	}
	m.dispatch(ctx)
}

func (m *manager) released(ctx actor.Context, msg *slotReleased) {
	if e := m.entries[msg.id]; e != nil {
		if !e.slot {
			return // already released (HandleFailure)
		}
		e.slot = false
	}
	m.running--
	if m.shutting && m.running == 0 && m.shutWaiter != nil {
		ctx.Send(m.shutWaiter, &shutdownDone{})
		m.shutWaiter = nil
	}
	m.retain(ctx)
	m.dispatch(ctx)
}

// retain evicts ended actions beyond MaximumFinishedActions or older than
// FinishedActionMaxAge, oldest first. An action whose worker has not exited
// yet is kept until it has.
func (m *manager) retain(ctx actor.Context) {
	maxAge := m.cfg.FinishedActionMaxAge
	cutoff := int64(0)
	if maxAge > 0 {
		cutoff = m.sh.now().Add(-maxAge).UnixMilli()
	}
	for m.endedOff < len(m.ended) {
		e := m.ended[m.endedOff]
		if m.entries[e.id] != e { // already evicted
			m.ended[m.endedOff] = nil
			m.endedOff++
			continue
		}
		count := len(m.ended) - m.endedOff
		if count <= m.cfg.MaximumFinishedActions && (cutoff == 0 || e.endedMs >= cutoff) {
			break
		}
		if e.slot {
			break
		}
		m.evict(ctx, e)
		m.ended[m.endedOff] = nil
		m.endedOff++
	}
	if m.endedOff > 1024 && m.endedOff*2 > len(m.ended) {
		m.ended = slices.Clone(m.ended[m.endedOff:])
		m.endedOff = 0
	}
}

func (m *manager) evict(ctx actor.Context, e *entry) {
	delete(m.entries, e.id)
	m.byState[e.state]--
	if e.crash == "" {
		ctx.Poison(e.pid) // Poison, not Stop: see retireGuard
	}
}

func (m *manager) pauseQueue(ctx actor.Context) {
	if m.paused {
		return
	}
	m.paused = true
	for _, e := range m.entries {
		if e.state == messages.State_STATE_PROCESSING {
			ctx.Send(e.pid, pauseRunMsg)
		}
	}
}

func (m *manager) resumeQueue(ctx actor.Context) {
	m.paused = false
	for _, e := range m.entries {
		if e.state == messages.State_STATE_PAUSED {
			ctx.Send(e.pid, resumeRunMsg)
		}
	}
	m.dispatch(ctx)
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
	slices.SortFunc(sel, func(a, b *entry) int {
		ka, kb := key(a), key(b)
		if ka == kb { // ties in arrival order, following the direction
			ka, kb = int64(a.seq), int64(b.seq)
		}
		c := 0
		if ka < kb {
			c = -1
		} else if ka > kb {
			c = 1
		}
		if !f.Ascending {
			c = -c
		}
		return c
	})
	if f.MaxResults > 0 && len(sel) > int(f.MaxResults) {
		sel = sel[:f.MaxResults]
	}
	ids := make([]string, len(sel))
	for i, e := range sel {
		ids[i] = e.id.String()
	}
	return &messages.ListActionsReply{Ids: ids}
}

func (m *manager) tombstone(ctx actor.Context, id uuid.UUID) {
	e := m.entries[id]
	if e == nil || e.crash == "" {
		ctx.Respond(&messages.ActionReply{Code: messages.ErrorCode_ERROR_CODE_UNKNOWN_TOKEN, Message: "no action has this token"})
		return
	}
	ctx.Respond(&messages.ActionReply{
		Code: messages.ErrorCode_ERROR_CODE_NONE,
		Status: &messages.ActionStatus{
			Token: messages.NewToken(m.cfg.TokenHost, m.cfg.TokenPort, m.upper, id), State: e.state,
			Priority: e.priority, QueuedUnixMs: e.queuedMs, StartedUnixMs: e.startedMs, EndedUnixMs: e.endedMs,
			FetchAction: e.spec.FetchAction, Error: "task actor failed: " + e.crash, Seq: e.seq,
		},
	})
}

func (m *manager) beginShutdown(ctx actor.Context) {
	m.shutting = true
	for _, e := range m.entries {
		if e.slot {
			ctx.Send(e.pid, &shutdownTask{})
		}
	}
	if m.running == 0 {
		ctx.Respond(&shutdownDone{})
		return
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
