package server

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store/pgstore"
)

// A shared store whose TLS settings are wrong stops the start-up with an
// error naming [Cluster] Store and saying it is a misconfiguration of
// the connection's TLS settings; it used to read "the shared database is
// unavailable". Here the server does not speak TLS and the URL's sslmode
// requires it.
func TestSharedStoreTLSMisconfigurationNamesTheKey(t *testing.T) {
	t.Parallel()
	pg := pgtest.StartT(t, pgtest.Options{})
	url := strings.Replace(pg.DatabaseT(t), "sslmode=disable", "sslmode=require", 1)
	cfg, err := config.Parse("c.cfg", []byte(fmt.Sprintf("[Cluster]\nEnabled=true\nEtcd=http://127.0.0.1:2379\nStore=%s\n", url)), nil)
	require.NoError(t, err)
	db, err := openShared(t.Context(), cfg, "hunter2", "n1", slog.New(slog.DiscardHandler))
	if db != nil {
		db.Close()
	}
	var ce *config.Error
	require.True(t, errors.As(err, &ce), "%v", err)
	require.Equal(t, "Store", ce.Key)
	require.ErrorIs(t, err, pgstore.ErrTLS)
	require.NotErrorIs(t, err, pgstore.ErrUnavailable)
	require.Contains(t, err.Error(), "config c.cfg:4: [Cluster] Store: ")
	require.Contains(t, err.Error(), "fails on its TLS settings")
	require.Contains(t, err.Error(), "server refused TLS connection")
	require.NotContains(t, err.Error(), "hunter2")
}

// Every node of a cluster needs the same [Security] AESKeyFile: a
// password a request gives is encrypted by the node that accepts it and
// decrypted by the node that runs the action. Each node's default key is
// its own data folder's aes.ky, so two nodes started as `make cluster`
// started them used to end every such action run on the other node in
// Error ("not encrypted with the key in node1/aes.ky", rev20k); a node
// whose key is not the live nodes' now stops at start-up, naming
// AESKeyFile and them.
func TestClusterNodesNeedTheSameKeyFile(t *testing.T) {
	t.Parallel()
	pg := pgtest.StartT(t, pgtest.Options{})
	url := pg.DatabaseT(t)
	dir := t.TempDir()
	node := func(id, keyFile string) (*pgstore.Store, error) {
		cfg, db := keyCheckNode(t, url, dir, id, keyFile)
		return db, checkClusterKey(t.Context(), cfg, db, id, "127.0.0.1:1", everyNode{})
	}
	ctx := t.Context()
	keyA, keyB := filepath.Join(dir, "a.ky"), filepath.Join(dir, "b.ky")
	db1, err := node("n1", keyA) // the key file is created when missing
	require.NoError(t, err)
	require.NoError(t, db1.RegisterNode(ctx, "n1", "127.0.0.1:1", 4))

	_, err = node("n2", keyB)
	var ce *config.Error
	require.True(t, errors.As(err, &ce), "a node with a key of its own: %v", err)
	require.Equal(t, "AESKeyFile", ce.Key)
	require.Contains(t, err.Error(), "config c.cfg:4: [Security] AESKeyFile: ")
	require.Contains(t, err.Error(), "live nodes n1 use")

	db3, err := node("n3", keyA)
	require.NoError(t, err, "a node with the same key file")
	require.NoError(t, db3.RegisterNode(ctx, "n3", "127.0.0.1:3", 4))

	// Once the nodes of the old key are gone (declared dead), a cluster
	// can be restarted with a new key.
	require.NoError(t, db1.Release(ctx, "fetch", "n1", func(*messages.StoredAction) {}))
	_, err = node("n4", keyB)
	require.ErrorContains(t, err, "live nodes n3 use", "n3 recorded key A and is not dead")
	require.NoError(t, db3.Release(ctx, "fetch", "n3", func(*messages.StoredAction) {}))
	_, err = node("n4", keyB)
	require.NoError(t, err, "every node of the old key is gone")
}

// keyCheckNode opens the shared store at url as node id, whose [Security]
// AESKeyFile is keyFile; the store is closed when the test ends.
func keyCheckNode(t *testing.T, url, dir, id, keyFile string) (*config.Config, *pgstore.Store) {
	t.Helper()
	cfg, err := config.Parse("c.cfg", []byte(fmt.Sprintf("[Server]\nDataDirectory=%s\n[Security]\nAESKeyFile=%s\n[Cluster]\nEnabled=true\nEtcd=http://127.0.0.1:2379\nStore=%s\n", dir, keyFile, url)), nil)
	require.NoError(t, err)
	db, err := openShared(t.Context(), cfg, "", id, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return cfg, db
}

// everyNode is a membership in which every node is a member.
type everyNode struct{}

func (everyNode) Member(string) (string, bool) { return "127.0.0.1:1", true }
func (everyNode) LeaseTTL() time.Duration      { return time.Second }

// theseNodes is a membership of the nodes it lists.
type theseNodes []string

func (m theseNodes) Member(id string) (string, bool) {
	return "127.0.0.1:1", slices.Contains(m, id)
}
func (theseNodes) LeaseTTL() time.Duration { return 200 * time.Millisecond }

// A node that recorded a key and left without being declared dead (killed
// when no other node was left to see it go) does not keep a cluster from
// starting with another key: before, every node of the new key was
// refused, naming it, for good (nothing would ever declare it dead, and
// the refused nodes record nothing). A member with another key still
// refuses a node.
func TestClusterKeyChangeAfterEveryNodeWasKilled(t *testing.T) {
	t.Parallel()
	pg := pgtest.StartT(t, pgtest.Options{})
	url := pg.DatabaseT(t)
	dir := t.TempDir()
	keyA, keyB := filepath.Join(dir, "a.ky"), filepath.Join(dir, "b.ky")
	check := func(id, keyFile string, mem membership) error {
		cfg, db := keyCheckNode(t, url, dir, id, keyFile)
		if err := checkClusterKey(t.Context(), cfg, db, id, "127.0.0.1:1", mem); err != nil {
			return err
		}
		return db.RegisterNode(t.Context(), id, "127.0.0.1:1", 4)
	}
	require.NoError(t, check("n1", keyA, theseNodes{"n1"}))
	require.NoError(t, check("n2", keyA, theseNodes{"n1", "n2"}))
	// n1 and n2 were killed: the membership has neither.
	err := check("n3", keyB, theseNodes{"n2", "n3"})
	require.ErrorContains(t, err, "live nodes n2 use", "n2 is still a member")
	require.NoError(t, check("n4", keyB, theseNodes{"n4"}), "the nodes of key A are gone")
	require.NoError(t, check("n5", keyB, theseNodes{"n4", "n5"}))
	require.ErrorContains(t, check("n6", keyA, theseNodes{"n4", "n5", "n6"}), "live nodes n4, n5 use")
}

// Two nodes starting at the same moment with different key files: the
// second check sees the first and is refused. A check counted only once
// its node had registered, which its queue does after the check, so two
// nodes whose checks both came before either registered both started,
// and every action with a password that one accepted and the other ran
// ended in Error.
func TestClusterNodesStartingAtOnceNeedTheSameKeyFile(t *testing.T) {
	t.Parallel()
	pg := pgtest.StartT(t, pgtest.Options{})
	url := pg.DatabaseT(t)
	dir := t.TempDir()
	keyA, keyB := filepath.Join(dir, "a.ky"), filepath.Join(dir, "b.ky")
	check := func(id, keyFile string) error {
		cfg, db := keyCheckNode(t, url, dir, id, keyFile)
		return checkClusterKey(t.Context(), cfg, db, id, "127.0.0.1:1", everyNode{})
	}
	// One after the other, neither registered by its queue yet.
	require.NoError(t, check("n1", keyA))
	err := check("n2", keyB)
	require.ErrorContains(t, err, "live nodes n1 use", "n1 checked its key first")

	// At once: one of each pair passes, the other is refused.
	admin, err := pgstore.Open(t.Context(), pgstore.Config{URL: url})
	require.NoError(t, err)
	defer admin.Close()
	for i := range 5 {
		ids := [2]string{fmt.Sprint("x", i), fmt.Sprint("y", i)}
		var errs [2]error
		var wg sync.WaitGroup
		for j, key := range []string{keyA, keyB} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[j] = check(ids[j], key)
			}()
		}
		wg.Wait()
		refused := 0
		for _, err := range errs {
			if err != nil {
				require.ErrorContains(t, err, "is not the key the cluster's live nodes")
				refused++
			}
		}
		require.Equal(t, 1, refused, "round %d: %v", i, errs)
		// Start the next round on a clean slate: the nodes of this one
		// (and n1, n2) are gone.
		_, err := admin.Pool().Exec(t.Context(), `UPDATE connector_nodes SET dead = true`)
		require.NoError(t, err)
	}
}
