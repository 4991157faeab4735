package queue

import (
	"container/heap"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// Local messages to the QueueManager.
type (
	// committed reports the end of a group commit: the writer sends
	// its batch's report field, so the report allocates nothing.
	committed struct {
		b   *batch
		err error
	}
	// retentionTick drives age-based retention.
	retentionTick struct{}
	// retryTick wakes the QueueManager to write failed changes again.
	retryTick struct{}
	// commitTick ends the wait of hold number gen (commit.go, holdCommit).
	commitTick struct{ gen uint64 }
	// beginShutdown stops admission, stops running actions, and is
	// answered (with shutdownDone) when every worker has exited.
	beginShutdown struct{}
	shutdownDone  struct{}
	// childFailed follows a task actor stopped by HandleFailure, which
	// has made its action a tombstone: what needs an actor.Context
	// (retention, dispatch; the cluster's next store operation) runs
	// when it is handled.
	childFailed struct{ pid *actor.PID }
	// lookupTombstone follows a request that found no actor: the
	// QueueManager forwards it to the action's actor if there is one by now,
	// answers from a tombstone (an actor that failed outside the panic
	// middleware), or answers ErrUnknownToken.
	//
	// listed: the request is one of a list's (askEach). A read
	// (task.unspawnedReply) of a queued action that has no actor yet is
	// then answered from its task's memory, and no actor is spawned: a
	// list (a dashboard refreshing its page of queued actions) would
	// otherwise give every queued action it shows an actor, kept until the
	// action ends (~380 bytes each). A request by token still spawns it:
	// an action read by token is usually read again (a client polling it),
	// and its actor then answers without the QueueManager.
	lookupTombstone struct {
		id     uuid.UUID
		msg    any
		listed bool
	}
	// withdrawSubmit follows a SubmitAction whose requester (sender) has
	// waited AskTimeout: the submission is withdrawn if it has not been
	// sent to the disk yet; otherwise its outcome answers the requester
	// when known (see Queue.Submit).
	withdrawSubmit struct{ sender *actor.PID }
	// submitWithdrawn answers a withdrawn submission: it is not queued.
	submitWithdrawn struct{}
	// listViews asks for the actions of a list (Queue.listed), answered
	// with their []listView (manager.listViews). Local only: the views
	// and the encoded entries are this process's memory.
	listViews struct {
		f       *messages.ListActions
		encoded bool       // the ended actions' encoded list entries, where kept
		buf     []listView // where to put the views (the requester's, pooled)
	}
	// inspect runs fn on the QueueManager's goroutine between two messages
	// and is answered with itself (the tests check the list indexes
	// against the entries with it).
	inspect struct{ fn func(*manager) }
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
	thread    int // the worker thread's number (1..MaximumThreads) while slot
	// x holds what most actions never need; nil until one does. With it
	// inline an entry (one per action) took 176 bytes; without, 112.
	x *entryMore
	// listed is the action's list entry, encoded by its task actor once it
	// has ended and no worker runs it (TaskChanged.ListEntry; "" before,
	// and without Config.ListEntry): ListEntries hands it out instead of
	// asking the action. Immutable, so a list may share it with the
	// goroutine that writes the reply. Only ended actions hold one: a
	// queued action pays the 16 bytes of the header, which fit in the
	// entry's size class (112 bytes) since heapIdx is an int32.
	listed  string
	heapIdx int32 // index in its wait heap (heapOf), -1 when not waiting
	// The flags sit together: apart, their padding made an entry (one per
	// action) 16 bytes larger.
	slot     bool // holds a thread: dispatched and not yet released
	live     bool // a worker is running it (reported by the task)
	deferred bool // retention wanted it gone while its worker unwound
	endSeen  bool // its end was reported (observe.go)
}

// taskEntry is an action's entry and its task actor, allocated together
// (spawnAs): 112 + 128 bytes, the 240-byte size class.
type taskEntry struct {
	entry entry
	task  task
}

// entryMore is the part of an entry that few actions use: exclusive tasks,
// a park, a crash, a stop while running.
type entryMore struct {
	// excl are the tasks it holds exclusively while it runs (exclusive.go);
	// parkedOn is the busy task it waits for ("" in the main heap).
	excl     []string
	parkedOn string
	crash    string // set when the actor failed outside the middleware
	// stopAt: when it was stopped while its worker still ran.
	stopAt time.Time
}

// more returns e.x, allocated on first use.
func (e *entry) more() *entryMore {
	if e.x == nil {
		e.x = &entryMore{}
	}
	return e.x
}

// exclusive returns the tasks e holds exclusively while it runs.
func (e *entry) exclusive() []string {
	if e.x == nil {
		return nil
	}
	return e.x.excl
}

// parkedOn returns the busy task e waits for, "" when in the main heap.
func (e *entry) parkedOn() string {
	if e.x == nil {
		return ""
	}
	return e.x.parkedOn
}

// crashed returns why e's actor failed outside the middleware, "" if not.
func (e *entry) crashed() string {
	if e.x == nil {
		return ""
	}
	return e.x.crash
}

// taskActorID returns the action id of a task actor's PID, whose name is
// the id (spawn), uuid.Nil if it is not one.
func taskActorID(pid *actor.PID) uuid.UUID {
	name := pid.GetId()
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	id, err := uuid.Parse(name)
	if err != nil {
		return uuid.Nil
	}
	return id
}

// waiting reports whether the action counts against MaximumQueueSize: it
// has not ended and no worker runs it.
func (e *entry) waiting() bool { return !messages.Terminal(e.state) && !e.live }

type manager struct {
	cfg   Config
	sh    *shared
	props *actor.Props
	upper string // queue name in tokens
	// spawning is the task actor spawn is creating, for the producer of
	// props to hand to protoactor.
	spawning *task
	// nameBuf holds the name of the task actor being spawned (spawnAs).
	nameBuf [36]byte
	disp    *managerDispatcher // runs the manager's mailbox

	entries  map[uuid.UUID]*entry
	waiting  waitHeap
	busy     map[string]*entry    // task → the exclusive action holding it (exclusive.go)
	parked   map[string]*waitHeap // task → actions waiting for it
	running  int                  // slots held
	threads  []*entry             // worker threads by number-1: the action holding each, or nil
	nwait    int                  // actions for which entry.waiting() holds
	byState  [nStates]int
	index    listIndex // entries ordered for lists (index.go)
	paused   bool
	seq      uint64
	ended    []*entry // retention FIFO in order of ending
	endedOff int
	nended   int // ended actions kept (entries in a terminal state)
	ndefer   int // of which retention has already passed (entry.deferred)
	root     *actor.RootContext
	self     *actor.PID

	shutting   bool
	stopping   bool // the QueueManager is stopping: no task actor is spawned
	shutWaiter *actor.PID
	// gaveUp: while shutting down, a retried write failed again; the
	// changes are tried once more when the writer stops, and the shutdown
	// no longer waits for them.
	gaveUp bool
	// storeFailed: a write failed with store.ErrFailed (an fdatasync or
	// I/O error: the store takes no more writes until it is opened
	// again, which only a restart does), which is logged once at error
	// level. The failed changes are no longer retried (they stay in
	// retry, in memory); a batch that new changes make is still written,
	// refused, and logged at debug level.
	storeFailed bool
	tickStop    chan struct{}
	// stopped is closed once the QueueManager has stopped (replies.stopped).
	stopped chan struct{}

	// Durability (nil store: none). Mutations and the replies that must
	// wait for them gather in pending while one batch is being written.
	st       store.Store
	pending  *batch
	inflight bool
	sent     *batch // the batch being written (while inflight)
	// spare is the last batch written, emptied once its report was
	// handled: the next pending batch reuses it and its slices (commit.go,
	// recycle), so a commit allocates no batch and no waiter list.
	spare   *batch
	writes  chan *batch
	wdone   chan struct{}
	restore []*messages.StoredAction // loaded at start, spawned on Started
	// restored counts the stored actions restoreActions has handled;
	// starting counts the steps of the start (an action restored, evicted
	// by retention, dispatched or parked): Start waits as long as it goes
	// up (waitRestored).
	restored atomic.Int64
	starting atomic.Int64
	// cut is closed when Start's caller asks it to stop (StartContext):
	// the start's loops stop at their next step. Nil once the start is
	// over.
	cut <-chan struct{}
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
	// recent: the submissions acknowledged by the last two commits (how
	// many clients are submitting); holding: the pending batch waits for
	// more (commit.go, holdCommit), until commitTick holdGen or until it is full
	// enough; holdOver: its wait has ended, it goes with the next flush.
	recent   [2]int
	holding  bool
	holdOver bool
	holdGen  uint64
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
		disp:    newManagerDispatcher(300, managerIdle), // protoactor's default throughput
		stopped: make(chan struct{}),
	}
	// The producer hands protoactor the task spawn has just initialised
	// (m.spawning): no init message to allocate, post and handle per
	// spawn (taskProducer).
	m.props = actor.PropsFromProducer(taskProducer(&m.spawning),
		actor.WithMailbox(taskMailbox(root)),
		// The entries are the QueueManager's set of its task actors:
		// protoactor does not keep one of its own (a map insert and ~70
		// bytes per queued action), it only counts them, so that the
		// QueueManager still stops after every one of them. The
		// QueueManager stops them itself (stopTasks).
		actor.WithUnlistedChild(),
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
	case *messages.TaskChanged:
		m.changed(ctx, msg)
	case *messages.SlotReleased:
		m.released(ctx, msg)
	case *messages.TaskListEntry:
		// An action restored as ended (task.Receive, taskInit).
		if id, ok := actionID(msg.Id); ok {
			if e := m.entries[id]; e != nil && messages.Terminal(e.state) && !e.live && e.listed == "" {
				e.listed = string(msg.Entry)
			}
		}
	case *committed:
		m.committed(ctx, msg)
	case *messages.ListActions:
		ctx.Respond(m.list(msg))
	case *listViews:
		ctx.Respond(m.listViews(msg))
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
	case *commitTick:
		if m.holding && msg.gen == m.holdGen {
			m.holding, m.holdOver = false, true // flush writes the batch
		}
	case *lookupTombstone:
		m.tombstone(ctx, msg)
	case *inspect:
		msg.fn(m)
		ctx.Respond(msg)
	case *withdrawSubmit:
		m.withdraw(ctx, msg)
	case *childFailed:
		m.childFailed(ctx, msg)
	case *beginShutdown:
		m.beginShutdown(ctx)
	case *actor.Started:
		m.self = ctx.Self()
		m.startWriter(ctx)
		if m.restoreActions(ctx) {
			m.startTicker(ctx)
		}
		m.cut = nil
	case *actor.Stopping:
		// protoactor still hands a stopping actor its user messages
		// until its children are gone: no task actor is spawned from
		// now on (submissions are refused, nothing is dispatched, the
		// actor of a queued action that has none is not spawned on
		// demand: stopping, actorOf), as
		// stopTasks would not stop it and the QueueManager, which waits
		// for every one (WithUnlistedChild), would never stop.
		m.shutting, m.stopping = true, true
		// Deferred: the task actors are stopped even if what comes
		// first panics (managerPanic recovers it): protoactor no longer
		// stops them (WithUnlistedChild) and waits for them.
		defer m.stopTasks(ctx)
		if m.tickStop != nil {
			close(m.tickStop)
			m.tickStop = nil
		}
		m.stopWriter(ctx)
	case *actor.Restarting:
		// Never expected (managerPanic keeps panics from the
		// supervisor), but protoactor restarts an actor only once its
		// children have stopped, and does not stop unlisted ones.
		m.stopTasks(ctx)
	case *actor.Stopped:
		m.disp.stop()
		// Requests without a timeout stop waiting (replies.stopped).
		select {
		case <-m.stopped:
		default:
			close(m.stopped)
		}
	case *actor.Terminated:
		// Children stop on retention (entry already gone), on shutdown,
		// or after HandleFailure stopped them (entry kept as a tombstone).
	}
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
	if m.st != nil {
		// The token is given out only once the action is on disk.
		ls := &localSubmit{st: messages.ActionStatus{
			Token: token, State: messages.State_STATE_QUEUED, Priority: msg.Spec.Priority,
			QueuedUnixMs: now, FetchAction: msg.Spec.FetchAction, Seq: m.seq,
		}}
		ls.rec.Id, ls.rec.Spec, ls.rec.Status = id.String(), msg.Spec, &ls.st
		ls.p = pendingSubmit{sender: ctx.Sender(), id: id, token: token, spec: msg.Spec, status: &ls.st, rec: &ls.rec}
		b := m.batchOf()
		b.submits = append(b.submits, &ls.p)
		m.nwait++ // counts against MaximumQueueSize from now on
		return
	}
	// In memory the status only initialises the task (spawn keeps none of
	// it): it stays on this goroutine's stack.
	st := messages.ActionStatus{
		Token: token, State: messages.State_STATE_QUEUED, Priority: msg.Spec.Priority,
		QueuedUnixMs: now, FetchAction: msg.Spec.FetchAction, Seq: m.seq,
	}
	// The task is given no token: it makes this one again from its id
	// when it needs it (task.tok), instead of keeping it as long as the
	// action is queued.
	if _, err := m.spawn(ctx, id, "", msg.Spec, &st); err != nil {
		ctx.Respond(&messages.SubmitReply{Code: messages.ErrorCode_ERROR_CODE_INTERNAL, Message: err.Error()})
		return
	}
	m.cfg.Observer.Submitted(msg.Spec.FetchAction)
	ctx.Respond(&messages.SubmitReply{Token: token})
	m.dispatch(ctx)
}

// spawn creates the entry of an action and its task, and the task actor
// unless the action is queued (see spawnAs).
func (m *manager) spawn(ctx actor.Context, id uuid.UUID, token string, spec *messages.ActionSpec, st *messages.ActionStatus) (*entry, error) {
	return m.spawnAs(ctx, id, "", token, spec, st)
}

// spawnAs is spawn given id.String() as name ("": it makes it).
//
// The task actor of a queued action is spawned only once something needs
// it (actorOf): when the action is dispatched, or when a request for it
// comes (a request by token that finds no actor asks the QueueManager,
// lookupTombstone; so does CancelQueued's Cancel, askEach). A list's reads
// do not spawn it: the QueueManager answers them from the task's memory
// (task.unspawnedReply, listViews).
// Until then the action is its entry and its task's memory, initialised
// here and owned by the QueueManager: spawning, with protoactor's process
// registry insert, its actor context, process and mailbox, was ~15 % of
// an in-memory submit's server CPU and ~400 bytes per queued action
// (bench/RESULTS.md), paid for actions that wait in a paused or busy queue and are
// never asked about. Actions in any other state (restored as ended or
// paused) get their actor at once.
func (m *manager) spawnAs(ctx actor.Context, id uuid.UUID, name, token string, spec *messages.ActionSpec, st *messages.ActionStatus) (*entry, error) {
	// The entry and the task actor in one allocation: they live as long
	// as each other (retention drops the entry and stops the actor; a
	// task actor is never restarted), and apart they were two of a
	// submission's allocations. Each is still written by its own owner
	// only (the entry by the QueueManager, the task by its actor once
	// spawned; before, the QueueManager initialises it).
	te := &taskEntry{}
	te.task.setup(m.sh, ctx.Self(), id, token, spec, st)
	e := &te.entry
	*e = entry{
		spec: spec, id: id, state: st.State, priority: st.Priority, seq: st.Seq,
		queuedMs: st.QueuedUnixMs, startedMs: st.StartedUnixMs, endedMs: st.EndedUnixMs, heapIdx: -1,
	}
	if st.State != messages.State_STATE_QUEUED {
		if err := m.spawnTask(ctx, e, name); err != nil {
			return nil, err
		}
	}
	if excl := exclusiveTasks(m.sh.repo, spec); excl != nil {
		e.more().excl = excl
	}
	m.entries[id] = e
	m.byState[e.state]++
	m.index.arrive(e)
	m.index.add(e)
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

// taskOf returns the task allocated with e (every entry of the
// QueueManager is the first field of a taskEntry, spawnAs).
func taskOf(e *entry) *task {
	return &(*taskEntry)(unsafe.Pointer(e)).task
}

// spawnTask spawns the task actor of e, whose task spawnAs initialised,
// under name ("": e.id's text) and sets e.pid.
func (m *manager) spawnTask(ctx actor.Context, e *entry, name string) error {
	if name == "" {
		// SpawnNamed only joins the name to the manager's id (the PID
		// keeps that joined string), so the name is written into the
		// manager's buffer instead of a string of its own.
		b := appendID(m.nameBuf[:0], e.id)
		name = unsafe.String(unsafe.SliceData(b), len(b))
	}
	m.spawning = taskOf(e)
	pid, err := ctx.SpawnNamed(m.props, name)
	m.spawning = nil // taken by the producer, unless the spawn failed first
	if err != nil {
		return fmt.Errorf("queue: spawn task actor %s: %w", e.id, err)
	}
	e.pid = pid
	return nil
}

// actorOf returns the PID of e's task actor, spawning it if the action has
// none yet (spawnAs). It returns nil when e has no actor and gets none: a
// tombstone (its actor failed), the QueueManager is stopping (stopTasks
// has stopped, or is stopping, every actor it has, and it spawns no more),
// or the spawn failed, which makes e a tombstone (crash).
func (m *manager) actorOf(ctx actor.Context, e *entry) *actor.PID {
	switch {
	case e.crashed() != "":
		return nil
	case e.pid != nil || m.stopping:
		return e.pid
	}
	if err := m.spawnTask(ctx, e, ""); err != nil {
		m.crash(e, err.Error())
		return nil
	}
	return e.pid
}

// stopTasks stops every task actor the QueueManager has: task actors are
// its unlisted children (actor.WithUnlistedChild), which protoactor waits
// for but does not stop when the QueueManager stops. The ones no entry
// holds are stopping already (retention poisoned them), as are those of
// tombstones (HandleFailure stopped them).
func (m *manager) stopTasks(ctx actor.Context) {
	for _, e := range m.entries {
		if e.pid != nil && e.crashed() == "" {
			ctx.Stop(e.pid)
		}
	}
}

// actionID reads the 16-byte action id of a TaskChanged or SlotReleased.
func actionID(b []byte) (uuid.UUID, bool) {
	if len(b) != len(uuid.UUID{}) {
		return uuid.UUID{}, false
	}
	return uuid.UUID(b), true
}

// taskProducer is the producer of the task actors' props: it hands
// protoactor the task that the spawn has initialised and left in *slot
// (and empties it), or a new one if there is none. It runs inside
// SpawnNamed, on the QueueManager's goroutine; a task actor is never
// restarted (HandleFailure stops it), so it is never called anywhere else.
func taskProducer(slot **task) actor.Producer {
	return func() actor.Actor {
		t := *slot
		*slot = nil
		if t == nil {
			return newTask()
		}
		return t
	}
}
