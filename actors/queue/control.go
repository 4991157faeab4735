package queue

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/connectorhq/connector/messages"
)

// shutdownDone is sent once no worker runs and every change is on disk.
func (m *manager) checkShutdown(ctx actor.Context) {
	if m.shutting && m.shutWaiter != nil && m.running == 0 && !m.inflight && m.pending == nil && (len(m.retry) == 0 && !m.pausedRetry || m.gaveUp || m.storeFailed) {
		ctx.Send(m.shutWaiter, &shutdownDone{})
		m.shutWaiter = nil
	}
}

// pauseQueue pauses the queue: nothing more is dispatched, and every action
// that holds a thread is told to pause. Only those can be running: an
// action without a thread cannot start before the queue resumes. Which
// ones hold a thread is the QueueManager's own knowledge (e.slot), never
// a state reported by a task, which may be out of date. A dispatched action
// whose startTask is still in its mailbox gets this message after it, and
// pauses once started.
func (m *manager) pauseQueue(ctx actor.Context) {
	m.paused = true
	for _, e := range m.entries {
		if e.slot {
			ctx.Send(e.pid, pauseRunMsg)
		}
	}
}

// resumeQueue resumes the queue and every paused action. It tells every
// action that has not ended, not only those the QueueManager knows to be
// Paused: a pause may still be on its way (the queue's own pauseRun, or
// the action's own Pause whose report has not arrived yet), and the
// message, which arrives after it, undoes it. An action that is not
// paused ignores it.
func (m *manager) resumeQueue(ctx actor.Context) {
	m.paused = false
	for _, e := range m.entries {
		// One without an actor yet (spawnAs) has been sent nothing, so
		// has no pause to undo.
		if !messages.Terminal(e.state) && e.crashed() == "" && e.pid != nil {
			ctx.Send(e.pid, resumeRunMsg)
		}
	}
	m.dispatch(ctx)
}

// answerQueue answers a queue Pause or Resume: at once without a store;
// with one, once the pause flag is on disk (it is written with the next
// group commit, even when it did not change, so that the reply never comes
// before the state it reports is durable).
func (m *manager) answerQueue(ctx actor.Context) {
	if m.st == nil {
		ctx.Respond(m.queueStatus())
		return
	}
	m.pausedDirty = true
	if s := ctx.Sender(); s != nil {
		b := m.batchOf()
		b.queueReplies = append(b.queueReplies, s)
	}
}

func (m *manager) beginShutdown(ctx actor.Context) {
	m.shutting = true
	for _, e := range m.entries {
		if e.slot {
			ctx.Send(e.pid, &shutdownTask{})
		}
	}
	m.shutWaiter = ctx.Sender()
}
