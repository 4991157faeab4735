package fetchtest

import (
	"sync"
	"sync/atomic"
)

// Gate holds one call (a Repo's ValidateFunc, say) until the test
// releases it, so that a test can show what else is answered while that
// call runs: Arm it, start what makes the call, wait for Entered, then
// Release. Only the first Hold after Arm waits; every other returns at
// once. Release may be called more than once (say, deferred as well).
type Gate struct {
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

// NewGate returns a gate that is not armed.
func NewGate() *Gate {
	return &Gate{entered: make(chan struct{}), release: make(chan struct{})}
}

// Arm makes the next Hold wait for Release.
func (g *Gate) Arm() { g.armed.Store(true) }

// Hold waits for Release if it is the first call since Arm.
func (g *Gate) Hold() {
	if g.armed.CompareAndSwap(true, false) {
		close(g.entered)
		<-g.release
	}
}

// Entered is closed once a Hold is waiting.
func (g *Gate) Entered() <-chan struct{} { return g.entered }

// Release lets the held call (and any later one) go on.
func (g *Gate) Release() { g.once.Do(func() { close(g.release) }) }
