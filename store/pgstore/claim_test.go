package pgstore

import (
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// A claim locks only the queued actions it takes (and those it passes
// over because their tasks are held), not the next ones: a claim that
// runs at the same time on another node takes those (issue 17). PL/pgSQL
// runs a FOR loop's query ten rows at a time, so a claim of one action
// locked ten, and a concurrent claim skipped the other nine as if another
// node had them; finding less than it asked for, that node took the
// queue for empty, and the nine waited for the next claim of a node, up
// to its idle poll (a lease) when no thread freed meanwhile.
func TestClaimLocksOnlyWhatItTakes(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a", "b")
	var subs []NewAction
	for i := 0; i < 30; i++ {
		subs = append(subs, newAction(fmt.Sprintf("q%02d", i), 0))
	}
	_, err := ns[0].Submit(ctx, "fetch", "a", "a:1", subs, 1000)
	require.NoError(t, err)

	// Node a claims one action in a transaction that has not ended yet.
	conn, err := pgx.Connect(ctx, ns[0].cfg.URL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `SELECT id FROM connector_claim($1, $2, $3, $4, $5)`, []byte("fetch"), "a", "a:1", 1, int64(1))
	require.NoError(t, err)
	var took []string
	for rows.Next() {
		var id []byte
		require.NoError(t, rows.Scan(&id))
		took = append(took, string(id))
	}
	rows.Close()
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"q00"}, took)

	// Node b, meanwhile, gets every other queued action.
	got, err := ns[1].Claim(ctx, "fetch", "b", "b:1", 100)
	require.NoError(t, err)
	ids := claimIDs(got)
	require.Len(t, ids, 29)
	require.Equal(t, "q01", ids[0])
}
