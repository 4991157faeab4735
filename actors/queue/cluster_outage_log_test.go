package queue

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/internal/testlog"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/store/pgstore"
)

// While PostgreSQL is down, a node's periodic operations on the shared
// store (its claims, its look for orphaned actions, retention, and its
// reconciliation, which takes turns with the look for orphans) fail and are tried again: each logs at level warn once for
// the run of failures (with the cause), at debug level for each attempt
// that fails after it, and once at level info when one succeeds again,
// as its writes do. Each was logged at level warn at every attempt: the
// look for orphans every second, claims and retention at their own pace,
// several lines a second per node for as long as the database was out of
// reach.
func TestClusterStoreOutageIsLoggedOncePerRun(t *testing.T) {
	pg := pgtest.StartT(t, pgtest.Options{})
	db, err := pgstore.Open(context.Background(), pgstore.Config{URL: pg.DatabaseT(t), Node: "n1", Timeout: 2 * time.Second})
	require.NoError(t, err)
	logged := &testlog.Buffer{}
	q, _, _ := startSoloClusterLease(t, db, 2*time.Second, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.FinishedActionMaxAge = 10 * time.Second // retention every second
	})
	_, err = q.QueueStatus(context.Background())
	require.NoError(t, err)

	ops := []string{
		"claiming queued actions failed",
		"taking over the actions of departed nodes failed",
		"retention in the shared store failed",
		"reconciling this node's actions with the shared store failed",
	}
	count := func(level, what string) int {
		n := 0
		for _, line := range strings.Split(logged.String(), "\n") {
			if strings.Contains(line, "level="+level) && strings.Contains(line, what) {
				n++
			}
		}
		return n
	}
	require.NoError(t, pg.Shutdown())
	down := true
	t.Cleanup(func() { // for the queue's shutdown, if the test failed while it was down
		if down {
			_ = pg.StartAgain()
		}
	})
	for _, what := range ops {
		testwait.For(t, 60*time.Second, func() bool { return count("WARN", what)+count("DEBUG", what) >= 3 },
			"three failed attempts of %q", what)
	}
	out := logged.String()
	for _, what := range ops {
		require.Equal(t, 1, count("WARN", what), "%q at level warn once for the run of failures:\n%s", what, out)
		first := out[strings.Index(out, what):]
		require.Contains(t, first[:strings.Index(first, "\n")], "the shared database is unavailable", "%q: the cause", what)
	}

	require.NoError(t, pg.StartAgain())
	down = false
	resumed := []string{"claiming queued actions resumed", "taking over the actions of departed nodes resumed",
		"retention in the shared store resumed", "reconciling this node's actions with the shared store resumed"}
	for _, what := range resumed {
		testwait.For(t, 60*time.Second, func() bool { return count("INFO", what) == 1 }, "%q at level info", what)
	}
	for _, what := range ops {
		require.Equal(t, 1, count("WARN", what), "%q:\n%s", what, logged.String())
	}
}
