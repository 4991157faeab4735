package queue

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// A take-over that fails, again and again, does not hold the node's
// commits off. Since take-overs go before the pending commit (0ce1ce8), a
// failed one was due again at once and went first every time: the node
// retried it in a tight loop and never committed, so submissions got no
// answer. It now goes again no sooner than a failed commit would.
func TestFailingTakeOverDoesNotHoldCommitsOff(t *testing.T) {
	db, _, conn := withDeparting(t)
	ctx := context.Background()
	// A member that will leave, and a take-over of its actions that
	// PostgreSQL refuses (marking it dead fails) while commits go on.
	refuseDeath(t, conn)

	q, _, mem := startSoloCluster(t, db)

	mem.leave("gone")
	tok, err := q.Submit(ctx, &messages.ActionSpec{FetchAction: "SYNCHRONIZE",
		Params: messages.Params{{Name: "Mode", Value: "instant"}}})
	require.NoError(t, err, "a submission while the take-over fails")
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		st, err := q.Status(ctx, tok)
		if assert.NoError(ct, err) {
			assert.Equal(ct, messages.State_STATE_FINISHED, st.State)
		}
	}, 30*time.Second, 10*time.Millisecond)
}
