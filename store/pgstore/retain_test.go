package pgstore

import (
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/messages"
)

// Retention leaves an ended action that still holds tasks (its owner has
// not written their release yet): removed with its hold in place, nothing
// would free the hold, and every later action of those tasks would wait,
// never claimed.
func TestRetainKeepsAnActionThatHoldsTasks(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a")
	a := ns[0]
	x, y := newAction("x", 0), newAction("y", 0)
	x.Exclusive, y.Exclusive = []string{"T"}, []string{"T"}
	_, err := a.Submit(ctx, "fetch", "a", "a:1", []NewAction{x}, 100)
	require.NoError(t, err)
	got, err := a.Claim(ctx, "fetch", "a", "a:1", 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
	// It ends; its worker has not exited yet (no release).
	rec := got[0].Record
	rec.Status.State, rec.Status.Running, rec.Status.EndedUnixMs = messages.State_STATE_FINISHED, false, 2000
	fenced, err := a.WriteOwned(ctx, "fetch", "a", []OwnedWrite{{Epoch: got[0].Epoch, Record: rec}})
	require.NoError(t, err)
	require.Empty(t, fenced)
	removed, err := a.Retain(ctx, "fetch", 0, 0, 100)
	require.NoError(t, err)
	require.Empty(t, removed, "x still holds T")

	// Its worker exits: the release is written, and x goes at the next pass.
	fenced, err = a.WriteOwned(ctx, "fetch", "a", []OwnedWrite{{Epoch: got[0].Epoch, Record: rec, Release: true}})
	require.NoError(t, err)
	require.Empty(t, fenced)
	removed, err = a.Retain(ctx, "fetch", 0, 0, 100)
	require.NoError(t, err)
	require.Equal(t, []Removed{{ID: "x", Owner: "a", OwnerAddr: "a:1"}}, removed)

	_, err = a.Submit(ctx, "fetch", "a", "a:1", []NewAction{y}, 100)
	require.NoError(t, err)
	got, err = a.Claim(ctx, "fetch", "a", "a:1", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"y"}, claimIDs(got), "T is free")
}

// Retention removes a backlog a bounded batch per statement, the oldest
// first, and keeps the newest keep ended actions whatever the batch. One
// statement for the whole backlog (a long outage, MaximumFinishedActions
// lowered) deleted every row in one transaction: with a million ended
// actions it ran past the pass's 5 s timeout, which cancelled it, every
// pass, and retention never removed anything again (seen on main: 990,000
// rows to delete, 0 removed, "context deadline exceeded" after 5 s).
func TestRetainRemovesABacklogInBatches(t *testing.T) {
	t.Parallel()
	url := server.DatabaseT(t)
	a := nodesAt(t, url, "a")[0]
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(ctx) })
	// 2,000 ended actions, ended at 1001..3000 (seq follows), their
	// records as the store writes them.
	const n = 2000
	var batch pgx.Batch
	for i := 1; i <= n; i++ {
		rec, err := proto.Marshal(&messages.StoredAction{Id: fmt.Sprintf("e%04d", i),
			Status: &messages.ActionStatus{State: messages.State_STATE_FINISHED, EndedUnixMs: int64(1000 + i)}})
		require.NoError(t, err)
		batch.Queue(`INSERT INTO connector_actions (queue, id, seq, state, ended_ms, owner, owner_addr, record)
			VALUES ('fetch', $1, $2, 4, $3, 'a', 'a:1', $4)`, []byte(fmt.Sprintf("e%04d", i)), i, 1000+i, rec)
	}
	require.NoError(t, conn.SendBatch(ctx, &batch).Close())

	const keep, limit = 150, 700
	var gone []string
	for pass := 0; ; pass++ {
		require.Less(t, pass, 10, "retention does not finish")
		removed, err := a.Retain(ctx, "fetch", keep, 0, limit)
		require.NoError(t, err)
		require.LessOrEqual(t, len(removed), limit, "one statement removes at most the batch")
		for _, r := range removed {
			gone = append(gone, r.ID)
		}
		if len(removed) < limit {
			break
		}
	}
	slices.Sort(gone)
	want := make([]string, 0, n-keep)
	for i := 1; i <= n-keep; i++ {
		want = append(want, fmt.Sprintf("e%04d", i))
	}
	require.Equal(t, want, gone, "all but the newest keep, each once")
	ids, err := a.List(ctx, "fetch", &messages.ListActions{})
	require.NoError(t, err)
	require.Len(t, ids, keep)
	require.Equal(t, fmt.Sprintf("e%04d", n), ids[0])

	// By age too: the oldest first, the batch's worth at a time.
	removed, err := a.Retain(ctx, "fetch", 0, int64(1000+n-keep+10+1), 5)
	require.NoError(t, err)
	gone = gone[:0]
	for _, r := range removed {
		gone = append(gone, r.ID)
	}
	slices.Sort(gone)
	want = want[:0]
	for i := n - keep + 1; i <= n-keep+5; i++ {
		want = append(want, fmt.Sprintf("e%04d", i))
	}
	require.Equal(t, want, gone, "the oldest first")
}
