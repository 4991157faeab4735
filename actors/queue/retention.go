package queue

import (
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/connectorhq/connector/store"
)

// retain evicts ended actions beyond MaximumFinishedActions or older than
// FinishedActionMaxAge, oldest first. An action whose worker has not exited
// yet (a Stop that outlived StopTimeout) is set aside and evicted when its
// thread is released, so it never holds up the others.
func (m *manager) retain(ctx actor.Context) {
	for m.endedOff < len(m.ended) && !m.startCut() {
		e := m.ended[m.endedOff]
		if m.entries[e.id] == e && !m.overRetention(e) {
			break
		}
		m.ended[m.endedOff] = nil
		m.endedOff++
		m.starting.Add(1) // Start waits while this progresses (waitRestored)
		switch {
		case m.entries[e.id] != e: // already evicted
		case e.slot:
			e.deferred = true
			m.ndefer++
		default:
			m.evict(ctx, e)
		}
	}
	if m.endedOff > 1024 && m.endedOff*2 > len(m.ended) {
		m.ended = slices.Clone(m.ended[m.endedOff:])
		m.endedOff = 0
	}
}

// overRetention reports whether ended action e should go: there are more
// ended actions than MaximumFinishedActions (not counting those already on
// their way out), or e is too old.
func (m *manager) overRetention(e *entry) bool {
	if m.nended-m.ndefer > m.cfg.MaximumFinishedActions {
		return true
	}
	maxAge := m.cfg.FinishedActionMaxAge
	return maxAge > 0 && e.endedMs < m.sh.now().Add(-maxAge).UnixMilli()
}

func (m *manager) evict(ctx actor.Context, e *entry) {
	if m.st != nil {
		b := m.batchOf()
		b.muts = append(b.muts, store.ActionMutation{Delete: e.id.String()})
		delete(m.retry, e.id.String()) // superseded
	}
	delete(m.entries, e.id)
	m.byState[e.state]--
	m.index.remove(e)
	m.nended--
	if e.crashed() == "" {
		ctx.Poison(e.pid) // Poison, not Stop: see retire.go
	}
}

func (m *manager) startTicker(ctx actor.Context) {
	if m.cfg.FinishedActionMaxAge <= 0 {
		return
	}
	m.tickStop = sendEvery(ctx, m.cfg.RetentionInterval, &retentionTick{})
}

// sendEvery sends msg to ctx's actor every interval from a goroutine of its
// own (the actor never sleeps in Receive), until the returned channel is
// closed.
func sendEvery(ctx actor.Context, every time.Duration, msg any) chan struct{} {
	stop := make(chan struct{})
	self, root := ctx.Self(), ctx.ActorSystem().Root
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				root.Send(self, msg)
			}
		}
	}()
	return stop
}
