package pgstore

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/store"
)

// rollBackCommits makes the next n commits fail as PostgreSQL's deadlock
// victim would (40P01: the transaction rolled back, nothing applied).
type rollBackCommits struct{ n, seen atomic.Int32 }

func (f *rollBackCommits) Write() error { return nil }
func (f *rollBackCommits) Commit() error {
	f.seen.Add(1)
	if f.n.Add(-1) >= 0 {
		return &pgconn.PgError{Code: "40P01", Message: "deadlock detected"}
	}
	return nil
}
func (f *rollBackCommits) Synced() error { return nil }

// A group commit chosen as a deadlock's victim is sent again (all of it:
// submissions, claim and deferred writes) instead of failing the group's
// submitters; one that keeps being rolled back fails after a bounded
// number of attempts, and its deferred writes wait for the next commit.
func TestGroupCommitSentAgainAfterDeadlock(t *testing.T) {
	t.Parallel()
	url := server.DatabaseT(t)
	f := &rollBackCommits{}
	a, err := Open(ctx, Config{URL: url, Node: "a", Faults: f, DeferInterval: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	require.NoError(t, a.RegisterNode(ctx, "a", "a:1", 4))
	b := openT(t, url, nil)
	t.Cleanup(func() { b.Close() })
	da, db := dsOf(t, a, "T"), dsOf(t, b, "T")

	require.NoError(t, store.UpdateBookkeeping(da, put("k", "v1")))
	f.n.Store(1)
	f.seen.Store(0)
	r, err := a.Commit(ctx, "fetch", "a", "a:1", Group{
		Submits: []NewAction{newAction("x", 0), newAction("y", 0)}, MaxWaiting: 100, Claim: 1,
	})
	require.NoError(t, err, "a deadlock victim is sent again")
	require.EqualValues(t, 2, f.seen.Load())
	require.Len(t, r.Seqs, 2)
	require.NotZero(t, r.Seqs[0])
	require.NotZero(t, r.Seqs[1])
	require.Equal(t, []string{"x"}, claimIDs(r.Claimed))
	require.Equal(t, "k=v1", entries(t, db))
	row, ok, err := b.Action(ctx, "fetch", "y")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "a", row.Owner)

	require.NoError(t, store.UpdateBookkeeping(da, put("k", "v2")))
	f.n.Store(rolledBackAttempts)
	f.seen.Store(0)
	_, err = a.Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction("z", 0)}, 100)
	require.Error(t, err)
	require.True(t, rolledBack(err), "%v", err)
	require.EqualValues(t, rolledBackAttempts, f.seen.Load(), "bounded")
	_, ok, err = b.Action(ctx, "fetch", "z")
	require.NoError(t, err)
	require.False(t, ok)
	require.Equal(t, "k=v1", entries(t, db))
	_, err = a.Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction("z", 0)}, 100)
	require.NoError(t, err)
	require.Equal(t, "k=v2", entries(t, db), "the deferred write rode the next commit")
}
