package queue

import (
	"github.com/connectorhq/connector/messages"
)

func (m *manager) queueStatus() *messages.QueueStatusReply {
	return &messages.QueueStatusReply{
		Queue:            m.cfg.Name,
		Paused:           m.paused,
		Queued:           uint64(m.byState[messages.State_STATE_QUEUED]),
		Processing:       uint64(m.byState[messages.State_STATE_PROCESSING]),
		PausedActions:    uint64(m.byState[messages.State_STATE_PAUSED]),
		Finished:         uint64(m.byState[messages.State_STATE_FINISHED]),
		Cancelled:        uint64(m.byState[messages.State_STATE_CANCELLED]),
		Stopped:          uint64(m.byState[messages.State_STATE_STOPPED]),
		Error:            uint64(m.byState[messages.State_STATE_ERROR]),
		MaximumThreads:   uint32(m.cfg.MaximumThreads),
		MaximumQueueSize: uint32(m.cfg.MaximumQueueSize),
		Waiting:          uint64(max(m.nwait-m.writingSubmits(), 0)),
		Running:          uint64(m.running),
	}
}

// writingSubmits counts the submissions being written (the pending batch's
// and the one in flight): nwait counts them against MaximumQueueSize
// already, but they are in no state until written.
func (m *manager) writingSubmits() int {
	n := 0
	if m.pending != nil {
		n += len(m.pending.submits)
	}
	if m.inflight && m.sent != nil {
		n += len(m.sent.submits)
	}
	return n
}

// list selects and orders actions for GetStatus without a token (their
// ids: see walk).
func (m *manager) list(f *messages.ListActions) *messages.ListActionsReply {
	ids := make([]string, 0, min(max(int(f.MaxResults), 16), 1024))
	m.walk(f, func(e *entry) { ids = append(ids, e.id.String()) })
	return &messages.ListActionsReply{Ids: ids}
}

// listViews answers a list's listViews: the entries f selects, in f's
// order, each as a view of its task (viewTask) if the QueueManager owns
// its task's memory (a queued action whose actor has not been spawned: a
// list spawns no actor, see lookupTombstone), as its encoded list entry
// (viewEncoded: an ended action's, see entry.listed) if msg.encoded asks
// for those, or else only its id (viewAsk), for the requester to ask its
// actor. An action whose actor failed outside its own recovery (a
// tombstone) is asked too, as by token, and shows as Error alike.
//
// The views are copies: the requester makes the statuses (their
// allocations and tokens) on its own goroutine, so the QueueManager's
// part of a list of k actions is its walk of the indexes and k copies,
// and the submissions behind it in its mailbox wait for no more. A view's
// outcome is copied too (the task's actor, once spawned, writes its
// fields).
func (m *manager) listViews(msg *listViews) []listView {
	f := msg.f
	r := msg.buf[:0]
	m.walk(f, func(e *entry) {
		switch {
		case e.pid == nil && e.crashed() == "":
			v := listView{taskView: taskOf(e).view(), how: viewTask}
			if v.out != nil {
				o := *v.out
				v.out = &o
			}
			r = append(r, v)
		case msg.encoded && e.listed != "" && e.crashed() == "":
			r = append(r, listView{taskView: taskView{id: e.id}, how: viewEncoded, encoded: e.listed})
		default:
			r = append(r, listView{taskView: taskView{id: e.id}, how: viewAsk})
		}
	})
	return r
}

// listView is one action of a list, as listViews hands it out.
type listView struct {
	taskView
	encoded string // viewEncoded: its list entry
	how     viewKind
}

// viewKind says what a listView holds.
type viewKind uint8

const (
	viewTask    viewKind = iota // a view of its task
	viewEncoded                 // its encoded list entry
	viewAsk                     // only its id: its actor is asked
)

// walk calls fn for each action f selects, in f's order, from the list
// indexes (index.go): the trees of the states f asks for, walked in f's
// order from the bound of its range on the sort key and merged, until
// Skip+MaxResults entries have matched. Ties are in arrival order,
// following the direction.
func (m *manager) walk(f *messages.ListActions, fn func(*entry)) {
	k := sortKeyOf(f.SortBy)
	lo, hi, empty := keyRange(f, k)
	var want [nStates]bool
	for _, s := range f.States {
		if uint(s) < nStates {
			want[s] = true
		}
	}
	skip, limit := int(f.Skip), int(f.MaxResults)
	if empty {
		return
	}
	var (
		cs  [nStates]cursor
		buf [nStates]*cursor
	)
	run := buf[:0] // the cursors that have a current entry
	for s := range messages.State(nStates) {
		if len(f.States) > 0 && !want[s] || f.NotStarted && messages.Terminal(s) {
			continue
		}
		t, standIn := m.index.trees[s][k], false
		if t == nil { // key k is 0 throughout s: arrival order
			if t, standIn = m.index.base(s), true; lo > 0 || hi < 0 {
				continue
			}
		}
		if t != nil && t.Len() > 0 {
			c := &cs[s]
			c.t, c.k, c.standIn, c.desc, c.lo, c.hi = t, k, standIn, !f.Ascending, lo, hi
			run = append(run, c)
		}
	}
	// Paging: with one tree, no filter beyond its key and no bound on it,
	// the first entry of the page is found by rank, not by walking.
	at := 0
	if len(run) == 1 && run[0].unbounded() && narrowedOnlyByKey(f, k) {
		at, skip = skip, 0
	}
	n := 0
	for _, c := range run {
		if c.start(at); c.ok {
			run[n] = c
			n++
		}
	}
	run = run[:n]
	n = 0 // entries handed to fn
	for len(run) > 0 {
		// The next entry in f's order is the first of the cursors' (at most
		// one per state: a linear pick beats a heap).
		b := 0
		for i := 1; i < len(run); i++ {
			c := compareBy(run[i].it.Item(), run[b].it.Item(), k)
			if f.Ascending && c < 0 || !f.Ascending && c > 0 {
				b = i
			}
		}
		c := run[b]
		e := c.it.Item()
		if c.next(); !c.ok {
			c.it.Release()
			run = append(run[:b], run[b+1:]...)
		}
		if !matches(f, &want, e) {
			continue
		}
		if skip > 0 { // paging: the first Skip matches are left out
			skip--
			continue
		}
		fn(e)
		if n++; limit > 0 && n == limit {
			break
		}
	}
	for _, c := range run {
		c.it.Release()
	}
}
