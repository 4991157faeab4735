package queue

import (
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
)

// backlogActor records, for every message it handles, whether the cluster
// manager's rule would have put its store operation off (backlog.waiting).
type backlogActor struct {
	b       *backlog
	gate    chan struct{}
	mu      sync.Mutex
	seen    []bool // waiting(), per message, in order
	started bool
}

type blMsg struct{ last bool }

func (a *backlogActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.started = true
	case *blMsg:
		if !msg.last {
			<-a.gate // hold the mailbox while the burst is posted
		}
		a.mu.Lock()
		a.seen = append(a.seen, a.b.waiting())
		a.mu.Unlock()
		if msg.last {
			ctx.Respond(true)
		}
	case string:
		ctx.Respond(a.b.waiting())
	}
}

// The cluster manager starts its next store operation only from a Receive
// that finds no other message waiting (backlog): a message that sees
// others waiting must be followed by one that sees none, or the operation
// would never start. Requests (envelopes), plain sends, and the system
// messages of the actor's children (Terminated: counted nowhere, since
// they reach Receive without being posted as user messages) keep the count
// exact.
func TestBacklogSaysWhenNothingWaits(t *testing.T) {
	sys := actor.NewActorSystem()
	defer sys.Shutdown()
	a := &backlogActor{gate: make(chan struct{})}
	b := &backlog{}
	a.b = b
	pid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return a },
		actor.WithMailbox(actor.Unbounded(b))))

	// A burst behind a held message: every message but the last sees
	// others waiting; the last sees none.
	sys.Root.Send(pid, &blMsg{})
	for i := 0; i < 9; i++ {
		sys.Root.Send(pid, &blMsg{})
	}
	f := sys.Root.RequestFuture(pid, &blMsg{last: true}, 10*time.Second)
	close(a.gate)
	_, err := f.Result()
	require.NoError(t, err)
	a.mu.Lock()
	seen := append([]bool(nil), a.seen...)
	a.mu.Unlock()
	require.Len(t, seen, 11)
	for i, w := range seen[:10] {
		require.True(t, w, "message %d had others behind it", i)
	}
	require.False(t, seen[10], "the last message of the burst")

	// Alone, a request sees nothing waiting, and the count is back at
	// zero once it has been handled (nothing leaked a count).
	res, err := sys.Root.RequestFuture(pid, "alone?", 10*time.Second).Result()
	require.NoError(t, err)
	require.Equal(t, false, res)
	require.Eventually(t, func() bool { return b.n.Load() == 0 }, 10*time.Second, time.Millisecond)
	require.True(t, a.started)
	require.True(t, counted(&blMsg{}))
	require.False(t, counted(&actor.Terminated{}), "system messages are not counted")
	require.False(t, counted(&actor.SuspendMailbox{}))
}
