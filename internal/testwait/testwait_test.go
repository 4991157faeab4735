package testwait

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	go func() {
		for n.Load() < 3 {
			n.Add(1)
		}
	}()
	calls := 0
	For(t, 10*time.Second, func() bool { calls++; return n.Load() == 3 }, "n to reach 3")
	require.Positive(t, calls)
}

// fakeT records a failure instead of ending the test.
type fakeT struct {
	testing.TB
	msg string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.msg = format
	if len(args) > 0 {
		f.msg = args[1].(string)
	}
	panic(f)
}

func TestForFailsAfterTheDeadlineNamingWhatItWaitedFor(t *testing.T) {
	f := &fakeT{}
	start := time.Now()
	func() {
		defer func() { require.Equal(t, f, recover()) }()
		For(f, 20*time.Millisecond, func() bool { return false }, "the %s", "moon")
	}()
	require.Equal(t, "the moon", f.msg)
	require.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond)
}

func TestRecvReturnsWhatComes(t *testing.T) {
	ch := make(chan int, 1)
	go func() { ch <- 7 }()
	require.Equal(t, 7, Recv(t, ch, 10*time.Second, "seven"))
}

func TestRecvFailsAfterTheDeadlineNamingWhatItWaitedFor(t *testing.T) {
	f := &fakeT{}
	func() {
		defer func() { require.Equal(t, f, recover()) }()
		Recv(f, make(chan int), 20*time.Millisecond, "the %s", "reply")
	}()
	require.Equal(t, "the reply", f.msg)
}

func TestReturnGivesWhatTheCallReturns(t *testing.T) {
	require.Equal(t, 7, Return(t, 10*time.Second, func() int { return 7 }, "seven"))
}

func TestReturnFailsAfterTheDeadlineNamingWhatItWaitedFor(t *testing.T) {
	f := &fakeT{}
	block := make(chan struct{})
	defer close(block)
	func() {
		defer func() { require.Equal(t, f, recover()) }()
		Return(f, 20*time.Millisecond, func() int { <-block; return 0 }, "the %s", "call")
	}()
	require.Equal(t, "the call", f.msg)
}
