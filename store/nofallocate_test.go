package store

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// fullDisk makes the journal's writes fail as they do on a full disk
// where space cannot be allocated ahead (a file system without
// fallocate, where create's segments are sparse, or one that copies on
// write): while it is on, a frame's write puts half of the frame in the
// file and fails with ENOSPC. undo says whether writing zeros over it
// (the journal's undo) still works; if not, it fails the same way.
func fullDisk(s *boltStore, undo bool) *atomic.Bool {
	var on atomic.Bool
	s.j.mu.Lock()
	defer s.j.mu.Unlock()
	s.j.writeAt = func(f *os.File, b []byte, off int64) (int, error) {
		if !on.Load() || undo && isZeros(b) {
			return f.WriteAt(b, off)
		}
		n, _ := f.WriteAt(b[:len(b)/2], off)
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return &on
}

// On such a file system a full disk fails the frame's write, not the
// rotation (whose segment is only Truncated to its size there), and
// every write was refused with ErrNoSpace until the server restarted (or,
// when the undo of the torn frame failed too, until it restarted even
// with room again). Now that failure goes the way of a rotation that
// finds no room: the journal is folded into the file, the batch whose
// frame failed is committed there directly, and so is everything after
// it; nothing acknowledged is lost, and the switch is logged.
func TestJournalSuspendedWhenAFrameFindsNoRoom(t *testing.T) {
	t.Parallel()
	for _, undo := range []bool{true, false} {
		name := map[bool]string{true: "undone", false: "torn"}[undo]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var logged logSink
			o, err := Open(Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
			require.NoError(t, err)
			s := o.(*boltStore)
			s.stopCheckpointer()
			ds, err := s.Datastore("crawl")
			require.NoError(t, err)
			dd := ds.(Deferrer)
			want := map[string]messages.State{}
			n := 0
			batch := func() error {
				var b []ActionMutation
				for range 3 {
					b = append(b, ActionMutation{Put: rec(fmt.Sprintf("a%05d", n), uint64(n+1), messages.State_STATE_QUEUED)})
					n++
				}
				err := s.ApplyActions("fetch", b)
				if err == nil {
					for _, m := range b {
						want[m.Put.Id] = messages.State_STATE_QUEUED
					}
				}
				return err
			}
			for range 5 {
				require.NoError(t, batch())
			}
			require.NoError(t, dd.UpdateDeferred(func(w Writer) error { return w.Put([]byte("pending"), []byte("1")) }))
			full := fullDisk(s, undo)
			full.Store(true)
			require.NoError(t, batch(), "the batch whose frame found no room is committed directly")
			requireSuspended(t, s, dir, &logged)
			for range 5 {
				require.NoError(t, batch())
			}
			require.NoError(t, dd.UpdateDeferred(func(w Writer) error { return w.Put([]byte("deferred"), []byte("after")) }))
			require.NoError(t, ds.Update(func(w Writer) error { return w.Put([]byte("direct"), []byte("after")) }))
			require.Equal(t, want, ids(t, s))

			// Room again: the journal, broken or not, starts afresh.
			full.Store(false)
			resumed, err := s.resumeJournal()
			require.NoError(t, err)
			require.True(t, resumed)
			for range 5 {
				require.NoError(t, batch())
			}
			require.True(t, s.journaling())
			require.NoError(t, dd.UpdateDeferred(func(w Writer) error { return w.Put([]byte("deferred"), []byte("resumed")) }))
			require.NoError(t, batch(), "carries the deferred write")

			crash(t, s)
			s2 := openJ(t, dir)
			require.Equal(t, want, ids(t, s2), "nothing acknowledged is lost")
			requireKeys(t, s2, "crawl", map[string]string{"pending": "1", "deferred": "resumed", "direct": "after"})
			require.True(t, s2.journaling(), "the next Open uses the journal again")
			require.NoError(t, s2.Close())
		})
	}
}

// If the journal cannot be folded either (the crash comes first, or the
// fold finds no room), what the failed write left is the torn tail that
// replay ignores: the journal takes nothing after it, and a replay gives
// every frame before it.
func TestTornFrameForLackOfRoomIsTheJournalsEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openJ(t, dir)
	want := map[string]messages.State{}
	for i := range 5 {
		r := rec(fmt.Sprintf("a%05d", i), uint64(i+1), messages.State_STATE_QUEUED)
		require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: r}}))
		want[r.Id] = messages.State_STATE_QUEUED
	}
	full := fullDisk(s, false)
	full.Store(true)
	r := rec("torn", 100, messages.State_STATE_QUEUED)
	r.Status.Error = strings.Repeat("x", 500)
	framed, err := encodeActions("fetch", []ActionMutation{{Put: r}})
	require.NoError(t, err)
	muts := []journalMutation{{kind: kindPut, put: framed[0][frameHeader:], framed: framed[0], id: r.Id, seq: 100}}
	none := func() error { return nil }
	var nw *notWritten
	err = s.j.append(encodeFrame("fetch", muts), none, none)
	require.ErrorAs(t, err, &nw, "a frame whose write found no room counts for nothing")
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.Error(t, s.j.broken, "its undo failed too")
	full.Store(false)
	err = s.j.append(encodeFrame("fetch", muts), none, none)
	require.ErrorAs(t, err, &nw, "nothing is appended after a torn frame")
	crash(t, s)
	s2 := openJ(t, dir)
	require.Equal(t, want, ids(t, s2), "every frame before the torn one is replayed")
	require.NoError(t, s2.Close())
}

// requireSuspended checks that s's journal is suspended for lack of room:
// the switch is logged with its cause and the folded segments are gone.
func requireSuspended(t *testing.T, s *boltStore, dir string, logged *logSink) {
	t.Helper()
	require.False(t, s.journaling(), "the journal is suspended")
	assert.Contains(t, logged.String(), "no room for the journal", "the switch is logged")
	assert.Contains(t, logged.String(), "no space left on device", "with its cause")
	left, err := listSegments(dir, DefaultFile)
	require.NoError(t, err)
	require.Empty(t, left, "the folded segments are deleted")
}

// requireKeys checks that datastore name of s holds want.
func requireKeys(t *testing.T, s *boltStore, name string, want map[string]string) {
	t.Helper()
	ds, err := s.Datastore(name)
	require.NoError(t, err)
	for k, v := range want {
		got, err := ds.Get([]byte(k))
		require.NoError(t, err)
		require.Equal(t, v, string(got), k)
	}
}

// loggedStore opens a store in a new folder, its log in a logSink, with
// its checkpointer stopped (nothing folds the journal behind the test's
// back).
func loggedStore(t *testing.T) (s *boltStore, dir string, logged *logSink) {
	t.Helper()
	dir, logged = t.TempDir(), &logSink{}
	o, err := Open(Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(logged, nil))})
	require.NoError(t, err)
	s = o.(*boltStore)
	s.stopCheckpointer()
	return s, dir, logged
}

// putQueued commits n queued actions (a00000, a00001, ...; seq 1 to n),
// one batch each, and returns their states.
func putQueued(t *testing.T, s *boltStore, n int) map[string]messages.State {
	t.Helper()
	want := map[string]messages.State{}
	for i := range n {
		r := rec(fmt.Sprintf("a%05d", i), uint64(i+1), messages.State_STATE_QUEUED)
		require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: r}}))
		want[r.Id] = r.Status.State
	}
	return want
}

// logSink is a log sink read while the store writes to it.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logSink) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logSink) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// failSync makes the journal's fdatasync fail with ENOSPC while it is on,
// as it does on a file system that allocates at writeback (NFS,
// thin-provisioned storage). The frame it was to sync stays in the file,
// as it may reach the disk anyway (whatever a later fdatasync says); the
// segment as it was then is kept in *seg, to be put back later.
func failSync(s *boltStore, seg *[]byte) *atomic.Bool {
	var on atomic.Bool
	s.j.mu.Lock()
	defer s.j.mu.Unlock()
	s.j.syncAt = func(f *os.File) error {
		if !on.Load() {
			return fdatasync(f)
		}
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		b := make([]byte, fi.Size())
		if _, err := f.ReadAt(b, 0); err != nil {
			return err
		}
		*seg = b
		return &os.PathError{Op: "sync", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return &on
}

// An fdatasync of the journal that fails for lack of room stopped every
// write until the server restarted (ErrFailed). Now it goes the way of a
// frame whose write finds no room: the frame counts for nothing, the
// journal is folded from memory into the store file (which bbolt syncs
// itself), the batch is committed there directly, and so is everything
// after it, until the journal comes back (resumeJournal, as after a
// write that found no room: TestJournalResumedOnceThereIsRoomAgain). The frame whose
// sync failed may be on the disk all the same, whole: no replay reads it,
// even where its segment is still there after a crash (put back here), so
// it cannot bring back what later commits changed or deleted.
func TestJournalSuspendedWhenASyncFindsNoRoom(t *testing.T) {
	t.Parallel()
	s, dir, logged := loggedStore(t)
	ds, err := s.Datastore("crawl")
	require.NoError(t, err)
	dd := ds.(Deferrer)
	want := map[string]messages.State{}
	apply := func(b []ActionMutation) error {
		err := s.ApplyActions("fetch", b)
		if err == nil {
			for _, m := range b {
				if m.Put != nil {
					want[m.Put.Id] = m.Put.Status.State
				} else {
					delete(want, m.Delete)
				}
			}
		}
		return err
	}
	for i := range 5 {
		require.NoError(t, apply([]ActionMutation{{Put: rec(fmt.Sprintf("a%05d", i), uint64(i+1), messages.State_STATE_QUEUED)}}))
	}
	require.NoError(t, dd.UpdateDeferred(func(w Writer) error { return w.Put([]byte("pending"), []byte("1")) }))
	var seg []byte
	segPath := s.j.curPath
	fail := failSync(s, &seg)
	fail.Store(true)
	require.NoError(t, apply([]ActionMutation{
		{Put: rec("a00000", 1, messages.State_STATE_PROCESSING)},
		{Put: rec("b00000", 10, messages.State_STATE_QUEUED)},
	}), "the batch whose sync found no room is committed directly")
	fail.Store(false)
	require.True(t, bytes.Contains(seg, []byte("b00000")), "the frame is in the segment")
	requireSuspended(t, s, dir, logged)

	// Later commits change and delete what the unsynced frame holds.
	require.NoError(t, apply([]ActionMutation{
		{Put: rec("a00000", 1, messages.State_STATE_FINISHED)},
		{Delete: "b00000"},
	}))
	require.NoError(t, ds.Update(func(w Writer) error { return w.Put([]byte("direct"), []byte("after")) }))
	require.Equal(t, want, ids(t, s))

	// A crash while the journal is suspended, with the segment whose
	// sync failed still there (say its deletion did not reach the disk),
	// holding that frame whole.
	crash(t, s)
	require.NoError(t, os.WriteFile(segPath, seg, 0o600))
	s2 := openJ(t, dir)
	require.Equal(t, want, ids(t, s2), "nothing acknowledged is lost, and the unsynced frame is not replayed")
	requireKeys(t, s2, "crawl", map[string]string{"pending": "1", "direct": "after"})
	require.True(t, s2.journaling(), "the next Open uses the journal again")
	require.NoError(t, s2.Close())
}

// A crash before the journal is folded: the journal took nothing after
// the frame whose sync failed (the next frame would go where it is), and
// a replay gives every acknowledged frame; the failed one, unacknowledged,
// may be replayed too (its batch may have been committed, as after any
// error).
func TestNothingIsAppendedAfterAFailedSync(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openJ(t, dir)
	want := map[string]messages.State{}
	for i := range 5 {
		r := rec(fmt.Sprintf("a%05d", i), uint64(i+1), messages.State_STATE_QUEUED)
		require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: r}}))
		want[r.Id] = messages.State_STATE_QUEUED
	}
	var seg []byte
	fail := failSync(s, &seg)
	fail.Store(true)
	frame := func(id string, seq uint64) []byte {
		framed, err := encodeActions("fetch", []ActionMutation{{Put: rec(id, seq, messages.State_STATE_QUEUED)}})
		require.NoError(t, err)
		return encodeFrame("fetch", []journalMutation{{kind: kindPut, put: framed[0][frameHeader:], framed: framed[0], id: id, seq: seq}})
	}
	none := func() error { return nil }
	var nw *notWritten
	err := s.j.append(frame("unsynced", 100), none, none)
	require.ErrorAs(t, err, &nw, "a frame whose sync found no room counts for nothing")
	require.ErrorIs(t, err, syscall.ENOSPC)
	fail.Store(false)
	err = s.j.append(frame("after", 101), none, none)
	require.ErrorAs(t, err, &nw, "nothing is appended after it")
	crash(t, s)
	s2 := openJ(t, dir)
	got := ids(t, s2)
	delete(got, "unsynced")
	require.Equal(t, want, got, "every acknowledged frame is replayed, and nothing after the failed one")
	require.NoError(t, s2.Close())
}

// The same goes for the fdatasync of the end frame that closes a segment
// (a rotation): the frame that needed the next segment is committed
// directly, and neither the end frame (which may be on the disk) nor its
// segment is read by a replay.
func TestJournalSuspendedWhenARotationsSyncFindsNoRoom(t *testing.T) {
	t.Parallel()
	s, dir, logged := loggedStore(t)
	want := putQueued(t, s, 3)
	var seg []byte
	segPath, first := s.j.curPath, s.j.curN
	fail := failSync(s, &seg)
	fail.Store(true)
	// A frame larger than the segment: a rotation first.
	big := rec("big", 10, messages.State_STATE_QUEUED)
	big.Status.Error = strings.Repeat("y", 2<<20)
	require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: big}, {Put: rec("a00000", 1, messages.State_STATE_PROCESSING)}}),
		"the batch whose rotation's sync found no room is committed directly")
	want["big"], want["a00000"] = messages.State_STATE_QUEUED, messages.State_STATE_PROCESSING
	fail.Store(false)
	require.Equal(t, first, s.j.curN, "the rotation did not happen")
	require.NotEmpty(t, seg)
	require.False(t, s.journaling(), "the journal is suspended")
	assert.Contains(t, logged.String(), "no room for the journal")
	require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec("a00000", 1, messages.State_STATE_FINISHED)}, {Delete: "a00001"}}))
	want["a00000"] = messages.State_STATE_FINISHED
	delete(want, "a00001")
	require.Equal(t, want, ids(t, s))

	crash(t, s)
	require.NoError(t, os.WriteFile(segPath, seg, 0o600))
	s2 := openJ(t, dir)
	require.Equal(t, want, ids(t, s2), "nothing acknowledged is lost, and the segment is not replayed")
	require.NoError(t, s2.Close())
}
