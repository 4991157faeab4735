package queue

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// spawnAsk is a test actor that has its cluster manager spawn a task actor
// (cmanager.spawn) from its own context, as the cluster QueueManager does
// when it claims, adopts or queues an action.
type spawnAsk struct {
	m   *cmanager
	id  uuid.UUID
	st  *messages.ActionStatus
	err chan error
}

func (s *spawnAsk) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(string); ok {
		_, err := s.m.spawn(ctx, s.id, &messages.ActionSpec{FetchAction: "SYNCHRONIZE"}, s.st, 1)
		s.err <- err
	}
}

// TestClusterTaskAnswersARequestThatCameDuringItsSpawn: in cluster mode a
// request by token goes to the owner of record's task actor by name, and
// may reach it while the manager is spawning it: protoactor registers the
// actor's process before the mailbox's handlers and Started, and the
// manager gave the task its identity (taskInit) only after the spawn.
// Such a request, held by the suspended mailbox until Started, ran before
// taskInit on an uninitialised task: it panicked, the requester got no
// answer, and the supervisor made the action an Error tombstone (written
// to the shared store). The task now has its identity before protoactor
// registers it, as in process.
func TestClusterTaskAnswersARequestThatCameDuringItsSpawn(t *testing.T) {
	t.Parallel()
	sys := newBoxSystem(t)
	sh := &shared{repo: newTestRepo(), log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now, stopTimeout: time.Second}
	mem := &soloMember{id: "n1", addr: sys.Address(), lease: time.Second}
	m := newClusterManager(Config{Name: "fetch", MaximumThreads: 1}, sh, sys.Root, nil, mem, "queue-fetch")

	id := uuid.New()
	token := messages.NewToken("127.0.0.1", 7000, "FETCH", id)
	st := &messages.ActionStatus{Token: token, State: messages.State_STATE_QUEUED, QueuedUnixMs: time.Now().UnixMilli()}
	early := actor.NewFuture(sys, 5*time.Second)
	// The request arrives after the registry insert, before the handlers:
	// it is in the mailbox when protoactor registers them.
	produce := taskMailbox(sys.Root)
	m.props.Configure(actor.WithMailbox(func() actor.Mailbox {
		b := produce()
		b.PostUserMessage(&actor.MessageEnvelope{Message: &messages.GetActionStatus{}, Sender: early.PID()})
		return b
	}))
	failed := make(chan any, 1)
	s := &spawnAsk{m: m, id: id, st: st, err: make(chan error, 1)}
	parent, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return s },
		actor.WithSupervisor(failWatch(failed))), "queue-fetch")
	require.NoError(t, err)
	sys.Root.Send(parent, "spawn")
	require.NoError(t, <-s.err)

	res, err := early.Result()
	require.NoError(t, err, "the request that came during the spawn is answered")
	r, ok := res.(*messages.ActionReply)
	require.True(t, ok, "reply %T", res)
	require.Equal(t, messages.ErrorCode_ERROR_CODE_NONE, r.Code, r.Message)
	require.Equal(t, token, r.Status.GetToken())
	require.Equal(t, messages.State_STATE_QUEUED, r.Status.GetState())
	select {
	case reason := <-failed:
		t.Fatalf("the task actor failed: %v", reason)
	default:
	}
}

// failWatch is a supervisor strategy that stops a failed child and says why.
type failWatch chan any

func (f failWatch) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason any, _ any) {
	sup.StopChildren(child)
	select {
	case f <- reason:
	default:
	}
}
