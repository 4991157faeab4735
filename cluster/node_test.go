package cluster

import (
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/etcdtest"
	"github.com/connectorhq/connector/messages"
)

func quietSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
}

func joinT(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := Join(quietSystem(), cfg)
	require.NoError(t, err)
	t.Cleanup(n.Leave)
	return n
}

func ids(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func waitMembers(t *testing.T, n *Node, want ...string) {
	t.Helper()
	sort.Strings(want)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, want, ids(n.Members()))
	}, 30*time.Second, 10*time.Millisecond)
}

// Three nodes on a three-member etcd see each other; killing etcd's
// leader changes nothing they see (no node leaves, none is evicted); a
// node that leaves is seen to go at once.
func TestMembershipSurvivesEtcdLeaderLoss(t *testing.T) {
	e := etcdtest.StartT(t, etcdtest.Options{Dir: t.TempDir()})
	cfg := Config{Endpoints: e.Endpoints(), Name: "t1", LeaseTTL: DefaultLeaseTTL}
	a, b, c := joinT(t, cfg), joinT(t, cfg), joinT(t, cfg)
	for _, n := range []*Node{a, b, c} {
		waitMembers(t, n, a.ID(), b.ID(), c.ID())
	}
	var mu sync.Mutex
	var left []string
	for _, n := range []*Node{a, b, c} {
		n.OnLeft(func(l []string) {
			mu.Lock()
			left = append(left, l...)
			mu.Unlock()
		})
	}
	leader, err := e.Leader()
	require.NoError(t, err)
	killed := time.Now()
	e.Kill(leader)
	// Wait for a new leader, and for longer than a lease could last
	// without renewal, so a lost lease would have shown.
	require.Eventually(t, func() bool {
		_, err := e.Leader()
		return err == nil && time.Since(killed) > 2*cfg.LeaseTTL
	}, time.Minute, 50*time.Millisecond)
	mu.Lock()
	leftNow := append([]string(nil), left...)
	mu.Unlock()
	require.Empty(t, leftNow, "nobody left when etcd's leader died")
	for _, n := range []*Node{a, b, c} {
		require.Len(t, n.Members(), 3)
		select {
		case <-n.Evicted():
			t.Fatalf("node %s was evicted: %v", n.ID(), n.EvictedErr())
		default:
		}
	}
	require.NoError(t, e.Restart(leader))

	c.Leave()
	waitMembers(t, a, a.ID(), b.ID())
	mu.Lock()
	leftNow = append([]string(nil), left...)
	mu.Unlock()
	require.Contains(t, leftNow, c.ID())
}

// A node whose membership is removed behind its back (as when it was
// paused longer than its lease) learns it is evicted; the others see it
// leave.
func TestEvictedNodeKnows(t *testing.T) {
	e := etcdtest.StartT(t, etcdtest.Options{Dir: t.TempDir(), Members: 1})
	cfg := Config{Endpoints: e.Endpoints(), LeaseTTL: 2 * time.Second, Name: "t2"}
	a, b := joinT(t, cfg), joinT(t, cfg)
	waitMembers(t, a, a.ID(), b.ID())
	cli, err := e.Client()
	require.NoError(t, err)
	defer cli.Close()
	_, err = cli.Delete(context.Background(), DefaultBaseKey+"/t2/"+b.ID())
	require.NoError(t, err)
	select {
	case <-b.Evicted():
		require.Error(t, b.EvictedErr())
	case <-time.After(30 * time.Second):
		t.Fatal("the node was not told it was evicted")
	}
	waitMembers(t, a, a.ID())
}

// heapInUse returns the bytes of live heap objects after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Two nodes that have talked to each other hold little memory for it: the
// queue of messages to another node starts small (endpointWriterQueue)
// and grows as needed. Upstream's default put a 16 MB slice on the heap
// for every node talked to, which a node's GC scanned on every cycle
// (issue 17: half an idle capped node's CPU at N=3).
func TestRemotingQueuesStartSmall(t *testing.T) {
	before := heapInUse()
	agent := test.NewInMemAgent()
	cfg := func() Config { // a provider per member, one agent
		return Config{Name: "small", Provider: test.NewTestProvider(agent), LeaseTTL: 2 * time.Second}
	}
	a, b := joinT(t, cfg()), joinT(t, cfg())
	waitMembers(t, a, a.ID(), b.ID())
	waitMembers(t, b, a.ID(), b.ID())
	// A request to an actor b does not have: a's queue to b carries it,
	// b's queue to a the dead letter that answers it.
	_, err := a.System().Root.RequestFuture(actor.NewPID(b.Addr(), "nobody"), &messages.ActionSpec{}, 10*time.Second).Result()
	require.ErrorIs(t, err, actor.ErrDeadLetter)
	grown := int64(heapInUse()) - int64(before)
	t.Logf("live heap grew by %.1f MB with two nodes that talked", float64(grown)/(1<<20))
	require.Less(t, grown, int64(8<<20), "live heap growth of two nodes that talked to each other")

	// The queue grows past its first size: a burst of many times it
	// arrives whole.
	const burst = 8 * endpointWriterQueue
	var got atomic.Int64
	counter, err := b.System().Root.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*messages.ActionSpec); ok {
			got.Add(1)
		}
	}), "counter")
	require.NoError(t, err)
	for i := 0; i < burst; i++ {
		a.System().Root.Send(actor.NewPID(b.Addr(), counter.Id), &messages.ActionSpec{Priority: int32(i)})
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, int64(burst), got.Load(), "messages of the burst that arrived")
	}, 30*time.Second, 10*time.Millisecond)
}

// Nodes listen for each other on an IPv6 address given as [Server] Host or
// [Cluster] RemoteHost, with or without brackets: remoting wrote
// "::1:0", which nobody can listen on ("too many colons in address").
func TestJoinOnIPv6(t *testing.T) {
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	e := etcdtest.StartT(t, etcdtest.Options{Dir: t.TempDir(), Members: 1})
	cfg := Config{Endpoints: e.Endpoints(), LeaseTTL: 2 * time.Second, Name: "v6"}
	a := joinT(t, withHost(cfg, "::1"))
	b := joinT(t, withHost(cfg, "[::1]"))
	waitMembers(t, a, a.ID(), b.ID())
	waitMembers(t, b, a.ID(), b.ID())
}

func withHost(c Config, host string) Config {
	c.Host = host
	return c
}
