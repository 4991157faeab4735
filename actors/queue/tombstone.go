package queue

import (
	"fmt"
	"runtime/debug"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/connectorhq/connector/internal/panics"
	"github.com/connectorhq/connector/messages"
)

// HandleFailure is the supervisor backstop for a task actor that failed
// outside its own recovery (task.Receive): never restart it (that would come back
// with fresh, wrong state); stop it, and keep an Error tombstone of it, so
// its token still answers. It runs on the QueueManager's goroutine (its
// mailbox's system messages), so it records the tombstone (failed) before
// it stops the actor: the requests the stopped actor's mailbox held come
// to the QueueManager (taskBox.orphan) and must find the tombstone, as
// must a request by token that finds no actor any more. Retention and
// dispatch, which want an actor.Context, follow as a message to self
// (childFailed), handled like any other. The request whose handling
// failed (message) is answered from the tombstone too (answerFailing).
func (m *manager) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason any, message any) {
	m.failed(child, fmt.Sprint(reason))
	sup.StopChildren(child)
	if m.self != nil {
		answerFailing(m.root, m.self, taskActorID(child), message)
		m.root.Send(m.self, &childFailed{pid: child})
	}
}

// answerFailing has the QueueManager self answer, from the tombstone of
// action id, the message whose handling made its task actor fail outside
// task.Receive's recovery, when it is a request (an envelope with a
// sender): it is sent to self as a lookupTombstone with the requester as
// its sender, as the requests the actor's mailbox held are (taskBox.orphan),
// and so gets the same answer (tombstoneReply: a read the Error status,
// anything else ErrActionEnded with it). It got none: its requester waited
// until its timeout (a change without one, until the queue stopped).
//
// A request whose handling escaped task.Receive's recovery was not
// answered in the usual case: the failure came after Receive (protoactor's
// AutoRespond, which no product message implements), in the recovery
// (panicked, which answers the sender last), or in the mailbox. Only a
// handler that answered (or handed its answer to the QueueManager,
// notifyReply) and then panicked, with its recovery panicking too, gets a
// second answer, as it would from the recovery alone, which answers the
// sender whatever the handler did. The requester then takes the first
// answer only: a pooled reply process drops a second one (replies), which
// it would otherwise have handed to its next request. Sent before
// childFailed, so that retention cannot drop the tombstone first.
func answerFailing(root *actor.RootContext, self *actor.PID, id uuid.UUID, message any) {
	env, ok := message.(*actor.MessageEnvelope)
	if !ok || env.Sender == nil {
		return
	}
	root.RequestWithCustomSender(self, &lookupTombstone{id: id, msg: env.Message}, env.Sender)
}

// failed makes the action of child a tombstone, if child is still its
// actor. A panic here is logged: it must not reach protoactor's
// supervisor of the QueueManager (managerPanic covers user messages only).
func (m *manager) failed(child *actor.PID, reason string) {
	defer func() {
		if r := recover(); r != nil {
			m.sh.log.Error("queue manager panicked recording a failed task actor", "panic", panics.Text(r), "stack", string(debug.Stack()))
		}
	}()
	e := m.entries[taskActorID(child)]
	if e == nil || e.pid == nil || e.pid.Id != child.Id || e.crashed() != "" {
		return
	}
	m.crash(e, reason)
}

func (m *manager) childFailed(ctx actor.Context, _ *childFailed) {
	m.retain(ctx)
	m.dispatch(ctx)
}

// crash makes e a tombstone: its actor failed (or could not be spawned,
// actorOf) for reason. An action that had not ended ends in Error.
func (m *manager) crash(e *entry, reason string) {
	// First, before anything that can panic (failed's recover may
	// swallow it): the entry is then a tombstone, never forwarded to.
	e.more().crash = reason
	m.sh.log.Error("task actor failed; keeping a tombstone", "id", e.id, "reason", reason)
	if e.slot {
		// Its worker, if any, reports to a stopped actor: release the
		// thread now rather than never.
		e.slot = false
		m.running--
		m.freeThread(e.id)
		m.unhold(e)
		if e.deferred {
			// Retention passed it while its worker ran and waited for
			// its SlotReleased, which will not come: it goes back in
			// line, as released would put it (childFailed's retain).
			e.deferred = false
			m.ndefer--
			m.ended = append(m.ended, e)
		}
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
			m.sh.ended(m.cfg.Observer, e.spec, st)
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
	ctx.Respond(tombstoneReply(msg.msg, m.tombstoneStatus(e)))
}

// tombstoneReply answers msg for a tombstone whose status is st, as a task
// actor answers for an action that has ended: GetActionStatus and
// GetProgress with its status (and an ended progress), every other request
// (a change, GetActionParameters) refused with ErrActionEnded and the
// status. Both QueueManagers use it.
func tombstoneReply(msg any, st *messages.ActionStatus) *messages.ActionReply {
	switch msg.(type) {
	case *messages.GetActionStatus:
		return &messages.ActionReply{Status: st}
	case *messages.GetProgress:
		return &messages.ActionReply{Status: st, Progress: &messages.Progress{Stage: "ended"}}
	}
	code, _ := messages.Code(messages.ErrActionEnded)
	return &messages.ActionReply{Status: st, Code: code,
		Message: "the action ended as " + messages.StatusName(st.State) + " (" + st.Error + ")"}
}

func (m *manager) tombstoneStatus(e *entry) *messages.ActionStatus {
	return &messages.ActionStatus{
		Token: messages.NewToken(m.cfg.TokenHost, m.cfg.TokenPort, m.upper, e.id), State: e.state,
		Priority: e.priority, QueuedUnixMs: e.queuedMs, StartedUnixMs: e.startedMs, EndedUnixMs: e.endedMs,
		FetchAction: e.spec.FetchAction, Error: "task actor failed: " + e.crashed(), Seq: e.seq,
	}
}
