package queue

import (
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// replies is a pool of reply processes: the cheaper equivalent, for the
// request/reply calls of the HTTP path, of protoactor's RequestFuture, which
// for every request builds an id string, registers a new process in the
// global registry and removes it again, arms a new timer and allocates a
// condition variable. A replier is registered once and reused with its own
// timer. One that timed out is reused too (see below: a late reply, local
// or from another node, is dropped by the replier). The pool is a
// bounded free list, not a sync.Pool, so a registered replier is never
// dropped (and leaked in the registry) by the GC.
//
// A reused replier must never take a message sent for an earlier request
// as the answer to the current one: a request can be answered twice (a
// handler that answers and then panics is answered again by the task's
// recovery, task.panicked, or by the tombstone, answerFailing), and the
// second answer may come after the first request returned its replier to
// the pool. So each request has its own sender PID, the replier's with a
// sequence number in its RequestId (envelope, replier.next), and a replier
// takes only the first message sent to the sender of the request it waits
// for (replier.want): a message sent to an earlier request's sender, or a
// second one to the current one, is dropped. The sender travels with the
// request, so the answer comes back to it: locally it is the same pointer
// (ctx.Respond answers the envelope's Sender), and remoting carries the
// RequestId both ways (MessageEnvelope.SenderRequestId and
// TargetRequestId), so the cluster queue's requests to task actors on other
// nodes are matched the same way.
type replies struct {
	sys  *actor.ActorSystem
	free chan *replier
	// stopped is closed once the QueueManager has stopped (nil: never),
	// in process as in a cluster, where a change asked of the node's own
	// task actor waits without a timeout too. A request
	// without a timeout waits for its reply or for it: protoactor drops,
	// without a reply, the user messages still in a stopping actor's
	// mailbox when it stops (the QueueManager's, and those of the task
	// actors it stops), so a change racing the queue's shutdown could
	// otherwise wait forever. Every reply is sent before the
	// QueueManager stops (it stops after its task actors, and answers what
	// it holds when it stops its writer), so none can come after. (The
	// cluster QueueManager drops the answers of a commit that was in
	// flight when it stopped: they end here, as not answered.)
	stopped <-chan struct{}
}

// errStopped is what a request without a timeout returns when the queue
// stopped without answering it: as for a request sent once it had
// stopped, a dead letter (Queue reports ErrShuttingDown).
var errStopped = actor.ErrDeadLetter

// replier is an actor.Process that hands the first message sent to the
// sender of the current request to the waiting caller.
type replier struct {
	pid   *actor.PID
	ch    chan any
	timer *time.Timer
	// want is the sequence number (the sender's RequestId) of the request
	// waiting for its answer, 0 once it has one (or before the first
	// request): the first message for it swaps it to 0, so at most one
	// message per request reaches ch, and ch is empty whenever a reused
	// replier starts a request.
	want atomic.Uint32
	// seq is the last sequence number handed out (next); only the
	// goroutine that holds the replier touches it. It wraps after 2^32
	// requests on one replier, skipping 0 (no RequestId); a stray answer
	// delayed that long is the only one that could be taken.
	seq uint32
}

func (r *replier) SendUserMessage(to *actor.PID, message any) {
	if to == nil || to.RequestId == 0 || !r.want.CompareAndSwap(to.RequestId, 0) {
		return // a stray: a request's second answer, or an answer nobody waits for
	}
	_, msg, _ := actor.UnwrapEnvelope(message)
	select {
	case r.ch <- msg:
	default: // cannot happen (see want); a sender never blocks here
	}
}

// next readies r for a new request: sender becomes the request's own
// sender PID, r's with the next sequence number, which r now waits for.
// It shares r.pid's cached reference to r (a connector patch to
// protoactor: PID.ShareRef), so a local answer reaches r without a lookup
// in the process registry, as one sent to r.pid did.
func (r *replier) next(sys *actor.ActorSystem, sender *actor.PID) {
	r.seq++
	if r.seq == 0 {
		r.seq = 1
	}
	sender.Address, sender.Id, sender.RequestId = r.pid.Address, r.pid.Id, r.seq
	r.pid.ShareRef(sys, sender)
	r.want.Store(r.seq)
}

// envelope is a request's envelope and its sender PID (replier.next), in
// one allocation, as RequestWithCustomSender's envelope alone was. It is
// never reused: the receiver may hold the sender after answering.
type envelope struct {
	env    actor.MessageEnvelope
	sender actor.PID
}

// send sends e, the request e.env.Message with r as its sender, to pid.
func (p *replies) send(pid *actor.PID, r *replier, e *envelope) {
	r.next(p.sys, &e.sender)
	e.env.Sender = &e.sender
	p.sys.Root.Send(pid, &e.env)
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
	e := &envelope{env: actor.MessageEnvelope{Message: msg}}
	if timeout < 0 {
		r := p.get()
		p.send(pid, r, e)
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
	p.send(pid, r, e)
	select {
	case res := <-r.ch:
		r.timer.Stop()
		p.put(r)
		if _, ok := res.(*actor.DeadLetterResponse); ok {
			return nil, actor.ErrDeadLetter
		}
		return res, nil
	case <-r.timer.C:
		res, ok := p.expire(r)
		if !ok {
			return nil, actor.ErrTimeout
		}
		if _, ok := res.(*actor.DeadLetterResponse); ok {
			return nil, actor.ErrDeadLetter
		}
		return res, nil
	}
}

// expire ends r's request when its timer has fired, and returns r to the
// pool: from then on it takes no answer to that request, which a late one
// (local, or from another node: remoting carries the RequestId back) finds
// in want and is dropped. An answer taken just as the timer fired (want
// already swapped) is in r.ch, or about to be (SendUserMessage sends it
// right after the swap, into an empty buffer): it is read, so that r.ch
// is empty for the next request, and returned with ok, as in time.
func (p *replies) expire(r *replier) (res any, ok bool) {
	if !r.want.CompareAndSwap(r.seq, 0) {
		res, ok = <-r.ch, true
	}
	p.put(r)
	return res, ok
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
// e is the request's envelope (its env.Message), to be sent as it is with
// its sender set to the replier's (send): the caller allocates it together
// with the message (a submission: submitRequest), one allocation instead
// of RequestWithCustomSender's two. withdraw gets the same sender, so the
// receiver can tell which submission to withdraw.
func (p *replies) requestWithdrawable(pid *actor.PID, e *envelope, timeout time.Duration, withdraw func(sender *actor.PID) any) (any, error) {
	r := p.get()
	r.arm(timeout)
	p.send(pid, r, e)
	var res any
	select {
	case res = <-r.ch:
		r.timer.Stop()
		p.put(r)
	case <-r.timer.C:
		// Sent as a request, so that a receiver that has gone answers
		// with a DeadLetterResponse instead of leaving us waiting.
		p.sys.Root.RequestWithCustomSender(pid, withdraw(&e.sender), &e.sender)
		var err error
		res, err = p.await(r.ch, nil)
		if err != nil {
			// The queue stopped: an answer may still come into r.ch.
			// Retire the replier rather than reuse it.
			p.sys.ProcessRegistry.Remove(r.pid)
			return nil, err
		}
		// A second message may still come (a dead letter for the
		// withdrawal), to this request's sender: want is 0 (or, once r
		// is reused, another request's), so r drops it.
		p.put(r)
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
