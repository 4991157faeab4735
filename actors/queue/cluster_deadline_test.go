package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// A request whose own deadline passes while it reads the shared store
// fails saying so (ErrTimeout), not that the store cannot be reached
// (ErrStore, ERRORSTOREFAILED): the store answers, the request's time ran
// out first. The store reports a call its caller cancelled as one that
// could not reach the database (the same for a call that outlives the
// store's own deadline, when the database does not answer), and the
// request passed that on.
func TestClusterRequestPastItsDeadlineSaysSo(t *testing.T) {
	db, conn := soloStore(t)
	q, _, _ := startSoloCluster(t, db)
	ctx := context.Background()
	tok, err := q.Submit(ctx, &messages.ActionSpec{FetchAction: "SYNCHRONIZE"})
	require.NoError(t, err)
	waitState(t, q, tok, messages.State_STATE_FINISHED)

	// The store's reads wait (a lock the test holds) longer than the
	// requests may.
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, `LOCK TABLE connector_actions IN ACCESS EXCLUSIVE MODE`)
	require.NoError(t, err)
	check := func(what string, call func(ctx context.Context) error) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		err := call(c)
		require.Error(t, err, what)
		require.True(t, errors.Is(err, messages.ErrTimeout), "%s: %v", what, err)
		require.False(t, errors.Is(err, messages.ErrStore), "%s: %v", what, err)
	}
	other := messages.NewToken("127.0.0.1", 7000, "FETCH", uuid.New())
	check("GetStatus of an action this node has no actor for", func(c context.Context) error {
		_, err := q.Status(c, other)
		return err
	})
	check("a list", func(c context.Context) error {
		_, err := q.List(c, &messages.ListActions{})
		return err
	})
	check("QueueStatus", func(c context.Context) error {
		_, err := q.QueueStatus(c)
		return err
	})
}
