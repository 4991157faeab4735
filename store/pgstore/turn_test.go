package pgstore

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/store"
)

// Turn orders two stores' calls of one name: the second runs once the
// first has returned; another name does not wait; fn's error is Turn's.
func TestTurnOrdersProcesses(t *testing.T) {
	t.Parallel()
	url := server.DatabaseT(t)
	a, err := Open(ctx, Config{URL: url})
	require.NoError(t, err)
	defer a.Close()
	b, err := Open(ctx, Config{URL: url})
	require.NoError(t, err)
	defer b.Close()

	inA, release := make(chan struct{}), make(chan struct{})
	var order []string
	var mu sync.Mutex
	note := func(s string) {
		mu.Lock()
		order = append(order, s)
		mu.Unlock()
	}
	aDone := make(chan error, 1)
	go func() {
		aDone <- a.Turn("t", func() error {
			close(inA)
			<-release
			note("a")
			return nil
		})
	}()
	testwait.Recv(t, inA, 10*time.Second, "a's turn")
	require.NoError(t, b.Turn("other", func() error { return nil }), "another name does not wait")
	bDone := make(chan error, 1)
	go func() { bDone <- b.Turn("t", func() error { note("b"); return nil }) }()
	testwait.For(t, 10*time.Second, func() bool { return pgtest.AdvisoryWaiters(ctx, a.Pool()) == 1 }, "b to wait for its turn")
	close(release)
	require.NoError(t, testwait.Recv(t, aDone, 10*time.Second, "a's turn to end"))
	require.NoError(t, testwait.Recv(t, bDone, 10*time.Second, "b's turn to end"))
	require.Equal(t, []string{"a", "b"}, order)
	require.ErrorIs(t, a.Turn("t", func() error { return store.ErrInvalid }), store.ErrInvalid)
}

// A turn another node holds for longer than a store call's deadline
// fails saying so, not that the database is unavailable: the database
// answered, and an operator told it was out of reach looked for an
// outage. fn does not run. A turn of a database that is out of reach is
// still said to be.
func TestTurnHeldTooLongIsNotUnavailable(t *testing.T) {
	t.Parallel()
	url := server.DatabaseT(t)
	a, err := Open(ctx, Config{URL: url})
	require.NoError(t, err)
	defer a.Close()
	b, err := Open(ctx, Config{URL: url, Timeout: 2 * time.Second})
	require.NoError(t, err)
	defer b.Close()

	inA, release := make(chan struct{}), make(chan struct{})
	aDone := make(chan error, 1)
	go func() {
		aDone <- a.Turn("t", func() error {
			close(inA)
			<-release
			return nil
		})
	}()
	testwait.Recv(t, inA, 10*time.Second, "a's turn")
	ran := false
	err = b.Turn("t", func() error { ran = true; return nil })
	close(release)
	require.NoError(t, testwait.Recv(t, aDone, 10*time.Second, "a's turn to end"))
	require.Error(t, err)
	require.False(t, ran, "fn does not run without the turn")
	require.NotErrorIs(t, err, ErrUnavailable)
	require.ErrorContains(t, err, "take the turn of t: another node held it for longer than a store call's deadline (2s)")
	require.NoError(t, b.Turn("t", func() error { return nil }), "free again")
}
