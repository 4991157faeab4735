package queue

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
)

// TestListedTaskCopiesOutliveTheirSpawn: a list's statuses of queued
// actions without an actor are made by the requester from the
// QueueManager's copies of their tasks (listViews), after the
// QueueManager has moved on. An action restored as queued after a crash
// has an outcome (its counts) from the start; once it is dispatched, its
// actor writes that outcome's fields while it runs and when it ends. The
// copies must not share it: lists taken while it waits, unspawned, and
// read while it is spawned, runs and ends, raced with those writes
// (go test -race) when a copy kept the task's outcome. What they show of
// it while it waits is what its actor shows.
func TestListedTaskCopiesOutliveTheirSpawn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	d := openDurable(t, dir, nil, nil) // one thread
	b := d.bundle()
	run := b.submit(t, "block", 0)
	b.waitState(t, run, messages.State_STATE_PROCESSING)
	d.waitDurable(t, run, started)
	blocker := b.submit(t, "block", 9) // first once restarted
	d.waitDurable(t, blocker, func(*messages.ActionStatus) bool { return true })
	d.crash(t)

	d2 := openDurable(t, dir, nil, nil)
	defer d2.shutdown(t)
	b2 := d2.bundle()
	b2.waitState(t, blocker, messages.State_STATE_PROCESSING)
	f := &messages.ListActions{States: []messages.State{messages.State_STATE_QUEUED}}
	l, err := b2.q.List(ctx, f)
	require.NoError(t, err)
	require.Len(t, l, 1)
	require.Equal(t, run, l[0].Token)
	require.EqualValues(t, 1, l[0].Restarts)
	require.NotNil(t, l[0].Counts, "restored with its counts: an outcome before its actor exists")

	// Lists of every kind go on while it is dispatched, runs and ends.
	var (
		stop  atomic.Bool
		wg    sync.WaitGroup
		lists atomic.Int64
	)
	all := &messages.ListActions{}
	for _, list := range []func() error{
		func() error { _, err := b2.q.List(ctx, all); return err },
		func() error { _, err := b2.q.ListEntries(ctx, all); return err },
		func() error { _, err := b2.q.ListParams(ctx, 0, 0); return err },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if err := list(); err != nil {
					t.Error(err)
					return
				}
				lists.Add(1)
			}
		}()
	}
	testwait.For(t, 10*time.Second, func() bool { return lists.Load() >= 30 }, "lists before the dispatch")
	d2.repo.Release(blocker)
	b2.waitState(t, run, messages.State_STATE_PROCESSING)
	n := lists.Load()
	testwait.For(t, 10*time.Second, func() bool { return lists.Load() >= n+30 }, "lists while it runs")
	d2.repo.Release(run)
	s := b2.waitState(t, run, messages.State_STATE_FINISHED)
	n = lists.Load()
	testwait.For(t, 10*time.Second, func() bool { return lists.Load() >= n+30 }, "lists once it ended")
	stop.Store(true)
	wg.Wait()

	l, err = b2.q.List(ctx, &messages.ListActions{States: []messages.State{messages.State_STATE_FINISHED}})
	require.NoError(t, err)
	require.Len(t, l, 2)
	i := slices.IndexFunc(l, func(s *messages.ActionStatus) bool { return s.Token == run })
	require.GreaterOrEqual(t, i, 0)
	require.True(t, proto.Equal(s, l[i]), "listed %v, by token %v", l[i], s)
}
