package queue

import (
	"sync"
	"time"
)

// managerDispatcher runs the QueueManager's mailbox on a goroutine that
// waits for the next burst of messages (up to managerIdle) instead of
// protoactor's default dispatcher, which starts a goroutine per burst.
// Under submissions the manager's mailbox empties between most messages,
// and each fresh goroutine grew its stack again on the deep call chain of a
// spawn (runtime.newstack: ~10 % of an in-memory submit's CPU); a
// goroutine that waits keeps its stack. One that has waited managerIdle
// ends (a queue that has nothing to do holds no goroutine for long), and
// all end once the manager has stopped (stop).
type managerDispatcher struct {
	next       chan func() // unbuffered: a send succeeds only to a waiting goroutine
	quit       chan struct{}
	stopOnce   sync.Once
	throughput int
	idle       time.Duration // how long a goroutine waits for more (managerIdle)
}

// managerIdle is how long the manager's goroutine waits for more work.
const managerIdle = 50 * time.Millisecond

func newManagerDispatcher(throughput int, idle time.Duration) *managerDispatcher {
	return &managerDispatcher{next: make(chan func()), quit: make(chan struct{}), throughput: throughput, idle: idle}
}

// Schedule implements actor.Dispatcher. The mailbox schedules its run only
// when it goes from idle to running, so runs never overlap.
func (d *managerDispatcher) Schedule(fn func()) {
	select {
	case d.next <- fn:
	default:
		go d.loop(fn)
	}
}

// Throughput implements actor.Dispatcher.
func (d *managerDispatcher) Throughput() int { return d.throughput }

func (d *managerDispatcher) loop(fn func()) {
	idle := time.NewTimer(d.idle)
	defer idle.Stop()
	for {
		fn()
		select {
		case <-d.quit:
			return
		default:
		}
		idle.Reset(d.idle)
		select {
		case fn = <-d.next:
		case <-idle.C:
			return
		case <-d.quit:
			return
		}
	}
}

// stop ends the waiting goroutine (the manager has stopped): a later
// Schedule, for a message to the stopped actor, runs on a goroutine of
// its own that ends as soon as it is done.
func (d *managerDispatcher) stop() { d.stopOnce.Do(func() { close(d.quit) }) }
