package queue

import (
	"container/heap"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/connectorhq/connector/messages"
)

// dispatch starts waiting actions while threads are free, in priority
// order, passing over (parking) those whose task is held by another.
func (m *manager) dispatch(ctx actor.Context) {
	for !m.paused && !m.shutting && m.running < m.cfg.MaximumThreads && m.waiting.Len() > 0 {
		// Start waits while this progresses (waitRestored): after a
		// restore, every queued action of a task held by another is
		// parked here in one go.
		m.starting.Add(1)
		if m.startCut() {
			return // stopping during the start: see restoreActions
		}
		e := heap.Pop(&m.waiting).(*entry)
		if t := m.busyTask(e); t != "" {
			m.park(e, t)
			continue
		}
		pid := m.actorOf(ctx, e) // a queued action's actor is spawned now (spawnAs)
		if pid == nil {
			continue // it could not be spawned: e is a tombstone now (crash)
		}
		m.hold(e)
		e.slot = true
		m.running++
		m.takeThread(e)
		ctx.Send(pid, startMsg)
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

func (m *manager) changed(ctx actor.Context, msg *messages.TaskChanged) {
	id, _ := actionID(msg.Id)
	e := m.entries[id]
	if e == nil || e.crashed() != "" {
		for _, to := range msg.ReplyTo {
			ctx.Send(to, &messages.ActionReply{Status: msg.Status})
		}
		return
	}
	m.persist(e, msg.Status)
	if len(msg.ReplyTo) > 0 {
		reply := &messages.ActionReply{Status: msg.Status}
		for _, to := range msg.ReplyTo {
			if m.st != nil {
				b := m.batchOf()
				b.replies = append(b.replies, pendingReply{to: to, reply: reply})
			} else {
				ctx.Send(to, reply)
			}
		}
	}
	s := msg.Status
	wasTerminal, wasWaiting := messages.Terminal(e.state), e.waiting()
	m.observeChange(e, e.state, s, msg.Live)
	prioChanged := e.priority != s.Priority
	m.rekey(e, s.State, s.Priority, s.StartedUnixMs, s.EndedUnixMs)
	e.live = msg.Live
	// The list entry of an ended action with no worker (task.changed);
	// any other report leaves it without one.
	if len(msg.ListEntry) > 0 && messages.Terminal(s.State) && !msg.Live {
		e.listed = string(msg.ListEntry)
	} else {
		e.listed = ""
	}
	if w := e.waiting(); w != wasWaiting {
		if w {
			m.nwait++
		} else {
			m.nwait--
		}
	}
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

func (m *manager) released(ctx actor.Context, msg *messages.SlotReleased) {
	id, _ := actionID(msg.Id)
	e := m.entries[id]
	if e != nil {
		if !e.slot {
			return // already released (a task actor that failed)
		}
		e.slot = false
		m.unhold(e)
	}
	m.running--
	m.freeThread(id)
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
