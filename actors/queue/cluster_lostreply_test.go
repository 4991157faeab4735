package queue

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
)

// commitFailed is an Observer that signals the first failed group commit.
type commitFailed struct {
	noObserver
	failed chan struct{}
}

func (o *commitFailed) Committed(_ int, _ time.Duration, err error) {
	if err != nil {
		select {
		case o.failed <- struct{}{}:
		default:
		}
	}
}

// storeIdle waits until no session of conn's database but conn's own runs
// a statement: a transaction whose client gave up on it has ended
// (committed or rolled back).
func storeIdle(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	testwait.For(t, 30*time.Second, func() bool {
		var n int
		require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
			AND state <> 'idle'`).Scan(&n))
		return n == 0
	}, "the store's sessions to end their statements")
}

// lateCommit runs call while tx holds a lock that the node's group commit
// waits for: once the commit gives up (obs), tx ends, so that the
// abandoned commit goes on. It returns call's answer, which must not come
// before. what names the call.
func lateCommit[R any](t *testing.T, obs *commitFailed, tx pgx.Tx, what string, call func() R) R {
	t.Helper()
	done := make(chan R, 1)
	go func() { done <- call() }()
	select {
	case <-obs.failed:
	case r := <-done:
		t.Fatalf("%s was answered (%+v) while its commit waited", what, r)
	case <-time.After(30 * time.Second):
		t.Fatal("the group commit did not give up")
	}
	// The lock goes: the abandoned commit goes on.
	require.NoError(t, tx.Rollback(context.Background()))
	var r R
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s was not answered", what)
	}
	return r
}

// A group commit that outlives its deadline (5 s, or AskTimeout) may still
// land: its statements and COMMIT have been sent, and PostgreSQL carries
// them out once the lock they wait for is free, though the node has given
// up on the connection. Its submissions were answered "not accepted, no
// token" (ERRORSTOREFAILED) while the action was in fact queued, and ran:
// a client that retried, as the error invites, ran it twice. A submission
// whose commit failed is answered once its fate is known: queued (its
// token), or not (the error), never both.
func TestClusterSubmitWhoseCommitLandsLateGetsItsToken(t *testing.T) {
	db, conn := soloStore(t)
	id := uuid.Must(uuid.NewV7())
	obs := &commitFailed{failed: make(chan struct{}, 1)}
	q, repo, _ := startSoloCluster(t, db, func(c *Config) {
		c.AskTimeout = time.Second
		c.Observer = obs
		c.NewID = func() (uuid.UUID, error) { return id, nil }
	})
	ctx := context.Background()

	// A row of the action's id, not committed: the submission's INSERT
	// waits for it (the primary key), as for any lock.
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO connector_actions (queue, id, seq, state, record) VALUES ('fetch', $1, -1, 6, '')`, []byte(id.String()))
	require.NoError(t, err)
	type result struct {
		tok string
		err error
	}
	r := lateCommit(t, obs, tx, "the submission", func() result {
		tok, err := q.Submit(ctx, &messages.ActionSpec{FetchAction: "SYNCHRONIZE",
			Params: messages.Params{{Name: "Mode", Value: "block"}}})
		return result{tok, err}
	})
	storeIdle(t, conn)
	var queued int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM connector_actions`).Scan(&queued))
	if r.err != nil {
		require.Zero(t, queued, "the submission was refused (%v), yet the action is queued", r.err)
		return
	}
	require.Equal(t, 1, queued)
	testwait.For(t, 30*time.Second, func() bool {
		st, err := q.Status(ctx, r.tok)
		return err == nil && st.State == messages.State_STATE_PROCESSING
	}, "the action to run under its token")
	repo.Release(r.tok)
	waitState(t, q, r.tok, messages.State_STATE_FINISHED)
}

// A change to an action that waits for a thread (here a Cancel) whose
// commit outlived its deadline was undone and refused ("nothing was
// changed"), though the commit, still under way in PostgreSQL, landed
// later: the store had the action Cancelled (no node claimed it again)
// while its owner answered Queued for good, and the client, told that
// nothing was changed, had no reason to ask again. Such a change is
// answered once the store has it (or another node owns the action).
func TestClusterCancelWhoseCommitLandsLateIsNotRefused(t *testing.T) {
	db, conn := soloStore(t)
	obs := &commitFailed{failed: make(chan struct{}, 1)}
	q, repo, _ := startSoloCluster(t, db, func(c *Config) { c.AskTimeout = time.Second; c.Observer = obs })
	ctx := context.Background()
	submitRunning(t, q, messages.Params{{Name: "Mode", Value: "block"}})
	submitRunning(t, q, messages.Params{{Name: "Mode", Value: "block"}})
	tok := submitMode(t, q, "block", 0) // both threads are taken: it waits
	_, id, err := messages.ParseToken(tok)
	require.NoError(t, err)
	waitState(t, q, tok, messages.State_STATE_QUEUED)
	storeIdle(t, conn)

	// Its row, locked: the Cancel's commit waits.
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT 1 FROM connector_actions WHERE id = $1 FOR UPDATE`, []byte(id.String()))
	require.NoError(t, err)
	type result struct {
		r   *messages.ActionReply
		err error
	}
	r := lateCommit(t, obs, tx, "the Cancel", func() result {
		r, err := q.Cancel(ctx, tok)
		return result{r, err}
	})
	storeIdle(t, conn)
	var state int
	require.NoError(t, conn.QueryRow(ctx, `SELECT state FROM connector_actions WHERE id = $1`, []byte(id.String())).Scan(&state))
	st, err := q.Status(ctx, tok)
	require.NoError(t, err)
	require.Equal(t, messages.State(state), st.State, "the store and the action's owner agree (the Cancel answered %v)", r.err)
	if r.err != nil {
		require.Equal(t, messages.State_STATE_QUEUED, st.State, "the Cancel was refused (%v)", r.err)
	} else {
		require.Equal(t, messages.State_STATE_CANCELLED, st.State)
	}
	repo.ReleaseAll()
}
