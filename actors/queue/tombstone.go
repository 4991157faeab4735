package queue

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/connectorhq/connector/messages"
)

// HandleFailure is the supervisor backstop for a task actor that failed
// outside its own recovery (task.Receive): never restart it (that would come back
// with fresh, wrong state); stop it, and record it (as a message to self,
// handled like any other) as an Error tombstone, so its token still answers.
func (m *manager) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason any, _ any) {
	sup.StopChildren(child)
	if m.self != nil {
		m.root.Send(m.self, &childFailed{pid: child, reason: fmt.Sprint(reason)})
	}
}

func (m *manager) childFailed(ctx actor.Context, msg *childFailed) {
	e := m.entries[taskActorID(msg.pid)]
	if e == nil || e.pid == nil || e.pid.Id != msg.pid.Id || e.crashed() != "" {
		return
	}
	m.crash(e, msg.reason)
	m.retain(ctx)
	m.dispatch(ctx)
}

// crash makes e a tombstone: its actor failed (or could not be spawned,
// actorOf) for reason. An action that had not ended ends in Error.
func (m *manager) crash(e *entry, reason string) {
	e.more().crash = reason
	m.sh.log.Error("task actor failed; keeping a tombstone", "id", e.id, "reason", reason)
	if e.slot {
		// Its worker, if any, reports to a stopped actor: release the
		// thread now rather than never.
		e.slot = false
		m.running--
		m.freeThread(e.id)
		m.unhold(e)
	}
	st := m.tombstoneStatus(e)
	if !messages.Terminal(e.state) {
		if e.waiting() {
			m.nwait--
		}
		m.unqueue(e)
		m.rekey(e, messages.State_STATE_ERROR, e.priority, e.startedMs, m.sh.now().UnixMilli())
		st = m.tombstoneStatus(e)
		m.ended = append(m.ended, e)
		m.nended++
		if !e.endSeen {
			e.endSeen = true
			m.cfg.Observer.Ended(e.spec, st)
			m.logEnd(e.spec, st)
		}
	}
	m.persist(e, st)
}

// tombstone answers a request by token that found no actor: it is
// forwarded to the action's actor, which is spawned now if the action is
// queued and had none yet (spawnAs); a tombstone answers with its status.
// A list's read (msg.listed) of a queued action without an actor is
// answered from its task's memory, which the QueueManager owns until it
// spawns the actor, and spawns nothing (see lookupTombstone).
func (m *manager) tombstone(ctx actor.Context, msg *lookupTombstone) {
	id := msg.id
	e := m.entries[id]
	if e == nil {
		ctx.Respond(&messages.ActionReply{Code: messages.ErrorCode_ERROR_CODE_UNKNOWN_TOKEN, Message: "no action has this token"})
		return
	}
	if msg.listed && e.pid == nil && e.crashed() == "" {
		if r := taskOf(e).unspawnedReply(msg.msg); r != nil {
			ctx.Respond(r)
			return
		}
	}
	if pid := m.actorOf(ctx, e); pid != nil {
		ctx.RequestWithCustomSender(pid, msg.msg, ctx.Sender())
		return
	}
	if e.crashed() == "" { // the QueueManager is stopping
		ctx.Respond(&messages.ActionReply{Code: messages.ErrorCode_ERROR_CODE_SHUTTING_DOWN, Message: "the queue is stopping"})
		return
	}
	ctx.Respond(&messages.ActionReply{Status: m.tombstoneStatus(e)})
}

func (m *manager) tombstoneStatus(e *entry) *messages.ActionStatus {
	return &messages.ActionStatus{
		Token: messages.NewToken(m.cfg.TokenHost, m.cfg.TokenPort, m.upper, e.id), State: e.state,
		Priority: e.priority, QueuedUnixMs: e.queuedMs, StartedUnixMs: e.startedMs, EndedUnixMs: e.endedMs,
		FetchAction: e.spec.FetchAction, Error: "task actor failed: " + e.crashed(), Seq: e.seq,
	}
}
