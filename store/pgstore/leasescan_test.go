package pgstore

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// fillEnded adds n ended (Finished) actions of queue owned by owner, as a
// cluster that retains many of them has (MaximumFinishedActions).
func fillEnded(t testing.TB, s *Store, queue, owner string, n int) {
	t.Helper()
	_, err := s.Pool().Exec(ctx, `INSERT INTO connector_actions (queue, id, seq, state, owner, owner_addr, epoch, ended_ms, record)
		SELECT $1, convert_to($2 || '-e' || g, 'UTF8'), nextval('connector_action_seq'), 4, $2, $2 || ':1', 2, g, '\x'::bytea
		FROM generate_series(1, $3) g`, []byte(queue), owner, n)
	require.NoError(t, err)
	_, err = s.Pool().Exec(ctx, `ANALYZE connector_actions`)
	require.NoError(t, err)
}

// actionRowsRead runs q under EXPLAIN ANALYZE and returns how many rows of
// connector_actions its plan read: the rows each scan of the table
// returned or filtered out, over all its loops.
func actionRowsRead(t testing.TB, s *Store, q string, args ...any) int {
	t.Helper()
	var raw []byte
	require.NoError(t, s.Pool().QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) `+q, args...).Scan(&raw))
	var plans []struct{ Plan map[string]any }
	require.NoError(t, json.Unmarshal(raw, &plans))
	var walk func(p map[string]any) int
	walk = func(p map[string]any) int {
		n := 0
		if p["Relation Name"] == "connector_actions" {
			num := func(k string) int {
				f, _ := p[k].(float64)
				return int(f)
			}
			n += (num("Actual Rows") + num("Rows Removed by Filter") + num("Rows Removed by Index Recheck")) * max(num("Actual Loops"), 1)
		}
		if kids, ok := p["Plans"].([]any); ok {
			for _, k := range kids {
				n += walk(k.(map[string]any))
			}
		}
		return n
	}
	return walk(plans[0].Plan)
}

// The scans every node makes every lease (its look for orphans, Orphaned;
// its reconciliation, Owners) read the actions that can change hands, not
// every ended action the cluster retains: with 100,000 of them, each node
// read the whole table every few seconds.
func TestLeaseScansSkipEndedActions(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a", "b")
	a := ns[0]
	const ended = 20000
	fillEnded(t, a, "fetch", "a", ended)
	fillEnded(t, a, "fetch", "b", ended)
	_, err := a.Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction("q1", 0), newAction("q2", 0)}, 100)
	require.NoError(t, err)
	_, err = a.Claim(ctx, "fetch", "a", "a:1", 1)
	require.NoError(t, err)

	orphans, unowned, err := a.Orphaned(ctx, "fetch", []string{"a", "b"}, 0)
	require.NoError(t, err)
	require.Empty(t, orphans)
	require.False(t, unowned)
	read := actionRowsRead(t, a, orphanedSQL, []byte("fetch"), []string{"a", "b"}, 0)
	t.Logf("the look for orphans read %d rows", read)
	require.Less(t, read, 100, "the look for orphans read %d rows of %d ended actions", read, 2*ended)

	// b is gone: its ended actions are still found, to be taken over.
	orphans, _, err = a.Orphaned(ctx, "fetch", []string{"a"}, 0)
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, orphans)

	got, err := a.Owners(ctx, "fetch", "a", nil)
	require.NoError(t, err)
	require.Len(t, got, 2, "a's queued and running actions, not its ended ones")
	read = actionRowsRead(t, a, ownersSQL, []byte("fetch"), [][]byte{}, "a")
	t.Logf("the reconciliation read %d rows", read)
	require.Less(t, read, 100, "the reconciliation read %d rows of %d ended actions", read, ended)
}

// A database set up by an earlier build, with the index on owner alone,
// gets the index on (queue, owner, state) when a node of this build opens
// it, and loses the old one; its actions are kept and the scans find them.
func TestOpenReplacesOwnerIndex(t *testing.T) {
	t.Parallel()
	url := server.DatabaseT(t)
	s, err := Open(ctx, Config{URL: url, Node: "a"})
	require.NoError(t, err)
	require.NoError(t, s.RegisterNode(ctx, "a", "a:1", 4))
	_, err = s.Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction("x", 0)}, 100)
	require.NoError(t, err)
	_, err = s.Pool().Exec(ctx, `DROP INDEX connector_actions_queue_owner`)
	require.NoError(t, err)
	_, err = s.Pool().Exec(ctx, `CREATE INDEX connector_actions_owner ON connector_actions (owner)`)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s, err = Open(ctx, Config{URL: url, Node: "a"})
	require.NoError(t, err)
	defer s.Close()
	rows, err := s.Pool().Query(ctx, `SELECT indexname || ' ' || indexdef FROM pg_indexes WHERE tablename = 'connector_actions' AND indexdef LIKE '%owner%'`)
	require.NoError(t, err)
	defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Len(t, defs, 1, "%q", defs)
	require.Contains(t, defs[0], "connector_actions_queue_owner")
	require.Contains(t, defs[0], "(queue, owner, state)")
	got, err := s.Owners(ctx, "fetch", "a", nil)
	require.NoError(t, err)
	require.Len(t, got, 1)
	orphans, _, err := s.Orphaned(ctx, "fetch", []string{"b"}, 0)
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, orphans)
}

// BenchmarkLeaseScans measures the two scans every node makes every lease
// (Orphaned, Owners) with 100,000 ended actions retained, of two live
// nodes, and a few running.
func BenchmarkLeaseScans(b *testing.B) {
	url := server.DatabaseT(b)
	s, err := Open(ctx, Config{URL: url, Node: "a"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for _, n := range []string{"a", "b"} {
		if err := s.RegisterNode(ctx, n, n+":1", 4); err != nil {
			b.Fatal(err)
		}
		fillEnded(b, s, "fetch", n, 50000)
	}
	acts := make([]NewAction, 8)
	for i := range acts {
		acts[i] = newAction(fmt.Sprint("q", i), 0)
	}
	if _, err := s.Submit(ctx, "fetch", "a", "a:1", acts, 100); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Claim(ctx, "fetch", "a", "a:1", 4); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `VACUUM ANALYZE connector_actions`); err != nil {
		b.Fatal(err)
	}
	b.Run("Orphaned", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := s.Orphaned(ctx, "fetch", []string{"a", "b"}, 10); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Owners", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Owners(ctx, "fetch", "a", []string{"q0", "q1"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
