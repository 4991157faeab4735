package queue

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store/pgstore"
)

// withDeparting opens a test database's store as node n1 (for
// startSoloCluster), and as node "gone", registered: a member about to
// leave, whose actions the test makes. conn is a connection of the test's
// own to the database.
func withDeparting(t *testing.T) (db, gone *pgstore.Store, conn *pgx.Conn) {
	t.Helper()
	pg := pgtest.StartT(t, pgtest.Options{})
	url := pg.DatabaseT(t)
	ctx := context.Background()
	db, err := pgstore.Open(ctx, pgstore.Config{URL: url, Node: "n1"})
	require.NoError(t, err)
	gone, err = pgstore.Open(ctx, pgstore.Config{URL: url, Node: "gone"})
	require.NoError(t, err)
	t.Cleanup(func() { gone.Close() })
	require.NoError(t, gone.RegisterNode(ctx, "gone", "gone:1", 2))
	conn, err = pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return db, gone, conn
}

// refuseDeath makes PostgreSQL refuse to declare node "gone" dead: every
// take-over of its actions fails.
func refuseDeath(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	_, err := conn.Exec(ctx, `CREATE FUNCTION refuse_death() RETURNS trigger AS $$
		BEGIN RAISE EXCEPTION 'injected: take-over refused'; END $$ LANGUAGE plpgsql`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `CREATE TRIGGER refuse_death BEFORE UPDATE ON connector_nodes FOR EACH ROW
		WHEN (NEW.dead AND NOT OLD.dead AND NEW.id = 'gone') EXECUTE FUNCTION refuse_death()`)
	require.NoError(t, err)
}

// instantAction is a submission of an action that finishes as soon as it
// runs, and its token.
func instantAction() (pgstore.NewAction, string) {
	id := uuid.New()
	tok := messages.NewToken("127.0.0.1", 7000, "FETCH", id)
	return pgstore.NewAction{Record: &messages.StoredAction{Id: id.String(),
		Spec:   &messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE", Params: messages.Params{{Name: "Mode", Value: "instant"}}},
		Status: &messages.ActionStatus{Token: tok, State: messages.State_STATE_QUEUED, QueuedUnixMs: 1000}}}, tok
}

// A departed node's actions are taken over however many it owned. The
// take-over was one transaction that read, rewrote and handed over every
// one of them (its running, queued and ended actions), bounded by the
// store operation's timeout (AskTimeout, at least 5 s): past some tens of
// thousands (100,000 queued actions took 8.5 s on a loaded 2-core test
// machine) it was cancelled, every time, and retried every second for
// ever: the dead node's running actions stayed Processing, never run
// again, and its other actions could not be changed. Here each row taken
// costs 1.5 ms (a trigger), so that 6,000 of them cost what 100,000 cost
// for real, past the timeout.
func TestTakeOverOfManyActionsCompletes(t *testing.T) {
	db, gone, conn := withDeparting(t)
	ctx := context.Background()

	// The departed node: one action running, 6,000 ended (kept by
	// MaximumFinishedActions).
	const ended = 6000
	acts := make([]pgstore.NewAction, ended+1)
	for i := range acts {
		acts[i], _ = instantAction()
	}
	_, err := gone.Submit(ctx, "fetch", "gone", "gone:1", acts, len(acts))
	require.NoError(t, err)
	claimed, err := gone.Claim(ctx, "fetch", "gone", "gone:1", 1)
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	running := claimed[0].Record.Status.Token
	_, err = conn.Exec(ctx, `UPDATE connector_actions SET state = 4, ended_ms = 2000 WHERE owner = 'gone' AND NOT running`)
	require.NoError(t, err)
	pgtest.SlowOwnerChanges(t, conn, "gone")

	q, _, mem := startSoloCluster(t, db, func(c *Config) { c.AskTimeout = time.Second })
	mem.leave("gone")

	// Its running action is queued again and runs here.
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		st, err := q.Status(ctx, running)
		if assert.NoError(ct, err) {
			assert.Equal(ct, messages.State_STATE_FINISHED, st.State)
			assert.EqualValues(ct, 1, st.Restarts)
		}
	}, time.Minute, 50*time.Millisecond, "the departed node's running action ran again")
	// And every action it had is this node's.
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		var left int
		if assert.NoError(ct, conn.QueryRow(ctx, `SELECT count(*) FROM connector_actions WHERE owner = 'gone'`).Scan(&left)) {
			assert.Zero(ct, left, "actions still owned by the departed node")
		}
	}, time.Minute, 50*time.Millisecond)
}

// A take-over batch that cannot be done within the store operation's time
// (AskTimeout, at least 5 s) on a slow or loaded PostgreSQL was tried
// again, whole, every second, and cancelled at the same point every time:
// the departed node's actions were never taken. Here each row taken costs
// 6 ms, so that a batch of 1,000 takes 6 s; the node now takes fewer at
// once after a batch ran out of time.
func TestTakeOverBatchOutOfTimeTakesFewer(t *testing.T) {
	db, gone, conn := withDeparting(t)
	ctx := context.Background()

	const ended = 1200
	acts := make([]pgstore.NewAction, ended)
	for i := range acts {
		acts[i], _ = instantAction()
	}
	_, err := gone.Submit(ctx, "fetch", "gone", "gone:1", acts, len(acts))
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `UPDATE connector_actions SET state = 4, ended_ms = 2000 WHERE owner = 'gone'`)
	require.NoError(t, err)
	pgtest.SlowOwnerChangesBy(t, conn, "gone", 6*time.Millisecond)

	_, _, mem := startSoloCluster(t, db, func(c *Config) { c.AskTimeout = time.Second })
	mem.leave("gone")

	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		var left int
		if assert.NoError(ct, conn.QueryRow(ctx, `SELECT count(*) FROM connector_actions WHERE owner = 'gone'`).Scan(&left)) {
			assert.Zero(ct, left, "actions still owned by the departed node")
		}
	}, 2*time.Minute, 100*time.Millisecond)
}

// What remains of a take-over after each batch.
func TestMoreToAdopt(t *testing.T) {
	require.Nil(t, moreToAdopt(nil, []string{"a"}, false), "all of a's taken")
	require.Equal(t, []string{"a"}, moreToAdopt(nil, []string{"a"}, true))
	require.Equal(t, []string{}, moreToAdopt(nil, nil, true), "more of nobody's")
	require.Equal(t, []string{"b"}, moreToAdopt([]string{"a", "b"}, []string{"a"}, false), "b was not covered")
	require.Equal(t, []string{"b", "a"}, moreToAdopt([]string{"b"}, []string{"a"}, true))
	require.Nil(t, moreToAdopt([]string{}, nil, false), "nobody's taken with the others")
}
