package server

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
)

// TestStoreConfig: the [Actions] compaction keys reach the store, and
// CompactFreePercent=0 turns compaction off.
func TestStoreConfig(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("c.cfg", []byte("[Server]\nDataDirectory=d\n"), func(string, string) error { return config.ErrUnknownKey })
	require.NoError(t, err)
	sc := storeConfig(cfg, slog.Default())
	require.InDelta(t, 0.25, sc.CompactFreeFraction, 1e-9)
	require.EqualValues(t, 64<<20, sc.CompactMinSize)
	require.Equal(t, 30*time.Second, sc.CompactTimeout)
	require.Equal(t, time.Minute, sc.CompactOpenTimeout)

	cfg, err = config.Parse("c.cfg", []byte("[Actions]\nCompactFreePercent=0\nCompactMinimumSizeMB=2\nCompactTimeout=3s\nCompactStartTimeout=4s\n"),
		func(string, string) error { return config.ErrUnknownKey })
	require.NoError(t, err)
	sc = storeConfig(cfg, slog.Default())
	require.Negative(t, sc.CompactFreeFraction)
	require.EqualValues(t, 2<<20, sc.CompactMinSize)
	require.Equal(t, 3*time.Second, sc.CompactTimeout)
	require.Equal(t, 4*time.Second, sc.CompactOpenTimeout)
}

// TestCommitDelayConfig: [Actions] CommitDelay reaches the queue as it is,
// and 0 (never wait) as the queue's "never" (negative), not as its default.
func TestCommitDelayConfig(t *testing.T) {
	t.Parallel()
	require.Equal(t, time.Duration(-1), commitDelay(0))
	require.Equal(t, 500*time.Microsecond, commitDelay(500*time.Microsecond))
}
