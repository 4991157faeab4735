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

// A take-over that fails, again and again, does not hold the node's
// commits off. Since take-overs go before the pending commit (0ce1ce8), a
// failed one was due again at once and went first every time: the node
// retried it in a tight loop and never committed, so submissions got no
// answer. It now goes again no sooner than a failed commit would.
func TestFailingTakeOverDoesNotHoldCommitsOff(t *testing.T) {
	pg := pgtest.StartT(t, pgtest.Options{})
	url := pg.DatabaseT(t)
	ctx := context.Background()
	db, err := pgstore.Open(ctx, pgstore.Config{URL: url, Node: "n1"})
	require.NoError(t, err)
	// A member that will leave, and a take-over of its actions that
	// PostgreSQL refuses (marking it dead fails) while commits go on.
	require.NoError(t, db.RegisterNode(ctx, "gone", "gone:1", 2))
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `CREATE FUNCTION refuse_death() RETURNS trigger AS $$
		BEGIN RAISE EXCEPTION 'injected: take-over refused'; END $$ LANGUAGE plpgsql`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `CREATE TRIGGER refuse_death BEFORE UPDATE ON connector_nodes FOR EACH ROW
		WHEN (NEW.dead AND NOT OLD.dead AND NEW.id = 'gone') EXECUTE FUNCTION refuse_death()`)
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))

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
