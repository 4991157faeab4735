package panics

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// run runs f on a goroutine of its own, as the callers of Catch do, and
// returns its error and whether it ended by runtime.Goexit.
func run(f func() error) (err error, goexit bool) {
	done := make(chan struct{})
	goexit = true
	go func() {
		defer close(done)
		err = f()
		goexit = false
	}()
	<-done
	return err, goexit
}

func index(s []int, i int) int { return s[i] }

func logger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func TestCatch(t *testing.T) {
	kaboom := errors.New("kaboom")
	cases := []struct {
		name  string
		value any
		want  string
	}{
		{"string", "boom", "test: doing it: panic: boom"},
		{"error", kaboom, "test: doing it: panic: kaboom"},
		{"runtime error", nil, "test: doing it: panic: runtime error: index out of range [3] with length 0"},
		{"panic(nil)", "nil", "test: doing it: panic: panic called with nil argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			err, goexit := run(func() (err error) {
				defer Catch(logger(&logs), "test: doing it", &err, "url", "http://example.com/")
				switch tc.value {
				case nil:
					_ = index(nil, 3)
				case "nil":
					panic(nil)
				default:
					panic(tc.value)
				}
				return nil
			})
			require.False(t, goexit)
			require.EqualError(t, err, tc.want)
			require.ErrorIs(t, err, ErrPanic)
			require.NotErrorIs(t, err, kaboom, "a panic's value is not the failure it names")
			l := logs.String()
			require.Contains(t, l, "level=ERROR")
			require.Contains(t, l, `msg="test: doing it panicked"`)
			require.Contains(t, l, "url=http://example.com/")
			require.Contains(t, l, "panics_test.go", "the stack where it panicked")
			require.Equal(t, 1, strings.Count(l, "\n"), "logged once")
		})
	}
}

// A function that does not panic keeps its error, and nothing is logged.
func TestCatchWithoutPanic(t *testing.T) {
	var logs bytes.Buffer
	failed := errors.New("failed")
	err, _ := run(func() (err error) {
		defer Catch(logger(&logs), "test", &err)
		return failed
	})
	require.Same(t, failed, err)
	require.Empty(t, logs.String())
}

// runtime.Goexit (t.FailNow, t.SkipNow) is no panic: the goroutine goes
// on ending, its error left as it was, nothing logged.
func TestCatchLetsGoexitThrough(t *testing.T) {
	var logs bytes.Buffer
	var seen error
	err, goexit := run(func() (err error) {
		defer func() { seen = err }()
		defer Catch(logger(&logs), "test", &err)
		runtime.Goexit()
		return errors.New("not reached")
	})
	require.True(t, goexit)
	require.NoError(t, err)
	require.NoError(t, seen)
	require.Empty(t, logs.String())
}

// A panic raised after Catch returned (by a function deferred before it,
// here one that raises the caught error again for a caller that needs
// the panic) is not Catch's: it goes on up to the next recovery.
func TestCatchDoesNotSwallowALaterPanic(t *testing.T) {
	var raised any
	err, _ := run(func() (err error) {
		defer func() { raised = recover() }()
		defer func() {
			if err != nil {
				panic(err)
			}
		}()
		defer Catch(nil, "test", &err) // a nil log logs nothing
		panic("first")
	})
	require.EqualError(t, err, "test: panic: first")
	require.Equal(t, err, raised)
}

// CatchAs's error wraps its kind, whose text leads it.
func TestCatchAs(t *testing.T) {
	kind := errors.New("pkg: a worker panicked")
	var logs bytes.Buffer
	err, _ := run(func() (err error) {
		defer CatchAs(logger(&logs), kind, &err)
		panic("boom")
	})
	require.EqualError(t, err, "pkg: a worker panicked: panic: boom")
	require.ErrorIs(t, err, kind)
	require.ErrorIs(t, err, ErrPanic)
	require.Contains(t, logs.String(), `msg="pkg: a worker panicked"`)
}
