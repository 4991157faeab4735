package store_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/storetest"
)

// TestJournalSegmentTempLinkNotFollowed: a symbolic link at the temporary
// name a journal segment is made under (connector.db.wal.<n>.tmp, a fixed
// name) is replaced, not followed: the file it points to, outside the
// data folder, is left as it was. The segment was opened through the link
// with O_TRUNC: the outside file was truncated, filled with the segment's
// zeros, and then written as the journal, while the link was renamed into
// the segment's place.
func TestJournalSegmentTempLinkNotFollowed(t *testing.T) {
	t.Parallel()
	dir, outside := t.TempDir(), t.TempDir()
	victim := filepath.Join(outside, "precious")
	const content = "not the server's file\n"
	require.NoError(t, os.WriteFile(victim, []byte(content), 0o600))
	require.NoError(t, os.Symlink(victim, filepath.Join(dir, store.DefaultFile+".wal.000001.tmp")))

	s, err := store.Open(store.Config{Dir: dir})
	require.NoError(t, err)
	require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{storetest.Put(storetest.Record("a", 1, 1))}))
	require.NoError(t, s.Close())

	got, err := os.ReadFile(victim)
	require.NoError(t, err)
	require.Equal(t, content, string(got), "the file outside the data folder is untouched")
	fi, err := os.Lstat(filepath.Join(dir, store.DefaultFile+".wal.000001"))
	if err == nil {
		require.True(t, fi.Mode().IsRegular(), "the segment is a file of the data folder, not the link")
	}
	s, err = store.Open(store.Config{Dir: dir})
	require.NoError(t, err)
	require.Len(t, storetest.Load(t, s, "fetch"), 1)
	require.NoError(t, s.Close())
}

// TestCompactKeepsTheSymlinkedFile: a store file that is a symbolic link
// (docs/durability.md: "A symbolic link to a regular file is followed",
// say to keep the store on a larger disk than the data folder's) is
// compacted where it is: the link stays, and the file it points to is the
// compacted one. The copy was renamed over the link: the store moved into
// the data folder, and the file the link pointed to stayed behind as it
// was before the compaction, never updated again (what a backup of it, or
// a link put back, then held).
func TestCompactKeepsTheSymlinkedFile(t *testing.T) {
	t.Parallel()
	dir, elsewhere := t.TempDir(), t.TempDir()
	before := churned(t, elsewhere)
	target := filepath.Join(elsewhere, store.DefaultFile)
	link := filepath.Join(dir, store.DefaultFile)
	require.NoError(t, os.Symlink(target, link))

	s, err := store.Open(compactConfig(dir)) // compacts at the open
	require.NoError(t, err)
	requireChurned(t, s)
	require.NoError(t, s.ApplyActions("late", []store.ActionMutation{storetest.Put(storetest.Record("late1", 1, 1))}))
	require.NoError(t, s.Close())

	fi, err := os.Lstat(link)
	require.NoError(t, err)
	require.Equal(t, os.ModeSymlink, fi.Mode().Type(), "the store file is still the link")
	require.Less(t, fileSize(t, elsewhere), before/2, "the file the link points to is the compacted one")
	noCopyLeft(t, dir)
	noCopyLeft(t, elsewhere)

	// The file the link points to holds everything, on its own.
	s, err = store.Open(compactConfig(elsewhere))
	require.NoError(t, err)
	defer s.Close()
	requireChurned(t, s)
	storetest.RequireActions(t, s, "late", storetest.Record("late1", 1, 1))
}
