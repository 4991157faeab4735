package queue

import (
	"io"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

type boxMsg struct{ from, n int }

// counter records, per sender, the messages it handles, in order.
type counter struct {
	mu   sync.Mutex
	seen map[int][]int
}

func (c *counter) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *boxMsg:
		c.mu.Lock()
		c.seen[m.from] = append(c.seen[m.from], m.n)
		c.mu.Unlock()
	case string:
		if m == "boom" {
			panic("boom")
		}
		ctx.Respond(m)
	}
}

func newBoxSystem(t *testing.T) *actor.ActorSystem {
	t.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond))
	t.Cleanup(sys.Shutdown)
	return sys
}

// TestTaskBoxDeliversEveryMessageInOrder: many goroutines post to one task
// mailbox at once (messages run on the posting goroutines); every message
// is handled exactly once, each sender's in the order sent, never two at a
// time (the actor's map is guarded only to let -race check that).
func TestTaskBoxDeliversEveryMessageInOrder(t *testing.T) {
	t.Parallel()
	sys := newBoxSystem(t)
	c := &counter{seen: map[int][]int{}}
	props := actor.PropsFromProducer(func() actor.Actor { return c },
		actor.WithMailbox(taskMailbox(sys.Root)), actor.WithDispatcher(actor.NewSynchronizedDispatcher(300)))
	pid := sys.Root.Spawn(props)
	const senders, each = 8, 2000
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for n := range each {
				sys.Root.Send(pid, &boxMsg{from: s, n: n})
			}
		})
	}
	wg.Wait()
	// Every post either ran its message or found the mailbox running, in
	// which case the goroutine running it takes the message before it
	// lets go: once the senders are done, all have been handled.
	res, err := sys.Root.RequestFuture(pid, "ping", 5*time.Second).Result()
	require.NoError(t, err)
	require.Equal(t, "ping", res)
	c.mu.Lock()
	defer c.mu.Unlock()
	for s := range senders {
		require.Len(t, c.seen[s], each, "sender %d", s)
		for i, n := range c.seen[s] {
			require.Equal(t, i, n, "sender %d's messages in order", s)
		}
	}
}

// TestTaskBoxRetiresAfterPoison: after the PoisonPill, a request is
// answered with a dead letter at once instead of being dropped.
func TestTaskBoxRetiresAfterPoison(t *testing.T) {
	t.Parallel()
	sys := newBoxSystem(t)
	props := actor.PropsFromProducer(func() actor.Actor { return &counter{seen: map[int][]int{}} },
		actor.WithMailbox(taskMailbox(sys.Root)), actor.WithDispatcher(actor.NewSynchronizedDispatcher(300)))
	pid := sys.Root.Spawn(props)
	res, err := sys.Root.RequestFuture(pid, "ping", 5*time.Second).Result()
	require.NoError(t, err)
	require.Equal(t, "ping", res)
	require.NoError(t, sys.Root.PoisonFuture(pid).Wait())
	// Posted straight to the stopped actor's mailbox (as a request that
	// raced the eviction, having looked the process up before, would be).
	box := &taskBox{root: sys.Root}
	box.RegisterHandlers(&nopInvoker{}, actor.NewSynchronizedDispatcher(300))
	box.PostUserMessage(&actor.PoisonPill{})
	f := actor.NewFuture(sys, 5*time.Second)
	box.PostUserMessage(&actor.MessageEnvelope{Message: "late", Sender: f.PID()})
	_, err = f.Result()
	require.ErrorIs(t, err, actor.ErrDeadLetter)
}

// TestTaskBoxFailureEscalates: a panic the actor does not recover from
// reaches its parent's supervisor (as the QueueManager's HandleFailure
// sees a task actor's).
func TestTaskBoxFailureEscalates(t *testing.T) {
	t.Parallel()
	sys := newBoxSystem(t)
	failed := make(chan any, 1)
	sup := actor.NewOneForOneStrategy(1, time.Second, func(reason any) actor.Directive {
		failed <- reason
		return actor.StopDirective
	})
	props := actor.PropsFromProducer(func() actor.Actor { return &counter{seen: map[int][]int{}} },
		actor.WithMailbox(taskMailbox(sys.Root)), actor.WithDispatcher(actor.NewSynchronizedDispatcher(300)))
	children := make(chan *actor.PID, 1)
	sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*actor.Started); ok {
			children <- ctx.Spawn(props)
		}
	}, actor.WithSupervisor(sup)))
	sys.Root.Send(<-children, "boom")
	select {
	case r := <-failed:
		require.Equal(t, "boom", r)
	case <-time.After(10 * time.Second):
		t.Fatal("the failure never reached the supervisor")
	}
}

type nopInvoker struct{}

func (*nopInvoker) InvokeSystemMessage(any)  {}
func (*nopInvoker) InvokeUserMessage(any)    {}
func (*nopInvoker) EscalateFailure(any, any) {}

// TestTaskBoxIdleHoldsNoNode: a task mailbox whose messages never had to
// wait has no queues; once messages that waited are handled, its queues
// are back on their inline stubs (a queued action's actor keeps no queue
// node of its own), and it takes messages again as before.
func TestTaskBoxIdleHoldsNoNode(t *testing.T) {
	t.Parallel()
	sys := newBoxSystem(t)
	box := taskMailbox(sys.Root)().(*taskBox)
	inv := &countInvoker{}
	box.RegisterHandlers(inv, actor.NewSynchronizedDispatcher(300))
	for round := 1; round <= 3; round++ {
		box.PostSystemMessage(&actor.Started{})
		for range 3 {
			box.PostUserMessage("m")
		}
		require.Equal(t, 3*round, inv.user)
		require.Equal(t, round, inv.sys)
		require.Nil(t, box.sys.q.Load(), "no message had to wait: no queue")
		require.Nil(t, box.user.q.Load(), "no message had to wait: no queue")
	}
	// Messages that must wait (the mailbox is busy elsewhere) make the
	// queues; once handled, the queues are back on their stubs.
	for round := 1; round <= 3; round++ {
		require.True(t, box.running.CompareAndSwap(0, 1))
		box.PostSystemMessage(&actor.Started{})
		box.PostUserMessage("m")
		box.PostUserMessage("m")
		box.running.Store(0)
		box.PostUserMessage("m")
		require.Equal(t, 9+3*round, inv.user)
		require.Equal(t, 3+round, inv.sys)
		for _, q := range []*mpscQueue{box.sys.q.Load(), box.user.q.Load()} {
			require.Same(t, &q.stub, q.tail)
			require.Same(t, &q.stub, q.head.Load())
			require.Nil(t, q.stub.next.Load())
		}
	}
}

type countInvoker struct{ sys, user int }

func (c *countInvoker) InvokeSystemMessage(any)  { c.sys++ }
func (c *countInvoker) InvokeUserMessage(any)    { c.user++ }
func (c *countInvoker) EscalateFailure(any, any) {}

// TestTaskBoxIdlePostAllocatesNothing: a message posted to an idle task
// mailbox is handled at once, without a queue node: a task actor's Started,
// a GetStatus and its worker's reports cost no allocation of the mailbox's.
func TestTaskBoxIdlePostAllocatesNothing(t *testing.T) { // not parallel: AllocsPerRun
	sys := newBoxSystem(t)
	box := taskMailbox(sys.Root)().(*taskBox)
	inv := &countInvoker{}
	box.RegisterHandlers(inv, actor.NewSynchronizedDispatcher(300))
	started, msg := &actor.Started{}, any("m")
	require.Zero(t, testing.AllocsPerRun(100, func() { box.PostSystemMessage(started) }))
	require.Zero(t, testing.AllocsPerRun(100, func() { box.PostUserMessage(msg) }))
	require.Equal(t, 101, inv.sys)
	require.Equal(t, 101, inv.user)
}

// orderInvoker records the messages it handles; on "first" it posts a
// user message and then a system message to its own mailbox (as an actor
// sending to itself does).
type orderInvoker struct {
	box  *taskBox
	seen []string
}

func (o *orderInvoker) InvokeSystemMessage(m any) { o.seen = append(o.seen, "sys:"+m.(*boxSys).name) }
func (o *orderInvoker) InvokeUserMessage(m any) {
	o.seen = append(o.seen, m.(string))
	if m == "first" {
		o.box.PostUserMessage("second")
		o.box.PostSystemMessage(&boxSys{"during"})
	}
}
func (o *orderInvoker) EscalateFailure(any, any) {}

type boxSys struct{ name string }

// TestTaskBoxKeepsOrderWhenHandlingAtOnce: what is posted while a message
// is handled at once waits for it, system messages first as ever; a user
// message posted while the mailbox is suspended waits for the resume, and
// messages queued before one posted later come first.
func TestTaskBoxKeepsOrderWhenHandlingAtOnce(t *testing.T) {
	t.Parallel()
	sys := newBoxSystem(t)
	box := taskMailbox(sys.Root)().(*taskBox)
	inv := &orderInvoker{box: box}
	box.RegisterHandlers(inv, actor.NewSynchronizedDispatcher(300))
	box.suspended.Store(0) // as once Started is handled
	box.PostUserMessage("first")
	require.Equal(t, []string{"first", "sys:during", "second"}, inv.seen)

	inv.seen = nil
	box.PostSystemMessage(&actor.SuspendMailbox{})
	box.PostUserMessage("held")
	box.PostUserMessage("held too")
	require.Empty(t, inv.seen, "a suspended mailbox handles no user message")
	box.PostSystemMessage(&actor.ResumeMailbox{})
	require.Equal(t, []string{"held", "held too"}, inv.seen)

	// Messages already queued (the mailbox was busy on another
	// goroutine) come before one posted once it is idle again.
	inv.seen = nil
	require.True(t, box.running.CompareAndSwap(0, 1)) // busy elsewhere
	box.PostUserMessage("queued")
	box.PostSystemMessage(&boxSys{"queued"})
	require.Empty(t, inv.seen)
	box.running.Store(0) // as if the other goroutine let go before taking them
	box.PostUserMessage("later")
	require.Equal(t, []string{"sys:queued", "queued", "later"}, inv.seen)
	for _, q := range []*mpscQueue{box.sys.q.Load(), box.user.q.Load()} {
		require.Same(t, &q.stub, q.tail, "back on the stub once idle")
	}
}

// seenInvoker records the messages it handles (strings), system ones
// prefixed "sys:".
type seenInvoker struct{ seen []string }

func (s *seenInvoker) InvokeSystemMessage(m any) { s.seen = append(s.seen, "sys:"+m.(*boxSys).name) }
func (s *seenInvoker) InvokeUserMessage(m any)   { s.seen = append(s.seen, m.(string)) }
func (s *seenInvoker) EscalateFailure(any, any)  {}

// TestTaskBoxIdlePostWaitsForCountedLate: a sender's second message is not
// handled at once while its first still waits, even when the mailbox is
// idle and its counters read 0. Two other posts are under way at once:
// Y's message was queued and already handled, but Y has not counted it
// yet (so the count is one short), and X has taken the queue's head
// without linking its node yet (so the consumer saw the queue end before
// X's message and A's first one, which came after X's). The counters
// alone then say that nothing waits.
func TestTaskBoxIdlePostWaitsForCountedLate(t *testing.T) {
	t.Parallel()
	for _, system := range []bool{false, true} {
		sys := newBoxSystem(t)
		box := taskMailbox(sys.Root)().(*taskBox)
		inv := &seenInvoker{}
		box.RegisterHandlers(inv, actor.NewSynchronizedDispatcher(300))
		box.suspended.Store(0) // as once Started is handled
		q, counter := &box.user, &box.userMessages
		msg := func(s string) any { return s }
		post, name := box.PostUserMessage, func(s string) string { return s }
		if system {
			q, counter = &box.sys, &box.sysMessages
			msg = func(s string) any { return &boxSys{s} }
			post, name = box.PostSystemMessage, func(s string) string { return "sys:" + s }
		}
		require.True(t, box.running.CompareAndSwap(0, 1)) // busy on another goroutine
		q.push(msg("y"))                                  // Y: queued, not counted yet
		xn := &mpscNode{val: msg("x")}
		prev := q.q.Load().head.Swap(xn) // X: head taken, node not linked yet
		post(msg("a1"))                  // A: queued behind X's, counted
		box.processMessages()            // the busy goroutine handles what it can reach, and lets go
		require.Equal(t, []string{name("y")}, inv.seen)
		// A again, the mailbox idle: a1 still waits, so a2 must wait
		// behind it (the poster then waits for X's link, as a consumer
		// does).
		a2 := msg("a2")
		done := make(chan struct{})
		go func() {
			defer close(done)
			post(a2)
		}()
		queued := func() bool { n := q.q.Load().head.Load(); return n != xn && n.val == a2 }
		for deadline := time.Now().Add(10 * time.Second); !queued(); {
			select {
			case <-done: // handled at once: the order below tells
			default:
				if time.Now().Before(deadline) {
					runtime.Gosched()
					continue
				}
			}
			break
		}
		prev.next.Store(xn) // X links its node
		counter.Add(1)      // X and Y count theirs
		counter.Add(1)
		box.schedule()
		<-done
		require.Equal(t, []string{name("y"), name("x"), name("a1"), name("a2")}, inv.seen, "A's messages in the order posted")
	}
}

// startInvoker records the messages it handles: Started as "sys:started",
// user messages (strings) as they are.
type startInvoker struct{ seen []string }

func (s *startInvoker) InvokeSystemMessage(m any) {
	if _, ok := m.(*actor.Started); ok {
		s.seen = append(s.seen, "sys:started")
	}
}
func (s *startInvoker) InvokeUserMessage(m any)  { s.seen = append(s.seen, m.(string)) }
func (s *startInvoker) EscalateFailure(any, any) {}

// TestTaskBoxHoldsUserMessagesUntilStarted: protoactor's spawn makes the
// actor's process reachable by name before it registers the mailbox's
// invoker and posts Started (the QueueManager spawns a queued action's
// actor on demand while requests may look it up). A user message posted in
// that window waits, without reaching the missing invoker, and is handled
// after Started; later ones at once.
func TestTaskBoxHoldsUserMessagesUntilStarted(t *testing.T) {
	t.Parallel()
	sys := newBoxSystem(t)
	box := taskMailbox(sys.Root)().(*taskBox)
	box.PostUserMessage("early") // no invoker yet: it would panic if handled
	box.PostUserMessage("early too")
	inv := &startInvoker{}
	box.RegisterHandlers(inv, actor.NewSynchronizedDispatcher(300))
	require.Empty(t, inv.seen)
	box.PostSystemMessage(&actor.Started{})
	box.PostUserMessage("later")
	require.Equal(t, []string{"sys:started", "early", "early too", "later"}, inv.seen)
}

// ownerInvoker is an invoker whose actor is a task owned by owner, as the
// actor context of a task actor is.
type ownerInvoker struct {
	nopInvoker
	t *task
}

func (i *ownerInvoker) Actor() actor.Actor { return i.t }

// TestTaskBoxOrphanedSendsRequestsToTheOwner: a task mailbox stopped while
// suspended (its actor failed, and its supervisor stopped it) hands every
// request it held, and every one that comes after, to the task's owner as
// a lookupTombstone with the requester as sender, so the owner answers
// each; a message without a sender goes nowhere. A box stopped while not
// suspended (a plain Stop) is not orphaned.
func TestTaskBoxOrphanedSendsRequestsToTheOwner(t *testing.T) {
	t.Parallel()
	sys := newBoxSystem(t)
	got := make(chan *lookupTombstone, 8)
	owner := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*lookupTombstone); ok {
			got <- m
			ctx.Respond(m.msg)
		}
	}))
	id := uuid.New()
	box := taskMailbox(sys.Root)().(*taskBox)
	box.RegisterHandlers(&ownerInvoker{t: &task{owner: owner, id: id}}, actor.NewSynchronizedDispatcher(300))
	box.PostSystemMessage(&actor.Started{}) // resumes it

	plain := taskMailbox(sys.Root)().(*taskBox)
	plain.RegisterHandlers(&ownerInvoker{t: &task{owner: owner, id: id}}, actor.NewSynchronizedDispatcher(300))
	plain.PostSystemMessage(&actor.Started{})
	plain.PostSystemMessage(&actor.Stop{})
	require.Zero(t, plain.ended.Load(), "a Stop of a running actor does not orphan its box")

	box.PostSystemMessage(&actor.SuspendMailbox{}) // EscalateFailure
	held := actor.NewFuture(sys, 5*time.Second)
	box.PostUserMessage(&actor.MessageEnvelope{Message: "held", Sender: held.PID()})
	box.PostUserMessage("no sender")
	require.EqualValues(t, 2, box.UserMessageCount(), "a suspended box holds them")
	box.PostSystemMessage(&actor.Stop{}) // the supervisor's
	late := actor.NewFuture(sys, 5*time.Second)
	box.PostUserMessage(&actor.MessageEnvelope{Message: "late", Sender: late.PID()})

	for _, c := range []struct {
		f    *actor.Future
		want string
	}{{held, "held"}, {late, "late"}} {
		res, err := c.f.Result()
		require.NoError(t, err)
		require.Equal(t, c.want, res)
		m := <-got
		require.Equal(t, id, m.id)
		require.Equal(t, c.want, m.msg)
		require.False(t, m.listed)
	}
	require.Zero(t, box.UserMessageCount())
	require.Empty(t, got, "a message without a sender is not sent on")
}
