package queue

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// A second Stop of a worker that ignores its context is answered at
// StopTimeout too, like the first.
func TestSecondStopAfterTimeoutIsAnswered(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.StopTimeout = 100 * time.Millisecond; c.AskTimeout = 2 * time.Second })
	tok := b.submit(t, "ignorectx", 0)
	b.waitState(t, tok, messages.State_STATE_PROCESSING)
	r, err := b.q.Stop(context.Background(), tok)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_STOPPED, r.Status.State)
	_, err = b.q.Stop(context.Background(), tok)
	require.NoError(t, err, "a second Stop is answered within StopTimeout too")
}

// A Stop reply may take StopTimeout (plus a group commit): Queue.Ask waits
// that long for it, whatever AskTimeout is.
func TestStopLongerThanAskTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.StopTimeout = 600 * time.Millisecond; c.AskTimeout = 300 * time.Millisecond })
	tok := b.submit(t, "ignorectx", 0)
	b.waitState(t, tok, messages.State_STATE_PROCESSING)
	_, err := b.q.Stop(context.Background(), tok)
	require.NoError(t, err)
}
