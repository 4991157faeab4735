package readfile

import (
	"io/fs"
	"os"
	"path/filepath"
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
