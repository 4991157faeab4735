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
	// Node B has the same configuration, and its own data folder, with a
	// copy of node A's token file (and the cluster's AES key).
	dirA, dirB := e.dir, t.TempDir()
	for _, f := range []string{"aes.ky", filepath.Join("data", "oauth", "mywebex.token")} {
		data, err := os.ReadFile(filepath.Join(dirA, f))
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dirB, f)), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dirB, f), data, 0o600))
	}
	e.dir = dirB
	e.cfg = e.config("")
	e.dir = dirA
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

// TestClusterSharedTokenKeepsItsNameWhenTasksChange: the tasks sharing a
// token file (OAuthTokenFile) share its refresh token in the cluster's
// store whatever other tasks there are. It was named after the first task
// (by name) using the file: a task added on the same file that sorted
// first renamed it, the store had no token under the new name, and the
// node refreshed from its token file, whose token the first rotation had
// spent: every action of the task ended as Error (invalid_grant).
func TestClusterSharedTokenKeepsItsNameWhenTasksChange(t *testing.T) {
	dbURL := pgtest.StartT(t, pgtest.Options{}).DatabaseT(t)
	st, err := pgstore.Open(context.Background(), pgstore.Config{URL: dbURL})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	e := newEnv(t, func(o *envOptions) { o.srv.RotateRefreshTokens = true })
	busyRooms(e, 1, 1)
	tok := "OAuthTokenFile=" + filepath.Join(e.dir, "data", "oauth", "mywebex.token")
	e.cfg = e.config(tok)
	e.st = st
	e.repo = e.newRepo()
	require.Zero(t, e.sync().Errors)
	require.Zero(t, e.sync().Errors)

	// A task on the same grant, whose name sorts first, is added.
	e.cfg = e.config(tok + "\n[Archive]\nWebexApiUrl=" + e.srv.URL + "\nOAuthAuthorizeUrl=" + e.srv.URL + "/authorize\nOAuthTokenUrl=" +
		e.srv.URL + "/access_token\nOAuthClientID=client-id\nOAuthClientSecret=client-secret\n" + tok)
	e.repo = e.newRepo()
	before := e.srv.Refreshes()
	job, _, err := e.run("SYNCHRONIZE", "TaskSections", "MyWebex")
	require.NoError(t, err)
	require.Zero(t, job.Snapshot()[0].Errors)
	require.Equal(t, before+1, e.srv.Refreshes(), "refreshed, with the token the last rotation issued")
}
