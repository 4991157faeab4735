package store

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// unwrittenExtents reports whether any of path's extents is allocated but
// unwritten (FIEMAP_EXTENT_UNWRITTEN), and whether the file system could
// say (FS_IOC_FIEMAP is not supported everywhere).
func unwrittenExtents(t *testing.T, path string) (unwritten, known bool) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	const (
		fsIocFiemap     = 0xC020660B
		fiemapFlagSync  = 0x1
		extentUnwritten = 0x800
		extentLast      = 0x1
		headerBytes     = 32
		extentBytes     = 56
		maxExtents      = 64
	)
	var start uint64
	for {
		buf := make([]byte, headerBytes+maxExtents*extentBytes)
		binary.NativeEndian.PutUint64(buf[0:], start)
		binary.NativeEndian.PutUint64(buf[8:], ^uint64(0)-start) // to the end
		binary.NativeEndian.PutUint32(buf[16:], fiemapFlagSync)
		binary.NativeEndian.PutUint32(buf[24:], maxExtents)
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), fsIocFiemap, uintptr(unsafe.Pointer(&buf[0]))); e != 0 {
			return false, false
		}
		n := int(binary.NativeEndian.Uint32(buf[20:]))
		if n == 0 {
			return false, true
		}
		for i := range n {
			ext := buf[headerBytes+i*extentBytes:]
			flags := binary.NativeEndian.Uint32(ext[40:])
			if flags&extentUnwritten != 0 {
				return true, true
			}
			if flags&extentLast != 0 {
				return false, true
			}
			start = binary.NativeEndian.Uint64(ext[0:]) + binary.NativeEndian.Uint64(ext[16:])
		}
	}
}

// A run's first journal segment is zero-filled, as the later ones are, not
// only allocated: an fdatasync into allocated space that was never written
// also writes the inode, as each append turns it into written space. Its
// appends then cost what they cost in the next segments.
func TestJournalFirstSegmentWritten(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openJ(t, dir)
	first := s.j.curPath
	if _, known := unwrittenExtents(t, first); !known {
		t.Skip("the file system does not map extents (FS_IOC_FIEMAP)")
	}
	unwritten, _ := unwrittenExtents(t, first)
	require.False(t, unwritten, "the first segment holds no allocated-but-unwritten space")
	fi, err := os.Stat(first)
	require.NoError(t, err)
	require.EqualValues(t, firstSegmentSize, fi.Size())

	// Past the first segment, the journal goes on in a prepared one, and
	// a replay reads both.
	want := map[string]messages.State{}
	for i := 0; len(s.j.segs) < 2; i++ {
		require.Less(t, i, 100000, "still in the first segment")
		id := fmt.Sprintf("a%05d", i)
		require.NoError(t, s.ApplyActions("fetch", []ActionMutation{{Put: rec(id, uint64(i+1), messages.State_STATE_QUEUED)}}))
		want[id] = messages.State_STATE_QUEUED
	}
	fi, err = os.Stat(s.j.curPath)
	require.NoError(t, err)
	require.EqualValues(t, segmentSize, fi.Size(), "the next segments have the usual size")
	unwritten, _ = unwrittenExtents(t, s.j.curPath)
	require.False(t, unwritten, "and are zero-filled")
	crash(t, s)

	s2 := openJ(t, dir)
	defer s2.Close()
	require.Equal(t, want, ids(t, s2), "the first segment's end frame leads the replay to the second")
}
