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
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/storetest"
)

func storedIDs(t *testing.T, st store.Store) []string {
	t.Helper()
	var ids []string
	require.NoError(t, st.LoadActions("fetch", func(a *messages.StoredAction) error {
		ids = append(ids, a.Id)
		return nil
	}))
	return ids
}

// TestSlowCommitAnswersWithToken: a submission whose group commit takes
// longer than AskTimeout (fdatasync delayed) answers with its token once it
// is on disk, not with a "busy" error while the action gets queued anyway
// (issue 9, item 6: a client that retried such a submission created a
// duplicate).
func TestSlowCommitAnswersWithToken(t *testing.T) {
	t.Parallel()
	f := &storetest.Faults{}
	dir := t.TempDir()
	d := openDurable(t, dir, f, func(c *Config) { c.AskTimeout = 100 * time.Millisecond })
	f.DelaySync(500 * time.Millisecond) // five times AskTimeout
	tok, err := d.q.Submit(context.Background(), &messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE", Tasks: []string{"MYTASK"},
		Params: messages.Params{{Name: "Mode", Value: "block"}}})
	require.NoError(t, err, "a submission on a slow disk answers with its token")
	f.DelaySync(0)
	s, err := d.q.Status(context.Background(), tok)
	require.NoError(t, err)
	require.NotEqual(t, messages.State_STATE_UNSPECIFIED, s.State)
	d.crash(t)
	d = openDurable(t, dir, nil, nil)
	defer d.shutdown(t)
	_, err = d.q.Status(context.Background(), tok)
	require.NoError(t, err, "the acknowledged action survives a crash")
	require.Len(t, storedIDs(t, d.st), 1)
}

// TestSubmissionWithdrawnWhenNotWritten: a submission that is still waiting
// for the disk when its requester has waited AskTimeout (it queues behind
// a commit that does not return) is withdrawn: the requester gets
// ErrTimeout, and the action is not queued, now or after a restart. The
// submission whose commit was under way gets its token when the commit
// returns.
func TestSubmissionWithdrawnWhenNotWritten(t *testing.T) {
	t.Parallel()
	f := &storetest.Faults{}
	dir := t.TempDir()
	d := openDurable(t, dir, f, func(c *Config) { c.AskTimeout = 100 * time.Millisecond })
	spec := func() *messages.ActionSpec {
		return &messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE", Tasks: []string{"MYTASK"},
			Params: messages.Params{{Name: "Mode", Value: "block"}}}
	}
	held, release := f.HoldSync()
	defer release()
	type result struct {
		tok string
		err error
	}
	first := make(chan result, 1)
	go func() {
		tok, err := d.q.Submit(context.Background(), spec())
		first <- result{tok, err}
	}()
	<-held // the first submission's commit is under way, its fdatasync held
	_, err := d.q.Submit(context.Background(), spec())
	require.ErrorIs(t, err, messages.ErrTimeout, "the second submission, never written, is withdrawn")
	select {
	case r := <-first:
		t.Fatalf("the first submission answered before its commit returned: %+v", r)
	default:
	}
	release()
	r := <-first
	require.NoError(t, r.err, "the submission whose commit was under way gets its token")
	testwait.For(t, 10*time.Second, func() bool {
		qs, err := d.q.QueueStatus(context.Background())
		require.NoError(t, err)
		return qs.Queued+qs.Processing == 1
	}, "one action in the queue")
	qs, err := d.q.QueueStatus(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 1, qs.Queued+qs.Processing+qs.PausedActions+qs.Finished+qs.Cancelled+qs.Stopped+qs.Error,
		"the withdrawn submission is not queued")
	d.crash(t)
	d = openDurable(t, dir, nil, nil)
	defer d.shutdown(t)
	_, id, err := messages.ParseToken(r.tok)
	require.NoError(t, err)
	require.Equal(t, []string{id.String()}, storedIDs(t, d.st), "only the acknowledged action is on disk")
}

// TestStoreFailureRepliesSayWhatHappened: on a full disk a Cancel's reply
// is one truthful message (the change is in effect, not yet on disk, and
// the action's status), and a refused submission says it is not queued
// (issue 9, item 8).
func TestStoreFailureRepliesSayWhatHappened(t *testing.T) {
	t.Parallel()
	f := &storetest.Faults{}
	d := openDurable(t, t.TempDir(), f, func(c *Config) { c.MaximumThreads = 1 })
	defer d.shutdown(t)
	b := d.bundle()
	run := b.submit(t, "block", 0)
	b.waitState(t, run, messages.State_STATE_PROCESSING)
	queued := b.submit(t, "block", 0)

	f.ArmCommit(errNoSpace)
	r, err := d.q.Cancel(context.Background(), queued)
	require.ErrorIs(t, err, messages.ErrStore)
	require.Equal(t, messages.State_STATE_CANCELLED, r.Status.GetState(), "the reply carries the action's status")
	require.Contains(t, err.Error(), "the action is now Cancelled, but this is not on disk yet")
	require.NotContains(t, err.Error(), "not carried out")
	require.NotContains(t, err.Error(), "not accepted")

	f.ArmCommit(errNoSpace)
	_, err = d.q.Submit(context.Background(), &messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE", Tasks: []string{"MYTASK"}})
	require.ErrorIs(t, err, messages.ErrStore)
	require.Contains(t, err.Error(), "not accepted and is not queued")

	f.ArmCommit(errNoSpace)
	_, err = d.q.Pause(context.Background())
	require.ErrorIs(t, err, messages.ErrStore)
	require.Contains(t, err.Error(), "the queue is now paused, but this is not on disk yet")
}

var errNoSpace = syscall.ENOSPC

// countingFull fails every commit, as a disk that stays full (or read-only)
// would, and counts the attempts.
type countingFull struct {
	full    atomic.Bool
	commits atomic.Int64
}

func (f *countingFull) Write() error { return nil }
func (f *countingFull) Commit() error {
	if !f.full.Load() {
		return nil
	}
	f.commits.Add(1)
	return syscall.ENOSPC
}
func (f *countingFull) Synced() error { return nil }

// TestShutdownOnFailingStoreDoesNotSpin: a clean shutdown while the disk
// refuses every write stops the running action, tries the failed changes a
// bounded number of times, and completes without claiming that running
// actions did not stop (issue 9, item 7: it spun for ShutdownTimeout,
// retrying as fast as it could, and then reported a timeout).
func TestShutdownOnFailingStoreDoesNotSpin(t *testing.T) {
	t.Parallel()
	f := &countingFull{}
	dir := t.TempDir()
	st, err := store.Open(store.Config{Dir: dir, Faults: f})
	require.NoError(t, err)
	defer st.Close()
	b := setup(t, func(c *Config) { c.Store = st; c.MaximumThreads = 1 })
	run := b.submit(t, "block", 0)
	b.waitState(t, run, messages.State_STATE_PROCESSING)
	f.full.Store(true) // from now on every commit fails
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, b.q.Shutdown(ctx), "the shutdown completes: the running action stopped")
	require.Less(t, f.commits.Load(), int64(10), "failed changes are retried a bounded number of times")
}
