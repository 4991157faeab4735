package queue

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store/pgstore"
)

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
	pg := pgtest.StartT(t, pgtest.Options{})
	url := pg.DatabaseT(t)
	ctx := context.Background()
	db, err := pgstore.Open(ctx, pgstore.Config{URL: url, Node: "n1"})
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	q, repo, _ := startSoloCluster(t, db)

	submit := func(mode string, prio int32) string {
		t.Helper()
		tok, err := q.Submit(ctx, &messages.ActionSpec{FetchAction: "SYNCHRONIZE", Priority: prio,
			Params: messages.Params{{Name: "Mode", Value: mode}}})
		require.NoError(t, err)
		return tok
	}
	waitState := func(tok string, want messages.State) *messages.ActionStatus {
		t.Helper()
		var got *messages.ActionStatus
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			st, err := q.Status(ctx, tok)
			if assert.NoError(ct, err) {
				assert.Equal(ct, want, st.State)
				got = st
			}
		}, 30*time.Second, 10*time.Millisecond)
		return got
	}

	// Both threads busy; x (first in line) and y queued behind them.
	busy := []string{submit("block", 0), submit("block", 0)}
	for _, tok := range busy {
		waitState(tok, messages.State_STATE_PROCESSING)
	}
	x, y := submit("instant", 1), submit("instant", 0)
	waitState(x, messages.State_STATE_QUEUED)
	_, uid, err := messages.ParseToken(x)
	require.NoError(t, err)
	tag, err := conn.Exec(ctx, `UPDATE connector_actions SET record = '\xffffffff'::bytea WHERE id = $1`, []byte(uid.String()))
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())

	// A thread frees: the claim takes x, whose record is damaged.
	repo.Release(busy[0])
	waitState(busy[0], messages.State_STATE_FINISHED)
	st := waitState(x, messages.State_STATE_ERROR)
	assert.Contains(t, st.Error, "record in the shared store is damaged")
	assert.False(t, st.Running)
	waitState(y, messages.State_STATE_FINISHED)
	row, ok, err := db.Action(ctx, "fetch", uid.String())
	require.NoError(t, err, "the record in the store decodes again")
	require.True(t, ok)
	assert.Equal(t, messages.State_STATE_ERROR, row.Record.Status.State)
	assert.Equal(t, "n1", row.Owner)
}
