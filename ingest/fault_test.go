package ingest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// faultFS is the real file system with failures injected on demand: a
// disk that fills up after a number of bytes, failing fsyncs and renames.
type faultFS struct {
	osFS
	mu          sync.Mutex
	writeBudget int64 // bytes that may still be written; <0 means unlimited
	syncErr     error // returned by file Sync
	renameErr   error
	syncDirErr  error
	truncateErr error
	syncs       int // file fsyncs that succeeded
	// openHook, when set, is called before a file is created, with how
	// many were created before it; syncHook before a file is fsynced.
	openHook func(n int)
	syncHook func()
	opens    int
	// wroteHook, when set, is called after each write that succeeded.
	wroteHook func()
}

func newFaultFS() *faultFS { return &faultFS{writeBudget: -1} }

func (f *faultFS) set(fn func(f *faultFS)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	f.mu.Lock()
	hook, n := f.openHook, f.opens
	f.opens++
	f.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	osf, err := f.osFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{file: osf, fs: f}, nil
}

func (f *faultFS) Rename(oldpath, newpath string) error {
	f.mu.Lock()
	err := f.renameErr
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.osFS.Rename(oldpath, newpath)
}

func (f *faultFS) SyncDir(dir string) error {
	f.mu.Lock()
	err := f.syncDirErr
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.osFS.SyncDir(dir)
}

type faultFile struct {
	file
	fs *faultFS
}

// Write writes what the budget allows, then fails like a full disk.
func (w *faultFile) Write(p []byte) (int, error) {
	w.fs.mu.Lock()
	budget := w.fs.writeBudget
	if budget >= 0 {
		w.fs.writeBudget = max(0, budget-int64(len(p)))
	}
	w.fs.mu.Unlock()
	if budget < 0 || int64(len(p)) <= budget {
		n, err := w.file.Write(p)
		w.fs.mu.Lock()
		hook := w.fs.wroteHook
		w.fs.mu.Unlock()
		if err == nil && hook != nil {
			hook()
		}
		return n, err
	}
	n, err := w.file.Write(p[:budget])
	if err != nil {
		return n, err
	}
	return n, &os.PathError{Op: "write", Path: "fault", Err: syscall.ENOSPC}
}

func (w *faultFile) Sync() error {
	w.fs.mu.Lock()
	err, hook := w.fs.syncErr, w.fs.syncHook
	w.fs.mu.Unlock()
	if hook != nil {
		hook()
	}
	if err != nil {
		return err
	}
	if err := w.file.Sync(); err != nil {
		return err
	}
	w.fs.mu.Lock()
	w.fs.syncs++
	w.fs.mu.Unlock()
	return nil
}

func (w *faultFile) Truncate(size int64) error {
	w.fs.mu.Lock()
	err := w.fs.truncateErr
	w.fs.mu.Unlock()
	if err != nil {
		return err
	}
	return w.file.Truncate(size)
}

// dirFiles returns the names in dir, sorted.
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// filesWithExt returns the sorted names in dir that end in one of exts.
func filesWithExt(t *testing.T, dir string, exts ...string) []string {
	t.Helper()
	var out []string
	for _, n := range dirFiles(t, dir) {
		for _, e := range exts {
			if strings.HasSuffix(n, e) {
				out = append(out, n)
			}
		}
	}
	return out
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	require.NoError(t, err)
	return b
}
