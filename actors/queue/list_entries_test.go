package queue

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/transport/aci"
)

// steppedRepo runs actions that change their counts and progress only when
// the test says so (step), and end when it says so (finish), or when
// stopped, adding to their counts as they unwind: what a crawl does, so
// that a running action's status changes while it runs and once more after
// its Stop.
type steppedRepo struct {
	mu    sync.Mutex
	steps map[string]chan stepCmd
}

type stepCmd struct {
	finish bool
	fail   bool
	done   chan struct{} // closed once the change is visible in the job
}

func (s *steppedRepo) ch(token string) chan stepCmd {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.steps[token]
	if c == nil {
		c = make(chan stepCmd)
		s.steps[token] = c
	}
	return c
}

func (s *steppedRepo) run(ctx context.Context, job *fetch.Job) ([]*messages.Element, error) {
	c := s.ch(job.Token)
	counts := job.Counts("MYTASK")
	n := 0
	for {
		select {
		case <-ctx.Done():
			if counts != nil {
				counts.Seen.Add(1000) // the last pages of a crawl that was stopped
			}
			return nil, context.Cause(ctx)
		case cmd := <-c:
			n++
			switch {
			case cmd.fail:
				close(cmd.done)
				return nil, fmt.Errorf("step %d failed & <broke>", n)
			case cmd.finish:
				close(cmd.done)
				return []*messages.Element{{Name: "tasks", Children: []*messages.Element{{Name: "success", Text: fmt.Sprint("doc", n), List: true}}}}, nil
			}
			if counts != nil {
				counts.Seen.Add(uint64(n))
				counts.Added.Add(1)
			}
			job.SetProgress(&messages.Progress{Percent: float64(n), Stage: "crawling"})
			close(cmd.done)
		}
	}
}

// step sends cmd to a running action; false if it is not running. An
// action that reads Processing has a worker that takes the step, or soon
// reads otherwise (its worker ended: the report is on its way), so step
// polls for either, with a deadline: a worker slow to reach its first
// step under load is waited for, not taken for one that is not running.
func (s *steppedRepo) step(t *testing.T, b *bundle, token string, cmd stepCmd) bool {
	t.Helper()
	cmd.done = make(chan struct{})
	sent := false
	testwait.For(t, 10*time.Second, func() bool {
		if st, err := b.q.Status(context.Background(), token); err != nil || st.State != messages.State_STATE_PROCESSING {
			return true // not running (queued, paused, ended)
		}
		select {
		case s.ch(token) <- cmd:
			sent = true
			return true
		default:
			return false
		}
	}, "action %s to take its step or leave Processing", token)
	if !sent {
		return false
	}
	select {
	case <-cmd.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("action %s did not take its step", token)
	}
	return true
}

// A list built the new way (ListEntries: the entries of ended actions
// encoded once by their task actors and kept by the QueueManager, the
// others asked, then written in pieces as the front end writes them) has
// the same bytes as the list built the old way (List: every status asked,
// then AppendActionsXML), for random queues whose running actions change
// their counts and progress between lists, are stopped (and change once
// more as they unwind), cancelled, paused, re-prioritised, finish, fail,
// and are removed by retention.
func TestListEntriesMatchList(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 23))
	zone := time.FixedZone("list", 5*3600+30*60) // not UTC, not the machine's zone
	sr := &steppedRepo{steps: map[string]chan stepCmd{}}
	b := setup(t, func(c *Config) {
		c.MaximumThreads = 3
		c.MaximumFinishedActions = 30
		c.ListEntry = func(dst []byte, st *messages.ActionStatus) []byte {
			return aci.AppendActionXML(dst, st, time.Now().In(zone))
		}
	})
	b.repo.RunFunc = sr.run
	ctx := context.Background()
	start := time.Now().UnixMilli()

	old := func(f *messages.ListActions, now time.Time) []byte {
		ss, err := b.q.List(ctx, f)
		require.NoError(t, err)
		return aci.AppendActionsXML(nil, "QUEUEINFO", ss, now)
	}
	entries := func(f *messages.ListActions, now time.Time) ([]byte, int) {
		es, err := b.q.ListEntries(ctx, f)
		require.NoError(t, err)
		out := aci.AppendActionsHead(nil, "QUEUEINFO", len(es))
		encoded := 0
		for _, e := range es {
			if e.Encoded != "" {
				out = append(out, e.Encoded...)
				encoded++
				continue
			}
			out = aci.AppendActionXML(out, e.Status, now)
		}
		return aci.AppendActionsTail(out, len(es)), encoded
	}
	filter := func() *messages.ListActions {
		f := &messages.ListActions{SortBy: messages.SortBy(r.IntN(4)), Ascending: r.IntN(2) == 0}
		if r.IntN(3) > 0 {
			for s := range messages.State(nStates) {
				if r.IntN(3) == 0 {
					f.States = append(f.States, s)
				}
			}
		}
		f.NotStarted = r.IntN(8) == 0
		if r.IntN(4) == 0 {
			f.FinishedAfterUnixMs = start + r.Int64N(200)
		}
		if r.IntN(4) == 0 {
			f.HasMinPriority, f.MinPriority = true, int32(r.IntN(5)-2)
		}
		if r.IntN(3) == 0 {
			f.Skip = uint32(r.IntN(10))
		}
		if r.IntN(3) > 0 {
			f.MaxResults = uint32(1 + r.IntN(20))
		}
		return f
	}
	encodedSeen := 0
	check := func(step int) {
		for range 6 {
			f := filter()
			// A list of a queue that moves meanwhile (a worker's report
			// on its way) may differ between two calls; a stale entry
			// would differ every time.
			var want, got []byte
			same := false
			// Poll with a deadline: under load a report can take far
			// longer than a few milliseconds to arrive.
			for deadline := time.Now().Add(10 * time.Second); !same && time.Now().Before(deadline); {
				now := time.Now().In(zone).Truncate(time.Second)
				var n int
				want = old(f, now)
				got, n = entries(f, now)
				same = bytes.Equal(want, got) && bytes.Equal(want, old(f, now))
				if same {
					encodedSeen += n
				} else {
					time.Sleep(testwait.Interval) // the poll's interval: let the report arrive
				}
			}
			require.Equal(t, string(want), string(got), "step %d, filter %v", step, f)
		}
	}
	var toks []string
	for step := range 300 {
		pick := func() string { return toks[r.IntN(len(toks))] }
		switch op := r.IntN(14); {
		case op < 4 || len(toks) == 0:
			toks = append(toks, b.submit(t, "stepped", int32(r.IntN(5)-2)))
		case op < 7:
			sr.step(t, b, pick(), stepCmd{}) // counts and progress change
		case op == 7:
			sr.step(t, b, pick(), stepCmd{finish: true})
		case op == 8:
			sr.step(t, b, pick(), stepCmd{fail: true})
		case op == 9:
			_, _ = b.q.Stop(ctx, pick())
		case op == 10:
			_, _ = b.q.Cancel(ctx, pick())
		case op == 11 && r.IntN(2) == 0:
			_, _ = b.q.PauseAction(ctx, pick())
		case op == 11:
			_, _ = b.q.ResumeAction(ctx, pick())
		case op == 12:
			_, _ = b.q.ChangePriority(ctx, pick(), int32(r.IntN(5)-2))
		default:
			check(step)
		}
	}
	check(-1)
	require.Positive(t, encodedSeen, "no list used an encoded entry")
}

// An entry stays in its size class: the list entry's string header took
// the room of heapIdx's upper half (an entry per queued action; see
// RESULTS.md, memory per queued action).
func TestEntrySize(t *testing.T) {
	require.LessOrEqual(t, unsafe.Sizeof(entry{}), uintptr(112))
}

// Actions restored from the store as ended get their list entries too (no
// TaskChanged reports them), and the list built from them equals the list
// of statuses asked of their actors.
func TestListEntriesAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	withEntries := func(c *Config) {
		c.ListEntry = func(dst []byte, st *messages.ActionStatus) []byte {
			return aci.AppendActionXML(dst, st, time.Now().UTC())
		}
	}
	d := openDurable(t, dir, nil, withEntries)
	b := d.bundle()
	var toks []string
	for _, mode := range []string{"instant", "fail", "instant", "count"} {
		toks = append(toks, b.submit(t, mode, 0))
	}
	for _, tok := range toks[:3] {
		testwait.For(t, 10*time.Second, func() bool {
			s, err := b.q.Status(context.Background(), tok)
			require.NoError(t, err)
			return messages.Terminal(s.State)
		}, "ended")
	}
	b.waitState(t, toks[3], messages.State_STATE_PROCESSING)
	d.shutdown(t) // stops the running one: Stopped, with its counts

	d2 := openDurable(t, dir, nil, withEntries)
	defer d2.shutdown(t)
	q := d2.q
	ctx := context.Background()
	f := &messages.ListActions{}
	var es []ListEntry
	testwait.For(t, 10*time.Second, func() bool {
		var err error
		es, err = q.ListEntries(ctx, f)
		require.NoError(t, err)
		for _, e := range es {
			if e.Encoded == "" {
				return false
			}
		}
		return len(es) == 4
	}, "every restored ended action listed from its entry")
	ss, err := q.List(ctx, f)
	require.NoError(t, err)
	now := time.Now().UTC()
	want := aci.AppendActionsXML(nil, "QUEUEINFO", ss, now)
	got := aci.AppendActionsHead(nil, "QUEUEINFO", len(es))
	for _, e := range es {
		got = append(got, e.Encoded...)
	}
	got = aci.AppendActionsTail(got, len(es))
	require.Equal(t, string(want), string(got))
}
