package store_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/store"
)

// fileMappings returns the address ranges this process maps path at
// (/proc/self/maps).
func fileMappings(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	require.NoError(t, err)
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 6 && fields[5] == path {
			out = append(out, fields[0])
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// A checkpoint of 4080 records (fewer than wake the checkpointer) into a
// new file does not remap it (bbolt
// copies every key and value of the transaction at each remap), and the
// reserved map does not make the file bigger than what it holds plus one
// growth step.
func TestCheckpointFreshFileNoRemap(t *testing.T) {
	if store.BoltMapReserve() == 0 {
		t.Skip("writable opens reserve no map on this platform (32-bit), so a growing file is remapped")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, store.DefaultFile)
	s := freshCheckpoint(t, dir, 16*255)
	defer s.Close()
	before := fileMappings(t, path)
	require.Len(t, before, 1, "the open store maps its file once")
	require.NoError(t, store.Checkpoint(s))
	require.Equal(t, before, fileMappings(t, path), "the checkpoint remapped the file")

	fi, err := os.Stat(path)
	require.NoError(t, err)
	used := fi.Sys().(*syscall.Stat_t).Blocks * 512 // what was written
	require.Greater(t, used, int64(1<<20), "4080 records are MiBs")
	require.LessOrEqual(t, fi.Size(), used+(1<<20)+(64<<10), "file size %d for %d bytes written", fi.Size(), used)
}
