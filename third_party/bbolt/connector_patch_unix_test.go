//go:build !windows && !plan9 && !solaris && !aix && !android

package bbolt

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"
)

// connector patch test (PATCHES.md): closing a read-only DB releases its
// shared lock even while another descriptor of the same open file exists.
// The duplicate stands for a child process forked (by os/exec, anywhere in
// the process) while the file was open: it keeps the open file, and with
// it the lock, until it execs. Upstream left the lock to the close, so a
// writable open right after the read-only one was refused for as long as
// the child took to exec (and at once with a Timeout of 50 ms or less,
// which bbolt's flock tries only once).
func TestCloseReadOnlyReleasesItsLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db, err := Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := Open(path, 0o600, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	dup, err := syscall.Dup(int(ro.file.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(dup)
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	rw, err := Open(path, 0o600, &Options{Timeout: 50 * time.Millisecond})
	if errors.Is(err, berrors.ErrTimeout) {
		t.Fatal("the read-only DB's shared lock outlived its Close")
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
}
