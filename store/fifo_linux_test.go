package store_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/store"
)

// TestNonRegularStoreFilesRefused: a store file or a journal segment that
// is a FIFO is refused at Open with ErrFormat naming it and what it is.
// Open opened it as it found it, and the open of a FIFO waits for a
// writer: start-up hung for ever, without a word (a journal segment was
// read whole, so a device there, /dev/zero, was read without end).
func TestNonRegularStoreFilesRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the FIFO's path
	}{
		{"store file", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, store.DefaultFile)
			require.NoError(t, syscall.Mkfifo(p, 0o600))
			return p
		}},
		{"journal segment", func(t *testing.T, dir string) string {
			s, err := store.Open(store.Config{Dir: dir})
			require.NoError(t, err)
			require.NoError(t, s.Close())
			p := filepath.Join(dir, store.DefaultFile+".wal.999999")
			require.NoError(t, syscall.Mkfifo(p, 0o600))
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			fifo := tc.setup(t, dir)
			opened := make(chan error, 1)
			go func() {
				s, err := store.Open(store.Config{Dir: dir})
				if err == nil {
					_ = s.Close()
				}
				opened <- err
			}()
			select {
			case err := <-opened:
				require.ErrorIs(t, err, store.ErrFormat)
				require.ErrorContains(t, err, fifo+" is not a regular file (a FIFO)")
			case <-time.After(10 * time.Second):
				// Let the waiting open go on: a writer that goes at once.
				if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					_ = f.Close()
				}
				t.Fatalf("Open of a store with the FIFO %s did not return within 10s", fifo)
			}
		})
	}
}
