package queue

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store/pgstore"
	"github.com/connectorhq/connector/transport/aci"
)

// submitMode submits a Synchronize of fetchtest's mode at prio.
func submitMode(t *testing.T, q *ClusterQueue, mode string, prio int32) string {
	t.Helper()
	tok, err := q.Submit(context.Background(), &messages.ActionSpec{FetchAction: "SYNCHRONIZE", Priority: prio,
		Params: messages.Params{{Name: "Mode", Value: mode}}})
	require.NoError(t, err)
	return tok
}

// submitRunning submits a Synchronize with params (Mode=block keeps it
// running until its repository releases it) and waits until it runs; it
// returns the action's token and id.
func submitRunning(t *testing.T, q *ClusterQueue, params messages.Params) (string, uuid.UUID) {
	t.Helper()
	tok, err := q.Submit(context.Background(), &messages.ActionSpec{FetchAction: "SYNCHRONIZE", Params: params})
	require.NoError(t, err)
	_, id, err := messages.ParseToken(tok)
	require.NoError(t, err)
	waitState(t, q, tok, messages.State_STATE_PROCESSING)
	return tok, id
}

// waitState waits until the action of tok is in state want, and returns
// its status.
func waitState(t *testing.T, q *ClusterQueue, tok string, want messages.State) *messages.ActionStatus {
	t.Helper()
	var got *messages.ActionStatus
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		st, err := q.Status(context.Background(), tok)
		if assert.NoError(ct, err) {
			assert.Equal(ct, want, st.State)
			got = st
		}
	}, 30*time.Second, 10*time.Millisecond)
	return got
}

// A queued action whose record in the shared store is damaged (it does
// not decode) is claimed like any other: the claim is committed before
// its rows are read. It used to fail the whole group commit, so the node
// started nothing it claimed, the action stayed Processing in the store
// with no worker and Queued on the node that held it (every
// reconciliation that took it again failed the same way), and the next
// queued action waited for the idle poll with a thread free. Now the
// node ends it as Error, saying its record is damaged, at once, and runs
// the next one.
func TestClusterDamagedClaimEndsAsError(t *testing.T) {
	db, conn := soloStore(t)
	ctx := context.Background()
	q, repo, _ := startSoloCluster(t, db)

	// Both threads busy; x (first in line) and y queued behind them.
	busy := []string{submitMode(t, q, "block", 0), submitMode(t, q, "block", 0)}
	for _, tok := range busy {
		waitState(t, q, tok, messages.State_STATE_PROCESSING)
	}
	x, y := submitMode(t, q, "instant", 1), submitMode(t, q, "instant", 0)
	waitState(t, q, x, messages.State_STATE_QUEUED)
	_, uid, err := messages.ParseToken(x)
	require.NoError(t, err)
	tag, err := conn.Exec(ctx, `UPDATE connector_actions SET record = '\xffffffff'::bytea WHERE id = $1`, []byte(uid.String()))
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())

	// A thread frees: the claim takes x, whose record is damaged.
	repo.Release(busy[0])
	waitState(t, q, busy[0], messages.State_STATE_FINISHED)
	st := waitState(t, q, x, messages.State_STATE_ERROR)
	// Ended (damagedRecord's words), not the view of a record that
	// cannot be read (which has the row's state, Processing).
	assert.Contains(t, st.Error, "record in the shared store is damaged and cannot be read, so the action is not run")
	assert.False(t, st.Running)
	waitState(t, q, y, messages.State_STATE_FINISHED)
	row, ok, err := db.Action(ctx, "fetch", uid.String())
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, row.Damaged, "the record in the store decodes again")
	assert.Equal(t, messages.State_STATE_ERROR, row.Record.Status.State)
	assert.Equal(t, "n1", row.Owner)
}

// The same for a damaged action that this node never held (submitted
// elsewhere): the claim takes it, and it ends as Error under a task actor
// of its own, which answers for it by its token. The node that held it is
// told it moved (ActionMoved), as for any claim, so that it retires its
// task actor at once instead of answering Queued until its own
// reconciliation (review15, F10). Here that node is a registered row
// whose address no actor system serves: the notice ends as a dead letter,
// which the test watches for (published when it is sent, in the claim's
// handling, before the reconciliation that ends the action as Error).
func TestClusterDamagedClaimOfAnotherNodesAction(t *testing.T) {
	db, conn := soloStore(t)
	ctx := context.Background()
	q, repo, _ := startSoloCluster(t, db)

	// Both threads busy, so that no claim (this node's idle poll) takes
	// the other node's action before it is damaged: a CI run saw it
	// claimed and finished in between.
	for _, tok := range []string{submitMode(t, q, "block", 0), submitMode(t, q, "block", 0)} {
		waitState(t, q, tok, messages.State_STATE_PROCESSING)
	}

	// Queued by another node (a live member: its actions are not taken
	// over), first in line; then damaged.
	require.NoError(t, db.RegisterNode(ctx, "n2", "n2:1", 2))
	id := uuid.Must(uuid.NewV7())
	tok := messages.NewToken("elsewhere", 7000, "fetch", id)
	_, err := db.Submit(ctx, "fetch", "n2", "n2:1", []pgstore.NewAction{{Record: &messages.StoredAction{Id: id.String(),
		Spec:   &messages.ActionSpec{FetchAction: "SYNCHRONIZE", Priority: 5, Params: messages.Params{{Name: "Mode", Value: "instant"}}},
		Status: &messages.ActionStatus{Token: tok, State: messages.State_STATE_QUEUED, Priority: 5, QueuedUnixMs: time.Now().UnixMilli()}}}}, 100)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `UPDATE connector_actions SET record = '\xffffffff'::bytea WHERE id = $1`, []byte(id.String()))
	require.NoError(t, err)

	var moved atomic.Bool
	sub := q.sys.EventStream.Subscribe(func(evt any) {
		if dl, ok := evt.(*actor.DeadLetterEvent); ok && dl.PID.GetAddress() == "n2:1" {
			if m, ok := dl.Message.(*messages.ActionMoved); ok && bytes.Equal(m.Id, id[:]) {
				moved.Store(true)
			}
		}
	})
	t.Cleanup(func() { q.sys.EventStream.Unsubscribe(sub) })

	// A submission here, and a thread freed, make the node claim: the
	// damaged one first.
	mine := submitMode(t, q, "instant", 0)
	repo.ReleaseAll()
	// (Until the claim, its row's view reads Error too, with the view's
	// text: what the claim wrote says "so the action is not run".)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		got, err := q.Status(ctx, tok)
		if assert.NoError(ct, err) {
			assert.Equal(ct, messages.State_STATE_ERROR, got.State)
			assert.Contains(ct, got.Error, "record in the shared store is damaged and cannot be read, so the action is not run")
		}
	}, 30*time.Second, 10*time.Millisecond)
	assert.True(t, moved.Load(), "the node that held the action was not told it moved")
	waitState(t, q, mine, messages.State_STATE_FINISHED)
}

// A damaged row that no node takes (an ended action is never claimed nor
// taken over) used to fail every GetStatus list that included it, on
// every node, until retention removed it (ListRows decoded every row).
// Now the list shows it: answered by its owner's task actor when it has
// one (its state is in memory), else from its row's columns with its
// token and an error saying its record cannot be read. QueueStatus counts
// it from its row's columns, as before.
func TestClusterDamagedRowIsListed(t *testing.T) {
	db, conn := soloStore(t)
	ctx := context.Background()
	q, _, _ := startSoloCluster(t, db)

	// Two actions of this node, finished.
	mine := []string{submitMode(t, q, "instant", 0), submitMode(t, q, "instant", 0)}
	for _, tok := range mine {
		waitState(t, q, tok, messages.State_STATE_FINISHED)
	}
	// One that a node which has left (n2: registered in the store, not a
	// member here) finished, and one of this node's for which it has no
	// task actor (a live owner's dead letter), both damaged.
	require.NoError(t, db.RegisterNode(ctx, "n2", "n2:1", 2))
	// (Written as they are, in one statement: a row submitted queued
	// could be claimed by this node before it is ended.)
	// Queued an hour ago, ended a minute ago (whole seconds, as shown):
	// the entry's times are the row's.
	queuedMs := (time.Now().Unix() - 3600) * 1000
	endedMs := queuedMs + 3540*1000
	ended := func(node, addr string) uuid.UUID {
		t.Helper()
		id := uuid.Must(uuid.NewV7())
		_, err := conn.Exec(ctx, `INSERT INTO connector_actions (queue, id, seq, state, queued_ms, ended_ms, owner, owner_addr, epoch, record)
			VALUES ($1, $2, nextval('connector_action_seq'), $3, $4, $5, $6, $7, 1, '\xffffffff'::bytea)`,
			[]byte("fetch"), []byte(id.String()), int16(messages.State_STATE_FINISHED), queuedMs, endedMs, node, addr)
		require.NoError(t, err)
		return id
	}
	id, orphan := ended("n2", "n2:1"), ended("n1", q.mem.Addr())
	// Both ends are in the store (the actor says Finished a little
	// before): no later write of mine[0] replaces its damage, and the
	// Finished filter below, which selects on the rows' state, finds
	// mine[1] (seen missing once in CI when only mine[0] was waited for).
	for _, tok := range mine {
		_, id, err := messages.ParseToken(tok)
		require.NoError(t, err)
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			row, ok, err := db.Action(ctx, "fetch", id.String())
			if assert.NoError(ct, err) && assert.True(ct, ok) {
				assert.Equal(ct, messages.State_STATE_FINISHED, row.Record.Status.State)
			}
		}, 30*time.Second, 10*time.Millisecond)
	}
	_, uid, err := messages.ParseToken(mine[0])
	require.NoError(t, err)
	for _, d := range []uuid.UUID{uid} {
		tag, err := conn.Exec(ctx, `UPDATE connector_actions SET record = '\xffffffff'::bytea WHERE id = $1`, []byte(d.String()))
		require.NoError(t, err)
		require.EqualValues(t, 1, tag.RowsAffected())
	}

	list, err := q.List(ctx, &messages.ListActions{Ascending: true})
	require.NoError(t, err, "a damaged row does not fail the list")
	require.Len(t, list, 4)
	byToken := map[string]*messages.ActionStatus{}
	for _, st := range list {
		byToken[st.Token] = st
	}
	for _, tok := range mine {
		require.Contains(t, byToken, tok, "answered by its task actor")
		assert.Equal(t, messages.State_STATE_FINISHED, byToken[tok].State)
	}
	now := time.Now().UTC()
	for _, d := range []uuid.UUID{id, orphan} {
		tok := messages.NewToken("127.0.0.1", 7000, "FETCH", d)
		require.Contains(t, byToken, tok, "shown from its row, with the token made from its id")
		st := byToken[tok]
		assert.Equal(t, messages.State_STATE_ERROR, st.State, "shown as Error, so that its error is sent")
		assert.Contains(t, st.Error, "record in the shared store is damaged and cannot be read")
		assert.Equal(t, queuedMs, st.QueuedUnixMs)
		assert.Equal(t, endedMs, st.EndedUnixMs)
		assertDamagedOnTheWire(t, st, now, tok, queuedMs, endedMs)
	}
	// The list's filter selects on the row's state (Finished), whatever
	// the entry shows.
	fin, err := q.List(ctx, &messages.ListActions{States: []messages.State{messages.State_STATE_FINISHED}})
	require.NoError(t, err)
	assert.Len(t, fin, 4, "the damaged rows are Finished rows")
	errs, err := q.List(ctx, &messages.ListActions{States: []messages.State{messages.State_STATE_ERROR}})
	require.NoError(t, err)
	assert.Empty(t, errs, "no row is in the Error state")

	// By its token, the row read alone is the list's entry (it used to
	// fail: "undecodable action"), whether its owner has left or has no
	// actor for it; a change is refused, saying why.
	for _, d := range []uuid.UUID{id, orphan} {
		tok := messages.NewToken("127.0.0.1", 7000, "FETCH", d)
		st, err := q.Status(ctx, tok)
		require.NoError(t, err, "GetStatus by token of a damaged row no node holds")
		assert.True(t, proto.Equal(byToken[tok], st), "the list's entry: %v; by token: %v", byToken[tok], st)
		_, err = q.PauseAction(ctx, tok)
		require.ErrorIs(t, err, messages.ErrStore)
		assert.Contains(t, err.Error(), "cannot be changed")
		assert.Contains(t, err.Error(), "undecodable action")

		// Asked with the token another node made when it accepted the
		// action (the submitter's), the reply names that token, not one
		// made from this node's host and port; and so does Progress.
		other := messages.NewToken("elsewhere", 7001, "FETCH", d)
		st, err = q.Status(ctx, other)
		require.NoError(t, err, "GetStatus by the submitter's token")
		assert.Equal(t, other, st.Token, "answered with the token asked")
		assert.Equal(t, messages.State_STATE_ERROR, st.State)
		assertDamagedOnTheWire(t, st, now, other, queuedMs, endedMs)
		pr, err := q.Progress(ctx, other)
		require.NoError(t, err, "Progress by the submitter's token")
		assert.Equal(t, other, pr.Status.GetToken())
	}

	qs, err := q.QueueStatus(ctx)
	require.NoError(t, err)
	require.NotNil(t, qs)
}

// assertDamagedOnTheWire encodes st, a damaged row's entry, as an ACI
// reply does (both encoders: the fast one the server sends, and the
// tree) and requires its error text, the row's times and tok.
func assertDamagedOnTheWire(t *testing.T, st *messages.ActionStatus, now time.Time, tok string, queuedMs, endedMs int64) {
	t.Helper()
	xml := string(aci.AppendActionXML(nil, st, now))
	assert.Contains(t, xml, "<status>Error</status>")
	assert.Regexp(t, `<error>[^<]*record in the shared store is damaged and cannot be read: [^<]+</error>`, xml, "the error is sent")
	assert.Contains(t, xml, "<queued_time>"+aci.FormatQueueTime(queuedMs, now)+"</queued_time>", xml)
	assert.Contains(t, xml, "<time_in_queue>3540</time_in_queue>", xml)
	assert.Contains(t, xml, "<process_end_time>"+aci.FormatQueueTime(endedMs, now)+"</process_end_time>", xml)
	assert.Contains(t, xml, "<token>"+tok+"</token>", xml)
	texts := map[string]string{}
	for _, c := range aci.ActionNode(st, now).Children {
		texts[c.Name] = c.Text
	}
	assert.Contains(t, texts["error"], "record in the shared store is damaged and cannot be read", "the tree encoder sends it too")
	assert.Equal(t, aci.FormatQueueTime(queuedMs, now), texts["queued_time"])
	assert.Equal(t, tok, texts["token"])
}
