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
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/store"
)

func TestDamageFlippedBytes(t *testing.T) {
	t.Parallel()
	src, want, prev := sample(t, t.TempDir())
	orig, err := os.ReadFile(src)
	require.NoError(t, err)
	refusals := 0
	// Every 97th byte (a prime, so positions fall everywhere within
	// pages), each flipped on its own.
	for pos := 0; pos < len(orig); pos += 97 {
		// A new folder each time: an open that fails inside bbolt can
		// leave that file mapped (and so locked) in this process.
		dir := t.TempDir()
		b := bytes.Clone(orig)
		b[pos] ^= 0x5a
		require.NoError(t, os.WriteFile(filepath.Join(dir, store.DefaultFile), b, 0o600))
		// A damaged meta page makes bbolt fall back to the other one,
		// i.e. to the previous transaction: by design, since that is
		// also how a meta page torn by a crash is recovered.
		var before *contents
		if pos < 2*4096 {
			before = prev
		}
		if damaged(t, dir, want, before, fmt.Sprintf("byte %d flipped", pos)) {
			refusals++
		}
	}
	require.Positive(t, refusals, "some flips must be detected")
}
