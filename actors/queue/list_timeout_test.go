package queue

import (
	"context"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// silentTask stands in for a task actor in the process registry: it
// takes requests and answers them after delay (never, if delay is 0).
type silentTask struct {
	sys   *actor.ActorSystem
	delay time.Duration
}

func (s *silentTask) SendUserMessage(_ *actor.PID, message any) {
	if s.delay == 0 {
		return
	}
	_, msg, sender := actor.UnwrapEnvelope(message)
	if _, ok := msg.(*messages.GetActionStatus); !ok || sender == nil {
		return
	}
	time.AfterFunc(s.delay, func() {
		s.sys.Root.Send(sender, &messages.ActionReply{Code: messages.ErrorCode_ERROR_CODE_UNKNOWN_TOKEN})
	})
}
func (s *silentTask) SendSystemMessage(*actor.PID, any) {}
func (s *silentTask) Stop(*actor.PID)                   {}

// A list asks the actors of its actions many at a time, a window of 512
// requests in flight; each window waited up to the whole request timeout
// (AskTimeout), so a list of more than 512 actions with actors could
// wait for a slow or silent one (a node, or an actor, that does not
// answer) once per window: twice AskTimeout for a list of 1000, not
// once. A list now ends by the deadline it started with.
func TestAListWaitsForSilentActorsNoLongerThanItsTimeout(t *testing.T) {
	t.Parallel()
	// The bound below leaves half the timeout for the list's own work
	// (600 requests, under -race, on a loaded runner); the defect took
	// 1.9 times it. 4 s rather than 2 s gives that work 2 s.
	const timeout = 4 * time.Second
	ctx := context.Background()
	b := setup(t, func(c *Config) { c.AskTimeout = timeout })
	_, err := b.q.Pause(ctx)
	require.NoError(t, err)
	toks := make([]string, 600)
	for i := range toks {
		toks[i] = b.submit(t, "instant", 0)
		// Read by token: the action gets its actor, which lists ask.
		_, err := b.q.Status(ctx, toks[i])
		require.NoError(t, err)
	}
	// The actor of the first window's first action answers late (9/10 of
	// the timeout); the second window's first action's never answers.
	replace := func(tok string, delay time.Duration) {
		_, id, err := messages.ParseToken(tok)
		require.NoError(t, err)
		pid := b.q.taskPIDOf(id)
		b.sys.ProcessRegistry.Remove(pid)
		_, absent := b.sys.ProcessRegistry.Add(&silentTask{sys: b.sys, delay: delay}, pid.Id)
		require.True(t, absent)
	}
	replace(toks[0], timeout*9/10)
	replace(toks[512], 0)

	f := &messages.ListActions{States: []messages.State{messages.State_STATE_QUEUED}, Ascending: true}
	for name, list := range map[string]func() error{
		"List":        func() error { _, err := b.q.List(ctx, f); return err },
		"ListEntries": func() error { _, err := b.q.ListEntries(ctx, f); return err },
	} {
		start := time.Now()
		err := list()
		took := time.Since(start)
		require.ErrorIs(t, err, messages.ErrTimeout, name)
		require.Less(t, took, timeout*3/2, "%s waited %v with a timeout of %v", name, took, timeout)
	}
}
