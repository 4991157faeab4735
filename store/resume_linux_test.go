//go:build linux

package store

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// suspendForLackOfRoom fills s's journal (on a 3 MiB tmpfs) until its
// first rotation finds no room and the journal is suspended; want gets
// every action acknowledged. It returns the next action's number.
func suspendForLackOfRoom(t *testing.T, s *boltStore, want map[string]messages.State) int {
	t.Helper()
	n := 0
	for s.journaling() {
		require.Less(t, n, 10_000, "the journal is still in use")
		var b []ActionMutation
		for range 4 {
			r := rec(fmt.Sprintf("a%05d", n), uint64(n+1), messages.State_STATE_QUEUED)
			r.Status.Error = strings.Repeat("x", 700)
			b = append(b, ActionMutation{Put: r})
			n++
		}
		require.NoError(t, s.ApplyActions("fetch", b), "action %d", n)
		for _, m := range b {
			want[m.Put.Id] = messages.State_STATE_QUEUED
		}
	}
	return n
}

// suspendedThenRoom opens a store on a 3 MiB tmpfs with cfg (Dir is set
// here), stops its checkpointer, fills its journal until it is suspended
// for lack of room (suspendForLackOfRoom), runs whileFull if it is not nil
// (it returns the next action's number), and then gives the tmpfs 32 MiB
// and, if cfg.CheckpointInterval is set, starts the checkpointer again.
// It returns the store, its directory, every action acknowledged, and the
// next action's number.
//
// The checkpointer is stopped while the journal fills even when the test
// wants it afterwards: checkpoints in between grow connector.db, and on a
// 3 MiB disk the file may then find no room before the journal's rotation
// does, so writes are refused (ErrNoSpace, as they should be) instead of
// the journal being suspended (seen once in CI: "checkpoint journal:
// records: no space left on device").
func suspendedThenRoom(t *testing.T, cfg Config, whileFull func(s *boltStore, want map[string]messages.State, n int) int) (*boltStore, string, map[string]messages.State, int) {
	t.Helper()
	dir := Tmpfs(t, 3<<20)
	cfg.Dir = dir
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	o, err := Open(cfg)
	require.NoError(t, err)
	s := o.(*boltStore)
	s.stopCheckpointer()
	want := map[string]messages.State{}
	n := suspendForLackOfRoom(t, s, want)
	if whileFull != nil {
		n = whileFull(s, want, n)
	}
	Remount(t, dir, 0, "size=32m")
	if cfg.CheckpointInterval != 0 {
		s.startCheckpointer()
	}
	return s, dir, want, n
}

// A disk that was full for a while switched the store to direct commits
// (two fdatasyncs each) for the rest of the run, and nothing said when
// room came back. Now the journal is turned back on once there is room
// for its next segment and the one after it, and that is logged; while
// there is not, nothing changes. Nothing acknowledged before, during or
// after is lost, across a rotation of the new journal and a crash.
func TestJournalResumedOnceThereIsRoomAgain(t *testing.T) {
	t.Parallel()
	var logged logSink
	var direct *messages.StoredAction
	s, dir, want, n := suspendedThenRoom(t, Config{Logger: slog.New(slog.NewTextHandler(&logged, nil))}, func(s *boltStore, want map[string]messages.State, n int) int {
		require.Contains(t, logged.String(), "no room for the journal")
		// Direct commits meanwhile.
		direct = rec(fmt.Sprintf("a%05d", n), uint64(n+1), messages.State_STATE_QUEUED)
		require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: direct}}))
		want[direct.Id] = messages.State_STATE_QUEUED
		n++

		resumed, err := s.resumeJournal()
		require.NoError(t, err)
		require.False(t, resumed, "no room yet")
		require.False(t, s.journaling())
		left, err := listSegments(s.cfg.Dir, DefaultFile)
		require.NoError(t, err)
		require.Empty(t, left, "a try without room for three segments makes none")
		return n
	})
	resumed, err := s.resumeJournal()
	require.NoError(t, err)
	require.True(t, resumed, "room again")
	require.True(t, s.journaling())
	require.Contains(t, logged.String(), "there is room for the journal again")
	// The file names the new segment at once: recorded is never cleared
	// under an ApplyActions that looked at it without taking the gate.
	jr, err := s.journalRecord()
	require.NoError(t, err)
	require.Equal(t, &journalRecord{M: s.j.curN, S: s.j.seq, Exists: true}, jr)
	require.True(t, s.recorded.Load())

	// The seq a direct commit took is still taken: the journal's
	// bounds were read again.
	thief := rec("zzzzz", direct.Status.Seq, messages.State_STATE_QUEUED)
	require.ErrorIs(t, s.ApplyActions("fetch", []ActionMutation{{Put: thief}}), ErrInvalid)
	for range 5 {
		r := rec(fmt.Sprintf("a%05d", n), uint64(n+1), messages.State_STATE_QUEUED)
		require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: r}}))
		want[r.Id] = messages.State_STATE_QUEUED
		n++
	}
	require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec(direct.Id, direct.Status.Seq, messages.State_STATE_FINISHED)}}))
	want[direct.Id] = messages.State_STATE_FINISHED
	// A frame larger than a segment: a rotation.
	var big []ActionMutation
	for range 5 {
		r := rec(fmt.Sprintf("a%05d", n), uint64(n+1), messages.State_STATE_QUEUED)
		r.Status.Error = strings.Repeat("y", 1<<20)
		big = append(big, ActionMutation{Put: r})
		want[r.Id] = messages.State_STATE_QUEUED
		n++
	}
	first := s.j.curN
	require.NoError(t, s.ApplyActions("fetch", big))
	require.Greater(t, s.j.curN, first, "rotated")
	require.Equal(t, want, ids(t, s))

	crash(t, s)
	s2 := openJ(t, dir)
	require.Equal(t, want, ids(t, s2), "nothing acknowledged is lost")
	require.NoError(t, s2.Close())
}

// A try that made the new segment and then finds less than a segment's
// room left (the disk filled meanwhile) removes it: nothing names it, and
// its 4 MiB are wanted. The journal stays suspended, and comes back once
// there is room. (review15 F7: with too little room for three segments the
// try makes none, so the test above cannot see this.)
func TestJournalNotResumedRemovesItsSegment(t *testing.T) {
	t.Parallel()
	s, dir, want, _ := suspendedThenRoom(t, Config{}, nil)

	ballast := filepath.Join(dir, "ballast")
	prepared := false
	s.resumeHook = func() {
		prepared = true
		var st syscall.Statfs_t
		require.NoError(t, syscall.Statfs(dir, &st))
		free := int64(st.Bavail) * st.Bsize
		require.GreaterOrEqual(t, free, int64(resumeRoom-segmentSize), "room left by the prepared segment")
		require.NoError(t, os.WriteFile(ballast, make([]byte, free-segmentSize/2), 0o600))
	}
	resumed, err := s.resumeJournal()
	require.NoError(t, err)
	require.True(t, prepared, "the try made a segment")
	require.False(t, resumed, "no room left for the next one")
	require.False(t, s.journaling())
	left, err := listSegments(dir, DefaultFile)
	require.NoError(t, err)
	require.Empty(t, left, "the segment it made is removed")
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		require.NotContains(t, e.Name(), ".tmp")
	}

	s.resumeHook = nil
	require.NoError(t, os.Remove(ballast))
	resumed, err = s.resumeJournal()
	require.NoError(t, err)
	require.True(t, resumed, "room again")
	crash(t, s)
	s2 := openJ(t, dir)
	require.Equal(t, want, ids(t, s2))
	require.NoError(t, s2.Close())
}

// The checkpointer tries it (every defaultResumeEvery; here at once), and
// a crash right after, before a frame, replays nothing and loses nothing.
func TestJournalResumedByTheCheckpointer(t *testing.T) {
	t.Parallel()
	s, dir, want, _ := suspendedThenRoom(t, Config{CheckpointInterval: time.Millisecond}, func(s *boltStore, _ map[string]messages.State, n int) int {
		s.resumeEvery.Store(int64(time.Millisecond))
		require.False(t, s.journaling())
		return n
	})
	deadline := time.Now().Add(30 * time.Second)
	for !s.journaling() {
		require.True(t, time.Now().Before(deadline), "the journal was not turned back on")
		time.Sleep(time.Millisecond)
	}
	crash(t, s)
	s2 := openJ(t, dir)
	require.Equal(t, want, ids(t, s2))
	require.True(t, s2.journaling())
	require.NoError(t, s2.Close())
}

// resumeMu keeps a direct commit (the journal suspended) from crossing
// the journal's return: one that found the journal suspended commits to
// the store file before resumeJournal turns the journal back on, so a
// journaled write after it is validated against it. Without the lock,
// the resumption would run between the commit's check and its write, a
// journaled put would take the seq the direct commit then takes too
// (validated against the file only), and both would be acknowledged.
// The hook holds the direct commit at its check while the checkpointer's
// resumption runs as far as it can.
func TestDirectCommitDoesNotCrossTheJournalsReturn(t *testing.T) {
	t.Parallel()
	s, dir, want, n := suspendedThenRoom(t, Config{}, nil)

	seq := uint64(n + 1) // nobody's yet
	direct := rec("direct", seq, messages.State_STATE_QUEUED)
	other := rec("other", seq, messages.State_STATE_QUEUED)
	var (
		done     = make(chan struct{})
		waiting  = make(chan struct{})
		resumed  bool
		rerr     error
		otherErr error
		tried    bool
	)
	s.resumeWaitHook = func() { close(waiting) }
	s.directHook = func(step string) {
		if step != "checked" || tried {
			return
		}
		tried = true
		go func() {
			defer close(done)
			resumed, rerr = s.resumeJournal()
		}()
		select {
		case <-waiting: // the resumption waits for this commit
		case <-done:
			// The journal came back under this commit: another
			// caller's journaled put of the same seq.
			otherErr = s.ApplyActions("fetch", []ActionMutation{{Put: other}})
		case <-time.After(time.Minute):
			t.Error("the resumption neither waited nor finished")
		}
	}
	directErr := s.ApplyActions("fetch", []ActionMutation{{Put: direct}})
	require.True(t, tried, "the commit was direct")
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the resumption did not finish")
	}
	require.NoError(t, rerr)
	require.True(t, resumed)
	require.True(t, s.journaling())
	s.directHook = nil
	select {
	case <-waiting:
		otherErr = s.ApplyActions("fetch", []ActionMutation{{Put: other}})
	default:
	}
	require.NoError(t, directErr, "the direct commit")
	require.ErrorIs(t, otherErr, ErrInvalid, "the seq the direct commit took is taken")
	want[direct.Id] = messages.State_STATE_QUEUED
	require.Equal(t, want, ids(t, s))
	require.NoError(t, s.checkpoint())
	require.Equal(t, want, ids(t, s), "after the fold")

	crash(t, s)
	s2 := openJ(t, dir)
	require.Equal(t, want, ids(t, s2), "after a crash")
	require.NoError(t, s2.Close())
}

// A direct commit that finds the journal back by the time it holds
// resumeMu (ApplyActions looked before the resumption) goes to the
// journal instead: a crash replays it.
func TestDirectCommitAfterTheJournalsReturnIsJournaled(t *testing.T) {
	t.Parallel()
	s, dir, want, n := suspendedThenRoom(t, Config{}, nil)

	before := false
	s.directHook = func(step string) {
		if step != "before" || before {
			return
		}
		before = true
		resumed, err := s.resumeJournal()
		require.NoError(t, err)
		require.True(t, resumed)
	}
	late := rec("late", uint64(n+1), messages.State_STATE_QUEUED)
	seq := s.j.seq
	require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: late}}))
	require.True(t, before, "ApplyActions looked before the resumption")
	require.Equal(t, seq+1, s.j.seq, "journaled")
	want[late.Id] = messages.State_STATE_QUEUED
	require.Equal(t, want, ids(t, s))

	crash(t, s)
	s2 := openJ(t, dir)
	require.Equal(t, want, ids(t, s2), "replayed after a crash")
	require.NoError(t, s2.Close())
}
