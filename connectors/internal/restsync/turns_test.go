package restsync

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The marks made on a task's records while it runs are given back as its
// run ends (every run of it, while one is under way); a mark made while
// it does not run is not kept, nor are the marks of another task.
func TestTurnsKeepTheMarksOfARunningTask(t *testing.T) {
	t.Parallel()
	var tu Turns
	remarked := func(end func(func([]string))) (got []string, called bool) {
		end(func(keys []string) { got, called = keys, true })
		return got, called
	}
	release := tu.Take()
	tu.Marked("b", "before") // B does not run: its record keeps the mark
	release()

	endB := tu.Begin("b")
	endB2 := tu.Begin("B") // another run of B under way (names are case-blind)
	release = tu.Take()
	tu.Marked("B", "k1")
	tu.Marked("b", "k1")
	tu.Marked("B", "k2")
	tu.Marked("A", "k3") // A does not run
	release()
	got, called := remarked(endB)
	require.True(t, called)
	require.Equal(t, []string{"k1", "k2"}, got)
	got, _ = remarked(endB2)
	require.Equal(t, []string{"k1", "k2"}, got, "the last run of B ends: the marks made during either")

	_, called = remarked(tu.Begin("B"))
	require.False(t, called, "no mark during this run")
}
