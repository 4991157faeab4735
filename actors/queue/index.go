package queue

import (
	"bytes"
	"math"

	"github.com/tidwall/btree"

	"github.com/connectorhq/connector/messages"
)

// The list indexes. A list (GetStatus without a token, GetActionParameters
// without one, CancelQueued) selects actions by state, queue time, finish
// time and priority, and pages through them in one of four orders. The
// QueueManager keeps, for each state, the entries in that state ordered by
// each sort key: a list walks the trees of the states it asks for in its
// order, from the bound of its range on the sort key, merging them, and
// stops after Skip+MaxResults matches. It reads the actions it returns and
// those a filter on another key (or NotStarted) passes over on the way,
// never every retained action.
//
// Every order ties in arrival order (seq), then id. A queued action has no
// start or end time and, most often, priority 0: in a state where every
// entry has key 0, the order by that key is arrival order, so no tree of
// its own is kept for it (a queued action would pay ~20 bytes per tree).
// The tree of such a key is built the first time an entry of that state has
// a key other than 0, and kept from then on. Likewise arrival order is the
// queue time order as long as queue times grow with seq (the clock never
// went back between two submissions): the queue time tree stands for it,
// and a separate arrival tree is built, for every state, only once they
// disagree.
//
// An entry's state, priority, start and end times are its keys: they change
// only through (*manager).rekey, which takes the entry out of its trees
// first and puts it back after. queuedMs and seq never change.

// sortKey is the key a tree orders its entries by, then by seq (arrival)
// and id (unique, so that no two entries are equal).
type sortKey uint8

const (
	keyQueued sortKey = iota
	keyStarted
	keyEnded
	keyPriority
	nKeys
	keyArrival = nKeys // seq then id: the stand-in order of a key that is 0 throughout a state
)

func keyOf(e *entry, k sortKey) int64 {
	switch k {
	case keyStarted:
		return e.startedMs
	case keyEnded:
		return e.endedMs
	case keyPriority:
		return int64(e.priority)
	case keyArrival:
		return 0
	}
	return e.queuedMs
}

// sortKeyOf maps a list's SortBy to its key; an unknown value sorts by
// queue time, as the default does.
func sortKeyOf(s messages.SortBy) sortKey {
	switch s {
	case messages.SortBy_SORT_BY_START_TIME:
		return keyStarted
	case messages.SortBy_SORT_BY_FINISH_TIME:
		return keyEnded
	case messages.SortBy_SORT_BY_PRIORITY:
		return keyPriority
	}
	return keyQueued
}

// compareBy orders entries by key k, then arrival, then id.
func compareBy(a, b *entry, k sortKey) int {
	ka, kb := keyOf(a, k), keyOf(b, k)
	switch {
	case ka < kb:
		return -1
	case ka > kb:
		return 1
	case a.seq < b.seq:
		return -1
	case a.seq > b.seq:
		return 1
	}
	return bytes.Compare(a.id[:], b.id[:])
}

// nStates covers every messages.State value an entry can hold (the same
// bound as manager.byState).
const nStates = 8

// listIndex is the QueueManager's trees: trees[state][key] (keyArrival
// included). Only the QueueManager's goroutine touches it (no locks).
type listIndex struct {
	trees [nStates][nKeys + 1]*btree.BTreeG[*entry]
	// inverted: two entries have seq and queue time in opposite orders
	// (the arrival trees exist). lastSeq, lastQueued: of the last entry
	// that arrived.
	inverted bool
	lastSeq  uint64
	lastQ    int64
	arrived  bool
}

// lessFuncs are the trees' orders, one function value per key.
var lessFuncs = [nKeys + 1]func(a, b *entry) bool{
	func(a, b *entry) bool { return compareBy(a, b, keyQueued) < 0 },
	func(a, b *entry) bool { return compareBy(a, b, keyStarted) < 0 },
	func(a, b *entry) bool { return compareBy(a, b, keyEnded) < 0 },
	func(a, b *entry) bool { return compareBy(a, b, keyPriority) < 0 },
	func(a, b *entry) bool { return compareBy(a, b, keyArrival) < 0 },
}

func newTree(k sortKey) *btree.BTreeG[*entry] {
	return btree.NewBTreeGOptions(lessFuncs[k], btree.Options{NoLocks: true})
}

// base is the tree in arrival order of state s (nil when s is empty and
// has never held an entry).
func (x *listIndex) base(s messages.State) *btree.BTreeG[*entry] {
	if x.inverted {
		return x.trees[s][keyArrival]
	}
	return x.trees[s][keyQueued]
}

// arrive notes a new entry's seq and queue time before it is first added:
// an entry that arrives out of seq order, or queued earlier than the one
// before it, means queue time order is no longer arrival order.
func (x *listIndex) arrive(e *entry) {
	if x.arrived && !x.inverted && (e.seq <= x.lastSeq || e.queuedMs < x.lastQ) {
		x.inverted = true
		for s := range x.trees {
			if q := x.trees[s][keyQueued]; q != nil {
				t := newTree(keyArrival)
				q.Scan(func(e *entry) bool { t.Set(e); return true })
				x.trees[s][keyArrival] = t
			}
		}
	}
	if !x.arrived || e.seq > x.lastSeq {
		x.lastSeq, x.lastQ, x.arrived = e.seq, e.queuedMs, true
	}
}

// add puts e in the trees of its state. It reports false if e was there
// already (a bug: the trees would then disagree with the entries).
func (x *listIndex) add(e *entry) bool {
	s := e.state
	if uint(s) >= nStates {
		return false
	}
	ok := true
	set := func(k sortKey) {
		t := x.trees[s][k]
		if t == nil {
			t = newTree(k)
			x.trees[s][k] = t
		}
		if _, dup := t.Set(e); dup {
			ok = false
		}
	}
	set(keyQueued)
	if x.inverted {
		set(keyArrival)
	}
	for _, k := range [...]sortKey{keyStarted, keyEnded, keyPriority} {
		if keyOf(e, k) != 0 && x.trees[s][k] == nil {
			// The first entry of s whose key k is not 0: build the tree,
			// from the arrival order that stood for it until now.
			t := newTree(k)
			x.base(s).Scan(func(o *entry) bool { t.Set(o); return true })
			x.trees[s][k] = t
			continue
		}
		if x.trees[s][k] != nil {
			set(k)
		}
	}
	return ok
}

// remove takes e out of the trees of its state, under its current keys. It
// reports false if e was not found in all of them (a bug).
func (x *listIndex) remove(e *entry) bool {
	s := e.state
	if uint(s) >= nStates {
		return false
	}
	ok := true
	for _, t := range x.trees[s] {
		if t == nil {
			continue
		}
		if _, found := t.Delete(e); !found {
			ok = false
		}
	}
	if x.trees[s][keyQueued] == nil {
		ok = false
	}
	return ok
}

// rekey changes e's state, priority and times, keeping the trees and the
// counts per state in step.
func (m *manager) rekey(e *entry, s messages.State, prio int32, startedMs, endedMs int64) {
	if e.state == s && e.priority == prio && e.startedMs == startedMs && e.endedMs == endedMs {
		return
	}
	if !m.index.remove(e) {
		m.sh.log.Error("queue: list index out of step with the actions (remove)", "id", e.id, "state", e.state.String())
	}
	m.byState[e.state]--
	m.byState[s]++
	e.state, e.priority, e.startedMs, e.endedMs = s, prio, startedMs, endedMs
	if !m.index.add(e) {
		m.sh.log.Error("queue: list index out of step with the actions (add)", "id", e.id, "state", e.state.String())
	}
}

// keyRange is the range [lo, hi] of sort key k that f's filters allow (a
// superset: matches has the last word). empty: nothing can match.
func keyRange(f *messages.ListActions, k sortKey) (lo, hi int64, empty bool) {
	lo, hi = math.MinInt64, math.MaxInt64
	after := func(v int64) { // exclusive lower bound
		if v != math.MaxInt64 {
			lo = max(lo, v+1)
		} else {
			empty = true
		}
	}
	before := func(v int64) { // exclusive upper bound
		if v != math.MinInt64 {
			hi = min(hi, v-1)
		} else {
			empty = true
		}
	}
	switch k {
	case keyQueued:
		if f.QueuedAfterUnixMs != 0 {
			after(f.QueuedAfterUnixMs)
		}
		if f.QueuedBeforeUnixMs != 0 {
			before(f.QueuedBeforeUnixMs)
		}
	case keyEnded:
		if f.FinishedAfterUnixMs != 0 {
			after(f.FinishedAfterUnixMs)
		}
		if f.FinishedBeforeUnixMs != 0 {
			before(f.FinishedBeforeUnixMs)
		}
	case keyPriority:
		if f.HasMinPriority {
			lo = int64(f.MinPriority)
		}
		if f.HasMaxPriority {
			hi = int64(f.MaxPriority)
		}
	}
	return lo, hi, empty || lo > hi
}

// matches reports whether e passes every filter of f; want is f.States as
// a set.
func matches(f *messages.ListActions, want *[nStates]bool, e *entry) bool {
	switch {
	case len(f.States) > 0 && (uint(e.state) >= nStates || !want[e.state]):
		return false
	case f.NotStarted && (messages.Terminal(e.state) || e.live):
		return false
	case f.QueuedAfterUnixMs != 0 && e.queuedMs <= f.QueuedAfterUnixMs,
		f.QueuedBeforeUnixMs != 0 && e.queuedMs >= f.QueuedBeforeUnixMs:
		return false
	case f.FinishedAfterUnixMs != 0 && (e.endedMs == 0 || e.endedMs <= f.FinishedAfterUnixMs),
		f.FinishedBeforeUnixMs != 0 && (e.endedMs == 0 || e.endedMs >= f.FinishedBeforeUnixMs):
		return false
	case f.HasMinPriority && e.priority < f.MinPriority, f.HasMaxPriority && e.priority > f.MaxPriority:
		return false
	}
	return true
}

// narrowedOnlyByKey reports whether f filters on nothing but states and the
// range of sort key k: then every entry a cursor yields matches.
func narrowedOnlyByKey(f *messages.ListActions, k sortKey) bool {
	if f.NotStarted {
		return false
	}
	if k != keyQueued && (f.QueuedAfterUnixMs != 0 || f.QueuedBeforeUnixMs != 0) {
		return false
	}
	if f.FinishedAfterUnixMs != 0 || f.FinishedBeforeUnixMs != 0 {
		// the key range also admits endedMs == 0, which matches excludes
		return false
	}
	if k != keyPriority && (f.HasMinPriority || f.HasMaxPriority) {
		return false
	}
	return true
}

// cursor walks one tree within [lo, hi] of its key, ascending or
// descending. A stand-in cursor walks a state's arrival order for a key
// that is 0 throughout that state (its range holds 0): all of it.
type cursor struct {
	t       *btree.BTreeG[*entry]
	it      btree.IterG[*entry]
	k       sortKey
	standIn bool
	desc    bool
	lo, hi  int64
	ok      bool // it.Item() is the current entry
}

// unbounded reports whether c's range leaves out nothing of its tree.
func (c *cursor) unbounded() bool {
	return c.standIn || c.lo == math.MinInt64 && c.hi == math.MaxInt64
}

// start positions c on the first entry of its tree in its direction, or
// on the entry of rank at in that direction when at > 0 (the range must
// then be unbounded).
func (c *cursor) start(at int) {
	t := c.t
	c.it.Init(t, false)
	switch {
	case at > 0:
		idx := at
		if c.desc {
			idx = t.Len() - 1 - at
		}
		e, ok := t.GetAt(idx)
		c.ok = ok && c.it.Seek(e)
	case !c.desc && (c.standIn || c.lo == math.MinInt64):
		c.ok = c.it.First()
	case !c.desc:
		c.ok = c.it.Seek(probe(c.k, c.lo, false))
	case c.standIn || c.hi == math.MaxInt64:
		c.ok = c.it.Last()
	default:
		// The first entry past every entry of key hi, then one back.
		if c.ok = c.it.Seek(probe(c.k, c.hi, true)); !c.ok {
			c.ok = c.it.Last()
		} else if keyOf(c.it.Item(), c.k) > c.hi {
			c.ok = c.it.Prev()
		}
	}
	c.check()
}

// check ends the walk when the current entry is out of range.
func (c *cursor) check() {
	if !c.ok {
		return
	}
	v := keyOf(c.it.Item(), c.k)
	if c.desc && v < c.lo || !c.desc && v > c.hi {
		c.ok = false
	}
}

func (c *cursor) next() {
	if c.desc {
		c.ok = c.it.Prev()
	} else {
		c.ok = c.it.Next()
	}
	c.check()
}

// probe is a search key: the smallest (or, with last, the largest)
// possible entry whose key k is v.
func probe(k sortKey, v int64, last bool) *entry {
	p := &entry{}
	if last {
		p.seq = math.MaxUint64
		for i := range p.id {
			p.id[i] = 0xff
		}
	}
	switch k {
	case keyStarted:
		p.startedMs = v
	case keyEnded:
		p.endedMs = v
	case keyPriority:
		p.priority = int32(max(math.MinInt32, min(math.MaxInt32, v)))
	default:
		p.queuedMs = v
	}
	return p
}
