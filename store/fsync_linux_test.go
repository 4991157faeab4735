//go:build linux

package store

import (
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFdatasyncResults: fdatasync (the P handed off around the raw call)
// returns nil for a file and the system call's errno for what cannot be
// synced (a pipe: EINVAL), as syscall.Fdatasync does.
func TestFdatasyncResults(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	require.NoError(t, err)
	defer f.Close()
	_, err = f.Write([]byte("data"))
	require.NoError(t, err)
	require.NoError(t, fdatasync(f))

	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	want := syscall.Fdatasync(int(w.Fd()))
	require.Error(t, want)
	err = fdatasync(w)
	require.ErrorIs(t, err, syscall.EINVAL)
	require.Equal(t, want, err)
}

// TestFdatasyncWithGCAndOneP: goroutines that fdatasync over and over,
// with garbage collections (stop-the-world) running meanwhile and with
// a single P, so that each call hands the only P off and takes it back.
// A mistake in the hand-off (the goroutine running without a P, a stack
// growing where it may not) is a fatal error of the runtime, not a
// failed assertion: this test then crashes.
func TestFdatasyncWithGCAndOneP(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	dir := t.TempDir()
	const writers, rounds = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		f, err := os.Create(filepath.Join(dir, "f"+string(rune('a'+i))))
		require.NoError(t, err)
		defer f.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 512)
			for k := range rounds {
				buf[0] = byte(k)
				if _, err := f.WriteAt(buf, int64(k*len(buf))); err != nil {
					errs <- err
					return
				}
				if err := fdatasync(f); err != nil {
					errs <- err
					return
				}
				_ = make([]byte, 1<<10) // garbage, so that collections have work
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			return
		default:
			runtime.GC()
		}
	}
}
