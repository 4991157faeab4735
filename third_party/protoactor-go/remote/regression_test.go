package remote

// Regression tests for the connector's patches to remote (../PATCHES.md).

import (
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func quietSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
}

// deadAddress returns a loopback address nothing listens on.
func deadAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// A request to a node that is gone fails with a dead letter after
// (MaxRetryCount-1) × RetryInterval, not after upstream's fixed
// MaxRetryCount × 2s (10s by default), and not at the caller's timeout.
func TestRequestToDeadNodeFailsAfterConfiguredRetries(t *testing.T) {
	sys := quietSystem()
	r := NewRemote(sys, Configure("127.0.0.1", 0, WithMaxRetryCount(3), WithRetryInterval(300*time.Millisecond),
		WithShutdownTimeout(time.Second)))
	require.NoError(t, r.StartE())
	defer r.Shutdown(true)

	start := time.Now()
	_, err := sys.Root.RequestFuture(actor.NewPID(deadAddress(t), "someone"), wrapperspb.String("hi"), time.Minute).Result()
	took := time.Since(start)
	require.ErrorIs(t, err, actor.ErrDeadLetter)
	require.GreaterOrEqual(t, took, 600*time.Millisecond, "two waits between three attempts")
	require.Less(t, took, 30*time.Second, "failed by the retries, not by the caller's timeout")
}

// StartE reports an address it cannot listen on instead of panicking.
func TestStartEReturnsListenError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	r := NewRemote(quietSystem(), Configure("127.0.0.1", port))
	err = r.StartE()
	require.Error(t, err)
	require.Contains(t, err.Error(), l.Addr().String())
}

// Starting remoting leaves the global gRPC logger alone: upstream replaced
// it while gRPC clients made earlier (the etcd provider's) logged through
// it, a data race the race detector reports.
func TestStartLeavesGRPCLoggerAlone(t *testing.T) {
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			grpclog.Info("a gRPC client logs")
		}
	}()
	r := NewRemote(quietSystem(), Configure("127.0.0.1", 0, WithShutdownTimeout(time.Second)))
	require.NoError(t, r.StartE())
	stop.Store(true)
	wg.Wait()
	r.Shutdown(true)
}

// Shutting down while peers are connected neither races with the streams'
// handlers nor sends on a channel they closed (upstream could panic with
// "send on closed channel").
func TestShutdownWithConnectedPeers(t *testing.T) {
	for round := 0; round < 5; round++ {
		a, b := quietSystem(), quietSystem()
		ra := NewRemote(a, Configure("127.0.0.1", 0, WithShutdownTimeout(time.Second)))
		rb := NewRemote(b, Configure("127.0.0.1", 0, WithShutdownTimeout(time.Second)))
		require.NoError(t, ra.StartE())
		require.NoError(t, rb.StartE())
		echo, err := b.Root.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
			if m, ok := c.Message().(*wrapperspb.StringValue); ok {
				c.Respond(m)
			}
		}), "echo")
		require.NoError(t, err)
		_, err = a.Root.RequestFuture(actor.NewPID(b.Address(), echo.Id), wrapperspb.String("x"), 10*time.Second).Result()
		require.NoError(t, err)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); ra.Shutdown(true) }()
		go func() { defer wg.Done(); rb.Shutdown(true) }()
		wg.Wait()
	}
}

// A burst of large messages to one node is not packed into a gRPC message
// past the receiver's limit (gRPC's default, 4 MiB, here) when
// WithEndpointWriterBatchBytes bounds a batch: upstream packed up to
// EndpointWriterBatchSize (1000) messages into one, whatever their size;
// the receiver refused it, the stream broke and the messages were lost.
func TestEndpointWriterBatchBytesBoundsABatch(t *testing.T) {
	a, b := quietSystem(), quietSystem()
	ra := NewRemote(a, Configure("127.0.0.1", 0, WithShutdownTimeout(time.Second), WithEndpointWriterBatchBytes(1<<20)))
	rb := NewRemote(b, Configure("127.0.0.1", 0, WithShutdownTimeout(time.Second)))
	require.NoError(t, ra.StartE())
	require.NoError(t, rb.StartE())
	defer rb.Shutdown(true)
	defer ra.Shutdown(true)
	var got atomic.Int32
	sink, err := b.Root.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(*wrapperspb.StringValue); ok {
			if len(m.Value) > 1 {
				got.Add(1)
				return // sent without a sender: an answer would be a dead letter, its 2.5 MiB formatted for the log
			}
			c.Respond(m)
		}
	}), "sink")
	require.NoError(t, err)
	target := actor.NewPID(b.Address(), sink.Id)
	// Connected: the messages below queue behind each other, not behind
	// the connection's set-up.
	_, err = a.Root.RequestFuture(target, wrapperspb.String("x"), 10*time.Second).Result()
	require.NoError(t, err)
	// 2.5 MiB each: any two in one gRPC message pass 4 MiB.
	const n = 5
	big := wrapperspb.String(string(make([]byte, 5<<19)))
	for i := 0; i < n; i++ {
		a.Root.Send(target, big)
	}
	assert.Eventually(t, func() bool { return got.Load() == n }, 20*time.Second, 10*time.Millisecond)
	require.EqualValues(t, n, got.Load(), "messages delivered")
}

// A message too large for the receiver's limit is dropped alone: its
// requester is answered with a dead letter at once, and the messages
// queued before and after it, to the same node, are delivered. Two
// messages each within the limit but not together go in two gRPC
// messages. Upstream sent the large one: the sender's gRPC refused it
// (or the receiver broke the stream), the endpoint writer stopped, and
// every message packed or queued with it was lost; the request itself
// and one sent after it timed out.
func TestEndpointWriterDropsAMessageTooLargeAlone(t *testing.T) {
	const limit = 4 << 20
	opts := func() []ConfigOption {
		return []ConfigOption{WithShutdownTimeout(time.Second), WithEndpointWriterMaxMessageBytes(limit),
			WithDialOptions(grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(limit), grpc.MaxCallRecvMsgSize(limit))),
			WithServerOptions(grpc.MaxRecvMsgSize(limit), grpc.MaxSendMsgSize(limit))}
	}
	a, b := quietSystem(), quietSystem()
	ra := NewRemote(a, Configure("127.0.0.1", 0, opts()...))
	rb := NewRemote(b, Configure("127.0.0.1", 0, opts()...))
	require.NoError(t, ra.StartE())
	require.NoError(t, rb.StartE())
	defer rb.Shutdown(true)
	defer ra.Shutdown(true)
	var mu sync.Mutex
	var got []string
	sink, err := b.Root.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(*wrapperspb.StringValue); ok {
			mu.Lock()
			got = append(got, m.Value[:min(len(m.Value), 8)])
			mu.Unlock()
			if m.Value == "big reply" {
				c.Respond(wrapperspb.String(string(make([]byte, limit+1))))
				return
			}
			c.Respond(wrapperspb.String("ok"))
		}
	}), "sink")
	require.NoError(t, err)
	target := actor.NewPID(b.Address(), sink.Id)
	_, err = a.Root.RequestFuture(target, wrapperspb.String("x"), 10*time.Second).Result()
	require.NoError(t, err)

	a.Root.Send(target, wrapperspb.String("a"))
	big := a.Root.RequestFuture(target, wrapperspb.String(string(make([]byte, limit+1))), time.Minute)
	a.Root.Send(target, wrapperspb.String("b"))
	after := a.Root.RequestFuture(target, wrapperspb.String("c"), time.Minute)
	_, err = big.Result()
	require.ErrorIs(t, err, actor.ErrDeadLetter, "the requester is told, not left to time out")
	r, err := after.Result()
	require.NoError(t, err)
	require.Equal(t, "ok", r.(*wrapperspb.StringValue).Value)

	// Within the limit each, not together: 3 MiB and 3 MiB.
	three := string(make([]byte, 3<<20))
	f1 := a.Root.RequestFuture(target, wrapperspb.String("3a"+three), time.Minute)
	f2 := a.Root.RequestFuture(target, wrapperspb.String("3b"+three), time.Minute)
	_, err = f1.Result()
	require.NoError(t, err)
	_, err = f2.Result()
	require.NoError(t, err)

	// A reply too large is dropped on the replying node; its other
	// messages go on.
	lost := a.Root.RequestFuture(target, wrapperspb.String("big reply"), 2*time.Second)
	next := a.Root.RequestFuture(target, wrapperspb.String("d"), time.Minute)
	r, err = next.Result()
	require.NoError(t, err)
	require.Equal(t, "ok", r.(*wrapperspb.StringValue).Value)
	_, err = lost.Result()
	require.ErrorIs(t, err, actor.ErrTimeout)

	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"x", "a", "b", "c", "3a\x00\x00\x00\x00\x00\x00", "3b\x00\x00\x00\x00\x00\x00", "big repl", "d"}, got)
}
