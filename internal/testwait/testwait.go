// Package testwait is how tests wait for something that happens on another
// goroutine: poll a condition, with a deadline, on the test's own goroutine.
//
// The condition runs on the calling goroutine, so it may use require and
// t.Fatal (which must not be called from any other goroutine, as
// require.Eventually does with its condition). An outcome is never waited
// for by sleeping a fixed time: the pause between polls only paces the loop.
package testwait

import (
	"fmt"
	"testing"
	"time"
)

// Interval is the pause between two polls.
const Interval = 2 * time.Millisecond

// For calls cond until it returns true, and fails t (naming what it waited
// for) if that has not happened within d.
func For(t testing.TB, d time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, fmt.Sprintf(format, args...))
		}
		time.Sleep(Interval)
	}
}

// Recv returns what ch delivers, and fails t (naming what it waited for)
// if nothing comes within d: for a reply asked on another goroutine (go
// func() { ch <- ask() }()) that the test must see answered.
func Recv[T any](t testing.TB, ch <-chan T, d time.Duration, format string, args ...any) T {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("waited %v for %s", d, fmt.Sprintf(format, args...))
		panic("unreachable") // Fatalf does not return
	}
}

// Return runs fn on a goroutine of its own and returns what it returns,
// failing t (naming what it waited for) if it has not returned within d:
// for a call that may block for ever, such as a read of a FIFO. fn must
// not use t's FailNow (require): it runs on another goroutine.
func Return[T any](t testing.TB, d time.Duration, fn func() T, format string, args ...any) T {
	t.Helper()
	ch := make(chan T, 1)
	go func() { ch <- fn() }()
	return Recv(t, ch, d, format, args...)
}
