// Package probe turns a worker's "started" and "saw its cancellation"
// callbacks into per-job channels, so that a benchmark can wait for the
// moment a job starts and read when its cancellation was observed
// (cmd/inproc for ours, cmd/peers for asynq and River).
package probe

import (
	"sync"
	"time"
)

// Probe holds the channels of the jobs it has been told about. The zero
// value is not usable: use New.
type Probe struct {
	mu       sync.Mutex
	started  map[string]chan struct{}
	observed map[string]chan time.Time
}

// New returns an empty Probe.
func New() *Probe {
	return &Probe{started: map[string]chan struct{}{}, observed: map[string]chan time.Time{}}
}

// Started returns the channel closed when job id starts (the worker
// closes it; the benchmark receives from it).
func (p *Probe) Started(id string) chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.started[id]
	if !ok {
		c = make(chan struct{})
		p.started[id] = c
	}
	return c
}

// Observed returns the channel that receives the time at which job id's
// worker saw its cancellation (capacity 1, so the worker never blocks).
func (p *Probe) Observed(id string) chan time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.observed[id]
	if !ok {
		c = make(chan time.Time, 1)
		p.observed[id] = c
	}
	return c
}

// Forget drops job id's channels.
func (p *Probe) Forget(id string) {
	p.mu.Lock()
	delete(p.started, id)
	delete(p.observed, id)
	p.mu.Unlock()
}
