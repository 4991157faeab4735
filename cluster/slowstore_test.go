package cluster_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// While PostgreSQL is slow but live (here: its actions table locked, so
// that reads wait), a request about a running action is answered by its
// owner, and the pool keeps its connections. Each request read the row,
// asked the nodes once the read had not answered within RequestTimeout,
// and cancelled the read: pgx closes a connection whose query is
// cancelled, so every request made the pool open a new connection (one
// per request measured: 40 requests of 8 clients in 10 s, 40
// connections), each with a cancel request and a new backend on a
// database that was already slow, and every request waited
// RequestTimeout. Now the store, once slow, is read only when no node
// owns the action, and one probe read per RequestTimeout tells when it is
// fast again.
func TestSlowStoreKeepsItsConnections(t *testing.T) {
	c := newCluster(t, 2, 1)
	tok, _, asker, _ := c.runningAction()

	lock, err := pgx.Connect(ctx, c.url)
	require.NoError(t, err)
	defer lock.Close(ctx)
	tx, err := lock.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `LOCK TABLE connector_actions IN ACCESS EXCLUSIVE MODE`)
	require.NoError(t, err)

	const requests = 12
	before := asker.db.Pool().Stat().NewConnsCount()
	for i := range requests {
		st, err := asker.q.Status(ctx, tok)
		require.NoError(t, err, "request %d", i)
		require.Equal(t, messages.State_STATE_PROCESSING, st.State, "request %d", i)
	}
	opened := asker.db.Pool().Stat().NewConnsCount() - before
	t.Logf("%d requests, %d connections opened", requests, opened)
	require.Less(t, opened, int64(requests/2), "connections opened by %d requests while the store is slow", requests)

	// Fast again: the answers stay right.
	require.NoError(t, tx.Rollback(ctx))
	st, err := asker.q.Status(ctx, tok)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_PROCESSING, st.State)
}
