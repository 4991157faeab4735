package queue

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/internal/pgtest"
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
	pg := pgtest.StartT(t, pgtest.Options{})
	url := pg.DatabaseT(t)
	ctx := context.Background()
	db, err := pgstore.Open(ctx, pgstore.Config{URL: url, Node: "n1"})
	require.NoError(t, err)
	require.NoError(t, db.RegisterNode(ctx, "n1", "n1:1", 2))
	gone, err := pgstore.Open(ctx, pgstore.Config{URL: url, Node: "gone"})
	require.NoError(t, err)
	t.Cleanup(func() { gone.Close() })
	require.NoError(t, gone.RegisterNode(ctx, "gone", "gone:1", 2))
	action := func() (pgstore.NewAction, string) {
		id := uuid.New()
		tok := messages.NewToken("127.0.0.1", 7000, "FETCH", id)
		return pgstore.NewAction{Record: &messages.StoredAction{Id: id.String(),
			Spec:   &messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE", Params: messages.Params{{Name: "Mode", Value: "instant"}}},
			Status: &messages.ActionStatus{Token: tok, State: messages.State_STATE_QUEUED, QueuedUnixMs: 1000}}}, tok
	}
	// The departed node runs an action, and its take-over fails (marking
	// it dead is refused).
	a, _ := action()
	_, err = gone.Submit(ctx, "fetch", "gone", "gone:1", []pgstore.NewAction{a}, 10)
	require.NoError(t, err)
	_, err = gone.Claim(ctx, "fetch", "gone", "gone:1", 1)
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `CREATE FUNCTION refuse_death() RETURNS trigger AS $$
		BEGIN RAISE EXCEPTION 'injected: take-over refused'; END $$ LANGUAGE plpgsql`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `CREATE TRIGGER refuse_death BEFORE UPDATE ON connector_nodes FOR EACH ROW
		WHEN (NEW.dead AND NOT OLD.dead AND NEW.id = 'gone') EXECUTE FUNCTION refuse_death()`)
	require.NoError(t, err)
	// n1 runs an action, as the store says, without a worker for it.
	b, tok := action()
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
