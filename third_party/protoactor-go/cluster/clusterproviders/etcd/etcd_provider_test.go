package etcd

// Tests of the provider against a real etcd (Debian's etcd-server,
// /usr/bin/etcd), started on loopback ports with its data in a temporary
// folder and stopped by PID. A missing etcd fails the tests: they never
// skip.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

const etcdBinary = "/usr/bin/etcd"

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startEtcd starts a single-member etcd and returns its client URL.
func startEtcd(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(etcdBinary); err != nil {
		t.Fatalf("etcd is needed (Debian package etcd-server): %v", err)
	}
	dir := t.TempDir()
	client := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	require.NoError(t, err)
	cmd := exec.Command(etcdBinary, "--name", "m1", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "m1="+peer, "--initial-cluster-state", "new")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("etcd log:\n%s", b)
		}
	})
	c := newClient(t, client)
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := c.Get(ctx, "ping")
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "etcd did not start")
	return client
}

func newClient(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

type member struct {
	c        *cluster.Cluster
	p        *Provider
	mu       sync.Mutex
	ids      []string // the last topology's members
	evicted  chan SelfEvicted
	shutdown sync.Once
}

func (m *member) members() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.ids...)
}

func (m *member) stop() { m.shutdown.Do(func() { m.c.Shutdown(true) }) }

func startMember(t *testing.T, endpoint string, opts ...Option) *member {
	t.Helper()
	m := &member{evicted: make(chan SelfEvicted, 1)}
	opts = append([]Option{WithSelfEvicted(func(e SelfEvicted) { m.evicted <- e })}, opts...)
	p, err := NewWithConfig("/test", clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}, opts...)
	require.NoError(t, err)
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	sys.EventStream.Subscribe(func(ev any) {
		if top, ok := ev.(*cluster.ClusterTopology); ok {
			ids := make([]string, 0, len(top.Members))
			for _, mb := range top.Members {
				ids = append(ids, mb.Id)
			}
			sort.Strings(ids)
			m.mu.Lock()
			m.ids = ids
			m.mu.Unlock()
		}
	})
	cfg := cluster.Configure("etcdtest", p, disthash.New(),
		remote.Configure("127.0.0.1", 0, remote.WithShutdownTimeout(time.Second)),
		cluster.WithStartupDelay(0), cluster.WithShutdownDelay(0))
	m.c = cluster.New(sys, cfg)
	require.NoError(t, m.c.StartMemberE())
	m.p = p
	t.Cleanup(m.stop)
	return m
}

func sorted(ids ...string) []string {
	sort.Strings(ids)
	return ids
}

// Members see each other under their actor systems' ids, and a member that
// shuts down leaves at once (its lease is revoked), its client closed.
func TestMembersJoinAndLeave(t *testing.T) {
	ep := startEtcd(t)
	a := startMember(t, ep)
	b := startMember(t, ep)
	c := startMember(t, ep)
	all := sorted(a.c.ActorSystem.ID, b.c.ActorSystem.ID, c.c.ActorSystem.ID)
	for _, m := range []*member{a, b, c} {
		m := m
		require.Eventually(t, func() bool { return fmt.Sprint(m.members()) == fmt.Sprint(all) }, 20*time.Second, 10*time.Millisecond)
	}
	c.stop()
	rest := sorted(a.c.ActorSystem.ID, b.c.ActorSystem.ID)
	require.Eventually(t, func() bool { return fmt.Sprint(a.members()) == fmt.Sprint(rest) }, 20*time.Second, 10*time.Millisecond)
	cli := newClient(t, ep)
	resp, err := cli.Get(context.Background(), "/test/etcdtest/", clientv3.WithPrefix())
	require.NoError(t, err)
	require.EqualValues(t, 2, resp.Count, "the stopped member's key is gone")
	require.Error(t, c.p.client.Ctx().Err(), "the provider closed the client it made")
}

// The lease has the configured TTL (upstream: always 3s).
func TestTTLOption(t *testing.T) {
	ep := startEtcd(t)
	a := startMember(t, ep, WithTTL(7*time.Second))
	a.p.mu.Lock()
	id := a.p.leaseID
	a.p.mu.Unlock()
	ttl, err := newClient(t, ep).TimeToLive(context.Background(), id)
	require.NoError(t, err)
	require.EqualValues(t, 7, ttl.GrantedTTL)
}

// A member whose lease is lost (here revoked behind its back, as when it
// was paused longer than its TTL) is evicted: it says so once and leaves,
// rather than living on as a member of no cluster. The others see it go.
func TestLostLeaseEvictsTheMember(t *testing.T) {
	ep := startEtcd(t)
	a := startMember(t, ep)
	b := startMember(t, ep)
	both := sorted(a.c.ActorSystem.ID, b.c.ActorSystem.ID)
	require.Eventually(t, func() bool { return fmt.Sprint(a.members()) == fmt.Sprint(both) }, 20*time.Second, 10*time.Millisecond)
	b.p.mu.Lock()
	lease := b.p.leaseID
	b.p.mu.Unlock()
	_, err := newClient(t, ep).Revoke(context.Background(), lease)
	require.NoError(t, err)
	select {
	case ev := <-b.evicted:
		require.Equal(t, b.c.ActorSystem.ID, ev.MemberID)
		require.Error(t, ev.Reason)
	case <-time.After(30 * time.Second):
		t.Fatal("the member was not told it was evicted")
	}
	require.Error(t, b.p.GetHealthStatus())
	require.Eventually(t, func() bool { return fmt.Sprint(a.members()) == fmt.Sprint([]string{a.c.ActorSystem.ID}) }, 20*time.Second, 10*time.Millisecond)
}

// The watch starts at the revision the member list was read at: a member
// that registers between the list and the start of the watch is seen
// (upstream watched from "now" and missed it).
func TestWatchStartsAtTheListedRevision(t *testing.T) {
	ep := startEtcd(t)
	a := startMember(t, ep)
	a.p.cancel() // stop a's own watch, then replay the start-up sequence by hand
	a.p.wg.Wait()
	a.p.ctx, a.p.cancel = context.WithCancel(context.Background())
	rev, err := a.p.resync()
	require.NoError(t, err)
	late := NewNode("late-member", "127.0.0.1", 1, nil)
	data, err := late.Serialize()
	require.NoError(t, err)
	_, err = newClient(t, ep).Put(context.Background(), "/test/etcdtest/late-member", string(data))
	require.NoError(t, err)
	a.p.wg.Add(1)
	go a.p.watchLoop(rev)
	want := sorted(a.c.ActorSystem.ID, "late-member")
	require.Eventually(t, func() bool { return fmt.Sprint(a.members()) == fmt.Sprint(want) }, 20*time.Second, 10*time.Millisecond)
}

// frozenGet is an etcd whose reads never answer (it froze after the
// member registered): Get waits until its context ends. getting is
// closed when the first Get waits.
type frozenGet struct {
	clientv3.KV
	getting chan struct{}
	once    sync.Once
}

func (f *frozenGet) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	f.once.Do(func() { close(f.getting) })
	<-ctx.Done()
	return nil, ctx.Err()
}

// frozenRevoke is that etcd's lease service: Revoke never answers.
type frozenRevoke struct{ clientv3.Lease }

func (frozenRevoke) Revoke(ctx context.Context, _ clientv3.LeaseID) (*clientv3.LeaseRevokeResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// A start asked to stop (WithStartContext) after the member registered,
// while it lists the members of an etcd that froze meanwhile, returns at
// once. It gave up the list at once, but then revoked its lease with the
// full request timeout (5 s) of its own, which the frozen etcd never
// answered: the stop waited 5 s all the same. Its lease lapses by itself
// within its TTL.
func TestStoppedStartDoesNotWaitForTheRevoke(t *testing.T) {
	ep := startEtcd(t)
	cli := newClient(t, ep)
	kv := &frozenGet{KV: cli.KV, getting: make(chan struct{})}
	cli.KV, cli.Lease = kv, frozenRevoke{cli.Lease}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := NewWithClient("/test", cli, WithRequestTimeout(5*time.Second), WithStartContext(ctx))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	c := cluster.New(sys, cluster.Configure("etcdtest", p, disthash.New(),
		remote.Configure("127.0.0.1", 0, remote.WithShutdownTimeout(time.Second)),
		cluster.WithStartupDelay(0), cluster.WithShutdownDelay(0)))
	done := make(chan error, 1)
	go func() { done <- c.StartMemberE() }()
	select {
	case <-kv.getting:
	case err := <-done:
		t.Fatalf("the start ended before it listed the members: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the start never listed the members")
	}
	asked := time.Now()
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the start did not end")
	}
	took := time.Since(asked)
	t.Logf("the start ended %s after the request to stop: %v", took, err)
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, took, 3*time.Second, "the stopped start waited for the frozen etcd")
	require.NoError(t, p.Shutdown(false))
}
