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

// late holds a string request, and answers it when it is sent "release",
// then closes done; a "withdraw" it answers at once.
type late struct {
	held *actor.PID
	req  string
	done chan struct{}
}

func (a *late) Receive(ctx actor.Context) {
	if s, ok := ctx.Message().(string); ok {
		switch s {
		case "withdraw":
			ctx.Respond("withdrawn")
		case "release":
			ctx.Send(a.held, "re:"+a.req)
			close(a.done)
		default:
			a.held, a.req = ctx.Sender(), s
		}
	}
}

// A replier whose request timed out was retired (unregistered, and a new
// one registered for the next request); each request's own sender makes
// it safe to reuse: the late answer is dropped, and the next request on
// the same replier gets its own.
func TestRepliesTimedOutReplierIsReused(t *testing.T) {
	t.Parallel()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond))
	defer sys.Shutdown()
	fast := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &echo{} }))
	p := newReplies(sys, 1)
	reused := func() *actor.PID {
		t.Helper()
		require.Len(t, p.free, 1, "the replier is back in the pool")
		r := <-p.free
		_, ok := sys.ProcessRegistry.Get(r.pid)
		require.True(t, ok, "and still registered")
		require.Empty(t, r.ch)
		p.put(r)
		return r.pid
	}

	a := &late{done: make(chan struct{})}
	slow := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return a }))
	_, err := p.request(slow, "slow", 10*time.Millisecond)
	require.ErrorIs(t, err, actor.ErrTimeout)
	pid := reused()
	sys.Root.Send(slow, "release")
	waitDone(t, a.done) // the late answer has reached the replier, which dropped it
	res, err := p.request(fast, "next", time.Second)
	require.NoError(t, err)
	require.Equal(t, "re:next", res)
	require.Equal(t, pid.Id, reused().Id, "the same replier")

	// A submission whose wait timed out and was withdrawn.
	a = &late{done: make(chan struct{})}
	slow = sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return a }))
	res, err = p.requestWithdrawable(slow, &envelope{env: actor.MessageEnvelope{Message: "submit"}}, 10*time.Millisecond, func(*actor.PID) any { return "withdraw" })
	require.NoError(t, err)
	require.Equal(t, "withdrawn", res)
	require.Equal(t, pid.Id, reused().Id, "the same replier")
	sys.Root.Send(slow, "release")
	waitDone(t, a.done) // the submission's own answer, second, was dropped
	res, err = p.request(fast, "after", time.Second)
	require.NoError(t, err)
	require.Equal(t, "re:after", res)
}

// An answer taken just as the timer fired is the request's answer, and
// leaves nothing behind for the next request; after expire, an answer to
// the expired request is dropped.
func TestRepliesExpire(t *testing.T) {
	t.Parallel()
	sys := actor.NewActorSystem()
	defer sys.Shutdown()
	p := newReplies(sys, 1)
	r := p.get()
	var sender actor.PID
	r.next(sys, &sender)
	r.SendUserMessage(&sender, "just in time")
	res, ok := p.expire(r)
	require.True(t, ok)
	require.Equal(t, "just in time", res)
	require.Empty(t, r.ch)

	r = p.get()
	r.next(sys, &sender)
	res, ok = p.expire(r)
	require.False(t, ok)
	require.Nil(t, res)
	r.SendUserMessage(&sender, "late")
	require.Empty(t, r.ch, "an answer to an expired request is dropped")
}

func waitDone(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the test actor did not answer")
	}
}
