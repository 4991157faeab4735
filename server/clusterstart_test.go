package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"syscall"
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
	return startClusterWith(t, etcd, "RemoteHost=127.0.0.1\nRemotePort=0\n")
}

// startClusterWith is startCluster with remote for the section's last
// lines (11 and 12: RemoteHost and RemotePort).
func startClusterWith(t *testing.T, etcd, remote string) error {
	t.Helper()
	dir := t.TempDir()
	// A port that was free a moment ago: the shared store is unreachable.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	pgPort := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	cfg := clusterConfig(t, dir, etcd, fmt.Sprintf(`Store=postgres://connector@127.0.0.1:%d/connector?sslmode=disable&connect_timeout=5
StorePassword=hunter2
%s`, pgPort, remote))
	return startConfigFails(t, cfg)
}

// startConfigFails starts a server on cfg and returns Start's error,
// failing the test if Start succeeds or does not return within startBound.
func startConfigFails(t *testing.T, cfg *config.Config) error {
	t.Helper()
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

// clusterConfig is the configuration c.cfg of a cluster node whose data
// is in dir and whose etcd is etcd: [Server], [Ingestion] and [Cluster]
// up to Etcd (line 8), then rest (from line 9).
func clusterConfig(t *testing.T, dir, etcd, rest string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("c.cfg", []byte(fmt.Sprintf(`[Server]
Port=0
DataDirectory=%s
[Ingestion]
IngestDirectory=%s
[Cluster]
Enabled=true
Etcd=%s
%s`, dir, filepath.Join(dir, "out"), etcd, rest)), nil)
	require.NoError(t, err)
	return cfg
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
	silent, _ := silentListener(t)
	err = startCluster(t, "http://"+silent)
	requireKey(t, err, "Etcd", 8)
}

// silentListener listens on 127.0.0.1, accepts connections and never
// answers on them (a server frozen or cut off behind a live TCP stack),
// until the test ends; it returns its address and a function that says
// how many connections it accepted.
func silentListener(t *testing.T) (addr string, accepted func() int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var held sync.WaitGroup
	var conns []net.Conn
	var mu sync.Mutex
	held.Add(1)
	go func() {
		defer held.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		held.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
}

// A join that fails because the node cannot listen for the other nodes
// names the key at fault, not [Cluster] Etcd (every join error was put
// there): RemotePort when the port is in use, RemoteHost when the address
// is not this machine's. No etcd is needed: the listener comes first.
func TestClusterStartRemotingErrorsNameTheirKey(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	etcd := "http://" + closed.Addr().String() // nothing listens there
	require.NoError(t, closed.Close())

	err = startClusterWith(t, etcd, fmt.Sprintf("RemoteHost=127.0.0.1\nRemotePort=%d\n", busy.Addr().(*net.TCPAddr).Port))
	requireKey(t, err, "RemotePort", 12)
	require.ErrorIs(t, err, syscall.EADDRINUSE)

	// 192.0.2.1 (TEST-NET-1) is no address of this machine.
	err = startClusterWith(t, etcd, "RemoteHost=192.0.2.1\nRemotePort=0\n")
	requireKey(t, err, "RemoteHost", 11)
	require.ErrorIs(t, err, syscall.EADDRNOTAVAIL)
}

// A node tells the other nodes the address it listens on for them: a
// wildcard one (0.0.0.0 or ::, from [Cluster] RemoteHost or from [Server]
// Host, its default, as an ACI port serving every interface has it) was
// advertised as it is ("[::]:7100"), an address where every other node
// reaches its own machine, not this one, so that no request ever crossed
// from one machine to another. It stops start-up now, naming the key,
// unless AdvertisedAddress gives the address to use. No etcd is needed:
// the check comes before the join.
func TestClusterStartRefusesAWildcardRemotingAddress(t *testing.T) {
	t.Parallel()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	etcd := "http://" + closed.Addr().String() // nothing listens there
	require.NoError(t, closed.Close())

	for _, host := range []string{"0.0.0.0", "::", "[::]"} {
		err := startClusterWith(t, etcd, "RemoteHost="+host+"\nRemotePort=7100\n")
		requireKey(t, err, "RemoteHost", 11)
		require.Contains(t, err.Error(), "AdvertisedAddress", host)
	}

	// From [Server] Host, RemoteHost's default.
	dir := t.TempDir()
	cfg, err := config.Parse("c.cfg", []byte(fmt.Sprintf(`[Server]
Host=0.0.0.0
Port=0
DataDirectory=%s
[Cluster]
Enabled=true
Etcd=%s
Store=postgres://connector@127.0.0.1:1/connector
`, dir, etcd)), nil)
	require.NoError(t, err)
	err = startConfigFails(t, cfg)
	var ce *config.Error
	require.True(t, errors.As(err, &ce), "%v", err)
	require.Contains(t, err.Error(), "config c.cfg:2: [Server] Host: ")
	require.Contains(t, err.Error(), "RemoteHost")

	// With AdvertisedAddress the wildcard is fine: the start-up goes on
	// to etcd (and stops there, nothing listening).
	err = startClusterWith(t, etcd, "RemoteHost=0.0.0.0\nRemotePort=0\nAdvertisedAddress=127.0.0.1:7100\n")
	requireKey(t, err, "Etcd", 8)
}

// An https:// etcd endpoint whose certificate the node does not trust
// (a private authority the machine's store lacks) failed the start-up
// with "context deadline exceeded" alone, after the etcd client's 5 s:
// nothing said that TLS was the trouble, nor which authorities the node
// trusts. The error now gives the handshake's own cause. The server here
// is no etcd; it only needs to speak TLS with a certificate of its own.
func TestClusterStartSaysWhyTLSToEtcdFails(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	err := startClusterWith(t, srv.URL, "RemoteHost=127.0.0.1\nRemotePort=0\n")
	requireKey(t, err, "Etcd", 8)
	require.Contains(t, err.Error(), "certificate signed by unknown authority", "%v", err)
	require.Contains(t, err.Error(), "the system's certificate authorities", "%v", err)
}
