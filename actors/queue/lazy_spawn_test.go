package queue

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// TestQueuedActionGetsItsActorOnDemand: a queued action's task actor is
// spawned only when something needs it (manager.spawnAs): a request by
// token, a list or CancelQueued asking it, its dispatch. Until then no
// actor is registered under its id, and every request still reaches it.
func TestQueuedActionGetsItsActorOnDemand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	_, err := b.q.Pause(ctx)
	require.NoError(t, err)
	hasActor := func(tok string) bool {
		t.Helper()
		_, id, err := messages.ParseToken(tok)
		require.NoError(t, err)
		_, ok := b.sys.ProcessRegistry.Get(b.q.taskPIDOf(id))
		return ok
	}
	toks := make([]string, 4)
	for i := range toks {
		toks[i] = b.submit(t, "instant", 0)
		require.False(t, hasActor(toks[i]), "a queued action has no actor before it is asked about")
	}

	// A request by token spawns it.
	st, err := b.q.Status(ctx, toks[0])
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_QUEUED, st.State)
	require.Equal(t, toks[0], st.Token)
	require.True(t, hasActor(toks[0]))
	require.False(t, hasActor(toks[1]))

	// A list asks every action it shows, with an actor or not.
	list, err := b.q.List(ctx, &messages.ListActions{States: []messages.State{messages.State_STATE_QUEUED}, MaxResults: 10})
	require.NoError(t, err)
	var listed []string
	for _, s := range list {
		listed = append(listed, s.Token)
	}
	require.ElementsMatch(t, toks, listed)

	// CancelQueued reaches actions that have no actor yet.
	more := []string{b.submit(t, "instant", 0), b.submit(t, "instant", 0)}
	require.False(t, hasActor(more[0]))
	res, err := b.q.CancelQueued(ctx, &messages.ListActions{}, false, 10)
	require.NoError(t, err)
	require.Equal(t, 6, res.Matched)
	require.Equal(t, 6, res.Cancelled)
	for _, tok := range append(toks, more...) {
		b.waitState(t, tok, messages.State_STATE_CANCELLED)
	}

	// Dispatch spawns the actor of an action nobody asked about.
	last := b.submit(t, "instant", 0)
	require.False(t, hasActor(last))
	_, err = b.q.Resume(ctx)
	require.NoError(t, err)
	b.waitState(t, last, messages.State_STATE_FINISHED)
}
