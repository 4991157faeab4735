package store

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// A disk with room for a run's first journal segment (1 MiB) but not for
// the next (4 MiB): the journal started, and its first rotation failed
// with ENOSPC, after which every write was refused (ErrNoSpace), for good:
// a checkpoint does not make that room, the segment in use stays. Now the
// journal is folded into the file and the store goes on without it: every
// write is taken, nothing acknowledged is lost (a crash replays nothing,
// the file has it all), and a disk that then fills refuses writes only
// until there is room again. The next Open uses the journal again.
func TestJournalSuspendedWithoutRoomForTheNextSegment(t *testing.T) {
	t.Parallel()
	t.Run("no checkpoints", func(t *testing.T) {
		t.Parallel()
		dir := Tmpfs(t, 3<<20)
		journalWithoutRoom(t, dir, openJ(t, dir))
	})
	t.Run("checkpointer", func(t *testing.T) {
		t.Parallel()
		dir := Tmpfs(t, 3<<20)
		s, err := quietOpen(dir)
		require.NoError(t, err)
		journalWithoutRoom(t, dir, s.(*boltStore))
	})
}

func journalWithoutRoom(t *testing.T, dir string, s *boltStore) {
	require.True(t, s.journaling(), "there is room for the first segment")
	ds, err := s.Datastore("crawl")
	require.NoError(t, err)
	dd := ds.(Deferrer)
	put := func(key, val string) error {
		return dd.UpdateDeferred(func(w Writer) error { return w.Put([]byte(key), []byte(val)) })
	}
	want := map[string]messages.State{}
	n := 0
	batch := func() error {
		var b []ActionMutation
		var ids []string
		for range 4 {
			r := rec(fmt.Sprintf("a%05d", n), uint64(n+1), messages.State_STATE_QUEUED)
			r.Status.Error = strings.Repeat("x", 700)
			b = append(b, ActionMutation{Put: r})
			ids = append(ids, r.Id)
			n++
		}
		err := s.ApplyActions("fetch", b)
		if err == nil {
			for _, id := range ids {
				want[id] = messages.State_STATE_QUEUED
			}
		}
		return err
	}
	require.NoError(t, put("journaled", "1"))
	segs := map[uint64]bool{}
	var pending string
	for s.journaling() {
		require.Less(t, n, 10_000, "the journal is still in use")
		segs[s.j.curN] = true
		// Deferred writes wait for the next frame; the one before the
		// rotation that fails is folded by the suspension.
		pending = fmt.Sprint(n)
		require.NoError(t, put("pending", pending))
		require.NoError(t, batch(), "action %d: every write is taken", n)
	}
	require.Len(t, segs, 1, "suspended at the first rotation")
	left, err := listSegments(dir, DefaultFile)
	require.NoError(t, err)
	require.Empty(t, left, "the folded segments are deleted")

	// Without the journal: actions, a change, a delete, datastore writes
	// (deferred or not) are committed to the file at once.
	for range 20 {
		require.NoError(t, batch())
	}
	require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec("a00000", 1, messages.State_STATE_FINISHED)}, {Delete: "a00001"}}))
	want["a00000"] = messages.State_STATE_FINISHED
	delete(want, "a00001")
	require.NoError(t, put("deferred", "after"))
	require.NoError(t, ds.Update(func(w Writer) error { return w.Put([]byte("direct"), []byte("after")) }))
	require.Equal(t, want, ids(t, s))

	// A disk that fills refuses writes until there is room again.
	var full error
	for i := 0; full == nil; i++ {
		require.Less(t, i, 10_000, "the disk never filled")
		full = batch()
	}
	require.ErrorIs(t, full, ErrNoSpace)
	Remount(t, dir, 0, "size=16m")
	require.NoError(t, batch(), "taken again once there is room")

	crash(t, s)
	s2 := openJ(t, dir)
	require.Equal(t, want, ids(t, s2), "nothing acknowledged is lost")
	requireKeys(t, s2, "crawl", map[string]string{"journaled": "1", "pending": pending, "deferred": "after", "direct": "after"})
	require.True(t, s2.journaling(), "the next Open uses the journal again")
	require.NoError(t, s2.ApplyActions("fetch", []ActionMutation{{Put: rec("z", 1<<40, messages.State_STATE_QUEUED)}}))
	left, err = listSegments(dir, DefaultFile)
	require.NoError(t, err)
	require.NotEmpty(t, left)
	require.NoError(t, s2.Close())
}

// An UpdateDeferred that finds too much waiting (Config.MaxDeferredBytes)
// folds it first, and that fold may be what suspends the journal (its
// frame needs the next segment, which finds no room). Its own writes then
// went to dsPending, which nothing writes once the journal is suspended:
// they were lost at Close (and at a crash) although UpdateDeferred
// returned nil, and Get went on reading them over a later Update of the
// same key. Now they are written directly, as every write after the
// suspension.
func TestDeferredUpdateThatSuspendsTheJournal(t *testing.T) {
	t.Parallel()
	dir := Tmpfs(t, 3<<20)
	o, err := Open(Config{Dir: dir, MaxDeferredBytes: 1024, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	s := o.(*boltStore)
	s.stopCheckpointer()
	require.True(t, s.journaling(), "there is room for the first segment")
	ds, err := s.Datastore("crawl")
	require.NoError(t, err)
	dd := ds.(Deferrer)
	// Fill the first segment to less than a big deferred write's frame.
	for n := 0; s.j.size-s.j.off > 4500; n++ {
		require.Less(t, n, 10_000, "the segment never filled")
		r := rec(fmt.Sprintf("a%05d", n), uint64(n+1), messages.State_STATE_QUEUED)
		if s.j.size-s.j.off > 2000 {
			r.Status.Error = strings.Repeat("x", 700)
		}
		require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: r}}))
	}
	big := strings.Repeat("v", 5000)
	require.NoError(t, dd.UpdateDeferred(func(w Writer) error { return w.Put([]byte("a"), []byte(big)) }))
	require.True(t, s.journaling(), "a deferred write waits for the next frame")
	// Over MaxDeferredBytes: this one folds "a" first, whose frame needs
	// the next segment.
	require.NoError(t, dd.UpdateDeferred(func(w Writer) error {
		if err := w.Put([]byte("b"), []byte("x1")); err != nil {
			return err
		}
		return w.Put([]byte("c"), []byte("y1"))
	}))
	require.False(t, s.journaling(), "suspended by the fold")
	require.NoError(t, ds.Update(func(w Writer) error { return w.Put([]byte("c"), []byte("y2")) }))
	want := map[string]string{"a": big, "b": "x1", "c": "y2"}
	for k, v := range want {
		got, err := ds.Get([]byte(k))
		require.NoError(t, err)
		assert.Equal(t, v, string(got), "%s: Get sees the latest write", k)
	}
	assert.False(t, s.hasDeferred(), "nothing waits for a journal that is gone")
	require.NoError(t, s.Close())
	s2 := openJ(t, dir)
	ds2, err := s2.Datastore("crawl")
	require.NoError(t, err)
	for k, v := range want {
		got, err := ds2.Get([]byte(k))
		require.NoError(t, err)
		assert.Equal(t, v, string(got), "%s: kept at Close", k)
	}
	require.NoError(t, s2.Close())
}
