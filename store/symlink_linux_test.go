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
