package queue

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// naiveList is what a list must return: every entry tested against the
// filter, all matches sorted, then the page cut out (the QueueManager's
// list before the indexes).
func naiveList(entries map[uuid.UUID]*entry, f *messages.ListActions) []string {
	var want [nStates]bool
	for _, s := range f.States {
		if uint(s) < nStates {
			want[s] = true
		}
	}
	var sel []*entry
	for _, e := range entries {
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
	slices.SortFunc(sel, func(a, b *entry) int {
		c := cmp.Compare(key(a), key(b))
		if c == 0 { // ties in arrival order, following the direction
			c = cmp.Compare(a.seq, b.seq)
		}
		if !f.Ascending {
			c = -c
		}
		return c
	})
	sel = sel[min(int(f.Skip), len(sel)):]
	if f.MaxResults > 0 && int(f.MaxResults) < len(sel) {
		sel = sel[:f.MaxResults]
	}
	ids := make([]string, len(sel))
	for i, e := range sel {
		ids[i] = e.id.String()
	}
	return ids
}

// checkIndex lists how the trees disagree with the entries: every tree of
// a state holds exactly the entries in that state, in its order; a key
// without a tree is 0 throughout its state; the arrival trees exist once
// (and only once) queue time and arrival orders disagree.
func checkIndex(m *manager) []string {
	var bad []string
	total := 0
	for s := range messages.State(nStates) {
		for k := range nKeys + 1 {
			t := m.index.trees[s][k]
			if t == nil {
				switch {
				case k == keyQueued && m.byState[s] != 0:
					bad = append(bad, fmt.Sprintf("state %v: no queue time tree, %d entries", s, m.byState[s]))
				case k == keyArrival && m.index.inverted && m.byState[s] != 0:
					bad = append(bad, fmt.Sprintf("state %v: no arrival tree, %d entries", s, m.byState[s]))
				case k != keyQueued && k != keyArrival:
					for _, e := range m.entries {
						if e.state == s && keyOf(e, k) != 0 {
							bad = append(bad, fmt.Sprintf("state %v key %d: no tree, but %s has %d", s, k, e.id, keyOf(e, k)))
						}
					}
				}
				continue
			}
			if k == keyArrival && !m.index.inverted {
				bad = append(bad, fmt.Sprintf("state %v: an arrival tree, not inverted", s))
			}
			if t.Len() != m.byState[s] {
				bad = append(bad, fmt.Sprintf("state %v key %d: %d in the tree, %d counted", s, k, t.Len(), m.byState[s]))
			}
			var prev *entry
			t.Scan(func(e *entry) bool {
				if m.entries[e.id] != e || e.state != s {
					bad = append(bad, fmt.Sprintf("state %v key %d: holds %s (state %v, known %v)", s, k, e.id, e.state, m.entries[e.id] == e))
				}
				if prev != nil && compareBy(prev, e, k) >= 0 {
					bad = append(bad, fmt.Sprintf("state %v key %d: out of order at %s", s, k, e.id))
				}
				if prev != nil && !m.index.inverted && compareBy(prev, e, keyArrival) >= 0 && k == keyQueued {
					bad = append(bad, fmt.Sprintf("state %v: queue time and arrival orders disagree at %s, not inverted", s, e.id))
				}
				prev = e
				return true
			})
			if k == keyQueued {
				total += t.Len()
			}
		}
	}
	if total != len(m.entries) {
		bad = append(bad, fmt.Sprintf("%d entries in the trees, %d known", total, len(m.entries)))
	}
	return bad
}

// randomFilter draws a list request over times in [1, span] and
// priorities in [-3, 3], with extreme bounds now and then, for n entries.
func randomFilter(r *rand.Rand, span int64, n int) *messages.ListActions {
	f := &messages.ListActions{}
	if r.IntN(3) > 0 {
		for s := range messages.State(nStates + 1) { // 8: a state that does not exist
			if r.IntN(3) == 0 {
				f.States = append(f.States, s)
			}
		}
	}
	f.NotStarted = r.IntN(6) == 0
	bound := func() int64 {
		switch r.IntN(12) {
		case 0:
			return math.MinInt64
		case 1:
			return math.MaxInt64
		case 2:
			return -1
		}
		return 1 + r.Int64N(span)
	}
	if r.IntN(3) == 0 {
		f.QueuedAfterUnixMs = bound()
	}
	if r.IntN(3) == 0 {
		f.QueuedBeforeUnixMs = bound()
	}
	if r.IntN(4) == 0 {
		f.FinishedAfterUnixMs = bound()
	}
	if r.IntN(4) == 0 {
		f.FinishedBeforeUnixMs = bound()
	}
	if r.IntN(3) == 0 {
		f.HasMinPriority, f.MinPriority = true, int32(r.IntN(9)-4)
	}
	if r.IntN(3) == 0 {
		f.HasMaxPriority, f.MaxPriority = true, int32(r.IntN(9)-4)
	}
	if r.IntN(20) == 0 {
		f.HasMinPriority, f.MinPriority = true, math.MinInt32
		f.HasMaxPriority, f.MaxPriority = true, math.MaxInt32
	}
	f.SortBy = messages.SortBy(r.IntN(5)) // 4: unknown, sorts by queue time
	f.Ascending = r.IntN(2) == 0
	if r.IntN(4) > 0 {
		f.MaxResults = uint32(1 + r.IntN(n+3))
	}
	if r.IntN(2) == 0 {
		f.Skip = uint32(r.IntN(n + 3))
	}
	return f
}

// The indexed list returns exactly what filtering and sorting every entry
// returns, over random sets of actions, changes of state, priority and
// times, removals, filters and pages.
func TestListIndexMatchesNaive(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 13))
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	for round := range 300 {
		m := &manager{entries: make(map[uuid.UUID]*entry), sh: &shared{log: discard}}
		span := int64(1 + r.IntN(40)) // small: many equal keys
		n := r.IntN(120)
		// Half the rounds arrive in order, queue times growing with seq (as
		// a queue whose clock never goes back), and mostly with keys 0
		// (the trees of those keys are not built).
		ordered := round%2 == 0
		seqs := r.Perm(4 * (n + 1))
		if ordered {
			slices.Sort(seqs)
		}
		zeros := 1 + r.IntN(8) // 1 in zeros keys is not 0
		time := func() int64 {
			if r.IntN(zeros) > 0 {
				return 0
			}
			return 1 + r.Int64N(span)
		}
		prio := func() int32 {
			if r.IntN(zeros) > 0 {
				return 0
			}
			return int32(r.IntN(7) - 3)
		}
		state := func() messages.State { return messages.State(1 + r.IntN(7)) }
		var q int64
		add := func(i int) {
			if q += r.Int64N(2); !ordered || r.IntN(200) == 0 {
				q = 1 + r.Int64N(span) // the clock went back (now and then in an ordered round)
			}
			e := &entry{id: uuid.New(), seq: uint64(seqs[i]), state: state(), priority: prio(),
				queuedMs: q, startedMs: time(), endedMs: time(), live: r.IntN(3) == 0}
			m.entries[e.id] = e
			m.byState[e.state]++
			m.index.arrive(e)
			require.True(t, m.index.add(e))
		}
		for i := range n {
			add(i)
		}
		ids := func() []*entry {
			es := make([]*entry, 0, len(m.entries))
			for _, e := range m.entries {
				es = append(es, e)
			}
			slices.SortFunc(es, func(a, b *entry) int { return cmp.Compare(a.seq, b.seq) })
			return es
		}
		next := n
		for range r.IntN(2 * (n + 1)) {
			es := ids()
			switch op := r.IntN(10); {
			case op == 0 && next < len(seqs):
				add(next)
				next++
			case op == 1 && len(es) > 0: // retention
				e := es[r.IntN(len(es))]
				delete(m.entries, e.id)
				m.byState[e.state]--
				require.True(t, m.index.remove(e))
			case len(es) > 0:
				e := es[r.IntN(len(es))]
				s, p, st, en := e.state, e.priority, e.startedMs, e.endedMs
				switch r.IntN(4) {
				case 0:
					s = state()
				case 1:
					p = prio()
				case 2:
					st = time()
				default:
					s, en = state(), time()
				}
				m.rekey(e, s, p, st, en)
				e.live = r.IntN(3) == 0
			}
		}
		require.Empty(t, checkIndex(m), "round %d", round)
		for q := range 40 {
			f := randomFilter(r, span, len(m.entries))
			require.Equal(t, naiveList(m.entries, f), m.list(f).Ids, "round %d, list %d: %v", round, q, f)
		}
	}
}

// Entries that share a sequence number (stored before actions had one)
// are all kept and listed.
func TestListIndexKeepsEqualKeys(t *testing.T) {
	t.Parallel()
	m := &manager{entries: make(map[uuid.UUID]*entry)}
	var want []string
	for range 300 {
		e := &entry{id: uuid.New(), state: messages.State_STATE_FINISHED, queuedMs: 5, endedMs: 7}
		m.entries[e.id] = e
		m.byState[e.state]++
		m.index.arrive(e)
		require.True(t, m.index.add(e))
		want = append(want, e.id.String())
	}
	require.Empty(t, checkIndex(m))
	for _, sb := range []messages.SortBy{messages.SortBy_SORT_BY_QUEUE_TIME, messages.SortBy_SORT_BY_START_TIME, messages.SortBy_SORT_BY_FINISH_TIME, messages.SortBy_SORT_BY_PRIORITY} {
		got := m.list(&messages.ListActions{SortBy: sb}).Ids
		require.ElementsMatch(t, want, got)
		page := m.list(&messages.ListActions{SortBy: sb, Skip: 100, MaxResults: 100, Ascending: true}).Ids
		require.Equal(t, got[len(got)-200:len(got)-100], reversed(page))
	}
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// inspectManager runs fn on the QueueManager's goroutine and waits for it.
func (b *bundle) inspectManager(t *testing.T, fn func(*manager)) {
	t.Helper()
	_, err := b.sys.Root.RequestFuture(b.q.pid, &inspect{fn: fn}, 10*time.Second).Result()
	require.NoError(t, err)
}

// The trees follow a real queue through every way an action changes:
// submit, dispatch, start, pause and resume (of the action and of the
// queue), priority changes, cancel, stop, finish, failure, panic and
// retention. Between any two of the QueueManager's messages, the trees hold
// exactly its entries and every list matches the naive one.
func TestListIndexFollowsQueue(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 17))
	var clock, ticks atomic.Int64
	clock.Store(1_000_000)
	b := setup(t, func(c *Config) {
		c.MaximumThreads = 2
		c.MaximumFinishedActions = 25
		c.Now = func() time.Time { return time.UnixMilli(clock.Add(ticks.Add(1) * 7 % 3)) } // equal times are common
	})
	ctx := context.Background()
	modes := []string{"instant", "instant", "fail", "panic", "block", "untilstop", "stages"}
	var toks []string
	check := func(step int) {
		var bad []string
		var got, want [][]string
		var filters []*messages.ListActions
		fr := rand.New(rand.NewPCG(seed, uint64(step)))
		b.inspectManager(t, func(m *manager) {
			bad = checkIndex(m)
			for range 20 {
				f := randomFilter(fr, 60, len(m.entries))
				f.QueuedAfterUnixMs, f.QueuedBeforeUnixMs = shiftBound(f.QueuedAfterUnixMs), shiftBound(f.QueuedBeforeUnixMs)
				f.FinishedAfterUnixMs, f.FinishedBeforeUnixMs = shiftBound(f.FinishedAfterUnixMs), shiftBound(f.FinishedBeforeUnixMs)
				filters = append(filters, f)
				want = append(want, naiveList(m.entries, f))
				got = append(got, m.list(f).Ids)
			}
		})
		require.Empty(t, bad, "step %d", step)
		for i := range got {
			require.Equal(t, want[i], got[i], "step %d: %v", step, filters[i])
		}
	}
	for step := range 250 {
		pick := func() string { return toks[r.IntN(len(toks))] }
		switch op := r.IntN(12); {
		case op < 4 || len(toks) == 0:
			tok, err := b.q.Submit(ctx, &messages.ActionSpec{
				Action: "FETCH", FetchAction: "SYNCHRONIZE", Priority: int32(r.IntN(5) - 2), Tasks: []string{"MYTASK"},
				Params: messages.Params{{Name: "ConfigSection", Value: "MyTask"}, {Name: "Mode", Value: modes[r.IntN(len(modes))]}},
			})
			require.NoError(t, err)
			toks = append(toks, tok)
		case op == 4:
			_, _ = b.q.Cancel(ctx, pick())
		case op == 5:
			_, _ = b.q.Stop(ctx, pick())
		case op == 6:
			_, _ = b.q.ChangePriority(ctx, pick(), int32(r.IntN(5)-2))
		case op == 7:
			_, _ = b.q.PauseAction(ctx, pick())
		case op == 8:
			_, _ = b.q.ResumeAction(ctx, pick())
		case op == 9:
			b.repo.Release(pick()) // a blocked action finishes
		case op == 10 && r.IntN(4) == 0:
			_, err := b.q.Pause(ctx)
			require.NoError(t, err)
		case op == 10:
			_, err := b.q.Resume(ctx)
			require.NoError(t, err)
		default:
			check(step)
		}
	}
	b.repo.ReleaseAll()
	check(-1)
}

// shiftBound moves a bound drawn over [1, 60] to the test's clock.
func shiftBound(v int64) int64 {
	if v > 0 && v != math.MaxInt64 {
		return 1_000_000 + 4*v
	}
	return v
}

// A list of more actions than one window of requests in flight gets every
// status, each from its own actor, in the list's order; CancelQueued
// reaches each of them.
func TestListGathersEveryWindow(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	_, err := b.q.Pause(ctx)
	require.NoError(t, err)
	var toks []string
	for i := range 1100 {
		toks = append(toks, b.submit(t, "instant", int32(i%3)))
	}
	all, err := b.q.List(ctx, &messages.ListActions{Ascending: true})
	require.NoError(t, err)
	got := make([]string, len(all))
	for i, s := range all {
		got[i] = s.Token
		require.Equal(t, messages.State_STATE_QUEUED, s.State)
	}
	require.Equal(t, toks, got)
	byPrio, err := b.q.List(ctx, &messages.ListActions{SortBy: messages.SortBy_SORT_BY_PRIORITY, Skip: 600, MaxResults: 300})
	require.NoError(t, err)
	require.Len(t, byPrio, 300)
	for i := 1; i < len(byPrio); i++ {
		p, q := byPrio[i-1], byPrio[i]
		require.True(t, p.Priority > q.Priority || p.Priority == q.Priority && p.Seq > q.Seq, "out of order at %d", i)
	}
	res, err := b.q.CancelQueued(ctx, &messages.ListActions{}, false, 10)
	require.NoError(t, err)
	require.Equal(t, 1100, res.Matched)
	require.Equal(t, 1100, res.Cancelled)
	require.Len(t, res.Actions, 10)
}

// Lists gathered while retention removes the actions they name leave the
// removed ones out, and never fail or wait for them.
func TestListWhileRetentionRemoves(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaximumThreads = 4; c.MaximumFinishedActions = 20 })
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 300 {
			if _, err := b.q.Submit(ctx, &messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE", Tasks: []string{"MYTASK"},
				Params: messages.Params{{Name: "ConfigSection", Value: "MyTask"}, {Name: "Mode", Value: "instant"}}}); err != nil {
				return
			}
		}
	}()
	lists := 0
	for running := true; running; lists++ {
		select {
		case <-done:
			running = false
		default:
		}
		ss, err := b.q.List(ctx, &messages.ListActions{States: []messages.State{messages.State_STATE_FINISHED}, SortBy: messages.SortBy_SORT_BY_FINISH_TIME})
		require.NoError(t, err)
		require.LessOrEqual(t, len(ss), 20+4, "MaximumFinishedActions=20 (and the actions ending meanwhile)")
		seen := map[string]bool{}
		for i, s := range ss {
			require.False(t, seen[s.Token], "listed twice")
			seen[s.Token] = true
			if i > 0 {
				require.GreaterOrEqual(t, ss[i-1].EndedUnixMs, s.EndedUnixMs, "finish time descending")
			}
		}
	}
	t.Logf("%d lists", lists)
}
