package queue

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store/pgstore"
)

// A request that reads the shared store (an action no node here owns,
// the queue's counts, its pause) while PostgreSQL does not answer (its
// host frozen: the connections stay open, nothing comes back) used the
// request's context, which an ACI request's never ends: it waited for
// ever. It ends with the store's deadline (here 2 s), as the store's own
// calls do, with ERRORSTOREFAILED.
func TestClusterReadsEndWhilePostgreSQLDoesNotAnswer(t *testing.T) {
	pg := pgtest.StartT(t, pgtest.Options{})
	db, err := pgstore.Open(context.Background(), pgstore.Config{URL: pg.DatabaseT(t), Node: "n1", Timeout: 2 * time.Second})
	require.NoError(t, err)
	q, _, _ := startSoloCluster(t, db)
	ctx := context.Background() // as an ACI request's: no deadline, never done
	_, err = q.QueueStatus(ctx)
	require.NoError(t, err)
	unknown := messages.NewToken("127.0.0.1", 7000, "FETCH", uuid.Must(uuid.NewV7()))

	// PostgreSQL stops (as a frozen host: its connections stay open), and
	// goes on when the test ends.
	require.NoError(t, pg.Signal(syscall.SIGSTOP))
	t.Cleanup(func() { _ = pg.Signal(syscall.SIGCONT) })

	for name, call := range map[string]func() error{
		"Status":      func() error { _, err := q.Status(ctx, unknown); return err },
		"QueueStatus": func() error { _, err := q.QueueStatus(ctx); return err },
		"Pause":       func() error { _, err := q.Pause(ctx); return err },
		"List":        func() error { _, err := q.List(ctx, &messages.ListActions{}); return err },
	} {
		done := make(chan error, 1)
		go func() { done <- call() }()
		select {
		case err := <-done:
			require.ErrorIs(t, err, messages.ErrStore, name)
		case <-time.After(30 * time.Second):
			t.Fatalf("%s still waits for PostgreSQL", name)
		}
	}
}
