package cluster_test

// Regression tests for the data races of the pinned upstream snapshot that
// a connector cluster hits (see ../PATCHES.md). Run with -race: without
// the fixes the race detector fails them.

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func quietSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
}

type echoGrain struct{}

func (echoGrain) Receive(ctx actor.Context) {
	if m, ok := ctx.Message().(*wrapperspb.StringValue); ok {
		ctx.Respond(m)
	}
}

// waitCalls waits until n more grain calls were made.
func waitCalls(t *testing.T, calls *atomic.Int64, n int64) {
	t.Helper()
	want := calls.Load() + n
	require.Eventually(t, func() bool { return calls.Load() >= want }, 30*time.Second, time.Millisecond)
}

func startMember(t *testing.T, agent *test.InMemAgent) *cluster.Cluster {
	t.Helper()
	sys := quietSystem()
	kind := cluster.NewKind("echo", actor.PropsFromProducer(func() actor.Actor { return echoGrain{} }))
	cfg := cluster.Configure("race", test.NewTestProvider(agent), disthash.New(),
		remote.Configure("127.0.0.1", 0, remote.WithShutdownTimeout(time.Second)),
		cluster.WithKinds(kind), cluster.WithGossipInterval(20*time.Millisecond),
		cluster.WithStartupDelay(0), cluster.WithShutdownDelay(0))
	c := cluster.New(sys, cfg)
	require.NoError(t, c.StartMemberE())
	return c
}

// TestTopologyChurnIsRaceFree reads the member list, gossips and routes
// grain calls while members join and leave: MemberList.Members, Length and
// ContainsMemberID, BlockList.BlockedMembers and IsBlocked, disthash's
// rendezvous table and the gossip state were all read without the locks
// their writers hold.
func TestTopologyChurnIsRaceFree(t *testing.T) {
	agent := test.NewInMemAgent()
	a := startMember(t, agent)
	b := startMember(t, agent)
	defer a.Shutdown(true)
	defer b.Shutdown(true)

	var stop atomic.Bool
	var wg sync.WaitGroup
	var calls, failures atomic.Int64
	for w := 0; w < 4; w++ {
		w := w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				_ = a.MemberList.Members().Members()
				_ = a.MemberList.Length()
				_ = a.MemberList.ContainsMemberID(b.ActorSystem.ID)
				_ = a.GetBlockedMembers().ToSlice()
				_ = a.Remote.BlockList().IsBlocked("nobody")
				id := fmt.Sprintf("id-%d-%d", w, i%50)
				if _, err := a.Request(id, "echo", wrapperspb.String(id), cluster.WithTimeout(time.Second)); err != nil {
					failures.Add(1)
				}
				calls.Add(1)
			}
		}()
	}
	for round := 0; round < 3; round++ {
		c := startMember(t, agent)
		waitCalls(t, &calls, 30) // calls and gossip run against the new topology
		c.Shutdown(true)
		waitCalls(t, &calls, 30) // and against the one it left
	}
	stop.Store(true)
	wg.Wait()
	require.Positive(t, calls.Load())
}
