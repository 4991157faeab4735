package webexfetch

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/oauth"
	"github.com/connectorhq/connector/store/pgstore"
)

// TestClusterNodesShareTheRotatedToken: a Webex task on two nodes of a
// cluster, each with its copy of the task's token file, and Webex
// rotating refresh tokens. On main node B's first Synchronize after node
// A's ended as Error ("no credentials: ... invalid_grant: The refresh
// token is invalid or expired."): A's refresh had spent the token B's
// copy held. The nodes now refresh from the token kept in the cluster's
// store.
func TestClusterNodesShareTheRotatedToken(t *testing.T) {
	dbURL := pgtest.StartT(t, pgtest.Options{}).DatabaseT(t)
	open := func() *pgstore.Store {
		st, err := pgstore.Open(context.Background(), pgstore.Config{URL: dbURL})
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		return st
	}
	e := newEnv(t, func(o *envOptions) { o.srv.RotateRefreshTokens = true })
	rooms := busyRooms(e, 2, 2)
	stA, stB := open(), open()
	e.st = stA
	ra := e.newRepo()
	// Node B's data folder has a copy of node A's token file.
	data, err := os.ReadFile(filepath.Join(e.dir, "data", "oauth", "mywebex.token"))
	require.NoError(t, err)
	copyPath := filepath.Join(t.TempDir(), "mywebex.token")
	require.NoError(t, os.WriteFile(copyPath, data, 0o600))
	e.cfg = e.config("OAuthTokenFile=" + copyPath)
	e.st = stB
	rb := e.newRepo()

	e.repo = ra
	require.Zero(t, e.sync().Errors)
	e.repo = rb
	require.Zero(t, e.sync().Errors, "node B refreshes with the token node A's refresh issued")
	requireAllOnce(t, e, rooms)
	require.Equal(t, 2, e.srv.Refreshes())
	names, err := stA.DatastoreNames()
	require.NoError(t, err)
	require.Contains(t, names, oauth.SharedDatastore("MYWEBEX"))
}
