package main

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// noEcho turns off the echo of the terminal f while a password is typed
// on it, as passwd and ssh-keygen do, and returns what turns it back on.
// A signal that ends the program meanwhile (Ctrl-C, a hang-up) turns it
// back on first: left off, the shell's next commands were typed unseen.
// ok is false, and nothing done, when f is no terminal whose settings can
// be read and set (/dev/null is a character device too).
func noEcho(f *os.File) (restore func(), ok bool) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return func() {}, false
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		signal.Stop(sig)
		return func() {}, false
	}
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sig:
			_ = unix.IoctlSetTermios(fd, unix.TCSETS, old)
			// Ended by the signal as it would have been.
			signal.Reset(s)
			_ = syscall.Kill(os.Getpid(), s.(syscall.Signal))
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sig)
		close(done)
		_ = unix.IoctlSetTermios(fd, unix.TCSETS, old)
	}, true
}
