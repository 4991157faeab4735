package pgstore

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// tableRowsRead runs q under EXPLAIN ANALYZE and returns how many rows
// its plan read from connector_actions itself, not from an index alone:
// the rows every scan of the table other than an index-only one returned
// or filtered out, and the rows an index-only scan fetched from the table
// (Heap Fetches).
func tableRowsRead(t testing.TB, s *Store, q string, args ...any) int {
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
			loops := max(num("Actual Loops"), 1)
			if p["Node Type"] == "Index Only Scan" {
				n += num("Heap Fetches") * loops
			} else {
				n += (num("Actual Rows") + num("Rows Removed by Filter") + num("Rows Removed by Index Recheck")) * loops
			}
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

// QueueStatus's counts (Counts) read indexes, not every row of the queue:
// grouped by state and running, they read every action kept, records
// included (0.2 s per QueueStatus with 100,000 ended actions on the test
// machine, against 0.03 s from the index of owners). The counts are the
// same.
func TestCountsReadIndexesNotRows(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a")
	a := ns[0]
	const ended = 20000
	fillEnded(t, a, "fetch", "a", ended)
	_, err := a.Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction("q1", 0), newAction("q2", 0), newAction("q3", 0)}, 100)
	require.NoError(t, err)
	_, err = a.Claim(ctx, "fetch", "a", "a:1", 1)
	require.NoError(t, err)
	// As autovacuum leaves a table whose ended rows no longer change.
	_, err = a.Pool().Exec(ctx, `VACUUM ANALYZE connector_actions`)
	require.NoError(t, err)

	byState, waiting, paused, err := a.Counts(ctx, "fetch")
	require.NoError(t, err)
	require.Equal(t, uint64(ended), byState[messages.State_STATE_FINISHED])
	require.Equal(t, uint64(2), byState[stateQueued])
	require.Equal(t, uint64(1), byState[stateProcessing])
	require.Equal(t, uint64(2), waiting)
	require.False(t, paused)

	for _, q := range []string{countsByStateSQL, countsWaitingSQL, countsSQL} {
		read := tableRowsRead(t, a, q, []byte("fetch"))
		t.Logf("%s read %d rows of the table", q, read)
		require.Less(t, read, 1000, "%s read %d rows of the table, of %d actions", q, read, ended+3)
	}
}

// QueueStatus's counts are one snapshot of the queue: the actions of each
// state and those waiting were counted by two statements, each seeing
// the commits made before it, so that an action submitted between them
// was waiting but in no state, one claimed between them Queued but not
// waiting: the reply's queued and waiting disagreed, and its running
// (the unended actions that do not wait) was off by as many. Here nothing
// is paused, so the waiting actions are exactly the Queued ones, whatever
// the submissions and claims committed meanwhile.
func TestCountsAreOneSnapshot(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a", "b")
	a, b := ns[0], ns[1]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // submissions
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := a.Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction(fmt.Sprintf("s%d", i), 0)}, 1<<30); err != nil {
				t.Errorf("submit: %v", err)
				return
			}
		}
	}()
	go func() { // claims
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := b.Claim(ctx, "fetch", "b", "b:1", 1); err != nil {
				t.Errorf("claim: %v", err)
				return
			}
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()
	const rounds = 2000
	for i := 0; i < rounds; i++ {
		byState, waiting, _, err := a.Counts(ctx, "fetch")
		require.NoError(t, err)
		require.Equal(t, byState[stateQueued], waiting,
			"round %d: the waiting actions and the Queued ones, counted while actions are submitted and claimed (nothing paused): %v", i, byState)
	}
}
