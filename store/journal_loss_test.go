package store

import (
	"archive/tar"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// Issue 9, item 4: a journal segment cut at a frame boundary, truncated to
// zero or deleted lost acknowledged work without a word, and a frame cut
// in the middle was called "never acknowledged". Each of these is now
// refused at Open, naming the segment.

func quietOpen(dir string) (Store, error) {
	return Open(Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

func oneFrameBytes(t *testing.T) int {
	return len(encodeFrame("fetch", []journalMutation{{kind: kindPut, put: mustEncode(t, rec("a0", 1, messages.State_STATE_QUEUED)), id: "a0", seq: 1}}))
}

func requireRefused(t *testing.T, dir, names, says string) {
	t.Helper()
	_, err := quietOpen(dir)
	require.ErrorIs(t, err, ErrCorrupt)
	require.Contains(t, err.Error(), names, "the error names the segment")
	require.Contains(t, err.Error(), says)
}

func TestJournalCutAtFrameBoundaryRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	seg := journalWith(t, dir, 5)
	require.NoError(t, os.Truncate(seg, int64(segHeaderBytes+3*oneFrameBytes(t)))) // frames 4 and 5 gone
	requireRefused(t, dir, seg, "cut short")
	_, err := os.Stat(seg)
	require.NoError(t, err, "a refused journal is kept for inspection")
}

func TestJournalCutMidFrameRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	seg := journalWith(t, dir, 5)
	f := oneFrameBytes(t)
	require.NoError(t, os.Truncate(seg, int64(segHeaderBytes+2*f+f/2)))
	requireRefused(t, dir, seg, "cut short")
}

func TestJournalTruncatedToZeroRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	seg := journalWith(t, dir, 300)
	require.NoError(t, os.Truncate(seg, 0))
	requireRefused(t, dir, seg, "cut short")
}

func TestJournalDeletedSegmentRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	seg := journalWith(t, dir, 300)
	require.NoError(t, os.Remove(seg))
	requireRefused(t, dir, seg, "is missing")
}

// TestStoreFileDeletedWithItsJournalRefused: connector.db deleted (or
// moved) by hand after a crash, its journal segments left. Open made a new,
// empty store file and replayed the segments into it: the actions of the
// journal's first segment came back, while every datastore write made
// directly (never journaled) and whatever the checkpoints had folded and
// the segments no longer held were gone, without a word. It is refused,
// naming the file, and nothing is changed: the file can be put back.
func TestStoreFileDeletedWithItsJournalRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openJ(t, dir)
	d, err := s.Datastore("crawl")
	require.NoError(t, err)
	require.NoError(t, d.Update(func(w Writer) error { return w.Put([]byte("page"), []byte("acknowledged")) }))
	require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec("a1", 1, messages.State_STATE_QUEUED)}}))
	crash(t, s)
	file := filepath.Join(dir, DefaultFile)
	require.NoError(t, os.Rename(file, file+".moved"))
	segs, err := listSegments(dir, DefaultFile)
	require.NoError(t, err)
	require.NotEmpty(t, segs)

	requireRefused(t, dir, file, "is missing")
	_, err = os.Stat(file)
	require.ErrorIs(t, err, os.ErrNotExist, "no new store file is made")
	after, err := listSegments(dir, DefaultFile)
	require.NoError(t, err)
	require.Equal(t, segs, after, "the segments are left as they are")

	// Put back, it opens with everything.
	require.NoError(t, os.Rename(file+".moved", file))
	s2, err := quietOpen(dir)
	require.NoError(t, err)
	defer s2.Close()
	require.Equal(t, map[string]messages.State{"a1": messages.State_STATE_QUEUED}, ids(t, s2))
	d2, err := s2.Datastore("crawl")
	require.NoError(t, err)
	v, err := d2.Get([]byte("page"))
	require.NoError(t, err)
	require.Equal(t, "acknowledged", string(v))
}

// bigJournal writes frames of about 1 MiB each until the journal has used
// nseg segments, abandons it as a crash would, and returns the segments'
// paths and what the store held.
func bigJournal(t *testing.T, dir string, nseg int) ([]string, map[string]messages.State) {
	t.Helper()
	s := openJ(t, dir)
	want := map[string]messages.State{}
	for i := 0; len(s.j.segs) < nseg || s.j.off < 2*segHeaderBytes; i++ {
		r := rec(fmt.Sprintf("big%03d", i), uint64(i+1), messages.State_STATE_QUEUED)
		r.Status.Error = strings.Repeat("x", 1<<20)
		require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: r}}))
		want[r.Id] = messages.State_STATE_QUEUED
	}
	var paths []string
	for _, n := range s.j.segs {
		paths = append(paths, filepath.Join(dir, segmentName(DefaultFile, n)))
	}
	crash(t, s)
	return paths, want
}

func TestJournalLostSegmentRefused(t *testing.T) {
	t.Parallel()
	t.Run("none lost", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		_, want := bigJournal(t, dir, 3)
		s, err := quietOpen(dir)
		require.NoError(t, err)
		defer s.Close()
		require.Equal(t, want, ids(t, s))
	})
	for _, c := range []struct {
		name string
		gone int
		says string
	}{
		{"first", 0, "the store file says the journal goes on there"},
		{"middle", 1, "between"},
		{"last", 2, "ends by naming it as the next"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			paths, _ := bigJournal(t, dir, 3)
			require.Len(t, paths, 3)
			require.NoError(t, os.Remove(paths[c.gone]))
			if c.gone == len(paths)-1 {
				removeSegmentsAfter(t, dir, paths[c.gone]) // a prepared one, not used yet
			}
			requireRefused(t, dir, paths[c.gone], c.says)
		})
	}
	t.Run("last, cut at its end frame's start", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		paths, _ := bigJournal(t, dir, 2)
		// Replace the first segment's end frame with zeros, as a journal
		// that ended there would look: the loss of the second is still
		// seen, by the second's frames following an end of the data.
		b, err := os.ReadFile(paths[0])
		require.NoError(t, err)
		i := endFrameAt(t, b)
		copy(b[i:], make([]byte, endFrameBytes))
		require.NoError(t, os.WriteFile(paths[0], b, 0o600))
		removeSegmentsAfter(t, dir, paths[1])
		requireRefused(t, dir, paths[1], "ended in "+paths[0])
	})
}

// removeSegmentsAfter deletes the segments numbered after path's.
func removeSegmentsAfter(t *testing.T, dir, path string) {
	t.Helper()
	nums, err := listSegments(dir, DefaultFile)
	require.NoError(t, err)
	for _, n := range nums {
		if p := filepath.Join(dir, segmentName(DefaultFile, n)); p > path {
			require.NoError(t, os.Remove(p))
		}
	}
}

// endFrameAt finds the offset of a segment's end frame.
func endFrameAt(t *testing.T, b []byte) int {
	t.Helper()
	off := segHeaderBytes
	for off+frameHeaderBytes <= len(b) {
		n := int(binary.BigEndian.Uint32(b[off:]))
		if b[off+4] == frameEnd {
			return off
		}
		require.NotZero(t, n)
		off += frameHeaderBytes + n
	}
	t.Fatal("no end frame")
	return 0
}

// Frames folded by a checkpoint are in the store file; data that ends
// before the last of them means the journal's end was lost.
func TestJournalEndLostAfterCheckpointRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openJ(t, dir)
	for i := 0; i < 5; i++ {
		require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec(fmt.Sprintf("a%d", i), uint64(i+1), messages.State_STATE_QUEUED)}}))
	}
	require.NoError(t, s.checkpoint())
	require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec("late", 99, messages.State_STATE_QUEUED)}}))
	seg, end := s.j.curPath, s.j.off
	crash(t, s)
	f := oneFrameBytes(t)
	// Zeros over frames 3 to 6, as a tail the disk lost would read.
	writeAt(t, seg, int64(segHeaderBytes+2*f), make([]byte, int(end)-segHeaderBytes-2*f))
	requireRefused(t, dir, seg, "its end was lost")
}

// A crash between a checkpoint's commit and its deleting the segments it
// folded leaves them behind: they are not replayed over newer state.
func TestJournalFoldedSegmentsNotReplayed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	paths, _ := bigJournal(t, dir, 2)
	old, err := os.ReadFile(paths[0])
	require.NoError(t, err)
	s := openJ(t, dir) // replays and folds both
	require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec("big000", 1, messages.State_STATE_FINISHED)}}))
	require.NoError(t, s.checkpoint())
	want := ids(t, s)
	crash(t, s)
	require.NoError(t, os.WriteFile(paths[0], old, 0o600)) // a folded segment, left behind
	s2, err := quietOpen(dir)
	require.NoError(t, err)
	defer s2.Close()
	require.Equal(t, want, ids(t, s2))
	require.Equal(t, messages.State_STATE_FINISHED, ids(t, s2)["big000"])
}

// A crash before anything was appended in a run leaves an empty segment:
// nothing to replay, nothing refused.
func TestJournalEmptySegmentAfterCrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openJ(t, dir)
	require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec("a", 1, messages.State_STATE_QUEUED)}}))
	require.NoError(t, s.Close())
	s = openJ(t, dir)
	crash(t, s)
	s = openJ(t, dir)
	require.Equal(t, map[string]messages.State{"a": messages.State_STATE_QUEUED}, ids(t, s))
	crash(t, s)
	s2 := openJ(t, dir)
	defer s2.Close()
	require.Len(t, ids(t, s2), 1)
}

// legacyFrame encodes a frame of the older format.
func legacyFrame(_ testing.TB, queue string, muts []journalMutation) []byte {
	f := encodeFrame(queue, muts)
	payload := f[frameHeaderBytes:]
	b := make([]byte, legacyFrameHeaderBytes, legacyFrameHeaderBytes+len(payload))
	binary.BigEndian.PutUint32(b[0:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[4:8], crc32.Checksum(payload, castagnoli))
	binary.BigEndian.PutUint32(b[8:12], crc32.Checksum(b[0:8], castagnoli))
	return append(b, payload...)
}

// A store written before journal records (no record in the file) with
// segments of the older format: they are replayed with the older rules.
func TestJournalLegacySegmentsReplayed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := quietOpen(dir)
	require.NoError(t, err)
	require.NoError(t, s.Close()) // nothing appended: no journal record
	put := func(id string, seq uint64, st messages.State) journalMutation {
		return journalMutation{kind: kindPut, put: mustEncode(t, rec(id, seq, st)), id: id, seq: seq}
	}
	one := append(legacyFrame(t, "fetch", []journalMutation{put("a", 1, messages.State_STATE_QUEUED)}),
		legacyFrame(t, "fetch", []journalMutation{put("b", 2, messages.State_STATE_QUEUED)})...)
	two := legacyFrame(t, "fetch", []journalMutation{put("a", 1, messages.State_STATE_CANCELLED)})
	require.NoError(t, os.WriteFile(filepath.Join(dir, segmentName(DefaultFile, 1)), one, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, segmentName(DefaultFile, 2)), append(two, two[:7]...), 0o600)) // a torn tail
	s2, err := quietOpen(dir)
	require.NoError(t, err)
	defer s2.Close()
	require.Equal(t, map[string]messages.State{"a": messages.State_STATE_CANCELLED, "b": messages.State_STATE_QUEUED}, ids(t, s2))
}

// A data folder written by an older build, as a crash left it: commit
// 8652125 (2026-12-05) ran one Synchronize of a 41-page site to its end,
// queued three more with the queue paused, cancelled a fourth, and was
// killed (SIGKILL) with its journal segment still in place
// (testdata/README.md). This build replays it: every acknowledged action is
// there with its status and counts, and the crawl's datastore with it; and
// it still is once this build has checkpointed and closed the store.
func TestOpenDataOfAnOlderBuild(t *testing.T) {
	t.Parallel()
	dir := untarGz(t, filepath.Join("testdata", "store-8652125-killed.tar.gz"))
	want := map[string]messages.State{
		"01a24db2-ce97-7c82-be27-c72d7e3b4f14": messages.State_STATE_FINISHED,
		"01a24db2-d016-765d-8308-0044fdb3997e": messages.State_STATE_QUEUED,
		"01a24db2-d027-7b29-93e5-15a9159f034c": messages.State_STATE_QUEUED,
		"01a24db2-d032-754b-b4ad-fbbe2d9c30d4": messages.State_STATE_QUEUED,
		"01a24db2-d03e-752a-a633-68253a1f4eef": messages.State_STATE_CANCELLED,
	}
	for _, when := range []string{"as the crash left it", "after this build closed it"} {
		s, err := quietOpen(dir)
		require.NoError(t, err, when)
		require.Equal(t, want, ids(t, s), when)
		var added uint64
		require.NoError(t, s.LoadActions("fetch", func(a *messages.StoredAction) error {
			for _, c := range a.GetStatus().GetCounts() {
				added += c.GetAdded()
			}
			return nil
		}))
		require.EqualValues(t, 42, added, "%s: the finished Synchronize's counts", when)
		// The crawl's state: its run number, its task record and one
		// record per page (41 pages and the site's root), which the next
		// Synchronize compares with the site.
		ds, err := s.Datastore("MYTASK")
		require.NoError(t, err)
		var keys []string
		require.NoError(t, ds.ForEach(func(k, _ []byte) error { keys = append(keys, string(k)); return nil }))
		require.Len(t, keys, 44, when)
		require.Contains(t, keys, "m:run", when)
		require.Contains(t, keys, "m:task", when)
		require.Contains(t, keys, "u:http://127.0.0.1:18765/p39.html", when)
		n, err := ds.Len()
		require.NoError(t, err)
		require.Equal(t, 44, n, when)
		// The queue was paused: it still is.
		qs, err := s.Datastore("\x00queue/fetch") // actors/queue: metaDatastore
		require.NoError(t, err)
		paused, err := qs.Get([]byte("paused"))
		require.NoError(t, err)
		require.NotEmpty(t, paused, when)
		require.NoError(t, s.Close(), when)
	}
}

// untarGz unpacks a gzip-compressed tar of plain files into a new folder.
func untarGz(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	dir := t.TempDir()
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return dir
		}
		require.NoError(t, err)
		require.Equal(t, filepath.Base(h.Name), h.Name, "plain files only")
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, h.Name), b, 0o600))
	}
}

// TestAcknowledgedSubmissionsNotLostWithTheirSegment: 300 acknowledged
// submissions, then the crash's journal segments truncated to zero or
// deleted (issue 9, item 4: all 300 were gone without a word). Open
// refuses, naming the segment.
func TestAcknowledgedSubmissionsNotLostWithTheirSegment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openJ(t, dir)
	for i := 0; i < 300; i++ {
		require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec(fmt.Sprintf("id-%03d", i), uint64(i+1), messages.State_STATE_QUEUED)}}))
	}
	crash(t, s)
	nums, err := listSegments(dir, DefaultFile)
	require.NoError(t, err)
	require.NotEmpty(t, nums)
	for name, spoil := range map[string]func(string) error{
		"truncated to zero": func(p string) error { return os.Truncate(p, 0) },
		"deleted":           os.Remove,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, n := range nums {
				img := copyDir(t, dir)
				p := filepath.Join(img, segmentName(DefaultFile, n))
				require.NoError(t, spoil(p))
				s, err := quietOpen(img)
				if err == nil {
					got := len(ids(t, s))
					require.NoError(t, s.Close())
					if got == 300 {
						continue // an empty segment, prepared ahead: nothing was lost
					}
					t.Fatalf("%s %s: opened with %d of 300 acknowledged actions", name, filepath.Base(p), got)
				}
				require.ErrorIs(t, err, ErrCorrupt)
				require.Contains(t, err.Error(), p, "the error names the segment")
			}
		})
	}
}

func copyDir(t *testing.T, dir string) string {
	t.Helper()
	img := t.TempDir()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(img, e.Name()), b, 0o600))
	}
	return img
}
