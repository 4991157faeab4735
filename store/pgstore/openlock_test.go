package pgstore

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// A node that starts (Open) while another node's write is under way
// (a take-over batch, retention's DELETE, a group commit) neither waits
// for it nor holds the other nodes' writes behind it. Open set the tables
// up with CREATE INDEX IF NOT EXISTS, which takes a SHARE lock on the
// actions' table before it finds the index there: the start waited for
// every write in flight, and every write of every node that came after
// waited for the start's set-up to commit.
func TestOpenDoesNotWaitForWritesUnderWay(t *testing.T) {
	t.Parallel()
	url := server.DatabaseT(t)
	first := nodesAt(t, url, "a")[0]
	_, err := first.Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction("x", 0)}, 10)
	require.NoError(t, err)

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, `UPDATE connector_actions SET priority = 1 WHERE id = 'x'`) // a write under way
	require.NoError(t, err)

	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := Open(c, Config{URL: url, Node: "b"})
	require.NoError(t, err, "a node starts while another's write is under way")
	s.Close()
}
