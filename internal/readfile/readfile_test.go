package readfile

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRegular(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	require.NoError(t, os.WriteFile(p, []byte("0123456789"), 0o600))
	data, err := Regular(p, 10)
	require.NoError(t, err)
	require.Equal(t, "0123456789", string(data))

	_, err = Regular(p, 9)
	require.EqualError(t, err, "read "+p+": more than 9 bytes: not the file expected here")
	_, err = Regular(dir, 1<<20)
	require.EqualError(t, err, "read "+dir+": not a regular file (a folder)")
	if _, serr := os.Stat("/dev/zero"); serr == nil {
		_, err = Regular("/dev/zero", 1<<20)
		require.EqualError(t, err, "read /dev/zero: not a regular file (a device)")
	}
	_, err = Regular(filepath.Join(dir, "missing"), 1)
	require.ErrorIs(t, err, fs.ErrNotExist)
	var pe *fs.PathError
	require.ErrorAs(t, err, &pe)
}

// A regular file larger than the limit is refused by its size, unread:
// before, it was read up to the limit first (16 MiB of a wrong
// configuration file, which took more than 10 s at start-up under
// -race on a loaded machine). The file is sparse (no disk used); the
// test reads the bytes allocated, not the time taken.
func TestRegularRefusesALargeFileUnread(t *testing.T) {
	p := filepath.Join(t.TempDir(), "huge")
	f, err := os.Create(p)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(64<<20))
	require.NoError(t, f.Close())
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = Regular(p, 32<<20)
	runtime.ReadMemStats(&after)
	require.EqualError(t, err, "read "+p+": more than 33554432 bytes: not the file expected here")
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4<<20), "bytes allocated to refuse it")
}
