//go:build !race

// The race detector's checkptr instrumentation turns bbolt's unsafe.Slice
// over a damaged page into a fatal error that no recover can catch; without
// -race the same read is an ordinary panic or fault, which the store
// recovers into ErrCorrupt. So this test runs only in builds without -race
// (make test-short, or go test ./store/).

package store_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/store"
)

// TestDamageFlippedBytes flips every 97th byte of a store file (a prime,
// so positions fall everywhere within pages), each on its own, and checks
// that the store refuses the copy, serves the original contents, or
// reports ErrCorrupt when it reads the damage; it never panics. The copies
// live in memory (tmpfs) when the machine has one, so that the store's
// fsyncs cost nothing, and the positions are shared among parallel
// subtests: what is checked is the same, in seconds instead of a minute.
func TestDamageFlippedBytes(t *testing.T) {
	t.Parallel()
	src, want, prev := sample(t, t.TempDir())
	orig, err := os.ReadFile(src)
	require.NoError(t, err)
	scratch := scratchDir(t)
	const workers = 8
	var refusals atomic.Int64
	t.Run("flips", func(t *testing.T) {
		for w := range workers {
			t.Run(fmt.Sprint(w), func(t *testing.T) {
				t.Parallel()
				for pos := w * 97; pos < len(orig); pos += workers * 97 {
					// A new folder each time: an open that fails inside
					// bbolt can leave that file mapped (and so locked) in
					// this process.
					dir, err := os.MkdirTemp(scratch, "flip")
					require.NoError(t, err)
					b := bytes.Clone(orig)
					b[pos] ^= 0x5a
					require.NoError(t, os.WriteFile(filepath.Join(dir, store.DefaultFile), b, 0o600))
					// A damaged meta page makes bbolt fall back to the
					// other one, i.e. to the previous transaction: by
					// design, since that is also how a meta page torn by
					// a crash is recovered.
					var before *contents
					if pos < 2*4096 {
						before = prev
					}
					if damaged(t, dir, want, before, fmt.Sprintf("byte %d flipped", pos)) {
						refusals.Add(1)
					}
					require.NoError(t, os.RemoveAll(dir))
				}
			})
		}
	})
	require.Positive(t, refusals.Load(), "some flips must be detected")
}

// scratchDir is a folder for throw-away copies of store files: in
// /dev/shm (memory, where fsync costs nothing) when there is one, else in
// the test's temporary folder. It is removed when the test ends.
func scratchDir(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "connector-store-test"); err == nil {
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}
