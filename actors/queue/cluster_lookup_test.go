package queue

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// twoMembers is the membership of a cluster of two nodes, a and b.
type twoMembers struct {
	soloMember
	others map[string]string
}

func (m *twoMembers) Members() map[string]string { return m.others }
func (m *twoMembers) Member(id string) (string, bool) {
	addr, ok := m.others[id]
	return addr, ok
}

// remoteSystem is an actor system with remoting on 127.0.0.1, whose
// QueueManager of queue fetch answers every OwnerLookup with reply.
func remoteSystem(t *testing.T, reply *messages.OwnerLookupReply) *actor.ActorSystem {
	t.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }))
	r := remote.NewRemote(sys, remote.Configure("127.0.0.1", 0))
	r.Start()
	t.Cleanup(func() { r.Shutdown(false); sys.Shutdown() })
	_, err := sys.Root.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*messages.OwnerLookup); ok {
			c.Respond(reply)
		}
	}), "queue-fetch")
	require.NoError(t, err)
	return sys
}

// While the shared store cannot be read, a request asks the nodes who
// owns its action. During a hand-over (another node claimed the action,
// or took it over) the old owner answers "owned" too until it hears of it
// (the claim's notice is sent once, and may be lost): the request went
// to whichever answer came last in a map's order, at random, so a Stop
// or Cancel reached the old owner (which answered that nothing was
// changed, or from its stale state) while the action ran on the new one.
// The answer with the highest epoch is the owner.
func TestClusterOwnerLookupPrefersTheNewestOwner(t *testing.T) {
	oldOwner := remoteSystem(t, &messages.OwnerLookupReply{Owned: true, Node: "a", Epoch: 1})
	newOwner := remoteSystem(t, &messages.OwnerLookupReply{Owned: true, Node: "b", Epoch: 2})
	mem := &twoMembers{soloMember: soloMember{id: "a", addr: oldOwner.Address(), lease: time.Minute},
		others: map[string]string{"a": oldOwner.Address(), "b": newOwner.Address()}}
	q := &ClusterQueue{cfg: Config{Name: "fetch", AskTimeout: 10 * time.Second}, sys: oldOwner, name: "queue-fetch", mem: mem}
	id := uuid.New()
	for range 20 {
		owner, addr, ok := q.lookupOwner(context.Background(), id)
		require.True(t, ok)
		require.Equal(t, "b", owner)
		require.Equal(t, newOwner.Address(), addr)
	}
}
