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
	}
}

// list selects and orders actions for GetStatus without a token (their
// ids: see walk).
func (m *manager) list(f *messages.ListActions) *messages.ListActionsReply {
	ids := make([]string, 0, min(max(int(f.MaxResults), 16), 1024))
	m.walk(f, func(e *entry) { ids = append(ids, e.id.String()) })
	return &messages.ListActionsReply{Ids: ids}
}

// listEntries answers ListEntries: the entries f selects, in f's order,
// each with its encoded list entry if it has one (an ended action; see
// entry.listed), or its status if it is a queued action whose actor has
// not been spawned (the QueueManager owns its task's memory until then,
// and a list spawns no actor: see lookupTombstone); the others, left
// empty, are named in ask (their ids) and at (their places), for the
// caller to ask their actors. An action whose actor failed outside its own
// recovery (a tombstone) is asked too, as List asks it, and shows as
// Error alike.
func (m *manager) listEntries(f *messages.ListActions) *listEntriesReply {
	r := &listEntriesReply{entries: make([]ListEntry, 0, min(max(int(f.MaxResults), 16), 1024))}
	m.walk(f, func(e *entry) {
		if e.pid == nil && e.crashed() == "" {
			t := taskOf(e)
			r.entries = append(r.entries, ListEntry{Status: t.statusAs(t.tok())})
			return
		}
		if e.listed == "" || e.crashed() != "" {
			r.ask = append(r.ask, e.id.String())
			r.at = append(r.at, len(r.entries))
			r.entries = append(r.entries, ListEntry{})
			return
		}
		r.entries = append(r.entries, ListEntry{Encoded: e.listed})
	})
	return r
}

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
