package queue

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// A client's Stop of a running action is written once, with the worker's
// final report, and answered when that write is committed: the Stopped
// state is not written first on its own (issue 17: on an idle node that
// write went at once, the final report waited for it and went in a
// commit of its own, so the Stop's reply waited for two commits in a
// row). The row says Stopped once the Stop has been answered.
func TestClusterStopWrittenOnceWithItsReply(t *testing.T) {
	ctx := context.Background()
	db, conn := rowLogged(t)
	q, _, _ := startSoloCluster(t, db)

	for i := 0; i < 3; i++ {
		tok, err := q.Submit(ctx, &messages.ActionSpec{FetchAction: "SYNCHRONIZE",
			Params: messages.Params{{Name: "Mode", Value: "untilstop"}}})
		require.NoError(t, err)
		_, uid, err := messages.ParseToken(tok)
		require.NoError(t, err)
		id := uid.String()
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			st, err := q.Status(ctx, tok)
			if assert.NoError(ct, err) {
				assert.Equal(ct, messages.State_STATE_PROCESSING, st.State)
			}
		}, 30*time.Second, time.Millisecond)

		r, err := q.Stop(ctx, tok)
		require.NoError(t, err)
		assert.Equal(t, messages.State_STATE_STOPPED, r.Status.State)
		// Answered once on disk.
		row, ok, err := db.Action(ctx, "fetch", id)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, messages.State_STATE_STOPPED, row.Record.Status.State)
		assert.False(t, row.Record.Status.Running)

		var stopped int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM row_log WHERE id = $1 AND state = $2`,
			[]byte(id), int16(messages.State_STATE_STOPPED)).Scan(&stopped))
		assert.Equal(t, 1, stopped, "writes of the row as Stopped (action %d)", i)
	}
}
