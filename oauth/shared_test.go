package oauth

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/secret"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/pgstore"
)

// TestClusterNodesShareARotatedToken: the nodes of a cluster run a
// Webex task, each with its copy of the task's token file, and Webex
// rotates refresh tokens. On main each node refreshed from its own file:
// node A's refresh spent the token node B's copy still held, and B's next
// refresh was refused (invalid_grant: every action of the task on B
// ended as Error until `connector oauth` was run on B, which then spent
// A's). The token in use is now kept in the cluster's store, encrypted,
// and the nodes refresh from it one at a time.
func TestClusterNodesShareARotatedToken(t *testing.T) {
	srv, fa, cfg := webexTokens(t, true)
	dbURL := pgtest.StartT(t, pgtest.Options{}).DatabaseT(t)
	open := func() *pgstore.Store {
		st, err := pgstore.Open(context.Background(), pgstore.Config{URL: dbURL})
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		return st
	}
	// Node B has a copy of node A's token file (an administrator gives
	// every node one); node C has none.
	data, err := os.ReadFile(fa.Path)
	require.NoError(t, err)
	fb := TokenFile{Path: filepath.Join(t.TempDir(), "webex.token"), Key: fa.Key}
	require.NoError(t, os.WriteFile(fb.Path, data, 0o600))
	fc := TokenFile{Path: filepath.Join(t.TempDir(), "webex.token"), Key: fa.Key}
	fa.Store, fb.Store, fc.Store = open(), open(), open()
	fa.Name, fb.Name, fc.Name = "WEBEX", "WEBEX", "WEBEX" // the task's
	// A new source each time: oauth2's reuse of an access token would
	// otherwise answer without a refresh.
	refresh := func(f TokenFile) error {
		src, err := f.TokenSource(context.Background(), cfg)
		if err == nil {
			_, err = src.Token()
		}
		return err
	}
	require.NoError(t, refresh(fa))
	require.NoError(t, refresh(fb), "node B refreshes with the token node A's refresh issued")
	require.NoError(t, refresh(fa), "and node A with the one node B's issued")
	require.NoError(t, refresh(fc), "a node without a token file uses the cluster's token")
	require.Equal(t, 4, srv.Refreshes())

	// The store holds the token encrypted only.
	ds, err := fa.Store.Datastore(SharedDatastore(fa.Name))
	require.NoError(t, err)
	require.NoError(t, ds.ForEach(func(k, v []byte) error {
		require.NotContains(t, string(v), "rt-", "a refresh token in clear in the store")
		return nil
	}))

	// A new authorization (the old grant revoked) on node B is taken by
	// every node, and an older file (node A's) does not replace it.
	srv.RevokeRefreshTokens()
	require.ErrorContains(t, refresh(fa), "invalid_grant")
	require.NoError(t, fb.Save(&oauth2.Token{RefreshToken: srv.IssueRefreshToken()}, "client-id", nil))
	require.NoError(t, refresh(fb))
	require.NoError(t, refresh(fa))
	require.NoError(t, refresh(fc))
	require.NoError(t, refresh(fb))
}

// A store of one process keeps no token: the token file is the token's
// only home, as before.
func TestOneProcessStoreKeepsNoToken(t *testing.T) {
	_, f, cfg := webexTokens(t, true)
	st, err := store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	defer st.Close()
	f.Store = st
	src, err := f.TokenSource(context.Background(), cfg)
	require.NoError(t, err)
	_, err = src.Token()
	require.NoError(t, err)
	names, err := st.DatastoreNames()
	require.NoError(t, err)
	for _, n := range names {
		require.False(t, strings.HasPrefix(n, "oauth-token:"), n)
	}
}

// TestZombieNodesRefreshLeavesTheClusterAToken: a node paused for longer
// than its lease is declared dead (its actions taken over) and wakes up as
// a zombie, its Webex action still running until it learns it was dropped.
// A refresh it makes then spends the store's refresh token at Webex. On
// main its write of the token Webex issued in exchange was fenced like
// any write of a dead node: the store kept the spent token, the zombie
// restarted without the new one, and every node's next refresh was
// refused (invalid_grant: every Webex action of the cluster ended as
// Error until `connector oauth` was run again). The token is written in
// the refresh's turn whether or not its node still is a live member: the
// turn, not the membership, orders the refreshes.
func TestZombieNodesRefreshLeavesTheClusterAToken(t *testing.T) {
	srv, fa, cfg := webexTokens(t, true)
	dbURL := pgtest.StartT(t, pgtest.Options{}).DatabaseT(t)
	ctx := context.Background()
	open := func(node string) *pgstore.Store {
		st, err := pgstore.Open(ctx, pgstore.Config{URL: dbURL, Node: node})
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		require.NoError(t, st.RegisterNode(ctx, node, node+":7100", 1))
		return st
	}
	fb := TokenFile{Path: filepath.Join(t.TempDir(), "webex.token"), Key: fa.Key} // none: the store's
	fa.Store, fb.Store = open("a"), open("b")
	fa.Name, fb.Name = "WEBEX", "WEBEX"
	refresh := func(f TokenFile) error {
		src, err := f.TokenSource(ctx, cfg)
		if err == nil {
			_, err = src.Token()
		}
		return err
	}
	require.NoError(t, refresh(fa))
	require.NoError(t, refresh(fb))

	// Node a is declared dead, as node b's take-over does.
	_, err := fb.Store.(*pgstore.Store).Pool().Exec(ctx, `UPDATE connector_nodes SET dead = true WHERE id = 'a'`)
	require.NoError(t, err)
	_ = refresh(fa) // the zombie's
	require.Equal(t, 3, srv.Refreshes(), "the zombie's refresh reached Webex")
	require.NoError(t, refresh(fb), "the live node refreshes with the token Webex gave the zombie")
	require.NoError(t, refresh(fb))
}

// turnStore is a store of one process that says it is shared (store.Turns),
// as the cluster's PostgreSQL store is, with a turn that is no turn: one
// process's sources already take turns at a file (fileTurn).
type turnStore struct{ store.Store }

func (turnStore) Turn(_ string, fn func() error) error { return fn() }

// TestClusterTokenAfterAKeyChange: a cluster whose key was changed (every
// node stopped and started with a new [Security] AESKeyFile, as
// cluster.md says) still holds the token in use in its store, encrypted
// with the old key. Before, every refresh failed on that record ("not
// encrypted with the key") before it looked at the token file, so running
// `connector oauth` again, the documented remedy, changed nothing: the
// task's actions ended as Error until someone deleted the record from the
// database. A token file saved later than the record's token started from
// (a new authorization) now replaces a record that cannot be read; without
// one, the error says to authorize again.
func TestClusterTokenAfterAKeyChange(t *testing.T) {
	srv, f, cfg := webexTokens(t, true)
	mem, err := store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	defer mem.Close()
	f.Store, f.Name = turnStore{mem}, "WEBEX"
	refresh := func(f TokenFile) error {
		src, err := f.TokenSource(context.Background(), cfg)
		if err == nil {
			_, err = src.Token()
		}
		return err
	}
	require.NoError(t, refresh(f), "the record is written with the old key")

	// The key changes; the old token file no longer decrypts either.
	nf := f
	nf.Key = testKey(t)
	err = refresh(nf)
	require.ErrorIs(t, err, secret.ErrDecrypt)
	require.ErrorContains(t, err, "connector oauth")

	// A new authorization, saved with the new key, is taken.
	require.NoError(t, nf.Save(&oauth2.Token{RefreshToken: srv.IssueRefreshToken()}, "client-id", nil))
	require.NoError(t, refresh(nf))
	require.NoError(t, refresh(nf), "and the record now holds the rotated token, under the new key")
	ds, err := mem.Datastore(SharedDatastore("WEBEX"))
	require.NoError(t, err)
	b, err := ds.Get(sharedKey)
	require.NoError(t, err)
	var rec sharedRecord
	require.NoError(t, json.Unmarshal(b, &rec))
	_, err = nf.Key.Decrypt(rec.RefreshToken)
	require.NoError(t, err)
}
