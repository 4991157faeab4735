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
