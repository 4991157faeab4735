package store

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

func rec(id string, seq uint64, state messages.State) *messages.StoredAction {
	return &messages.StoredAction{Id: id, Spec: &messages.ActionSpec{FetchAction: "SYNCHRONIZE"},
		Status: &messages.ActionStatus{Seq: seq, State: state}}
}

// openJ opens a durable store without its background checkpointer: the
// tests checkpoint when they mean to, and read the journal's state.
func openJ(t *testing.T, dir string) *boltStore {
	t.Helper()
	s, err := Open(Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	b := s.(*boltStore)
	b.stopCheckpointer()
	return b
}

// crash abandons the store as a kill -9 would: no final checkpoint; the
// journal segments stay as they are on disk.
func crash(t *testing.T, s *boltStore) {
	t.Helper()
	s.stopCheckpointer()
	s.j.close()
	require.NoError(t, s.db.Close())
	s.db = nil
}

func ids(t *testing.T, s Store) map[string]messages.State {
	t.Helper()
	out := map[string]messages.State{}
	var last uint64
	require.NoError(t, s.LoadActions("fetch", func(a *messages.StoredAction) error {
		require.Greater(t, a.Status.Seq, last, "in seq order")
		last = a.Status.Seq
		out[a.Id] = a.Status.State
		return nil
	}))
	return out
}

func TestJournalReplayAfterCrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openJ(t, dir)
	want := map[string]messages.State{}
	for i := 0; i < 50; i++ {
		id := fmt.Sprintf("a%03d", i)
		require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec(id, uint64(i+1), messages.State_STATE_QUEUED)}}))
		want[id] = messages.State_STATE_QUEUED
	}
	// later changes: finish some, delete some, move one to another seq
	require.NoError(t, s.ApplyActions("fetch", []ActionMutation{
		{Put: rec("a001", 2, messages.State_STATE_FINISHED)}, {Delete: "a002"}, {Put: rec("a003", 1000, messages.State_STATE_PAUSED)},
	}))
	want["a001"], want["a003"] = messages.State_STATE_FINISHED, messages.State_STATE_PAUSED
	delete(want, "a002")
	require.Equal(t, want, ids(t, s), "reads see journaled changes")
	segs, err := listSegments(dir, DefaultFile)
	require.NoError(t, err)
	require.NotEmpty(t, segs, "not checkpointed yet")
	crash(t, s)

	s2 := openJ(t, dir)
	defer s2.Close()
	require.Equal(t, want, ids(t, s2))
	after, err := listSegments(dir, DefaultFile)
	require.NoError(t, err)
	require.Len(t, after, 1, "replayed into the file and removed; the new journal's segment is there")
	require.Greater(t, after[0], segs[len(segs)-1], "the new journal goes on after every replayed segment")
}

func TestJournalTornTailIgnored(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openJ(t, dir)
	for i := 0; i < 5; i++ {
		require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec(fmt.Sprintf("a%d", i), uint64(i+1), messages.State_STATE_QUEUED)}}))
	}
	seg, end, seq := s.j.curPath, s.j.off, s.j.seq
	crash(t, s)
	// A write torn by the crash: half a frame at the end of the data.
	frame := encodeFrame("fetch", []journalMutation{{kind: kindPut, put: mustEncode(t, rec("torn", 99, messages.State_STATE_QUEUED)), id: "torn", seq: 99}})
	setSeq(frame, seq+1)
	writeAt(t, seg, end, frame[:len(frame)/2])

	s2 := openJ(t, dir)
	defer s2.Close()
	got := ids(t, s2)
	require.Len(t, got, 5)
	require.NotContains(t, got, "torn", "an unacknowledged torn write is dropped")
}

func TestJournalDamageRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openJ(t, dir)
	for i := 0; i < 3; i++ {
		require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec(fmt.Sprintf("a%d", i), uint64(i+1), messages.State_STATE_QUEUED)}}))
	}
	seg := s.j.curPath
	crash(t, s)
	b, err := os.ReadFile(seg)
	require.NoError(t, err)
	b[segHeaderBytes+frameHeaderBytes+3] ^= 0xff // inside the first frame, two valid ones follow
	require.NoError(t, os.WriteFile(seg, b, 0o600))
	_, err = Open(Config{Dir: dir})
	require.ErrorIs(t, err, ErrCorrupt)
	require.Contains(t, err.Error(), seg, "the error names the damaged segment")
}

// journalWith writes n one-action frames into a fresh store's journal and
// abandons it as a crash would; it returns the segment's path.
func journalWith(t *testing.T, dir string, n int) string {
	t.Helper()
	seg, _ := journalEnd(t, dir, n)
	return seg
}

// journalEnd is journalWith that also returns where the data ends.
func journalEnd(t *testing.T, dir string, n int) (string, int64) {
	t.Helper()
	s := openJ(t, dir)
	for i := 0; i < n; i++ {
		require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec(fmt.Sprintf("a%d", i), uint64(i+1), messages.State_STATE_QUEUED)}}))
	}
	seg, end := s.j.curPath, s.j.off
	crash(t, s)
	return seg, end
}

// writeAt writes b into the file at path at offset off, as a write the
// crash interrupted would have left it.
func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(b, off)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func damage(t *testing.T, path string, at int) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[at] ^= 0x10
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

// A damaged frame header must never be taken for the end of the data:
// every acknowledged frame after it would be dropped without a word.
func TestJournalDamagedHeaderRefused(t *testing.T) {
	t.Parallel()
	frame := len(encodeFrame("fetch", []journalMutation{{kind: kindPut, put: mustEncode(t, rec("a0", 1, messages.State_STATE_QUEUED)), id: "a0", seq: 1}}))
	for _, c := range []struct {
		name string
		at   int
	}{
		{"segment header's magic", 0},
		{"segment header's size", 20},
		{"segment header's checksum", 30},
		{"first frame's length, high byte", segHeaderBytes},
		{"first frame's length, low byte", segHeaderBytes + 3},
		{"first frame's kind", segHeaderBytes + 4},
		{"first frame's seq", segHeaderBytes + 15},
		{"first frame's payload checksum", segHeaderBytes + 17},
		{"first frame's header checksum", segHeaderBytes + 21},
		{"middle frame's length", segHeaderBytes + frame},
		{"last frame's length (its payload follows it)", segHeaderBytes + 4*frame},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			seg := journalWith(t, dir, 5)
			damage(t, seg, c.at)
			_, err := Open(Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			require.ErrorIs(t, err, ErrCorrupt)
			require.Contains(t, err.Error(), seg, "the error names the damaged segment")
			_, err = os.Stat(seg)
			require.NoError(t, err, "a refused journal is kept for inspection")
		})
	}
}

// The last frame of the data, damaged or torn, is dropped with a warning
// that names the segment, never silently.
func TestJournalTornTailLogged(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	seg, end := journalEnd(t, dir, 3)
	damage(t, seg, int(end)-1) // the last byte of the last frame's payload
	var logs strings.Builder
	s, err := Open(Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	defer s.Close()
	require.Len(t, ids(t, s), 2)
	require.Contains(t, logs.String(), "dropped the last frame of the journal, which is incomplete or damaged")
	require.Contains(t, logs.String(), "the two cannot be told apart", "it is not claimed that the frame was never acknowledged")
	require.NotContains(t, logs.String(), "never acknowledged")
	require.Contains(t, logs.String(), seg)
}

// Only the last segment holding data can end in a torn frame.
func TestJournalTornFrameBeforeDataRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	seg, end := journalEnd(t, dir, 3)
	damage(t, seg, int(end)-1)
	// An acknowledged frame in the next segment.
	segs, err := listSegments(dir, DefaultFile)
	require.NoError(t, err)
	next := filepath.Join(dir, segmentName(DefaultFile, segs[len(segs)-1]+1))
	require.NotEqual(t, seg, next)
	frame := encodeFrame("fetch", []journalMutation{{kind: kindPut, put: mustEncode(t, rec("later", 9, messages.State_STATE_QUEUED)), id: "later", seq: 9}})
	setSeq(frame, 4)
	writeSegment(t, next, frame)
	_, err = Open(Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.ErrorIs(t, err, ErrCorrupt)
	require.Contains(t, err.Error(), next)
}

// writeSegment writes a segment file holding frames.
func writeSegment(t *testing.T, path string, frames ...[]byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, segmentBytes(4096, frames...), 0o600))
}

// segmentBytes builds a segment of size bytes holding frames.
func segmentBytes(size int, frames ...[]byte) []byte {
	b := encodeSegHeader(int64(size))
	for _, f := range frames {
		b = append(b, f...)
	}
	return append(b, make([]byte, size-len(b))...)
}

// A torn header (a frame whose first bytes reached the disk) followed by
// zeros, as in a zero-filled segment, is a torn write.
func TestJournalTornHeaderIgnored(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	seg, end := journalEnd(t, dir, 3)
	frame := encodeFrame("fetch", []journalMutation{{kind: kindPut, put: mustEncode(t, rec("torn", 99, messages.State_STATE_QUEUED)), id: "torn", seq: 99}})
	setSeq(frame, 4)
	writeAt(t, seg, end, frame[:6]) // half a header; zeros follow in the segment
	s := openJ(t, dir)
	defer s.Close()
	require.Len(t, ids(t, s), 3)
}

func TestJournalCheckpoints(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openJ(t, dir)
	want := map[string]messages.State{}
	seq := uint64(0)
	// Enough mutations to wake the checkpointer several times, and with
	// moves and deletes across checkpoints.
	for round := 0; round < 3*checkpointEvery/64; round++ {
		var batch []ActionMutation
		for j := 0; j < 64; j++ {
			seq++
			id := fmt.Sprintf("r%07d", seq)
			batch = append(batch, ActionMutation{Put: rec(id, seq, messages.State_STATE_QUEUED)})
			want[id] = messages.State_STATE_QUEUED
		}
		require.NoError(t, s.ApplyActions("fetch", batch))
		if round%10 == 9 {
			old := fmt.Sprintf("r%07d", seq-100)
			require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Delete: old}}))
			delete(want, old)
		}
		require.NoError(t, s.checkpoint()) // at any moment
	}
	require.Equal(t, want, ids(t, s))
	require.NoError(t, s.Close())
	segs, err := listSegments(dir, DefaultFile)
	require.NoError(t, err)
	require.Empty(t, segs, "a clean close leaves no journal")
	s2 := openJ(t, dir)
	defer s2.Close()
	require.Equal(t, want, ids(t, s2))
}

func TestJournalValidatesAgainstOverlay(t *testing.T) {
	t.Parallel()
	s := openJ(t, t.TempDir())
	defer s.Close()
	require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec("a", 5, messages.State_STATE_QUEUED)}}))
	err := s.ApplyActions("fetch", []ActionMutation{{Put: rec("b", 5, messages.State_STATE_QUEUED)}})
	require.ErrorIs(t, err, ErrInvalid, "seq 5 is held by a journaled action")
	// moving a first frees seq 5 within the same batch
	require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec("a", 6, messages.State_STATE_QUEUED)}, {Put: rec("b", 5, messages.State_STATE_QUEUED)}}))
	require.NoError(t, s.checkpoint())
	err = s.ApplyActions("fetch", []ActionMutation{{Put: rec("c", 6, messages.State_STATE_QUEUED)}})
	require.ErrorIs(t, err, ErrInvalid, "seq 6 is held by a checkpointed action")
	require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Delete: "a"}, {Put: rec("c", 6, messages.State_STATE_QUEUED)}}))
	require.Equal(t, map[string]messages.State{"b": messages.State_STATE_QUEUED, "c": messages.State_STATE_QUEUED}, ids(t, s))
	require.False(t, errors.Is(nil, ErrInvalid))
}

func mustEncode(t *testing.T, a *messages.StoredAction) []byte {
	t.Helper()
	b, err := encodeAction("fetch", a)
	require.NoError(t, err)
	return b
}

// A frame encoded into a reused buffer (the store keeps the last frame's
// memory for the next) is byte for byte the frame encoded afresh, whatever
// the buffer held, for every kind of mutation.
func TestEncodeFrameIntoReusedBuffer(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 300) // a task name whose length takes a two-byte varint
	muts := []journalMutation{
		{kind: kindPut, put: mustEncode(t, rec("a1", 1, messages.State_STATE_QUEUED)), id: "a1", seq: 1},
		{kind: kindDelete, id: "a0"},
		{kind: kindDSPut, task: long, key: []byte("k"), put: []byte("v")},
		{kind: kindDSPut, task: "T", key: []byte("empty"), put: []byte{}},
		{kind: kindDSDelete, task: "U", key: []byte("gone")},
	}
	for _, m := range muts {
		require.Len(t, m.data(), m.dataLen(), "kind %d", m.kind)
	}
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = 0xff
	}
	for n := len(muts); n >= 1; n-- {
		want := encodeFrame("fetch", muts[:n])
		got := encodeFrameInto(buf, "fetch", muts[:n])
		require.Equal(t, want, got, "%d mutations", n)
		require.Equal(t, &buf[0], &got[0], "encoded in the buffer's memory")
		q, dec, err := decodeFrame(got[frameHeaderBytes:])
		require.NoError(t, err)
		require.Equal(t, "fetch", q)
		require.Len(t, dec, n)
		buf = got
	}
	small := make([]byte, 0, 8)
	require.Equal(t, encodeFrame("fetch", muts), encodeFrameInto(small, "fetch", muts), "a buffer too small is replaced")
}
