package queue

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
)

// threadTokens reads ThreadStatus as the token per thread number ("" idle).
func threadTokens(t *testing.T, b *bundle) []string {
	t.Helper()
	threads, err := b.q.ThreadStatus(context.Background())
	require.NoError(t, err)
	out := make([]string, len(threads))
	for i, th := range threads {
		require.Equal(t, i+1, th.Number)
		if th.Action != nil {
			out[i] = th.Action.Token
		}
	}
	return out
}

// TestThreadStatus: every worker thread is listed by number with the
// action it runs; an action keeps its number while it runs, a freed
// thread goes to the next action, lowest number first, and a stopped
// action holds its thread until its work has unwound.
func TestThreadStatus(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaximumThreads = 3 })
	require.Equal(t, []string{"", "", ""}, threadTokens(t, b), "idle")

	a := b.submit(t, "block", 0)
	b.waitState(t, a, messages.State_STATE_PROCESSING)
	bb := b.submit(t, "block", 0)
	b.waitState(t, bb, messages.State_STATE_PROCESSING)
	c := b.submit(t, "ignorectx", 0)
	b.waitState(t, c, messages.State_STATE_PROCESSING)
	d := b.submit(t, "block", 0) // waits for a thread
	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"three running, one queued", func() {}, []string{a, bb, c}},
		{"the first ends: the queued one takes thread 1", func() {
			b.repo.Release(a)
			b.waitState(t, d, messages.State_STATE_PROCESSING)
		}, []string{d, bb, c}},
		{"paused: still holds its thread", func() {
			_, err := b.q.PauseAction(context.Background(), bb)
			require.NoError(t, err)
		}, []string{d, bb, c}},
		{"stopped while its work unwinds: still holds its thread", func() {
			go func() { _, _ = b.q.Stop(context.Background(), c) }() // answered when c's worker exits
			b.waitState(t, c, messages.State_STATE_STOPPED)
		}, []string{d, bb, c}},
		{"unwound: thread 3 is free", func() {
			b.repo.Release(c)
			testwait.For(t, 10*time.Second, func() bool { return threadTokens(t, b)[2] == "" }, "thread 3 freed")
		}, []string{d, bb, ""}},
	}
	for _, s := range steps {
		s.do()
		require.Equal(t, s.want, threadTokens(t, b), s.name)
	}
}
