package queue

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store/pgstore"
)

// escapeRecovery is a test message whose handling panics outside
// task.Receive's recovery, as a failure the task cannot catch would:
// protoactor calls an AutoRespond message's GetAutoResponse after the
// actor's Receive (actorContext.defaultReceive), so the panic reaches the
// mailbox, which escalates it to the supervisor (HandleFailure). It closes
// entered, then waits for hold, so that requests can queue behind it.
type escapeRecovery struct{ entered, hold chan struct{} }

func (e *escapeRecovery) GetAutoResponse(actor.Context) any {
	close(e.entered)
	<-e.hold
	panic("injected failure outside task.Receive")
}

// failWithQueued makes the task actor at pid fail outside its recovery,
// handling a request, while the requests msgs wait in its mailbox, and
// returns the futures of the failing request and of msgs.
func failWithQueued(t *testing.T, sys *actor.ActorSystem, pid *actor.PID, msgs []any) (failing *actor.Future, futures []*actor.Future) {
	t.Helper()
	esc := &escapeRecovery{entered: make(chan struct{}), hold: make(chan struct{})}
	sent := make(chan *actor.Future, 1)
	go func() { sent <- sys.Root.RequestFuture(pid, esc, 30*time.Second) }() // handled on this goroutine, which it holds
	select {
	case <-esc.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the injected message never reached the task actor")
	}
	// The actor is busy: each request waits in its mailbox.
	futures = make([]*actor.Future, len(msgs))
	for i, m := range msgs {
		futures[i] = sys.Root.RequestFuture(pid, m, 30*time.Second)
	}
	close(esc.hold)
	return <-sent, futures
}

// requireFailingAnswered checks the answer to the request whose handling
// failed: as a tombstone answers a request other than a read (it got no
// answer: its requester waited until its timeout).
func requireFailingAnswered(t *testing.T, tok string, f *actor.Future) {
	t.Helper()
	res, err := f.Result()
	require.NoError(t, err, "the failing request was answered")
	r, ok := res.(*messages.ActionReply)
	require.True(t, ok, "reply %T", res)
	require.Equal(t, tok, r.Status.GetToken())
	require.Equal(t, messages.State_STATE_ERROR, r.Status.GetState())
	require.Contains(t, r.Status.GetError(), "task actor failed: injected failure outside task.Receive")
	require.True(t, errors.Is(messages.Err(r.Code, r.Message), messages.ErrActionEnded), "%v %s", r.Code, r.Message)
}

// heldRequests are the requests failWithQueued queues: reads first.
var heldRequests = []any{
	&messages.GetActionStatus{}, &messages.GetProgress{},
	&messages.StopAction{}, &messages.CancelAction{}, &messages.ChangePriority{Priority: 3},
	&messages.PauseAction{}, &messages.GetActionParameters{}, &messages.DuplicateAction{},
}

// requireTombstoneAnswers checks the answers to heldRequests: the reads
// get the tombstone's status, the others are refused as for an ended
// action, with it; none is dropped (a future that times out).
func requireTombstoneAnswers(t *testing.T, tok string, futures []*actor.Future) {
	t.Helper()
	for i, f := range futures {
		res, err := f.Result()
		require.NoError(t, err, "request %d (%T) was answered", i, heldRequests[i])
		r, ok := res.(*messages.ActionReply)
		require.True(t, ok, "reply %T", res)
		require.Equal(t, tok, r.Status.GetToken())
		require.Equal(t, messages.State_STATE_ERROR, r.Status.GetState())
		require.Contains(t, r.Status.GetError(), "task actor failed: injected failure outside task.Receive")
		if i < 2 {
			require.Equal(t, messages.ErrorCode_ERROR_CODE_NONE, r.Code, r.Message)
			if i == 1 {
				require.Equal(t, "ended", r.Progress.GetStage())
			}
		} else {
			require.True(t, errors.Is(messages.Err(r.Code, r.Message), messages.ErrActionEnded), "%T: %v %s", heldRequests[i], r.Code, r.Message)
		}
	}
}

// TestFailedTaskActorAnswersWhatItsMailboxHeld: a task actor stopped by its
// supervisor after a failure outside task.Receive's recovery answers, through
// the QueueManager's tombstone, the request whose handling failed and the
// requests that waited in its mailbox; they were dropped with the mailbox
// (a change waited until the queue stopped, a read timed out), and the
// failing one got no answer. The action is then an Error tombstone:
// requests by token get its status (changes are refused as for an ended
// action), and lists show it as Error (docs/protocol.md, GetStatus).
func TestFailedTaskActorAnswersWhatItsMailboxHeld(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, func(c *Config) {
		c.MaximumThreads = 1
		c.AskTimeout = time.Minute // a dropped read would wait this long
		c.ListEntry = func(dst []byte, st *messages.ActionStatus) []byte { return append(dst, st.Token...) }
	})
	tok, done, id := b.pausedPair(t)
	pid := b.q.taskPIDOf(id)
	_, ok := b.sys.ProcessRegistry.Get(pid)
	require.True(t, ok)

	failing, held := failWithQueued(t, b.sys, pid, heldRequests)
	requireFailingAnswered(t, tok, failing)
	requireTombstoneAnswers(t, tok, held)

	// By token.
	st, err := b.q.Status(ctx, tok)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_ERROR, st.State)
	pr, err := b.q.Progress(ctx, tok)
	require.NoError(t, err)
	require.Equal(t, "ended", pr.Progress.GetStage())
	r, err := b.q.Stop(ctx, tok)
	require.ErrorIs(t, err, messages.ErrActionEnded)
	require.Equal(t, messages.State_STATE_ERROR, r.Status.GetState())

	// Lists show it as Error, as GetStatus by token does.
	qs, err := b.q.QueueStatus(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, qs.Error)
	errOnly := &messages.ListActions{States: []messages.State{messages.State_STATE_ERROR}}
	list, err := b.q.List(ctx, errOnly)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, tok, list[0].Token)
	require.Contains(t, list[0].Error, "task actor failed")
	entries, err := b.q.ListEntries(ctx, errOnly)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Empty(t, entries[0].Encoded, "a tombstone has no list entry: it is asked")
	require.Equal(t, tok, entries[0].Status.GetToken())
	require.Equal(t, messages.State_STATE_ERROR, entries[0].Status.GetState())
	all, err := b.q.List(ctx, &messages.ListActions{})
	require.NoError(t, err)
	require.Len(t, all, 2)

	// The queue goes on.
	_, err = b.q.Resume(ctx)
	require.NoError(t, err)
	b.waitState(t, done, messages.State_STATE_FINISHED)
}

// TestClusterFailedTaskActorAnswersWhatItsMailboxHeld: the same in cluster
// mode, where the task actor of a running action fails: the requests its
// mailbox held are answered by the node's tombstone, the row is written as
// Error, and the cluster's list shows it so.
func TestClusterFailedTaskActorAnswersWhatItsMailboxHeld(t *testing.T) {
	pg := pgtest.StartT(t, pgtest.Options{})
	ctx := context.Background()
	db, err := pgstore.Open(ctx, pgstore.Config{URL: pg.DatabaseT(t), Node: "n1"})
	require.NoError(t, err)
	q, _, mem := startSoloCluster(t, db)

	tok, err := q.Submit(ctx, &messages.ActionSpec{FetchAction: "SYNCHRONIZE",
		Params: messages.Params{{Name: "Mode", Value: "untilstop"}}})
	require.NoError(t, err)
	_, id, err := messages.ParseToken(tok)
	require.NoError(t, err)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		st, err := q.Status(ctx, tok)
		if assert.NoError(ct, err) {
			assert.Equal(ct, messages.State_STATE_PROCESSING, st.State)
		}
	}, 30*time.Second, time.Millisecond)

	failing, held := failWithQueued(t, q.sys, q.taskPID(mem.Addr(), id.String()), heldRequests)
	requireFailingAnswered(t, tok, failing)
	requireTombstoneAnswers(t, tok, held)

	st, err := q.Status(ctx, tok)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_ERROR, st.State)
	_, err = q.Cancel(ctx, tok)
	require.ErrorIs(t, err, messages.ErrActionEnded)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		row, ok, err := db.Action(ctx, "fetch", id.String())
		if assert.NoError(ct, err) && assert.True(ct, ok) {
			assert.Equal(ct, messages.State_STATE_ERROR, row.Record.Status.State)
		}
	}, 30*time.Second, time.Millisecond)
	list, err := q.List(ctx, &messages.ListActions{States: []messages.State{messages.State_STATE_ERROR}})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, tok, list[0].Token)
	require.Contains(t, list[0].Error, "task actor failed")
}

// answerThenPanic is a test read whose handling answers and then panics
// outside task.Receive's recovery (protoactor calls GetAutoResponse after
// the actor's Receive): the tombstone then answers its requester a second
// time (answerFailing).
type answerThenPanic struct{ tok string }

func (a *answerThenPanic) GetAutoResponse(ctx actor.Context) any {
	ctx.Respond(&messages.ActionReply{Status: &messages.ActionStatus{Token: a.tok}})
	panic("injected failure after answering")
}

// TestAnswerAfterPanicNeverReachesTheNextRequest: a task actor that
// answers a request and then fails has the request answered twice (by the
// tombstone, answerFailing; by the recovery, task.panicked, for a panic
// inside Receive). The second answer comes after the first request gave
// its pooled reply process back; the next request that reuses it must get
// its own answer, not that one (replies: a client got another action's
// reply).
func TestAnswerAfterPanicNeverReachesTheNextRequest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, func(c *Config) { c.MaximumThreads = 1 })
	b.q.replies.free = make(chan *replier, 1) // a pool of one: every request reuses the same replier
	tok, other, id := b.pausedPair(t)

	// The QueueManager is held busy, so that the second answer (it sends
	// it) waits until the first request has returned its replier: the
	// task actor handles the request on this goroutine (taskBox.invokeOne).
	entered, release := make(chan struct{}), make(chan struct{})
	b.sys.Root.Send(b.q.pid, &inspect{fn: func(*manager) { close(entered); <-release }})
	<-entered
	r, err := b.q.request(ctx, tok, &answerThenPanic{tok: tok}) // a read: its replier goes back to the pool
	require.NoError(t, err)
	require.Equal(t, tok, r.Status.GetToken())
	close(release)

	// Wait until the QueueManager has sent the second answer: it records
	// the crash (HandleFailure, on its goroutine) before it sends itself
	// the lookupTombstone that answers, so a message sent once the crash
	// is seen is handled after that lookup.
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := b.sys.Root.RequestFuture(b.q.pid, &lookupTombstone{id: id, msg: &messages.GetActionStatus{}}, 10*time.Second).Result()
		require.NoError(t, err)
		if res.(*messages.ActionReply).Status.GetState() == messages.State_STATE_ERROR {
			break
		}
		require.True(t, time.Now().Before(deadline), "the task actor's failure was never recorded")
		runtime.Gosched()
	}
	_, err = b.sys.Root.RequestFuture(b.q.pid, &inspect{fn: func(*manager) {}}, 10*time.Second).Result()
	require.NoError(t, err)

	for range 3 {
		st, err := b.q.Status(ctx, other)
		require.NoError(t, err, "a reused replier answered with the failed action's second reply")
		require.Equal(t, other, st.GetToken(), "a reused replier answered with another action's reply")
	}
	st, err := b.q.Status(ctx, tok)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_ERROR, st.GetState())
	require.Contains(t, st.GetError(), "injected failure after answering")
}

// answerListed answers a list's request with the token of the action whose
// actor handles it (toks, by the actor's id); the actor of action fail
// answers and then panics outside task.Receive's recovery, so its
// tombstone answers the request a second time (answerFailing).
type answerListed struct {
	toks map[string]string
	fail string
}

func (a *answerListed) GetAutoResponse(ctx actor.Context) any {
	r := &messages.ActionReply{Status: &messages.ActionStatus{Token: a.toks[ctx.Self().Id]}}
	if r.Status.Token != a.fail {
		return r
	}
	ctx.Respond(r)
	panic("injected failure after answering")
}

// TestSecondAnswerToAListDropsNoAction: a list's request (askEach)
// answered twice counted as two of its window's replies, so one action was
// never read: it was missing from the list (a CancelQueued counted it as
// skipped). The first action's actor answers and fails on askEach's
// goroutine, which posts the failure to the QueueManager before it sends
// the next request; the QueueManager handles the failure (a system
// message) before any of the requests for the other actions (no actor yet:
// they go to the QueueManager), so the tombstone's second answer comes
// before the first window is complete, or with the last of its answers,
// and always before the second window's.
func TestSecondAnswerToAListDropsNoAction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, func(c *Config) { c.MaximumThreads = 1 })
	_, err := b.q.Pause(ctx)
	require.NoError(t, err)
	const n = 600 // two windows of askEach (512)
	toks := make([]string, n)
	ids := make([]string, n)
	byActor := make(map[string]string, n)
	for i := range toks {
		toks[i] = b.submit(t, "instant", 0)
		_, id, err := messages.ParseToken(toks[i])
		require.NoError(t, err)
		ids[i] = id.String()
		byActor[b.q.taskPIDOf(id).Id] = toks[i]
	}
	_, err = b.q.Status(ctx, toks[0]) // spawns its actor: it is asked directly
	require.NoError(t, err)

	var got []string
	err = b.q.askEach(ctx, ids, &answerListed{toks: byActor, fail: toks[0]}, func(ar *messages.ActionReply) {
		got = append(got, ar.GetStatus().GetToken())
	})
	require.NoError(t, err)
	require.Len(t, got, n)
	for i := range toks {
		require.Equal(t, toks[i], got[i], "action %d of %d: its answer was not read (a second answer took its place)", i, n)
	}
	st, err := b.q.Status(ctx, toks[0])
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_ERROR, st.GetState())
}

// pausedPair pauses the queue, submits two instant actions and spawns the
// first one's task actor (a Status by token does); it returns both tokens
// and the first one's id.
func (b *bundle) pausedPair(t *testing.T) (tok, other string, id uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	_, err := b.q.Pause(ctx)
	require.NoError(t, err)
	tok = b.submit(t, "instant", 0)
	other = b.submit(t, "instant", 0)
	_, id, err = messages.ParseToken(tok)
	require.NoError(t, err)
	_, err = b.q.Status(ctx, tok) // spawns its actor
	require.NoError(t, err)
	return tok, other, id
}
