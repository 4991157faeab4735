package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// hugeBytes is the size of the sparse files below: far more than the
// machine's memory (1 TiB), and nothing of it on the disk.
const hugeBytes = 1 << 40

// TestHugeSegmentFileRefusedUnread: a file named like a journal segment
// that is larger than any segment the journal makes (a stray file copied
// into the data folder under that name, a segment extended by hand) is
// refused at Open, naming it, without being read. Open read every segment
// whole: such a file took all the memory at start-up (here, a sparse file
// of 1 TiB: the runtime died "out of memory"), instead of a start-up
// error saying which file is wrong.
func TestHugeSegmentFileRefusedUnread(t *testing.T) {
	t.Parallel()
	huge := func(t *testing.T, p string) {
		t.Helper()
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o600)
		require.NoError(t, err)
		require.NoError(t, f.Truncate(hugeBytes))
		require.NoError(t, f.Close())
	}
	t.Run("a segment extended", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		seg := journalWith(t, dir, 5)
		huge(t, seg)
		requireRefused(t, dir, seg, "but it was made with")
	})
	t.Run("a stranger beside the journal", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		journalWith(t, dir, 5)
		stray := filepath.Join(dir, segmentName(DefaultFile, 999999))
		huge(t, stray)
		requireRefused(t, dir, stray, "no journal segment header")
	})
	t.Run("a stranger beside a store never written", func(t *testing.T) {
		// The store file has no journal record (as an older build's
		// has none): a segment may be that build's, without a header;
		// none of those was larger than a segment or its first frame.
		t.Parallel()
		dir := neverWritten(t)
		stray := filepath.Join(dir, segmentName(DefaultFile, 1))
		huge(t, stray)
		requireRefused(t, dir, stray, "larger than any journal segment")
	})
	t.Run("an older build's segment of one large frame", func(t *testing.T) {
		// Larger than 4 MiB, as such a build made a segment for a frame
		// that did not fit in one: it is read and replayed.
		t.Parallel()
		dir := neverWritten(t)
		r := rec("big", 1, messages.State_STATE_QUEUED)
		r.Status.Error = strings.Repeat("x", segmentSize+1)
		frame := legacyFrame(t, "fetch", []journalMutation{{kind: kindPut, put: mustEncode(t, r), id: "big", seq: 1}})
		require.Greater(t, len(frame), segmentSize)
		require.NoError(t, os.WriteFile(filepath.Join(dir, segmentName(DefaultFile, 1)), frame, 0o600))
		s, err := quietOpen(dir)
		require.NoError(t, err)
		defer s.Close()
		require.Equal(t, map[string]messages.State{"big": messages.State_STATE_QUEUED}, ids(t, s))
	})
}

// neverWritten returns a folder with a store opened and closed, nothing
// written: its file has no journal record, as an older build's has none.
func neverWritten(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s, err := quietOpen(dir)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	return dir
}
