package queue

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
)

type echo struct{ delay chan struct{} }

func (e *echo) Receive(ctx actor.Context) {
	if s, ok := ctx.Message().(string); ok {
		if s == "slow" {
			<-e.delay // blocks this test actor only
		}
		ctx.Respond("re:" + s)
	}
}

// A reply that arrives after its request timed out must not be taken for
// the answer to the next request that reuses the reply process.
func TestRepliesLateReplyNeverMisdelivered(t *testing.T) {
	t.Parallel()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond))
	defer sys.Shutdown()
	gate := make(chan struct{})
	slow := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &echo{delay: gate} }))
	fast := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &echo{} }))
	p := newReplies(sys, 1) // one replier: the next request would reuse it

	_, err := p.request(slow, "slow", 20*time.Millisecond)
	require.ErrorIs(t, err, actor.ErrTimeout)
	close(gate) // the slow reply is now on its way
	for i := 0; i < 100; i++ {
		res, err := p.request(fast, "fast", time.Second)
		require.NoError(t, err)
		require.Equal(t, "re:fast", res)
	}
	res, err := p.request(actor.NewPID(sys.Address(), "nobody"), "x", time.Second)
	require.ErrorIs(t, err, actor.ErrDeadLetter)
	require.Nil(t, res)
}

// twice answers a string request, then waits for hold and answers it
// again (as a handler that answers and then panics is answered again by
// its recovery or its tombstone), then closes done.
type twice struct{ hold, done chan struct{} }

func (a *twice) Receive(ctx actor.Context) {
	if s, ok := ctx.Message().(string); ok {
		ctx.Respond("re:" + s)
		<-a.hold // blocks this test actor only
		ctx.Respond("again:" + s)
		close(a.done)
	}
}

// A second answer to a request that comes after the request returned its
// replier to the pool must not be taken for the answer to the next request
// that reuses the replier.
func TestRepliesSecondAnswerNeverMisdelivered(t *testing.T) {
	t.Parallel()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond))
	defer sys.Shutdown()
	a := &twice{hold: make(chan struct{}), done: make(chan struct{})}
	dbl := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return a }))
	fast := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &echo{} }))
	p := newReplies(sys, 1) // one replier: the next request reuses it

	res, err := p.request(dbl, "first", time.Second)
	require.NoError(t, err)
	require.Equal(t, "re:first", res)
	close(a.hold)
	<-a.done // the second answer has reached the (pooled) replier
	for range 3 {
		res, err = p.request(fast, "next", time.Second)
		require.NoError(t, err)
		require.Equal(t, "re:next", res, "the reused replier answered with another request's reply")
	}

	// The same for a submission (requestWithdrawable).
	a = &twice{hold: make(chan struct{}), done: make(chan struct{})}
	dbl = sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return a }))
	res, err = p.requestWithdrawable(dbl, &envelope{env: actor.MessageEnvelope{Message: "first"}}, time.Second, func(*actor.PID) any { return "withdraw" })
	require.NoError(t, err)
	require.Equal(t, "re:first", res)
	close(a.hold)
	<-a.done
	res, err = p.requestWithdrawable(fast, &envelope{env: actor.MessageEnvelope{Message: "next"}}, time.Second, func(*actor.PID) any { return "withdraw" })
	require.NoError(t, err)
	require.Equal(t, "re:next", res, "the reused replier answered with another request's reply")
}
