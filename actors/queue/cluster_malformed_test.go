package queue

import (
	"context"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// A request another node sends the cluster QueueManager (a protobuf
// message over remoting) without a field it needs is refused with an
// error that says what is wrong; the node goes on. A SubmitAction without
// its spec panicked in submit, and the sender got an internal error about
// a nil pointer; a TaskChanged without its status was written as the
// action's record, its state lost.
func TestClusterRefusesMalformedMessagesFromOtherNodes(t *testing.T) {
	ctx := context.Background()
	db, _ := soloStore(t)
	q, repo, _ := startSoloCluster(t, db)

	for _, c := range []struct {
		name string
		msg  *messages.SubmitAction
	}{
		{"no spec", &messages.SubmitAction{}},
		{"no fetch action", &messages.SubmitAction{Spec: &messages.ActionSpec{Action: "FETCH"}}},
		{"no action", &messages.SubmitAction{Spec: &messages.ActionSpec{FetchAction: "SYNCHRONIZE"}}},
	} {
		name, msg := c.name, c.msg
		res, err := q.sys.Root.RequestFuture(q.pid, msg, 10*time.Second).Result()
		require.NoError(t, err, name)
		reply, ok := res.(*messages.SubmitReply)
		require.True(t, ok, "%s: a SubmitReply, not %T %v", name, res, res)
		assert.Equal(t, messages.ErrorCode_ERROR_CODE_INVALID_PARAM, reply.Code, name)
		assert.Contains(t, reply.Message, "malformed SubmitAction", name)
		assert.Empty(t, reply.Token, name)
	}

	// A running action, and a report of it without a status.
	tok := submitMode(t, q, "block", 0)
	_, id, err := messages.ParseToken(tok)
	require.NoError(t, err)
	waitState(t, q, tok, messages.State_STATE_PROCESSING)
	for _, c := range []struct {
		name string
		msg  *messages.TaskChanged
	}{
		{"no status", &messages.TaskChanged{Id: id[:], Live: true}},
		{"a short id", &messages.TaskChanged{Id: id[:8], Status: &messages.ActionStatus{Token: tok, State: messages.State_STATE_FINISHED}}},
	} {
		name, msg := c.name, c.msg
		f := actor.NewFuture(q.sys, 10*time.Second)
		msg.ReplyTo = []*actor.PID{f.PID()}
		q.sys.Root.Send(q.pid, msg)
		res, err := f.Result()
		require.NoError(t, err, name)
		reply, ok := res.(*messages.ActionReply)
		require.True(t, ok, "%s: an ActionReply, not %T %v", name, res, res)
		assert.Equal(t, messages.ErrorCode_ERROR_CODE_INTERNAL, reply.Code, name)
		assert.Contains(t, reply.Message, "malformed TaskChanged", name)
	}
	// The action is as it was, in the store too, and still ends.
	st, err := q.Status(ctx, tok)
	require.NoError(t, err)
	assert.Equal(t, messages.State_STATE_PROCESSING, st.State)
	row, ok, err := db.Action(ctx, "fetch", id.String())
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, messages.State_STATE_PROCESSING, row.Record.Status.State)
	repo.Release(tok)
	waitState(t, q, tok, messages.State_STATE_FINISHED)
}
