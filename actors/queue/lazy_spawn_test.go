package queue

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/messages"
)

// TestQueuedActionGetsItsActorOnDemand: a queued action's task actor is
// spawned only when something needs it (manager.spawnAs): a request by
// token, CancelQueued's Cancel, its dispatch; a list answers without it.
// Until then no actor is registered under its id, and every request still
// reaches it.
func TestQueuedActionGetsItsActorOnDemand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	_, err := b.q.Pause(ctx)
	require.NoError(t, err)
	hasActor := func(tok string) bool { return b.hasActor(t, tok) }
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

	// A list shows every action, with an actor or not, and spawns none.
	list, err := b.q.List(ctx, &messages.ListActions{States: []messages.State{messages.State_STATE_QUEUED}, MaxResults: 10})
	require.NoError(t, err)
	var listed []string
	for _, s := range list {
		listed = append(listed, s.Token)
	}
	require.ElementsMatch(t, toks, listed)
	require.False(t, hasActor(toks[1]), "a list spawns no actor")

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

// TestListsLeaveQueuedActionsWithoutActors: List, ListEntries (the XML
// list and the dashboard), ListParams and a dry-run CancelQueued answer
// for queued actions that have no task actor from their tasks' memory
// (task.unspawnedReply, manager.listEntries) and spawn none, so listing
// them again and again keeps the lazy spawn's saving; what they show is
// what the actor shows once spawned; and every QueueAction still works on
// them afterwards, each spawning the actor it needs.
func TestListsLeaveQueuedActionsWithoutActors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, func(c *Config) { c.MaximumThreads = 1 })
	_, err := b.q.Pause(ctx)
	require.NoError(t, err)
	hasActor := func(tok string) bool { return b.hasActor(t, tok) }
	const n = 12
	toks := make([]string, n)
	for i := range toks {
		toks[i] = b.submit(t, "block", int32(i%3))
	}
	noActors := func(when string) {
		t.Helper()
		for _, tok := range toks {
			require.False(t, hasActor(tok), "%s: %s has an actor", when, tok)
		}
	}
	queued := &messages.ListActions{States: []messages.State{messages.State_STATE_QUEUED}}
	var before []*messages.ActionStatus
	for range 3 { // a dashboard refreshing its page
		list, err := b.q.List(ctx, queued)
		require.NoError(t, err)
		require.Len(t, list, n)
		before = list
		entries, err := b.q.ListEntries(ctx, queued)
		require.NoError(t, err)
		require.Len(t, entries, n)
		for i, e := range entries {
			require.Empty(t, e.Encoded)
			require.True(t, proto.Equal(list[i], e.Status), "ListEntries shows what List shows")
		}
		params, err := b.q.ListParams(ctx, 0, 0)
		require.NoError(t, err)
		require.Len(t, params, n)
		for _, p := range params {
			mode, _ := messages.Params(p.Params).Get("Mode")
			require.Equal(t, "block", mode)
		}
		res, err := b.q.CancelQueued(ctx, &messages.ListActions{}, true, n)
		require.NoError(t, err)
		require.Equal(t, n, res.Matched)
		require.Len(t, res.Actions, n)
		noActors("after the lists")
	}

	// What a list showed is what the actor, once spawned, answers.
	byTok := map[string]*messages.ActionStatus{}
	for _, s := range before {
		byTok[s.Token] = s
	}
	for _, tok := range toks {
		require.Equal(t, messages.State_STATE_QUEUED, byTok[tok].State)
	}
	st, err := b.q.Status(ctx, toks[0])
	require.NoError(t, err)
	require.True(t, proto.Equal(byTok[toks[0]], st), "list %v\nactor %v", byTok[toks[0]], st)
	require.True(t, hasActor(toks[0]), "a request by token spawns the actor")

	// Every QueueAction works on the listed actions.
	pr, err := b.q.Progress(ctx, toks[1])
	require.NoError(t, err)
	require.Equal(t, "queued", pr.Progress.GetStage())
	ap, err := b.q.ActionParameters(ctx, toks[2])
	require.NoError(t, err)
	mode, _ := messages.Params(ap.Params).Get("Mode")
	require.Equal(t, "block", mode)
	cp, err := b.q.ChangePriority(ctx, toks[3], 9)
	require.NoError(t, err)
	require.EqualValues(t, 9, cp.Status.Priority)
	pa, err := b.q.PauseAction(ctx, toks[4])
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_PAUSED, pa.Status.State)
	ra, err := b.q.ResumeAction(ctx, toks[4])
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_QUEUED, ra.Status.State)
	du, err := b.q.Duplicate(ctx, toks[5])
	require.NoError(t, err)
	require.NotEmpty(t, du.NewToken)
	ca, err := b.q.Cancel(ctx, toks[6])
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_CANCELLED, ca.Status.State)
	so, err := b.q.Stop(ctx, toks[7])
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_STOPPED, so.Status.State)
	res, err := b.q.CancelQueued(ctx, &messages.ListActions{}, false, 0)
	require.NoError(t, err)
	require.Equal(t, n-2+1, res.Matched, "the queued ones and the duplicate")
	require.Equal(t, res.Matched, res.Cancelled)

	// A listed action is still dispatched and runs.
	run := b.submit(t, "instant", 0)
	_, err = b.q.List(ctx, queued)
	require.NoError(t, err)
	require.False(t, hasActor(run))
	_, err = b.q.Resume(ctx)
	require.NoError(t, err)
	b.waitState(t, run, messages.State_STATE_FINISHED)
}

// hasActor says whether the action of tok has a task actor registered.
func (b *bundle) hasActor(t *testing.T, tok string) bool {
	t.Helper()
	_, id, err := messages.ParseToken(tok)
	require.NoError(t, err)
	_, ok := b.sys.ProcessRegistry.Get(b.q.taskPIDOf(id))
	return ok
}
