package queue

import (
	"container/heap"
	"strings"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
)

// Actions that hold their tasks exclusively (fetch.Exclusive: a
// Synchronize, Update or Delete of the HTTP connector) run one per task at a
// time. The QueueManager keeps that rule itself, so that an action waiting
// for its task holds no thread:
//
//   - busy maps a task to the exclusive action that holds it, from its
//     dispatch until its slot is released (its worker has exited, so a
//     stopped action that is still unwinding keeps its task);
//   - dispatch takes waiting actions in priority order, as always, but an
//     exclusive action one of whose tasks is busy is parked on that task
//     (a heap per task, in the same order) and the next action is
//     considered instead;
//   - when a task is released, the first action parked on it goes back to
//     the main heap (or is parked on another of its tasks that is busy).
//
// A parked action is Queued like any other: Cancel, ChangePriority and
// Pause act on it where it is.

// exclusiveTasks returns the tasks an action holds exclusively while it
// runs: its spec's tasks if the repository says its fetch action is
// exclusive, else none.
func exclusiveTasks(repo fetch.Repository, spec *messages.ActionSpec) []string {
	ex, ok := repo.(fetch.Exclusive)
	if !ok || spec == nil || len(spec.Tasks) == 0 || !ex.Exclusive(strings.ToUpper(spec.FetchAction)) {
		return nil
	}
	tasks := make([]string, 0, len(spec.Tasks))
	for _, t := range spec.Tasks {
		t = strings.ToUpper(t)
		if !containsString(tasks, t) {
			tasks = append(tasks, t)
		}
	}
	return tasks
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// heapOf is the heap e waits in: the main one, or the one of the task it
// is parked on.
func (m *manager) heapOf(e *entry) *waitHeap {
	if e.parkedOn() == "" {
		return &m.waiting
	}
	return m.parked[e.parkedOn()]
}

// unqueue takes e out of whichever heap holds it.
func (m *manager) unqueue(e *entry) {
	if e.heapIdx < 0 {
		return
	}
	h := m.heapOf(e)
	heap.Remove(h, int(e.heapIdx))
	if t := e.parkedOn(); t != "" {
		if h.Len() == 0 {
			delete(m.parked, t)
		}
		e.x.parkedOn = ""
	}
}

// reprioritize restores the order of e's heap after its priority changed.
func (m *manager) reprioritize(e *entry) {
	if e.heapIdx >= 0 {
		heap.Fix(m.heapOf(e), int(e.heapIdx))
	}
}

// busyTask returns a task of e that another action holds, or "".
func (m *manager) busyTask(e *entry) string {
	for _, t := range e.exclusive() {
		if h := m.busy[t]; h != nil && h != e {
			return t
		}
	}
	return ""
}

// park puts e (taken out of the main heap) in the heap of task t.
func (m *manager) park(e *entry, t string) {
	h := m.parked[t]
	if h == nil {
		h = &waitHeap{}
		m.parked[t] = h
	}
	e.more().parkedOn = t
	heap.Push(h, e)
}

// hold marks e's tasks busy as it is dispatched.
func (m *manager) hold(e *entry) {
	for _, t := range e.exclusive() {
		m.busy[t] = e
	}
}

// unhold frees the tasks e held (its slot is released) and moves, for each,
// the first action parked on it back in line.
func (m *manager) unhold(e *entry) {
	for _, t := range e.exclusive() {
		if m.busy[t] != e {
			continue
		}
		delete(m.busy, t)
		h := m.parked[t]
		for h != nil && h.Len() > 0 {
			next := heap.Pop(h).(*entry)
			next.x.parkedOn = "" // it was parked, so next.x is set
			if other := m.busyTask(next); other != "" {
				m.park(next, other) // and consider the next one parked on t
				continue
			}
			heap.Push(&m.waiting, next)
			break
		}
		if h != nil && h.Len() == 0 {
			delete(m.parked, t)
		}
	}
}

// queuedLen is the number of Queued actions waiting for a thread, parked
// ones included.
func (m *manager) queuedLen() int {
	n := m.waiting.Len()
	for _, h := range m.parked {
		n += h.Len()
	}
	return n
}
