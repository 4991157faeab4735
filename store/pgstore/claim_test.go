package pgstore

import (
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// A claim locks only the queued actions it takes, not the next ones: a
// claim that runs at the same time on another node takes those (issue
// 17). PL/pgSQL runs a FOR loop's query ten rows at a time, so a claim of
// one action locked ten, and a concurrent claim skipped the other nine as if another
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
	require.Equal(t, []string{"q00"}, claimInOpenTx(t, ns[0], "a", 1))

	// Node b, meanwhile, gets every other queued action.
	got, err := ns[1].Claim(ctx, "fetch", "b", "b:1", 100)
	require.NoError(t, err)
	ids := claimIDs(got)
	require.Len(t, ids, 29)
	require.Equal(t, "q01", ids[0])
}

// A claim that passes over an action because its task is held does not
// lock it: another node's claim, made once the task is free, takes it in
// priority order. When the passing claim locked it, a node whose running
// action ended and released the task skipped the next action of that
// task (SKIP LOCKED) and took a lower-priority one of the same task, if
// the passing claim had not reached that one yet: a Synchronize at
// priority 0 ran before one at priority 3 (seen as a flake of
// TestDifferentialSingleAndClusterTaskOrder under load).
func TestClaimPassingOverAHeldTaskLocksNothing(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a", "b")
	a, b := ns[0], ns[1]
	run := newAction("run", 9)
	run.Exclusive = []string{"X"}
	_, err := a.Submit(ctx, "fetch", "a", "a:1", []NewAction{run}, 100)
	require.NoError(t, err)
	got, err := a.Claim(ctx, "fetch", "a", "a:1", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"run"}, claimIDs(got))
	high, other, low := newAction("high", 3), newAction("other", 2), newAction("low", 0)
	high.Exclusive, low.Exclusive = []string{"X"}, []string{"X"}
	_, err = a.Submit(ctx, "fetch", "a", "a:1", []NewAction{high, other, low}, 100)
	require.NoError(t, err)

	// Node b claims one action while X is held, in a transaction that
	// has not ended yet: it passes over high and takes other.
	require.Equal(t, []string{"other"}, claimInOpenTx(t, b, "b", 1))

	// Node a's action ends and frees X; its next claim takes high.
	finishReleasing(t, a, "a", got[0])
	next, err := a.Claim(ctx, "fetch", "a", "a:1", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"high"}, claimIDs(next), "the next action of the freed task, in priority order")
}

// claimInOpenTx claims up to n queued actions of "fetch" for node (at
// address node+":1") in a transaction of its own that stays open until
// the test ends, and returns their ids: the rows it locks stay locked.
func claimInOpenTx(t *testing.T, s *Store, node string, n int) []string {
	t.Helper()
	conn, err := pgx.Connect(ctx, s.cfg.URL)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(ctx) })
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	rows, err := tx.Query(ctx, `SELECT id FROM connector_claim($1, $2, $3, $4, $5)`, []byte("fetch"), node, node+":1", n, int64(1))
	require.NoError(t, err)
	defer rows.Close()
	var took []string
	for rows.Next() {
		var id []byte
		require.NoError(t, rows.Scan(&id))
		took = append(took, string(id))
	}
	require.NoError(t, rows.Err())
	return took
}
