//go:build linux

package store

import (
	"os"
	"runtime"
	"syscall"
	_ "unsafe" // go:linkname
)

// fdatasync flushes f's data (and the metadata needed to read it back).
//
// It is a blocking system call, and it tells the runtime so at once
// (entersyscallblock, as the runtime does for its own blocking calls):
// the thread hands its P to another thread, or leaves it idle, before it
// waits for the disk, and takes one back afterwards. With the ordinary
// syscall.Fdatasync the P stays with the waiting thread until Go's
// monitor (sysmon) notices, 20 µs or more later, takes it, and then polls
// every 20 µs again: at every group commit under load, so sysmon alone
// was ≈7 % of the server's CPU for durable submits (dur14 in
// bench/RESULTS.md; the server runs with GODEBUG=schedtrace so that
// sysmon otherwise backs off, see cmd/connector/sysmon.go). Handing the P
// off is not holding it: unlike a raw system call (dur11: it kept the P,
// so every stop-the-world waited for the disk, and a hung fdatasync would
// have stopped the whole process at the next garbage collection), the
// waiting thread has no P, which stop-the-world does not wait for. io_uring
// was measured too and cost more (dur9).
func fdatasync(f *os.File) error {
	fd := f.Fd()
	for {
		e := fdatasyncBlocking(fd)
		if e == syscall.EINTR {
			continue
		}
		runtime.KeepAlive(f) // fd stays open until the call is over
		if e != 0 {
			return e
		}
		return nil
	}
}

// The runtime's own entry and exit of a blocking system call. Both are
// kept for linkname by the runtime (go.dev/issue/67401: "Do not remove or
// change the type signature"); the syscall package uses the same pair
// around its calls, with entersyscall instead of entersyscallblock.
//
//go:linkname entersyscallblock runtime.entersyscallblock
func entersyscallblock()

//go:linkname exitsyscall runtime.exitsyscall
func exitsyscall()

// fdatasyncBlocking is syscall.Syscall for fdatasync with the P handed
// off first. Between entersyscallblock and exitsyscall the goroutine has
// no P: nothing may grow the stack, allocate or be instrumented there,
// hence nosplit and norace and only the raw call (assembly, as in
// syscall.Syscall); a coverage counter goes at the function's entry, before.
//
//go:nosplit
//go:norace
func fdatasyncBlocking(fd uintptr) syscall.Errno {
	entersyscallblock()
	_, _, e := syscall.RawSyscall6(syscall.SYS_FDATASYNC, fd, 0, 0, 0, 0, 0)
	exitsyscall()
	return e
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
