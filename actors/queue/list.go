package queue

import (
	"cmp"
	"container/heap"
	"slices"

	"github.com/connectorhq/connector/messages"
)

// topK returns the k first entries of sel in cmp order (unsorted), keeping
// a heap of the best k seen so far with the worst of them on top.
func topK(sel []*entry, k int, cmp func(a, b *entry) int) []*entry {
	h := &worstFirst{cmp: cmp, e: make([]*entry, 0, k)}
	for _, e := range sel {
		switch {
		case len(h.e) < k:
			heap.Push(h, e)
		case cmp(e, h.e[0]) < 0:
			h.e[0] = e
			heap.Fix(h, 0)
		}
	}
	return h.e
}

type worstFirst struct {
	cmp func(a, b *entry) int
	e   []*entry
}

func (h *worstFirst) Len() int { return len(h.e) }

func (h *worstFirst) Less(i, j int) bool { return h.cmp(h.e[i], h.e[j]) > 0 }

func (h *worstFirst) Swap(i, j int) { h.e[i], h.e[j] = h.e[j], h.e[i] }

func (h *worstFirst) Push(x any) { h.e = append(h.e, x.(*entry)) }

func (h *worstFirst) Pop() any {
	x := h.e[len(h.e)-1]
	h.e = h.e[:len(h.e)-1]
	return x
}

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

// list selects and orders actions for GetStatus without a token.
func (m *manager) list(f *messages.ListActions) *messages.ListActionsReply {
	var want [8]bool
	for _, s := range f.States {
		if int(s) < len(want) {
			want[s] = true
		}
	}
	sel := make([]*entry, 0, 64)
	for _, e := range m.entries {
		if len(f.States) > 0 && !want[e.state] {
			continue
		}
		if f.NotStarted && (messages.Terminal(e.state) || e.live) {
			continue
		}
		if f.QueuedAfterUnixMs != 0 && e.queuedMs <= f.QueuedAfterUnixMs ||
			f.QueuedBeforeUnixMs != 0 && e.queuedMs >= f.QueuedBeforeUnixMs {
			continue
		}
		if f.FinishedAfterUnixMs != 0 && (e.endedMs == 0 || e.endedMs <= f.FinishedAfterUnixMs) ||
			f.FinishedBeforeUnixMs != 0 && (e.endedMs == 0 || e.endedMs >= f.FinishedBeforeUnixMs) {
			continue
		}
		if f.HasMinPriority && e.priority < f.MinPriority || f.HasMaxPriority && e.priority > f.MaxPriority {
			continue
		}
		sel = append(sel, e)
	}
	key := func(e *entry) int64 {
		switch f.SortBy {
		case messages.SortBy_SORT_BY_START_TIME:
			return e.startedMs
		case messages.SortBy_SORT_BY_FINISH_TIME:
			return e.endedMs
		case messages.SortBy_SORT_BY_PRIORITY:
			return int64(e.priority)
		}
		return e.queuedMs
	}
	cmp := func(a, b *entry) int {
		ka, kb := key(a), key(b)
		if ka == kb { // ties in arrival order, following the direction
			ka, kb = int64(a.seq), int64(b.seq)
		}
		c := cmp.Compare(ka, kb)
		if !f.Ascending {
			c = -c
		}
		return c
	}
	skip := int(f.Skip)
	if k := int(f.MaxResults); k > 0 && skip+k < len(sel) {
		sel = topK(sel, skip+k, cmp) // O(n log k), not a sort of every match
	}
	slices.SortFunc(sel, cmp)
	sel = sel[min(skip, len(sel)):] // paging: the first Skip matches are left out
	ids := make([]string, len(sel))
	for i, e := range sel {
		ids[i] = e.id.String()
	}
	return &messages.ListActionsReply{Ids: ids}
}
