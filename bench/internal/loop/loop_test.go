package loop

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRunCountsSuccessfulCalls(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	n, el, err := Run(3, 20*time.Millisecond, func(g, i int) error {
		require.Less(t, g, 3)
		calls.Add(1)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, calls.Load(), n)
	require.Positive(t, n)
	require.GreaterOrEqual(t, el, 20*time.Millisecond)
}

func TestRunStopsOnErrStop(t *testing.T) {
	t.Parallel()
	n, _, err := Run(1, time.Hour, func(_, i int) error {
		if i == 5 {
			return ErrStop
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, int64(5), n)
}

func TestRunReturnsFirstError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	n, _, err := Run(4, time.Hour, func(_, i int) error {
		if i == 2 {
			return boom
		}
		return nil
	})
	require.ErrorIs(t, err, boom)
	require.LessOrEqual(t, n, int64(4*2))
}
