package queue

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/connectorhq/connector/messages"
)

// collector receives the replies of many requests sent at once (the
// statuses of a list): one process in the registry for all of them, where
// a RequestFuture per action registered and removed a process, built its
// id and armed a timer for each (about half the server's CPU of a list of
// 100). Replies come in any order; each is matched to its request by the
// token of its status.
//
// Each request has its own sender PID, the collector's with the request's
// position in the list plus one as its RequestId (as replies does for one
// request), and the collector takes only the first message sent to each
// (answered): a request answered twice (a handler that answers and then
// panics, answered again by its recovery or its tombstone) would otherwise
// count as two of its window's replies, leaving one of the window's
// actions unread: it was missing from the list, or counted as skipped by a
// CancelQueued.
type collector struct {
	pid      *actor.PID
	ch       chan any
	answered []atomic.Bool // by RequestId-1
}

func (c *collector) SendUserMessage(to *actor.PID, message any) {
	i := int(to.GetRequestId()) - 1
	if i < 0 || i >= len(c.answered) || !c.answered[i].CompareAndSwap(false, true) {
		return // a second answer, or not an answer to one of the requests
	}
	_, msg, _ := actor.UnwrapEnvelope(message)
	select {
	case c.ch <- msg:
	default: // cannot happen: one message per request, a window at a time
	}
}

func (c *collector) SendSystemMessage(*actor.PID, any) {}
func (c *collector) Stop(*actor.PID)                   {}

// askEach sends msg to the actor of every id, a window of requests in
// flight at once, and hands each reply to got in ids' order: nil for an
// action that is gone (removed by retention meanwhile: a dead letter) and
// for a reply that names no action (an error without a status), which the
// callers leave out or count as skipped, as they do error replies. A read
// ends with ErrTimeout when its timeout (askTimeout), counted from the
// start, has passed: the windows share it (each had a whole timeout of
// its own, so a list of 1000 could wait for a silent actor twice as
// long).
func (q *Queue) askEach(ctx context.Context, ids []string, msg any, got func(*messages.ActionReply)) error {
	const window = 512
	if len(ids) == 0 {
		return nil
	}
	timeout := q.askTimeout(ctx, msg)
	deadline := time.Now().Add(timeout)
	n := min(window, len(ids))
	c := &collector{ch: make(chan any, n), answered: make([]atomic.Bool, len(ids))}
	c.pid, _ = q.sys.ProcessRegistry.Add(c, "gather"+q.sys.ProcessRegistry.NextId())
	// Removed when done or given up: a late reply from another node then
	// goes to dead letters; a local one reaches the collector (its sender
	// shares the reference), which nobody reads any more.
	defer q.sys.ProcessRegistry.Remove(c.pid)
	at := make(map[uuid.UUID]int, n)
	out := make([]*messages.ActionReply, n)
	var timer *time.Timer
	for start := 0; start < len(ids); start += window {
		batch := ids[start:min(start+window, len(ids))]
		clear(at)
		clear(out)
		for i, id := range batch {
			if u, err := uuid.Parse(id); err == nil {
				at[u] = i
			}
		}
		var expired <-chan time.Time
		if timeout >= 0 {
			left := max(time.Until(deadline), time.Nanosecond)
			if timer == nil {
				timer = time.NewTimer(left)
				defer timer.Stop()
			} else {
				timer.Reset(left)
			}
			expired = timer.C
		}
		// New for every window: an actor may hold a sender after
		// answering.
		senders := make([]actor.PID, len(batch))
		for i, id := range batch {
			sender := &senders[i]
			sender.Address, sender.Id, sender.RequestId = c.pid.Address, c.pid.Id, uint32(start+i+1)
			c.pid.ShareRef(q.sys, sender)
			pid := q.taskPID(id)
			if _, ok := q.sys.ProcessRegistry.Get(pid); !ok {
				// No actor: a queued action whose actor is spawned on
				// demand (spawnAs), a tombstone, or one that is gone.
				// The QueueManager answers it (a read of a queued
				// action from its task's memory, spawning nothing:
				// lookupTombstone.listed) or forwards it.
				if u, err := uuid.Parse(id); err == nil {
					q.sys.Root.RequestWithCustomSender(q.pid, &lookupTombstone{id: u, msg: msg, listed: true}, sender)
					continue
				}
			}
			q.sys.Root.RequestWithCustomSender(pid, msg, sender)
		}
		for range batch {
			m, err := q.replies.await(c.ch, expired)
			if errors.Is(err, errStopped) {
				// What the queue had not answered it never will
				// (replies.stopped).
				return fmt.Errorf("%w: queue %s has stopped", messages.ErrShuttingDown, q.cfg.Name)
			} else if err != nil {
				return mapAskErr(err)
			}
			ar, ok := m.(*messages.ActionReply)
			if !ok || ar.Status == nil {
				continue // a dead letter, or an error that names no action
			}
			if _, u, err := messages.ParseToken(ar.Status.Token); err == nil {
				if i, ok := at[u]; ok {
					out[i] = ar
				}
			}
		}
		if timer != nil {
			timer.Stop()
		}
		for i := range batch {
			got(out[i])
		}
	}
	return nil
}
