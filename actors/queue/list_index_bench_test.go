package queue

import (
	"io"
	"log/slog"
	"runtime"
	"testing"

	"github.com/google/uuid"

	"github.com/connectorhq/connector/messages"
)

// benchManager holds n actions as a QueueManager after a run: queued ones
// in arrival order with priority 0 (as the memory benchmark queues them),
// or finished ones (start and end times set) for the list rows.
func benchManager(n int, st messages.State) *manager {
	m := &manager{entries: make(map[uuid.UUID]*entry, n), sh: &shared{log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	for i := range n {
		e := &entry{id: uuid.New(), seq: uint64(i + 1), state: st, queuedMs: 1_000_000 + int64(i)/4}
		if messages.Terminal(st) {
			e.startedMs, e.endedMs = e.queuedMs+1, e.queuedMs+2+int64(i%7)
		}
		m.entries[e.id] = e
		m.byState[st]++
		m.index.arrive(e)
		m.index.add(e)
	}
	return m
}

// BenchmarkListIndexMemory reports what the list index costs a queued
// action: the heap held by the trees of 100k queued actions, per action.
func BenchmarkListIndexMemory(b *testing.B) {
	const n = 100_000
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m := benchManager(n, messages.State_STATE_QUEUED)
		runtime.GC()
		runtime.ReadMemStats(&after)
		withIndex := after.HeapAlloc - before.HeapAlloc
		m.index = listIndex{}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(withIndex-(after.HeapAlloc-before.HeapAlloc))/n, "index-B/action")
		runtime.KeepAlive(m)
	}
}

// BenchmarkList: the list of the HTTP benchmark (Finished, by finish
// time, 100) out of 10,000 retained finished actions and 10,000 queued
// ones, from the indexes and (for reference, in the same run) by filtering
// and sorting every entry as the QueueManager did before them.
func BenchmarkList(b *testing.B) {
	m := benchManager(10_000, messages.State_STATE_FINISHED)
	q := benchManager(10_000, messages.State_STATE_QUEUED)
	for id, e := range q.entries {
		e.seq += 10_000
		m.entries[id] = e
		m.byState[e.state]++
		m.index.arrive(e)
		m.index.add(e)
	}
	f := &messages.ListActions{States: []messages.State{messages.State_STATE_FINISHED}, SortBy: messages.SortBy_SORT_BY_FINISH_TIME, MaxResults: 100}
	b.Run("indexed", func(b *testing.B) {
		for range b.N {
			if len(m.list(f).Ids) != 100 {
				b.Fatal("short list")
			}
		}
	})
	b.Run("filter-and-sort", func(b *testing.B) {
		for range b.N {
			if len(naiveList(m.entries, f)) != 100 {
				b.Fatal("short list")
			}
		}
	})
}
