package queue

import (
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// retireGuard closes a gap in protoactor: a user message that reaches an
// actor's mailbox after the actor has stopped is dropped silently, so a
// request racing a retention eviction would wait out its whole timeout.
// Evicted task actors are stopped with Poison; the guard, one per mailbox,
// sees the PoisonPill go through and answers every later request with a
// DeadLetterResponse, which fails the requester's future at once with
// actor.ErrDeadLetter (Queue.Ask then reports an unknown token).
type retireGuard struct {
	root    *actor.RootContext
	retired atomic.Bool
}

// taskMailbox returns a mailbox producer that gives each task actor its own
// guard. The mailbox is protoactor's lock-free one (a linked queue, 48 B
// when empty) rather than Unbounded (a ring of 10 slots allocated up
// front, 225 B): there is one per queued action, and a task actor gets
// few messages.
func taskMailbox(root *actor.RootContext) actor.MailboxProducer {
	return func() actor.Mailbox {
		return actor.UnboundedLockfree(&retireGuard{root: root})()
	}
}

func (g *retireGuard) MailboxStarted()   {}
func (g *retireGuard) MessagePosted(any) {}
func (g *retireGuard) MailboxEmpty()     {}
func (g *retireGuard) MessageReceived(m any) {
	if _, ok := m.(*actor.PoisonPill); ok {
		g.retired.Store(true)
		return
	}
	if !g.retired.Load() {
		return
	}
	if env, ok := m.(*actor.MessageEnvelope); ok && env.Sender != nil {
		g.root.Send(env.Sender, &actor.DeadLetterResponse{})
	}
}
