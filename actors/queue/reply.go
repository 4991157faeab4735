package queue

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// replies is a pool of reply processes: the cheaper equivalent, for the
// request/reply calls of the HTTP path, of protoactor's RequestFuture, which
// for every request builds an id string, registers a new process in the
// global registry and removes it again, arms a new timer and allocates a
// condition variable. A replier is registered once and reused with its own
// timer. One that timed out is retired (unregistered), so a late reply can
// never be taken for the answer to a later request: it goes to dead letters
// instead. The pool is a bounded free list, not a sync.Pool, so a registered
// replier is never dropped (and leaked in the registry) by the GC.
type replies struct {
	sys  *actor.ActorSystem
	free chan *replier
	// stopped is closed once the QueueManager has stopped (nil: never,
	// as for the cluster queue, whose waits are bounded). A request
	// without a timeout waits for its reply or for it: protoactor drops,
	// without a reply, the user messages still in a stopping actor's
	// mailbox when it stops (the QueueManager's, and those of the task
	// actors it stops), so a change racing the queue's shutdown could
	// otherwise wait forever. Every reply is sent before the
	// QueueManager stops (it stops after its task actors, and answers what
	// it holds when it stops its writer), so none can come after.
	stopped <-chan struct{}
}

// errStopped is what a request without a timeout returns when the queue
// stopped without answering it: as for a request sent once it had
// stopped, a dead letter (Queue reports ErrShuttingDown).
var errStopped = actor.ErrDeadLetter

// replier is an actor.Process that hands the first message it is sent to
// the waiting caller.
type replier struct {
	pid   *actor.PID
	ch    chan any
	timer *time.Timer
}

func (r *replier) SendUserMessage(_ *actor.PID, message any) {
	_, msg, _ := actor.UnwrapEnvelope(message)
	select {
	case r.ch <- msg:
	default: // a reply nobody waits for
	}
}

func (r *replier) SendSystemMessage(*actor.PID, any) {}
func (r *replier) Stop(*actor.PID)                   {}

// arm starts the replier's timer for one request.
func (r *replier) arm(timeout time.Duration) {
	if r.timer == nil {
		r.timer = time.NewTimer(timeout)
	} else {
		r.timer.Reset(timeout)
	}
}

func newReplies(sys *actor.ActorSystem, size int) *replies {
	return &replies{sys: sys, free: make(chan *replier, size)}
}

func (p *replies) get() *replier {
	select {
	case r := <-p.free:
		return r
	default:
	}
	r := &replier{ch: make(chan any, 1)}
	r.pid, _ = p.sys.ProcessRegistry.Add(r, "reply"+p.sys.ProcessRegistry.NextId())
	return r
}

func (p *replies) put(r *replier) {
	select {
	case p.free <- r:
	default:
		p.sys.ProcessRegistry.Remove(r.pid)
	}
}

// request sends msg to pid and waits up to timeout for the reply (with a
// negative timeout, until it comes). A DeadLetterResponse (no such actor)
// becomes actor.ErrDeadLetter.
func (p *replies) request(pid *actor.PID, msg any, timeout time.Duration) (any, error) {
	if timeout < 0 {
		r := p.get()
		p.sys.Root.RequestWithCustomSender(pid, msg, r.pid)
		res, err := p.await(r.ch, nil)
		// Retired, not reused: these requests are few (controls that
		// wait for the disk), and a stray second message can then never
		// be taken for the answer to another request.
		p.sys.ProcessRegistry.Remove(r.pid)
		if err != nil {
			return nil, err
		}
		if _, ok := res.(*actor.DeadLetterResponse); ok {
			return nil, actor.ErrDeadLetter
		}
		return res, nil
	}
	r := p.get()
	r.arm(timeout)
	p.sys.Root.RequestWithCustomSender(pid, msg, r.pid)
	select {
	case res := <-r.ch:
		r.timer.Stop()
		p.put(r)
		if _, ok := res.(*actor.DeadLetterResponse); ok {
			return nil, actor.ErrDeadLetter
		}
		return res, nil
	case <-r.timer.C:
		p.sys.ProcessRegistry.Remove(r.pid) // retired: see the type's comment
		return nil, actor.ErrTimeout
	}
}

// requestWithdrawable is request for a message with a side effect that
// the caller must not lose track of (a submission, which queues an action):
// when no reply has come within timeout, the caller does not walk away,
// since the receiver may still carry the request out. It sends
// withdraw(sender), which the receiver must handle after msg (both come
// from this goroutine, so in order) by answering to sender exactly once
// for the request: either that it withdrew it (nothing was done), or, if
// it is too late to withdraw, the request's own outcome when it is known.
// The wait for that answer has no timeout: it is the only truthful one.
//
// env is the request's envelope (its Message), to be sent as it is with
// the replier as its Sender: the caller allocates it together with the
// message (a submission: submitRequest), one allocation instead of
// RequestWithCustomSender's two.
func (p *replies) requestWithdrawable(pid *actor.PID, env *actor.MessageEnvelope, timeout time.Duration, withdraw func(sender *actor.PID) any) (any, error) {
	r := p.get()
	r.arm(timeout)
	env.Sender = r.pid
	p.sys.Root.Send(pid, env)
	var res any
	select {
	case res = <-r.ch:
		r.timer.Stop()
		p.put(r)
	case <-r.timer.C:
		// Sent as a request, so that a receiver that has gone answers
		// with a DeadLetterResponse instead of leaving us waiting.
		p.sys.Root.RequestWithCustomSender(pid, withdraw(r.pid), r.pid)
		var err error
		res, err = p.await(r.ch, nil)
		// A second message may still come (a dead letter for the
		// withdrawal): retire the replier rather than reuse it.
		p.sys.ProcessRegistry.Remove(r.pid)
		if err != nil {
			return nil, err
		}
	}
	if _, ok := res.(*actor.DeadLetterResponse); ok {
		return nil, actor.ErrDeadLetter
	}
	return res, nil
}

// await waits for a message on ch until expired fires (nil: never) or
// the QueueManager has stopped (stopped); it then returns
// actor.ErrTimeout or errStopped. A reply already there when the
// QueueManager stopped is taken.
func (p *replies) await(ch <-chan any, expired <-chan time.Time) (any, error) {
	select {
	case res := <-ch:
		return res, nil
	case <-expired:
		return nil, actor.ErrTimeout
	case <-p.stopped:
		select {
		case res := <-ch:
			return res, nil
		default:
			return nil, errStopped
		}
	}
}
