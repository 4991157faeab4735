package queue

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
)

// A page of a list is full while there are actions beyond it, also when
// retention removes one of its actions while it is gathered: a client
// reads a reply shorter than asked as the last page (docs/protocol.md),
// and on main it got one action short, and stopped paging before the
// rest. (The XML front end reads ended actions from the QueueManager, but
// List, which JSON replies, GetActionParameters and the dashboard read,
// asks their actors, and an evicted one answers nothing.)
func TestListPageStaysFullWhenRetentionRemovesOneOfItsActions(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaximumFinishedActions = 3; c.MaximumThreads = 1 })
	ctx := context.Background()
	var toks []string
	for i := 0; i < 3; i++ {
		toks = append(toks, b.submit(t, "instant", 0))
		b.waitState(t, toks[i], messages.State_STATE_FINISHED)
	}
	var once sync.Once
	b.q.afterViews = func() {
		once.Do(func() {
			// The page holds the oldest two; a fourth action ends and
			// retention removes the oldest, before its actor is asked.
			toks = append(toks, b.submit(t, "instant", 0))
			testwait.For(t, 10*time.Second, func() bool {
				_, err := b.q.Status(ctx, toks[0])
				return errors.Is(err, messages.ErrUnknownToken)
			}, "the oldest action evicted")
		})
	}
	list, err := b.q.List(ctx, &messages.ListActions{Ascending: true, MaxResults: 2})
	require.NoError(t, err)
	var got []string
	for _, st := range list {
		got = append(got, st.Token)
	}
	require.Equal(t, []string{toks[1], toks[2]}, got, "a full page, without the evicted action")
}
