package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/etcdtest"
	"github.com/connectorhq/connector/internal/testwait"
)

// startBound is how long a start-up whose etcd cannot be used may take
// to fail: the etcd client's dial and request timeouts (5 s each,
// cluster.Join) with room for a loaded machine. Past it, the start-up is
// taken to hang.
const startBound = 60 * time.Second

// startCluster starts a server whose [Cluster] section names etcd and a
// shared store that nothing serves, and returns Start's error, failing
// the test if Start succeeds or does not return within startBound.
func startCluster(t *testing.T, etcd string) error {
	t.Helper()
	dir := t.TempDir()
	// A port that was free a moment ago: the shared store is unreachable.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	pgPort := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	cfg, err := config.Parse("c.cfg", []byte(fmt.Sprintf(`[Server]
Port=0
DataDirectory=%s
[Ingestion]
IngestDirectory=%s
[Cluster]
Enabled=true
Etcd=%s
Store=postgres://connector@127.0.0.1:%d/connector?sslmode=disable&connect_timeout=5
StorePassword=hunter2
RemoteHost=127.0.0.1
RemotePort=0
`, dir, filepath.Join(dir, "out"), etcd, pgPort)), nil)
	require.NoError(t, err)
	// Start runs on its own goroutine, so that a start-up that hangs is
	// seen; what it returns comes back here, and a server it started is
	// stopped on the test's goroutine (stop may call FailNow).
	type started struct {
		s   *Server
		err error
	}
	done := make(chan started, 1)
	go func() {
		s, err := Start(cfg, Options{Port: -1, LogOutput: io.Discard, Repository: func(Deps) (fetch.Repository, error) { return newTestRepo(), nil }})
		done <- started{s, err}
	}()
	timer := time.NewTimer(startBound)
	defer timer.Stop()
	select {
	case r := <-done:
		if r.s != nil {
			stop(t, r.s)
		}
		require.Error(t, r.err, "the start-up succeeded")
		return r.err
	case <-timer.C:
		// The test ends once Start has returned, not before: it must
		// not outlive the test.
		t.Cleanup(func() {
			if r := <-done; r.s != nil {
				stop(t, r.s)
			}
		})
		t.Fatalf("the start-up did not end within %s", startBound)
		return nil
	}
}

// requireKey checks that err is the configuration error of [Cluster] key,
// at its line of c.cfg, and keeps the password out.
func requireKey(t *testing.T, err error, key string, line int) {
	t.Helper()
	var ce *config.Error
	require.True(t, errors.As(err, &ce), "%v", err)
	require.Equal(t, "Cluster", ce.Section, "%v", err)
	require.Equal(t, key, ce.Key, "%v", err)
	require.Contains(t, err.Error(), fmt.Sprintf("config c.cfg:%d: [Cluster] %s: ", line, key))
	require.NotContains(t, err.Error(), "hunter2")
}

// A [Cluster] section whose etcd cannot be used stops the start-up, in
// bounded time, with an error naming [Cluster] Etcd (and the endpoints):
// whether nothing listens there any more (an etcd that was stopped) or
// something accepts connections and never answers. With the same etcd
// running, the start-up gets past the membership and stops at the shared
// store instead (naming [Cluster] Store): the key is the part that failed.
func TestClusterStartWithoutEtcdNamesTheKey(t *testing.T) {
	t.Parallel()
	etcd := etcdtest.StartT(t, etcdtest.Options{Members: 1})
	url := etcd.Members[0].ClientURL

	err := startCluster(t, url)
	requireKey(t, err, "Store", 9)

	etcd.Kill(0)
	testwait.For(t, 30*time.Second, func() bool { return !etcd.Members[0].Running() }, "etcd stopped")
	err = startCluster(t, url)
	requireKey(t, err, "Etcd", 8)
	require.Contains(t, err.Error(), url)

	// A listener that accepts and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var held sync.WaitGroup
	var conns []net.Conn
	var mu sync.Mutex
	held.Add(1)
	go func() {
		defer held.Done()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = silent.Close()
		held.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	err = startCluster(t, "http://"+silent.Addr().String())
	requireKey(t, err, "Etcd", 8)
}
