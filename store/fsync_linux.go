//go:build linux

package store

import (
	"os"
	"syscall"
)

// fdatasync flushes f's data (and the metadata needed to read it back).
//
// It is an ordinary blocking system call, and that has a price: under
// load the runtime's monitor takes the P of the thread waiting in it and
// hands it to another thread, and polls every 20 µs around each group
// commit (≈5 % of a durable submit's CPU, plus the threads parked and
// woken). Two ways around it were measured and rejected (bench/RESULTS.md,
// dur9 and dur11): a raw system call keeps the P (0.87–0.93 of the CPU
// per submit) but then every stop-the-world waits for the disk, and a
// hung fdatasync would stop the whole process at the next garbage
// collection; handing the fdatasync to io_uring (completion through the
// poller, or a bounded wait) costs as much or more, the kernel worker
// being switched to for each commit.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

// allocate gives f size bytes of allocated space (the file's size becomes
// size), so that writes into it cannot run out of room; where the file
// system cannot allocate ahead, the file is only extended.
func allocate(f *os.File, size int64) error {
	for {
		err := syscall.Fallocate(int(f.Fd()), 0, 0, size)
		switch err {
		case nil:
			return nil
		case syscall.EINTR:
			continue
		case syscall.EOPNOTSUPP, syscall.ENOSYS:
			return f.Truncate(size)
		}
		return err
	}
}
