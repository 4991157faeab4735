package test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// Shutdown ends the provider's TTL goroutine (upstream leaked it).
func TestShutdownEndsTTLReports(t *testing.T) {
	before := goleak.IgnoreCurrent()
	agent := NewInMemAgent()
	p := NewTestProvider(agent, WithTestProviderRefreshTtl(time.Millisecond))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	c := cluster.New(sys, cluster.Configure("leak", p, disthash.New(), remote.Configure("127.0.0.1", 0)))
	c.ActorSystem.ProcessRegistry.Address = "127.0.0.1:1" // no remoting started: the provider alone
	c.Remote = remote.NewRemote(c.ActorSystem, c.Config.RemoteConfig)
	require.NoError(t, p.StartMember(c))
	require.NoError(t, p.Shutdown(true))
	goleak.VerifyNone(t, before, goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.(*ActorSystem).newDeadLetterThrottle"))
}
