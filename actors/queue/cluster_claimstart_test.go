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

// A claim records the start of the actions it takes (their rows become
// Processing, running, started at the claim), so the task actor's report
// that it started is not written a second time (issue 17: it was one row
// in five of a node's group commits at N=3). What the row shows from the
// claim on, and what the owner answers, are as before; the action's end
// is written as always.
func TestClusterClaimRecordsTheStart(t *testing.T) {
	ctx := context.Background()
	db, conn := rowLogged(t)
	q, repo, _ := startSoloCluster(t, db)

	before := time.Now().UnixMilli()
	tok, err := q.Submit(ctx, &messages.ActionSpec{FetchAction: "SYNCHRONIZE",
		Params: messages.Params{{Name: "Mode", Value: "block"}}})
	require.NoError(t, err)
	_, uid, err := messages.ParseToken(tok)
	require.NoError(t, err)
	id := uid.String()
	var started int64
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		st, err := q.Status(ctx, tok)
		if assert.NoError(ct, err) {
			assert.Equal(ct, messages.State_STATE_PROCESSING, st.State)
			assert.True(ct, st.Running)
			started = st.StartedUnixMs
		}
	}, 30*time.Second, 10*time.Millisecond)
	// The row, as the other nodes read it (a departed owner's actions
	// are answered from it): running since the claim.
	row, ok, err := db.Action(ctx, "fetch", id)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, messages.State_STATE_PROCESSING, row.Record.Status.State)
	assert.True(t, row.Record.Status.Running)
	assert.GreaterOrEqual(t, row.Record.Status.StartedUnixMs, before)
	assert.LessOrEqual(t, row.Record.Status.StartedUnixMs, started, "the claim comes before the worker starts")

	repo.Release(tok)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		st, err := q.Status(ctx, tok)
		if assert.NoError(ct, err) {
			assert.Equal(ct, messages.State_STATE_FINISHED, st.State)
		}
	}, 30*time.Second, 10*time.Millisecond)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		row, _, err := db.Action(ctx, "fetch", id)
		if assert.NoError(ct, err) {
			assert.Equal(ct, messages.State_STATE_FINISHED, row.Record.Status.State)
			assert.False(ct, row.Record.Status.Running)
			assert.Equal(ct, started, row.Record.Status.StartedUnixMs, "the end writes the worker's start")
		}
	}, 30*time.Second, 10*time.Millisecond)

	rows, err := conn.Query(ctx, `SELECT state, running FROM row_log WHERE id = $1 ORDER BY n`, []byte(id))
	require.NoError(t, err)
	var processing int
	var states []int16
	for rows.Next() {
		var st int16
		var running bool
		require.NoError(t, rows.Scan(&st, &running))
		states = append(states, st)
		if st == int16(messages.State_STATE_PROCESSING) {
			processing++
		}
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, 1, processing, "one write of the row as Processing (the claim's), rows written: %v", states)
}

// rowLogged starts PostgreSQL and opens the store of node n1 on it, with
// every row an INSERT or UPDATE of connector_actions leaves logged, in
// order, in row_log (id, state, running, epoch), read through conn.
func rowLogged(t *testing.T) (*pgstore.Store, *pgx.Conn) {
	t.Helper()
	db, conn := soloStore(t)
	ctx := context.Background()
	for _, sql := range []string{
		`CREATE TABLE row_log (n bigserial PRIMARY KEY, id bytea, state smallint, running boolean, epoch bigint)`,
		`CREATE FUNCTION log_row() RETURNS trigger AS $$ BEGIN
			INSERT INTO row_log (id, state, running, epoch) VALUES (NEW.id, NEW.state, NEW.running, NEW.epoch);
			RETURN NEW; END $$ LANGUAGE plpgsql`,
		`CREATE TRIGGER log_row AFTER INSERT OR UPDATE ON connector_actions FOR EACH ROW EXECUTE FUNCTION log_row()`,
	} {
		_, err := conn.Exec(ctx, sql)
		require.NoError(t, err)
	}
	return db, conn
}

// soloStore starts a PostgreSQL with a database of its own and opens the
// shared store on it as node n1, with a connection of the test's own to
// look at or change its tables behind the store's back.
func soloStore(t *testing.T) (*pgstore.Store, *pgx.Conn) {
	t.Helper()
	pg := pgtest.StartT(t, pgtest.Options{})
	url := pg.DatabaseT(t)
	ctx := context.Background()
	db, err := pgstore.Open(ctx, pgstore.Config{URL: url, Node: "n1"})
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return db, conn
}
