package queue

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestManagerDispatcherGoroutinesEnd: every scheduled run runs; the
// goroutine that waits for more ends once it has waited its idle time, or,
// whatever that time, when the manager has stopped. (goleak polls for
// about half a second.) Not parallel: goleak looks at every goroutine of
// the process.
func TestManagerDispatcherGoroutinesEnd(t *testing.T) {
	others := goleak.IgnoreCurrent()
	ran := make(chan int, 1)
	run := func(d *managerDispatcher, i int) {
		t.Helper()
		d.Schedule(func() { ran <- i })
		select {
		case got := <-ran:
			if got != i {
				t.Fatalf("ran %d, want %d", got, i)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a scheduled run never ran")
		}
	}

	d := newManagerDispatcher(300, 10*time.Millisecond)
	for i := range 3 {
		run(d, i)
	}
	goleak.VerifyNone(t, others) // idle: ended after 10 ms

	d = newManagerDispatcher(300, time.Hour)
	run(d, 1)
	d.stop()
	goleak.VerifyNone(t, others) // stopped: ended without waiting an hour
	run(d, 2)                    // after stop: still runs, on a goroutine that ends
	goleak.VerifyNone(t, others)
}
