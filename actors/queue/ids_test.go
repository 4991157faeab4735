package queue

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestIDSourceMakesIncreasingV7: the QueueManager's ids are RFC 9562
// version 7 UUIDs carrying the clock's milliseconds, unique, and strictly
// increasing in byte order (so in the order they were made) even while
// the clock stands still or steps back, as uuid.NewV7's are.
func TestIDSourceMakesIncreasingV7(t *testing.T) {
	base := time.Date(2026, 12, 5, 9, 0, 0, 123_456_789, time.UTC)
	clock := base
	src := newIDSource(func() time.Time { return clock })
	seen := make(map[uuid.UUID]bool)
	var prev uuid.UUID
	for i := 0; i < 5000; i++ {
		switch {
		case i == 2000:
			clock = base.Add(-time.Second) // steps back
		case i == 3000:
			clock = base.Add(time.Hour)
		case i > 3000:
			clock = clock.Add(7 * time.Microsecond)
		}
		id, err := src.NewID()
		require.NoError(t, err)
		require.Equal(t, uuid.Version(7), id.Version())
		require.Equal(t, uuid.RFC4122, id.Variant())
		require.False(t, seen[id], "duplicate id %s", id)
		seen[id] = true
		require.Positive(t, bytes.Compare(id[:], prev[:]), "id %d (%s) not after %s", i, id, prev)
		prev = id
		if i == 0 || i == 3000 {
			sec, nsec := id.Time().UnixTime()
			require.Equal(t, clock.UnixMilli(), time.Unix(sec, nsec).UnixMilli(), "id %d carries the clock's milliseconds", i)
		}
	}
	// The random bits are random: two sources never agree.
	a, _ := newIDSource(func() time.Time { return base }).NewID()
	b, _ := newIDSource(func() time.Time { return base }).NewID()
	require.NotEqual(t, a[8:], b[8:])
	allocs := testing.AllocsPerRun(1000, func() { _, _ = src.NewID() })
	require.Zero(t, allocs)
}

// TestIDSourceConcurrentUse: ids made from several goroutines at once are
// all distinct (run with -race).
func TestIDSourceConcurrentUse(t *testing.T) {
	src := newIDSource(time.Now)
	const workers, each = 4, 3000
	ids := make([][]uuid.UUID, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				id, err := src.NewID()
				if err != nil {
					t.Error(err)
					return
				}
				ids[w] = append(ids[w], id)
			}
		}()
	}
	wg.Wait()
	seen := make(map[uuid.UUID]bool)
	for _, l := range ids {
		for _, id := range l {
			require.False(t, seen[id], "duplicate id %s", id)
			seen[id] = true
		}
	}
	require.Len(t, seen, workers*each)
}
