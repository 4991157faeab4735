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
// QueueManager keeps, for each state, one ordered tree per sort key, each
// holding the entries in that state: a list walks the trees of the states
// it asks for in its order, from the bound of its range on the sort key,
// merging them, and stops after Skip+MaxResults matches. It reads the
// actions it returns and those a filter on another key (or NotStarted)
// passes over on the way, never every retained action.
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
)

func keyOf(e *entry, k sortKey) int64 {
	switch k {
	case keyStarted:
		return e.startedMs
	case keyEnded:
		return e.endedMs
	case keyPriority:
		return int64(e.priority)
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

// listIndex is the QueueManager's trees: trees[state][key]. Only the
// QueueManager's goroutine touches it (no locks).
type listIndex struct {
	trees [nStates][nKeys]*btree.BTreeG[*entry]
}

// lessFuncs are the trees' orders, one function value per key.
var lessFuncs = [nKeys]func(a, b *entry) bool{
	func(a, b *entry) bool { return compareBy(a, b, keyQueued) < 0 },
	func(a, b *entry) bool { return compareBy(a, b, keyStarted) < 0 },
	func(a, b *entry) bool { return compareBy(a, b, keyEnded) < 0 },
	func(a, b *entry) bool { return compareBy(a, b, keyPriority) < 0 },
}

func (x *listIndex) tree(s messages.State, k sortKey) *btree.BTreeG[*entry] {
	t := x.trees[s][k]
	if t == nil {
		t = btree.NewBTreeGOptions(lessFuncs[k], btree.Options{NoLocks: true})
		x.trees[s][k] = t
	}
	return t
}

// add puts e in the trees of its state. It reports false if e was there
// already (a bug: the trees would then disagree with the entries).
func (x *listIndex) add(e *entry) bool {
	if uint(e.state) >= nStates {
		return false
	}
	ok := true
	for k := range nKeys {
		if _, dup := x.tree(e.state, k).Set(e); dup {
			ok = false
		}
	}
	return ok
}

// remove takes e out of the trees of its state, under its current keys. It
// reports false if e was not found in all of them (a bug).
func (x *listIndex) remove(e *entry) bool {
	if uint(e.state) >= nStates {
		return false
	}
	ok := true
	for k := range nKeys {
		t := x.trees[e.state][k]
		if t == nil {
			ok = false
			continue
		}
		if _, found := t.Delete(e); !found {
			ok = false
		}
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
// descending.
type cursor struct {
	t      *btree.BTreeG[*entry]
	it     btree.IterG[*entry]
	k      sortKey
	desc   bool
	lo, hi int64
	ok     bool // it.Item() is the current entry
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
	case !c.desc && c.lo == math.MinInt64:
		c.ok = c.it.First()
	case !c.desc:
		c.ok = c.it.Seek(probe(c.k, c.lo, false))
	case c.hi == math.MaxInt64:
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
