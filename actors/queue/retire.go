package queue

import (
	"github.com/asynkron/protoactor-go/actor"
)

// The retirement guard closes a gap in protoactor: a user message that
// reaches an actor's mailbox after the actor has stopped is dropped
// silently, so a request racing a retention eviction would wait out its
// whole timeout. Evicted task actors are stopped with Poison; the guard,
// part of every task actor's mailbox (taskBox.received), sees the
// PoisonPill go through and answers every later request with a
// DeadLetterResponse, which fails the requester's future at once with
// actor.ErrDeadLetter (Queue.Ask then reports an unknown token).

// taskMailbox returns the mailbox producer of task actors: a taskBox each,
// protoactor's lock-free mailbox in one allocation (a linked queue rather
// than Unbounded's ring of 10 slots allocated up front, 225 B: there is
// one per queued action, and a task actor gets few messages). A new
// taskBox is suspended until its actor has handled Started (taskBox.system).
func taskMailbox(root *actor.RootContext) actor.MailboxProducer {
	return func() actor.Mailbox {
		b := &taskBox{root: root}
		b.suspended.Store(1)
		return b
	}
}
