package queue

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store/pgstore"
)

// A retention pass removes at most a batch of ended actions (pgstore's
// Retain); a pass that removed a full batch is followed by the next at
// once, not a retainEvery (at least a second) later, so that a backlog
// goes at the store's pace. Here a batch is one action: thirty ended
// actions took thirty seconds to go a second apart.
func TestClusterRetentionFollowsAFullBatchAtOnce(t *testing.T) {
	pg := pgtest.StartT(t, pgtest.Options{})
	ctx := context.Background()
	db, err := pgstore.Open(ctx, pgstore.Config{URL: pg.DatabaseT(t), Node: "n1"})
	require.NoError(t, err)
	q, _, _ := startSoloCluster(t, db, func(c *Config) {
		c.MaximumFinishedActions, c.retainBatch = -1, 1 // keep none, one per pass
		c.MaximumThreads = 4
	})
	const n = 30
	for i := 0; i < n; i++ {
		_, err := q.Submit(ctx, &messages.ActionSpec{FetchAction: "SYNCHRONIZE",
			Params: messages.Params{{Name: "Mode", Value: "instant"}}})
		require.NoError(t, err)
	}
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		ids, err := db.List(ctx, "fetch", &messages.ListActions{})
		if assert.NoError(ct, err) {
			assert.Empty(ct, ids)
		}
	}, 15*time.Second, 20*time.Millisecond, "every ended action removed")
}
