package queue

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store/pgstore"
)

// A take-over that keeps failing does not hold the node's reconciliation
// off. Both go before the pending commit, the take-over first, and a
// failed one is due again a second later: the reconciliation that was due
// with it never went, and an action the store says the node runs, for
// which it has no worker (a claim whose result it did not get), stayed
// Processing for good.
func TestFailingTakeOverDoesNotHoldReconciliationOff(t *testing.T) {
	db, gone, conn := withDeparting(t)
	ctx := context.Background()
	require.NoError(t, db.RegisterNode(ctx, "n1", "n1:1", 2))
	// The departed node runs an action, and its take-over fails.
	a, _ := instantAction()
	_, err := gone.Submit(ctx, "fetch", "gone", "gone:1", []pgstore.NewAction{a}, 10)
	require.NoError(t, err)
	_, err = gone.Claim(ctx, "fetch", "gone", "gone:1", 1)
	require.NoError(t, err)
	refuseDeath(t, conn)
	// n1 runs an action, as the store says, without a worker for it.
	b, tok := instantAction()
	b.Record.Status.State, b.Record.Status.Running = messages.State_STATE_PROCESSING, true
	rec, err := proto.Marshal(b.Record)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `INSERT INTO connector_actions (queue, id, seq, state, running, started_ms, owner, owner_addr, epoch, record)
		VALUES ('fetch', $1, nextval('connector_action_seq'), 2, true, 2000, 'n1', 'n1:1', 2, $2)`, []byte(b.Record.Id), rec)
	require.NoError(t, err)

	q, _, mem := startSoloCluster(t, db)
	mem.leave("gone")

	// Its reconciliation takes it again: queued again, it runs here.
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		st, err := q.Status(ctx, tok)
		if assert.NoError(ct, err) {
			assert.Equal(ct, messages.State_STATE_FINISHED, st.State)
			assert.EqualValues(ct, 1, st.Restarts)
		}
	}, 30*time.Second, 20*time.Millisecond)
}
