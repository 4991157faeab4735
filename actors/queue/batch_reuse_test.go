package queue

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// TestCommitReusesItsBatch: once a group commit's report is handled, its
// batch is emptied and kept as the spare (manager.recycle), holding no
// pointer to what it carried (the answered submissions stay collectable),
// and the next commit takes it again instead of allocating one. Every
// submission still gets its own reply: concurrent submissions, answered
// by commits that reuse one another's batches, get distinct tokens, each
// of an action that is on disk.
func TestCommitReusesItsBatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openDurable(t, dir, nil, nil)
	b := d.bundle()
	_, err := b.q.Pause(context.Background())
	require.NoError(t, err)

	// spare returns the QueueManager's spare batch, and what is wrong
	// with it ("" if it is empty, as recycle leaves it).
	spare := func() (*batch, string) {
		t.Helper()
		var s *batch
		var problem string
		b.inspectManager(t, func(m *manager) {
			s = m.spare
			problem = emptied(m)
		})
		return s, problem
	}
	b.submit(t, "instant", 0)
	first, problem := spare()
	require.NotNil(t, first, "the commit's batch is kept as the spare")
	require.Empty(t, problem)
	require.Positive(t, cap(first.submits), "the list of waiting submissions keeps its capacity")
	tok := b.submit(t, "instant", 0)
	again, problem := spare()
	require.Same(t, first, again, "the next commit used the spare")
	require.Empty(t, problem)

	const n = 40
	toks := make([]string, n)
	var wg sync.WaitGroup
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := b.q.Submit(context.Background(), &messages.ActionSpec{
				Action: "FETCH", FetchAction: "SYNCHRONIZE", Tasks: []string{"MYTASK"},
				Params: messages.Params{{Name: "ConfigSection", Value: "MyTask"}, {Name: "Mode", Value: "instant"}},
			})
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		}()
	}
	wg.Wait()
	seen := map[string]bool{tok: true}
	for _, tk := range toks {
		require.NotEmpty(t, tk)
		require.False(t, seen[tk], "token %s given twice", tk)
		seen[tk] = true
	}
	_, problem = spare()
	require.Empty(t, problem)

	d.crash(t)
	d = openDurable(t, dir, nil, nil)
	defer d.shutdown(t)
	for tk := range seen {
		s, err := d.q.Status(context.Background(), tk)
		require.NoError(t, err)
		require.Equal(t, messages.State_STATE_QUEUED, s.State, tk)
	}
}

// emptied says what is wrong with m's spare batch ("": nothing): it must
// be there, with nothing pending, and hold nothing.
func emptied(m *manager) string {
	s := m.spare
	switch {
	case s == nil:
		return "no spare batch"
	case m.pending != nil:
		return "a batch is pending"
	case len(s.submits)+len(s.muts)+len(s.free)+len(s.replies)+len(s.queueReplies) > 0:
		return "the spare batch is not empty"
	case s.written || s.answered || s.err != nil || s.paused != nil || s.report.b != nil || s.nsub != 0:
		return "the spare batch keeps its last commit's outcome"
	}
	for _, p := range s.submits[:cap(s.submits)] {
		if p != nil {
			return "the spare batch keeps an answered submission"
		}
	}
	for _, l := range [][]store.ActionMutation{s.muts, s.free} {
		for _, mu := range l[:cap(l)] {
			if mu != (store.ActionMutation{}) {
				return "the spare batch keeps a record"
			}
		}
	}
	return ""
}
