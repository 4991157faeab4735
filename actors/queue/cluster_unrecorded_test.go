package queue

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store/pgstore"
)

// A change to an action that waits for a thread (Queued, or Paused before
// it started), which the shared store cannot record, is refused: nothing
// was changed. Such an action is queued for the whole cluster: another
// node, whose store works, may claim and run it meanwhile. Its owner kept
// the change and answered "the action is now Cancelled, but the shared
// store could not record it yet: it is written again as soon as the store
// answers"; another node claimed the action and ran it, while its owner
// went on answering Cancelled. Once the store answers, the change is made
// as usual (and its end, of a Cancel, logged and counted then, not
// for a change refused). A change to a running action is in effect (its worker
// stopped) and is written again, as before.
func TestClusterChangeOfAWaitingActionTheStoreCannotRecordIsRefused(t *testing.T) {
	c := startWriteFailCluster(t, slog.LevelInfo)
	q := c.q
	ctx := context.Background()
	running, runningID := submitRunning(t, q, messages.Params{{Name: "Mode", Value: "block"}})
	submitRunning(t, q, messages.Params{{Name: "Mode", Value: "block"}})
	tok := submitMode(t, q, "block", 3) // both threads are taken: it waits
	_, id, err := messages.ParseToken(tok)
	require.NoError(t, err)
	waitState(t, q, tok, messages.State_STATE_QUEUED)

	c.faults.armed.Store(true)
	for name, change := range map[string]func() (*messages.ActionReply, error){
		"Cancel":         func() (*messages.ActionReply, error) { return q.Cancel(ctx, tok) },
		"Stop":           func() (*messages.ActionReply, error) { return q.Stop(ctx, tok) },
		"PauseAction":    func() (*messages.ActionReply, error) { return q.PauseAction(ctx, tok) },
		"ChangePriority": func() (*messages.ActionReply, error) { return q.ChangePriority(ctx, tok, 9) },
	} {
		r, err := change()
		require.ErrorIs(t, err, messages.ErrStore, name)
		require.ErrorContains(t, err, "nothing was changed", name)
		require.Equal(t, messages.State_STATE_QUEUED, r.GetStatus().GetState(), "%s: the reply's status", name)
		st, err := q.Status(ctx, tok)
		require.NoError(t, err)
		require.Equal(t, messages.State_STATE_QUEUED, st.State, "%s: the action after the refused change", name)
		require.EqualValues(t, 3, st.Priority, name)
	}
	ended := func() int { // the lines of its end ("action ended"), for the metrics too
		n := 0
		for _, line := range strings.Split(c.logged.String(), "\n") {
			if strings.Contains(line, `msg="action ended"`) && strings.Contains(line, "token="+tok) {
				n++
			}
		}
		return n
	}
	require.Zero(t, ended(), "no end is logged (nor counted) for a refused change:\n%s", c.logged.String())
	// Another node claims it meanwhile: it is the queued action the
	// clients were told it is.
	b, err := pgstore.Open(ctx, pgstore.Config{URL: c.db.Pool().Config().ConnString(), Node: "b"})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.RegisterNode(ctx, "b", "b:1", 1))
	row, ok, err := b.Action(ctx, "fetch", id.String())
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, messages.State_STATE_QUEUED, row.Record.GetStatus().GetState())

	// A running action's Stop is in effect though unrecorded, as before.
	r, err := q.Stop(ctx, running)
	require.ErrorIs(t, err, messages.ErrStore)
	require.ErrorContains(t, err, "could not record it yet")
	require.Equal(t, messages.State_STATE_STOPPED, r.GetStatus().GetState())

	// The store answers again: the change is made, and recorded.
	c.faults.armed.Store(false)
	r, err = q.Cancel(ctx, tok)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_CANCELLED, r.GetStatus().GetState())
	row, _, err = b.Action(ctx, "fetch", id.String())
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_CANCELLED, row.Record.GetStatus().GetState())
	require.Equal(t, 1, ended(), "the end of the Cancel that was made, once:\n%s", c.logged.String())
	testwait.For(t, 30*time.Second, func() bool {
		row, _, err := b.Action(ctx, "fetch", runningID.String())
		require.NoError(t, err)
		return row.Record.GetStatus().GetState() == messages.State_STATE_STOPPED
	}, "the running action's Stop, written again")
}

// A confirmed CancelQueued on a cluster node whose store cannot record its
// Cancels says so. Each Cancel of a waiting action is refused there,
// nothing changed (as above); CancelQueued counted those actions as
// skipped ("started or ended before their Cancel arrived") and answered
// SUCCESS: the operator was never told the store failed, nor that the
// actions were left queued, to run.
func TestClusterCancelQueuedTheStoreCannotRecordSaysSo(t *testing.T) {
	c := startWriteFailCluster(t, slog.LevelInfo)
	q := c.q
	ctx := context.Background()
	submitRunning(t, q, messages.Params{{Name: "Mode", Value: "block"}})
	submitRunning(t, q, messages.Params{{Name: "Mode", Value: "block"}})
	tok := submitMode(t, q, "block", 3) // both threads are taken: it waits
	waitState(t, q, tok, messages.State_STATE_QUEUED)

	c.faults.armed.Store(true)
	r, err := q.CancelQueued(ctx, &messages.ListActions{}, false, 10)
	require.ErrorIs(t, err, messages.ErrStore, "result %+v", r)
	require.ErrorContains(t, err, "0 of the 1 selected actions are now Cancelled (1 skipped)")
	require.ErrorContains(t, err, "could not record their Cancel, which changed nothing")
	st, err := q.Status(ctx, tok)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_QUEUED, st.State, "the action as it was")

	c.faults.armed.Store(false)
	r, err = q.CancelQueued(ctx, &messages.ListActions{}, false, 10)
	require.NoError(t, err)
	require.Equal(t, 1, r.Cancelled)
}
