package ingest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestIDXFolderRemovesTheTemporaryFilesACrashLeft: the temporary files
// that IDX folder targets which have ended without closing (a crash
// between a file's creation and its rename, or in the start-up's
// writability check) left in the folder are removed when a target opens
// there alone; they were left for ever, piling up with every crash. While
// another target is open in the folder (another server writing to it),
// only those older than an hour are, and every file not named as ours is
// kept.
func TestIDXFolderRemovesTheTemporaryFilesACrashLeft(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := Options{Type: TypeIDX, Directory: dir}
	write := func(name string, age time.Duration) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte("#DREREFERENCE x\n"), 0o640))
		if age > 0 {
			old := time.Now().Add(-age)
			require.NoError(t, os.Chtimes(p, old, old))
		}
		return p
	}
	notOurs := []string{
		write("notes.tmp", 2*time.Hour),
		write(".00112233445566aa-7.tmp.bak", 2*time.Hour),
		write(".0011223344556-7.tmp", 2*time.Hour),
		write(".00112233445566AA-7.tmp", 2*time.Hour),
		write("00000000000000000001-00112233445566aa.idx", 2*time.Hour),
	}
	require.NoError(t, os.Symlink(filepath.Join(t.TempDir(), "elsewhere"), filepath.Join(dir, ".00112233445566dd-1.tmp")))
	requireKept := func() {
		t.Helper()
		for _, p := range notOurs {
			require.FileExists(t, p, "not a temporary file of ours")
		}
		_, err := os.Lstat(filepath.Join(dir, ".00112233445566dd-1.tmp"))
		require.NoError(t, err, "a symbolic link is not ours")
	}

	// Alone in the folder: every temporary file of ours goes.
	crashed := []string{
		write(".00112233445566aa-7.tmp", 0),
		write(".00112233445566bb-12.tmp", 0),
		write(".probe-123456.tmp", 0),
	}
	first, err := Open(opts, nil)
	require.NoError(t, err)
	for _, p := range crashed {
		require.NoFileExists(t, p, "a temporary file a crash left is removed")
	}
	requireKept()

	// With a target open in the folder (first), a recent temporary file
	// may be its own, being written: only an old one goes.
	recent := write(".00112233445566cc-1.tmp", 0)
	old := write(".00112233445566cc-2.tmp", 2*time.Hour)
	second, err := Open(opts, nil)
	require.NoError(t, err)
	require.FileExists(t, recent, "another open target's file is kept")
	require.NoFileExists(t, old, "a temporary file an hour old is a crash's")
	requireKept()
	require.NoError(t, second.Close())
	require.NoError(t, first.Close())
}

// TestIDXFolderOpenedBesideAnotherKeepsItsProbe: a target that opens
// while another one, alone in the folder until then, removes what a
// crash left there, opens. The other target takes the first's
// writability probe for a crash's (no target holds the folder's lock
// yet: the probe comes before it) and removes it; the first then failed
// to open ("cannot remove files in it": its own probe was gone), and its
// task with it. Not parallel: it sets probeWritten.
func TestIDXFolderOpenedBesideAnotherKeepsItsProbe(t *testing.T) {
	dir := t.TempDir()
	defer func() { probeWritten = nil }()
	probeWritten = func(string) {
		// The other target opens alone now, between this one's probe
		// and its removal (its own probe calls no hook).
		probeWritten = nil
		other, err := Open(Options{Type: TypeIDX, Directory: dir}, nil)
		require.NoError(t, err)
		require.NoError(t, other.Close())
	}
	target, err := Open(Options{Type: TypeIDX, Directory: dir}, nil)
	require.NoError(t, err)
	require.NoError(t, target.Close())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "no probe is left")
}
