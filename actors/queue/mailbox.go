package queue

import (
	"runtime"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// taskBox is a task actor's mailbox: protoactor's lock-free mailbox
// (UnboundedLockfree: two multi-producer single-consumer linked queues, the
// same algorithm and the same handling of system messages, suspension and
// failures) with the retirement guard (retire.go) inline, in one
// allocation (its queues are made when a message first has to wait).
// protoactor's takes seven objects per actor (the mailbox, two
// queues, their two stub nodes, the guard and the slice of mailbox
// middlewares that holds it), and there is a task actor per queued action:
// ~150 bytes and six objects for the garbage collector to scan, per action.
//
// Messages run on the goroutine that posts them, as with protoactor's
// synchronized dispatcher (which the task props name, for its throughput):
// calling the dispatcher's Schedule with the method value would allocate a
// closure per message.
type taskBox struct {
	// sys and user are made on their first message that must wait (most
	// task actors' never do: see invokeOne), so that an idle mailbox is
	// 64 bytes instead of 128.
	sys, user lazyQueue
	// running is the scheduler's status (idle 0, running 1).
	running      atomic.Int32
	userMessages atomic.Int32
	sysMessages  atomic.Int32
	suspended    atomic.Int32
	// ended says how the actor went, if it has (one field for both, so
	// that the box stays 64 bytes): retired, a PoisonPill went through
	// (retire.go); orphaned, it was stopped by its supervisor after a
	// failure (a Stop while suspended), and the requests it holds and
	// gets from now on go to its owner (orphan).
	ended atomic.Uint32
	// throughput is atomic: a message posted while the actor is being
	// spawned may run before RegisterHandlers has set it (system).
	throughput atomic.Int32
	invoker    actor.MessageInvoker
	root       *actor.RootContext
}

var _ actor.Mailbox = (*taskBox)(nil)

// Values of taskBox.ended.
const (
	retired  = 1
	orphaned = 2
)

// PostUserMessage implements actor.Mailbox.
func (b *taskBox) PostUserMessage(message any) {
	if batch, ok := message.(actor.MessageBatch); ok {
		for _, msg := range batch.GetMessages() {
			b.PostUserMessage(msg)
		}
	}
	if env, ok := message.(*actor.MessageEnvelope); ok {
		if batch, ok := env.Message.(actor.MessageBatch); ok {
			for _, msg := range batch.GetMessages() {
				b.PostUserMessage(msg)
			}
		}
	}
	if b.running.CompareAndSwap(0, 1) {
		// Idle, and now this goroutine's: see invokeOne.
		if b.sys.empty() && b.user.empty() && b.suspended.Load() == 0 {
			b.invokeOne(message, false)
		} else {
			b.user.push(message)
			b.userMessages.Add(1)
		}
		b.processMessages()
		return
	}
	b.user.push(message)
	b.userMessages.Add(1)
	b.schedule()
}

// PostSystemMessage implements actor.Mailbox.
func (b *taskBox) PostSystemMessage(message any) {
	if b.running.CompareAndSwap(0, 1) {
		// Idle, and now this goroutine's: see invokeOne.
		if b.sys.empty() {
			b.invokeOne(message, true)
		} else {
			b.sys.push(message)
			b.sysMessages.Add(1)
		}
		b.processMessages()
		return
	}
	b.sys.push(message)
	b.sysMessages.Add(1)
	b.schedule()
}

// invokeOne handles a message without queueing it, as run does (a panic
// escalated as there). PostUserMessage and PostSystemMessage call it when
// they found the mailbox idle (the posting goroutine took running 0 -> 1)
// with nothing queued that must come first: no system message, and for a
// user message no user message either and the mailbox not suspended.
// processMessages then handles what was posted meanwhile and lets the
// mailbox go. Only the goroutine holding running takes messages off, so
// what it read stays true but for posts made at the same time, which may
// come before or after, as they may when both are queued; one goroutine's
// messages keep their order, since its second post finds the first still
// queued or the mailbox running. "Queued" is read from the queues
// (lazyQueue.empty), not from the counters: a producer counts its message
// only after pushing it, so the counters may say 0 while a message waits
// (another producer's message was handled before it was counted, and the
// consumer stopped at a third one's node not linked yet, ahead of the
// waiting one: TestTaskBoxIdlePostWaitsForCountedLate). Most of a task actor's messages
// find it idle (its Started at spawn, a GetStatus, its worker's reports),
// and each of them was a queue node allocated.
func (b *taskBox) invokeOne(msg any, system bool) {
	defer func() {
		if r := recover(); r != nil {
			b.invoker.EscalateFailure(r, msg)
		}
	}()
	if system {
		b.system(msg)
		return
	}
	b.invoker.InvokeUserMessage(msg)
	b.received(msg)
}

// system handles a system message: suspension and resumption here, the
// others by the invoker.
//
// A taskBox is made suspended (taskMailbox) and resumes once its actor has
// handled Started: protoactor's spawn registers the actor's process (so a
// request by name can reach the mailbox) before it registers the mailbox's
// invoker and posts Started. A user message posted in between waits in
// the queue instead of reaching a nil invoker, and comes after Started.
// The QueueManager spawns a queued action's actor when a request for it
// comes (manager.spawnAs), while other requests may be looking it up.
func (b *taskBox) system(msg any) {
	switch msg.(type) {
	case *actor.SuspendMailbox:
		b.suspended.Store(1)
	case *actor.ResumeMailbox:
		b.suspended.Store(0)
	case *actor.Started:
		b.invoker.InvokeSystemMessage(msg)
		b.suspended.Store(0)
	case *actor.Stop:
		// Suspended: the actor failed (EscalateFailure suspends the
		// mailbox) and its supervisor stops it (HandleFailure). The
		// user messages waiting would never run (protoactor drops them
		// with the mailbox): run hands them to orphan instead, and any
		// that still comes.
		failed := b.suspended.Load() == 1
		b.invoker.InvokeSystemMessage(msg)
		if failed {
			b.ended.Store(orphaned)
		}
	default:
		b.invoker.InvokeSystemMessage(msg)
	}
}

// RegisterHandlers implements actor.Mailbox.
func (b *taskBox) RegisterHandlers(invoker actor.MessageInvoker, dispatcher actor.Dispatcher) {
	b.invoker = invoker
	b.throughput.Store(int32(dispatcher.Throughput()))
}

// Start implements actor.Mailbox.
func (b *taskBox) Start() {}

// UserMessageCount implements actor.Mailbox.
func (b *taskBox) UserMessageCount() int { return int(b.userMessages.Load()) }

func (b *taskBox) schedule() {
	if b.running.CompareAndSwap(0, 1) {
		b.processMessages()
	}
}

func (b *taskBox) processMessages() {
	for {
		b.run()
		b.running.Store(0)
		sys, user := b.sysMessages.Load(), b.userMessages.Load()
		// A message posted after run saw the queues empty, but before
		// running was cleared, found the mailbox running: take it now.
		if (sys > 0 || (b.suspended.Load() == 0 || b.ended.Load() == orphaned) && user > 0) && b.running.CompareAndSwap(0, 1) {
			continue
		}
		return
	}
}

func (b *taskBox) run() {
	var msg any
	defer func() {
		if r := recover(); r != nil {
			b.invoker.EscalateFailure(r, msg)
		}
	}()
	i, t := int32(0), b.throughput.Load()
	for {
		if i > t {
			i = 0
			runtime.Gosched()
		}
		i++
		if msg = b.sys.pop(); msg != nil {
			b.sysMessages.Add(-1)
			b.system(msg)
			continue
		}
		orphan := b.ended.Load() == orphaned
		if b.suspended.Load() == 1 && !orphan {
			return
		}
		if msg = b.user.pop(); msg == nil {
			return
		}
		b.userMessages.Add(-1)
		if orphan {
			b.orphan(msg)
			continue
		}
		b.invoker.InvokeUserMessage(msg)
		b.received(msg)
	}
}

// orphan answers, through the QueueManager, a request that reached a task
// actor stopped by its supervisor after a failure outside its own recovery
// (task.Receive): queued behind the failure, or posted by a sender that
// still held the stopped actor's process. It goes to the actor's owner as
// a lookupTombstone, with the requester as its sender; the owner recorded
// the action's tombstone before it stopped the actor (HandleFailure), so
// it answers with the tombstone (tombstoneReply). Before, such requests
// were dropped with the mailbox: a change waited until the queue stopped,
// a read timed out. A message sent without a sender (a worker's report, a
// dispatch, whose slot the tombstone has released) needs no answer.
func (b *taskBox) orphan(m any) {
	env, ok := m.(*actor.MessageEnvelope)
	if !ok || env.Sender == nil {
		return
	}
	if a, ok := b.invoker.(interface{ Actor() actor.Actor }); ok {
		if t, ok := a.Actor().(*task); ok && t.owner != nil {
			b.root.RequestWithCustomSender(t.owner, &lookupTombstone{id: t.id, msg: env.Message}, env.Sender)
			return
		}
	}
	b.root.Send(env.Sender, &actor.DeadLetterResponse{})
}

// received is the retirement guard (retire.go): after the PoisonPill, every request is
// answered with a DeadLetterResponse.
func (b *taskBox) received(m any) {
	if _, ok := m.(*actor.PoisonPill); ok {
		b.ended.Store(retired)
		return
	}
	if b.ended.Load() != retired {
		return
	}
	if env, ok := m.(*actor.MessageEnvelope); ok && env.Sender != nil {
		b.root.Send(env.Sender, &actor.DeadLetterResponse{})
	}
}

// lazyQueue is an mpscQueue made by the first push: push is safe from any
// goroutine, pop only from the consumer, as the queue's own.
type lazyQueue struct{ q atomic.Pointer[mpscQueue] }

func (l *lazyQueue) push(x any) {
	q := l.q.Load()
	if q == nil {
		q = &mpscQueue{}
		q.init()
		if !l.q.CompareAndSwap(nil, q) {
			q = l.q.Load() // another producer's, made at the same time
		}
	}
	q.push(x)
}

// empty reports whether no message is in l, counting one whose push is
// under way (its producer has taken the head). Only the consumer (the
// goroutine holding the mailbox's running) may call it.
func (l *lazyQueue) empty() bool {
	q := l.q.Load()
	return q == nil || q.head.Load() == q.tail
}

// pop is mpscQueue.pop; nil until the first push.
func (l *lazyQueue) pop() any {
	if q := l.q.Load(); q != nil {
		return q.pop()
	}
	return nil
}

// mpscQueue is protoactor's internal/queue/mpsc (Vyukov's non-intrusive
// multi-producer single-consumer queue) with its stub node inline, so that
// an empty queue allocates nothing of its own. push is safe from any
// goroutine; pop only from the consumer (the mailbox's run).
type mpscQueue struct {
	head atomic.Pointer[mpscNode] // producers' end
	tail *mpscNode                // consumer's end
	stub mpscNode                 // the first node (init)
}

type mpscNode struct {
	next atomic.Pointer[mpscNode]
	val  any
}

// init points both ends at the stub.
func (q *mpscQueue) init() {
	q.tail = &q.stub
	q.head.Store(&q.stub)
}

func (q *mpscQueue) push(x any) {
	n := &mpscNode{val: x}
	prev := q.head.Swap(n)
	prev.next.Store(n)
}

// pop takes the oldest message, nil when there is none. A queue that it
// empties goes back to its stub when no producer is pushing, so that an
// idle task actor (most of them: one per queued action) keeps no node of
// its own.
func (q *mpscQueue) pop() any {
	tail := q.tail
	next := tail.next.Load()
	if next == nil {
		return nil
	}
	v := next.val
	next.val = nil
	q.tail = next
	if next != &q.stub && next.next.Load() == nil {
		// next is the last node. No producer can still write to the
		// stub's next (the one that linked the stub's successor did so
		// before this consumer passed it), so it may be reset; a producer
		// that swapped head since makes the swap back fail, and links
		// its node after next, as usual.
		q.stub.next.Store(nil)
		if q.head.CompareAndSwap(next, &q.stub) {
			q.tail = &q.stub
		}
	}
	return v
}
