package actor

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Regression tests of the connector's patches to this package (PATCHES.md);
// make test runs them with -race (PROTOACTOR_PATCH_TESTS).

// TestProcessRegistryConcurrentUse: the sharded registry keeps ids
// unique, finds what was added and forgets what was removed while many
// goroutines add, look up and remove at once (run with -race).
func TestProcessRegistryConcurrentUse(t *testing.T) {
	system := NewActorSystem()
	reg := system.ProcessRegistry
	const workers, each = 8, 2000

	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) { // go.mod's language version shares loop variables
			defer wg.Done()
			for i := 0; i < each; i++ {
				id := fmt.Sprintf("w%d/%d", w, i)
				proc := NewActorProcess(&defaultMailbox{})
				pid, ok := reg.Add(proc, id)
				if !assert.True(t, ok, "Add(%s) of a new id", id) {
					return
				}
				// A second process under the same id is refused, and the
				// first one stays.
				_, ok = reg.Add(NewActorProcess(&defaultMailbox{}), id)
				assert.False(t, ok, "Add(%s) of a taken id", id)
				got, ok := reg.Get(pid)
				assert.True(t, ok)
				assert.Same(t, proc, got)
				got, ok = reg.GetLocal(id)
				assert.True(t, ok)
				assert.Same(t, proc, got)
				if i%2 == 0 {
					reg.Remove(pid)
					assert.Equal(t, int32(1), proc.dead, "Remove marks the process dead")
					got, ok = reg.Get(pid)
					assert.False(t, ok)
					assert.Same(t, system.DeadLetter, got)
				}
			}
		}(w)
	}
	// Everyone races for the same few ids: exactly one Add of each wins.
	var won sync.Map
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if _, ok := reg.Add(NewActorProcess(&defaultMailbox{}), fmt.Sprintf("shared/%d", i)); ok {
					_, dup := won.LoadOrStore(i, w)
					assert.False(t, dup, "two Adds of shared/%d succeeded", i)
				}
			}
		}(w)
	}
	wg.Wait()

	for i := 0; i < 100; i++ {
		_, ok := won.Load(i)
		assert.True(t, ok, "no Add of shared/%d succeeded", i)
	}
	// What was kept is still there, what was removed is gone.
	for w := 0; w < workers; w++ {
		for i := 0; i < each; i++ {
			_, ok := reg.GetLocal(fmt.Sprintf("w%d/%d", w, i))
			assert.Equal(t, i%2 == 1, ok, "w%d/%d", w, i)
		}
	}
}

// TestSpawnNamedTakenName: through the registry, a second actor under a
// live name is refused with ErrNameExists, and the name is free again
// once the first one has stopped.
func TestSpawnNamedTakenName(t *testing.T) {
	system := NewActorSystem()
	props := PropsFromFunc(func(Context) {})
	pid, err := system.Root.SpawnNamed(props, "patched-registry")
	require.NoError(t, err)
	_, err = system.Root.SpawnNamed(props, "patched-registry")
	require.ErrorIs(t, err, ErrNameExists)
	require.NoError(t, system.Root.StopFuture(pid).Wait())
	_, err = system.Root.SpawnNamed(props, "patched-registry")
	require.NoError(t, err)
}

// countingInvoker counts the messages a mailbox hands it.
type countingInvoker struct{ user, system int }

func (c *countingInvoker) InvokeSystemMessage(interface{})          { c.system++ }
func (c *countingInvoker) InvokeUserMessage(interface{})            { c.user++ }
func (c *countingInvoker) EscalateFailure(interface{}, interface{}) {}

// TestMailboxScheduleDoesNotAllocate: waking an idle mailbox hands the
// dispatcher the function made once in RegisterHandlers instead of a new
// closure per wake-up (upstream allocated one each time), and the
// mailbox still runs every message it is posted.
func TestMailboxScheduleDoesNotAllocate(t *testing.T) {
	mb := Unbounded()().(*defaultMailbox)
	inv := &countingInvoker{}
	mb.RegisterHandlers(inv, NewSynchronizedDispatcher(300))

	allocs := testing.AllocsPerRun(1000, mb.schedule)
	assert.Zero(t, allocs, "allocations per wake-up of an idle mailbox")

	for i := 0; i < 10; i++ {
		mb.PostUserMessage(i)
		mb.PostSystemMessage(i)
	}
	assert.Equal(t, 10, inv.user)
	assert.Equal(t, 10, inv.system)
}

// unlistedParent spawns one listed and three unlisted children
// (WithUnlistedChild), records what it sees, and stops only u0 when it
// stops (u1 fails first; u2 is left for the test to stop).
type unlistedParent struct {
	child    *Props // unlisted
	listed   *PID
	unlisted [3]*PID
	children []*PID   // Children() after spawning
	failed   []*PID   // what reached its supervisor strategy
	ended    []string // ids of the Terminated it received
	stopped  bool
}

func (p *unlistedParent) Receive(ctx Context) {
	switch m := ctx.Message().(type) {
	case *Started:
		p.listed = ctx.Spawn(PropsFromFunc(func(Context) {}, WithDispatcher(NewSynchronizedDispatcher(300))))
		for i := range p.unlisted {
			p.unlisted[i], _ = ctx.SpawnNamed(p.child, fmt.Sprintf("u%d", i))
		}
		p.children = ctx.Children()
	case *Stopping:
		ctx.Stop(p.unlisted[0])
	case *Terminated:
		p.ended = append(p.ended, m.Who.Id)
	case *Stopped:
		p.stopped = true
	}
}

func (p *unlistedParent) HandleFailure(_ *ActorSystem, sup Supervisor, child *PID, _ *RestartStatistics, _ interface{}, _ interface{}) {
	p.failed = append(p.failed, child)
	sup.StopChildren(child)
}

// TestUnlistedChildren: children spawned WithUnlistedChild are not in the
// parent's Children, their failures reach the parent's supervisor
// strategy, their Terminated reaches the parent's actor, and the parent,
// whose context does not stop them, stops only once the last of them has
// stopped. Every actor runs on the synchronized dispatcher: each send is
// handled before it returns, so the test reads the actors' fields on its
// own goroutine.
func TestUnlistedChildren(t *testing.T) {
	system := NewActorSystem()
	root := system.Root
	p := &unlistedParent{child: PropsFromFunc(func(ctx Context) {
		if ctx.Message() == "fail" {
			panic("fail")
		}
	}, WithDispatcher(NewSynchronizedDispatcher(300)), WithUnlistedChild())}
	parent, err := root.SpawnNamed(PropsFromProducer(func() Actor { return p },
		WithDispatcher(NewSynchronizedDispatcher(300))), "unlisted-parent")
	require.NoError(t, err)
	require.Equal(t, []*PID{p.listed}, p.children, "Children lists only the listed child")
	for _, c := range p.unlisted {
		require.NotNil(t, c)
		_, ok := system.ProcessRegistry.Get(c)
		require.True(t, ok, "unlisted child %s runs", c.Id)
	}

	root.Send(p.unlisted[1], "fail")
	require.Equal(t, []*PID{p.unlisted[1]}, p.failed, "the failure reached the parent's strategy")
	require.Equal(t, []string{p.unlisted[1].Id}, p.ended)

	// The parent stops u0 and its context the listed child; u2 lives on,
	// and the parent waits for it.
	root.Stop(parent)
	require.ElementsMatch(t, []string{p.unlisted[1].Id, p.unlisted[0].Id, p.listed.Id}, p.ended)
	require.False(t, p.stopped, "the parent stopped before its unlisted child u2")
	_, ok := system.ProcessRegistry.Get(parent)
	require.True(t, ok, "the parent is still registered while u2 runs")

	root.Stop(p.unlisted[2])
	require.Len(t, p.ended, 4)
	require.Equal(t, p.unlisted[2].Id, p.ended[3])
	require.True(t, p.stopped, "the parent stopped after its last child")
	_, ok = system.ProcessRegistry.Get(parent)
	require.False(t, ok)
}

// seenPIDs is a Process that records the PIDs it is sent to.
type seenPIDs struct{ to []*PID }

func (s *seenPIDs) SendUserMessage(pid *PID, _ interface{}) { s.to = append(s.to, pid) }
func (s *seenPIDs) SendSystemMessage(*PID, interface{})     {}
func (s *seenPIDs) Stop(*PID)                               {}

// TestShareRef: a PID given pid's cached reference (ShareRef) reaches
// pid's process without a registry lookup or an allocation on its first
// send, carries its own RequestId to it, and leaves pid's cache as it was.
func TestShareRef(t *testing.T) {
	sys := NewActorSystem()
	defer sys.Shutdown()
	proc := &seenPIDs{to: make([]*PID, 0, 2000)}
	pid, ok := sys.ProcessRegistry.Add(proc, "shared")
	require.True(t, ok)
	dsts := make([]PID, 1001) // AllocsPerRun runs once more than asked
	msg := &struct{}{}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		d := &dsts[i]
		d.Address, d.Id, d.RequestId = pid.Address, pid.Id, uint32(i+1)
		pid.ShareRef(sys, d)
		sys.Root.Send(d, msg)
		i++
	})
	assert.Zero(t, allocs, "allocations per first send to a PID sharing pid's reference")
	require.Len(t, proc.to, len(dsts))
	for i := range proc.to {
		require.Same(t, &dsts[i], proc.to[i])
		require.Equal(t, uint32(i+1), proc.to[i].RequestId)
	}

	// Without it, the first send looks the process up (and allocates).
	fresh := &PID{Address: pid.Address, Id: pid.Id, RequestId: 7}
	sys.ProcessRegistry.Remove(pid)
	sys.Root.Send(fresh, msg)
	require.Len(t, proc.to, len(dsts), "removed from the registry: a new PID no longer reaches it")
	sys.Root.Send(pid, msg)
	require.Len(t, proc.to, len(dsts)+1, "pid's own cached reference still does")
}

// TestFutureKeepsItsFirstAnswer: a future resolved by a first message keeps
// it when a second one comes (a request answered twice, or an answer after
// the timeout); upstream replaced the result, while its waiter could be
// reading it.
func TestFutureKeepsItsFirstAnswer(t *testing.T) {
	sys := NewActorSystem()
	defer sys.Shutdown()
	f := NewFuture(sys, time.Minute)
	pid := f.PID()
	sys.Root.Send(pid, "first") // caches the process in pid, as a responder's sender does
	res, err := f.Result()
	require.NoError(t, err)
	require.Equal(t, "first", res)
	sys.Root.Send(pid, "second")
	sys.Root.Send(pid, &DeadLetterResponse{})
	res, err = f.Result()
	require.NoError(t, err)
	require.Equal(t, "first", res)

	f = NewFuture(sys, time.Millisecond)
	late := &PID{Address: f.PID().Address, Id: f.PID().Id}
	f.PID().ShareRef(sys, late) // reaches the future after its timeout removed it from the registry
	_, err = f.Result()
	require.ErrorIs(t, err, ErrTimeout)
	sys.Root.Send(late, "late")
	res, err = f.Result()
	require.ErrorIs(t, err, ErrTimeout)
	require.Nil(t, res)
}
