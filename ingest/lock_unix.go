//go:build unix

package ingest

import (
	"errors"
	"os"
	"syscall"
)

// lockAlone takes an exclusive lock on the open folder dir without
// waiting: false when another target holds its shared lock there (in
// this process or another one). shareLock then turns it into the shared
// lock every open target holds. The locks go with the folder's last
// descriptor, so with the process when it dies.
func lockAlone(dir *os.File) (bool, error) {
	err := syscall.Flock(int(dir.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

// shareLock takes the shared lock of an open target on dir, waiting for
// a target that holds the exclusive one while it removes stale files.
func shareLock(dir *os.File) error {
	return syscall.Flock(int(dir.Fd()), syscall.LOCK_SH)
}
