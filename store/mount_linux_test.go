package store_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/storetest"
)

var (
	tmpfs   = store.Tmpfs
	remount = store.Remount
)

// TestDiskFull fills a real (tmpfs) disk: the write that hits ENOSPC fails
// with ErrNoSpace, nothing of it is applied, reads still work, and once
// there is room again writes succeed.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	dir := tmpfs(t, 512<<10)
	full := fillThenMakeRoom(t, store.Config{Dir: dir})
	require.ErrorIs(t, full, syscall.ENOSPC)
	require.Contains(t, full.Error(), filepath.Join(dir, store.DefaultFile))
}

// TestDiskFullDirect: with actions committed to bbolt directly
// (Config.MaxSize), a commit that finds the disk full fails before bbolt
// writes its meta page: ErrNoSpace, not ErrFailed (commitUncertain reads
// that the commit is not applied), nothing of it is applied, and once
// there is room again writes succeed.
func TestDiskFullDirect(t *testing.T) {
	t.Parallel()
	full := fillThenMakeRoom(t, store.Config{Dir: tmpfs(t, 512<<10), MaxSize: 1 << 30})
	require.NotErrorIs(t, full, store.ErrFailed)
}

// fillThenMakeRoom opens a store with cfg on a small tmpfs, writes
// batches until one fails, checks that the failure is ErrNoSpace and that
// exactly the batches before it are there, makes room, checks that a write
// succeeds and that everything is there after a reopen, and returns the
// failure for the caller's own checks.
func fillThenMakeRoom(t *testing.T, cfg store.Config) error {
	t.Helper()
	s, err := store.Open(cfg)
	require.NoError(t, err)
	defer s.Close()
	var applied []*messages.StoredAction
	var full error
	for i := 0; i < 10_000 && full == nil; i++ {
		var batch []store.ActionMutation
		var recs []*messages.StoredAction
		for j := 0; j < 16; j++ {
			r := storetest.Record(fmt.Sprintf("id-%06d", i*16+j), uint64(i*16+j), 1)
			r.Status.Error = strings.Repeat("x", 300)
			recs = append(recs, r)
			batch = append(batch, storetest.Put(r))
		}
		if full = s.ApplyActions("fetch", batch); full == nil {
			applied = append(applied, recs...)
		}
	}
	require.ErrorIs(t, full, store.ErrNoSpace)
	require.NotEmpty(t, applied)
	storetest.RequireActions(t, s, "fetch", applied...)

	remount(t, cfg.Dir, 0, "size=8m")
	extra := storetest.Record("extra", 1<<30, 1)
	require.NoError(t, s.ApplyActions("fetch", []store.ActionMutation{storetest.Put(extra)}))
	require.NoError(t, s.Close())
	s2, err := store.Open(cfg)
	require.NoError(t, err)
	defer s2.Close()
	storetest.RequireActions(t, s2, "fetch", append(applied, extra)...)
	return full
}

// TestReadOnlyMount covers a folder that cannot be written even by root.
func TestReadOnlyMount(t *testing.T) {
	t.Parallel()
	dir := tmpfs(t, 1<<20)
	s, err := store.Open(store.Config{Dir: filepath.Join(dir, "existing")})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	remount(t, dir, syscall.MS_RDONLY, "")

	_, err = store.Open(store.Config{Dir: filepath.Join(dir, "new")})
	require.ErrorIs(t, err, store.ErrReadOnly)
	require.Contains(t, err.Error(), filepath.Join(dir, "new"))
	_, err = store.Open(store.Config{Dir: filepath.Join(dir, "existing")})
	require.ErrorIs(t, err, store.ErrReadOnly)
	require.True(t, errors.Is(err, syscall.EROFS), "%v", err)
	_, err = os.Stat(filepath.Join(dir, "existing", store.DefaultFile))
	require.NoError(t, err)
}
