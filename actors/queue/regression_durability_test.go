package queue

import (
	"context"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
)

// failOnce fails the first commit after it is armed, as a transient full
// disk would (nothing applied, the store stays writable).
type failOnce struct {
	armed atomic.Bool
	fired atomic.Bool
}

func (f *failOnce) Write() error { return nil }
func (f *failOnce) Commit() error {
	if f.armed.CompareAndSwap(true, false) {
		f.fired.Store(true)
		return syscall.ENOSPC
	}
	return nil
}
func (f *failOnce) Synced() error { return nil }

func storedState(t *testing.T, d *durable, tok string) messages.State {
	t.Helper()
	var s messages.State
	require.NoError(t, d.st.LoadActions("fetch", func(a *messages.StoredAction) error {
		if a.Status.Token == tok {
			s = a.Status.State
		}
		return nil
	}))
	return s
}

// A change whose commit failed is written again later; a newer change of
// the same action must win, never be overwritten by the older record.
func TestRetryDoesNotOverwriteNewerState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	faults := &failOnce{}
	const retry = 50 * time.Millisecond
	d := openDurable(t, dir, faults, func(c *Config) { c.RetryInterval = retry })
	b := d.bundle()
	tok := b.submit(t, "block", 0)
	b.waitState(t, tok, messages.State_STATE_PROCESSING)
	d.waitDurable(t, tok, started)

	faults.armed.Store(true)
	_, err := d.q.PauseAction(context.Background(), tok) // its commit fails
	require.ErrorIs(t, err, messages.ErrStore, "the reply says the change is not on disk yet")
	require.True(t, faults.fired.Load(), "the Pause batch was the one that failed")
	_, err = d.q.ResumeAction(context.Background(), tok)
	require.NoError(t, err)
	d.repo.Release(tok)
	b.waitState(t, tok, messages.State_STATE_FINISHED)
	d.waitDurable(t, tok, func(s *messages.ActionStatus) bool { return s.State == messages.State_STATE_FINISHED })

	// Watch the record past the retry tick (RetryInterval after the
	// failure), several intervals long.
	deadline := time.Now().Add(10 * retry)
	for time.Now().Before(deadline) {
		_, _ = d.q.QueueStatus(context.Background()) // any message lets the manager flush due retries
		if s := storedState(t, d, tok); s != messages.State_STATE_FINISHED {
			t.Logf("stored record went from FINISHED back to %v", s)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.crash(t)

	d2 := openDurable(t, dir, nil, nil)
	defer d2.shutdown(t)
	s, err := d2.q.Status(context.Background(), tok)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_FINISHED, s.State,
		"a Finished action came back as %v (restarts=%d) after a crash", s.State, s.Restarts)
}

// A clean shutdown writes the changes whose commit failed: they are never
// dropped (docs/durability.md), so nothing is re-run after a clean restart.
func TestCleanShutdownWritesRetries(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	faults := &failOnce{}
	d := openDurable(t, dir, faults, nil)
	b := d.bundle()
	tok := b.submit(t, "block", 0)
	b.waitState(t, tok, messages.State_STATE_PROCESSING)
	d.waitDurable(t, tok, started)

	faults.armed.Store(true)
	d.repo.Release(tok) // its Finished record hits the failing commit
	b.waitState(t, tok, messages.State_STATE_FINISHED)
	testwait.For(t, 10*time.Second, faults.fired.Load, "the injected fault to fire")
	d.shutdown(t) // clean, well within the 1s retry delay

	d2 := openDurable(t, dir, nil, nil)
	defer d2.shutdown(t)
	s, err := d2.q.Status(context.Background(), tok)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_FINISHED, s.State,
		"after a clean shutdown the finished action is %v with restarts=%d", s.State, s.Restarts)
}

// An action paused while running and restored after a crash is Paused with
// restarts=1. It never runs again in that process; after a *clean* restart
// it must not count another restart (and under OnRestart=Error it must not
// become "interrupted by a server crash").
func TestPausedRestartsNotRecountedAfterCleanRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openDurable(t, dir, nil, nil)
	b := d.bundle()
	tok := b.submit(t, "block", 0)
	b.waitState(t, tok, messages.State_STATE_PROCESSING)
	_, err := d.q.PauseAction(context.Background(), tok)
	require.NoError(t, err)
	d.crash(t)

	d2 := openDurable(t, dir, nil, nil)
	s, err := d2.q.Status(context.Background(), tok)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_PAUSED, s.State)
	require.EqualValues(t, 1, s.Restarts)
	d2.shutdown(t) // clean: nothing was running

	d3 := openDurable(t, dir, nil, func(c *Config) { c.OnRestart = RestartError })
	defer d3.shutdown(t)
	s, err = d3.q.Status(context.Background(), tok)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_PAUSED, s.State,
		"after a clean restart: state %v, restarts %d, error %q", s.State, s.Restarts, s.Error)
	require.EqualValues(t, 1, s.Restarts)
}

func TestQueuePauseSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openDurable(t, dir, nil, nil)
	_, err := d.q.Pause(context.Background())
	require.NoError(t, err)
	queued := d.bundle().submit(t, "instant", 0)
	d.crash(t)

	d2 := openDurable(t, dir, nil, nil)
	qs, err := d2.q.QueueStatus(context.Background())
	require.NoError(t, err)
	require.True(t, qs.Paused, "a paused queue stays paused after a crash")
	s, err := d2.q.Status(context.Background(), queued)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_QUEUED, s.State)
	require.Empty(t, d2.repo.Started())
	_, err = d2.q.Resume(context.Background())
	require.NoError(t, err)
	d2.bundle().waitState(t, queued, messages.State_STATE_FINISHED)
	d2.shutdown(t)

	d3 := openDurable(t, dir, nil, nil)
	defer d3.shutdown(t)
	qs, err = d3.q.QueueStatus(context.Background())
	require.NoError(t, err)
	require.False(t, qs.Paused)
}
