package fetch

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

func TestFailuresCountedListedAndBounded(t *testing.T) {
	t.Parallel()
	j := NewJob("tok", "SYNCHRONIZE", nil, []string{"MYTASK"})
	require.Nil(t, j.Failures())
	j.Fail("mytask", "http://x/a", "HTTP 404")
	j.Fail("MyTask", "http://x/a", "HTTP 404")  // the same: counted
	j.Fail("MYTASK", "http://x/a", "timed out") // another reason: listed
	first := j.Failures()
	require.EqualValues(t, 3, first.Total)
	require.Equal(t, []*messages.Failure{
		{Task: "MYTASK", Url: "http://x/a", Reason: "HTTP 404", Count: 2},
		{Task: "MYTASK", Url: "http://x/a", Reason: "timed out", Count: 1},
	}, first.Items)

	for i := range 2 * MaxFailures {
		j.Fail("MYTASK", fmt.Sprintf("http://x/%d", i), "HTTP 500")
	}
	fl := j.Failures()
	require.Len(t, fl.Items, MaxFailures, "the list is bounded")
	require.EqualValues(t, 3+2*MaxFailures, fl.Total, "the total counts every failure")
	require.Len(t, first.Items, 2, "a snapshot does not change")
	require.EqualValues(t, 2, first.Items[0].Count)
	j.Fail("MYTASK", "http://x/a", "HTTP 404")
	require.EqualValues(t, 3, j.Failures().Items[0].Count, "a listed one still counts beyond the bound")

	// The bytes of URLs and reasons are bounded too; a reason is cut.
	k := NewJob("tok", "SYNCHRONIZE", nil, []string{"T"})
	long := strings.Repeat("é", MaxFailureReason) // 2 bytes each
	for i := range MaxFailures {
		k.Fail("T", fmt.Sprintf("http://x/%d/%s", i, strings.Repeat("p", 2000)), long)
	}
	fl = k.Failures()
	require.Less(t, len(fl.Items), MaxFailures)
	bytes := 0
	for _, it := range fl.Items {
		bytes += len(it.Url) + len(it.Reason)
		require.True(t, utf8.ValidString(it.Reason))
		require.LessOrEqual(t, len(it.Reason), MaxFailureReason+len("…"))
		require.True(t, strings.HasSuffix(it.Reason, "…"))
	}
	require.LessOrEqual(t, bytes, MaxFailureBytes)
	require.EqualValues(t, MaxFailures, fl.Total)
}

// Workers record failures concurrently while the actor reads snapshots.
func TestFailuresConcurrent(t *testing.T) {
	t.Parallel()
	j := NewJob("tok", "SYNCHRONIZE", nil, []string{"T"})
	var wg sync.WaitGroup
	var tooMany atomic.Int32 // no require off the test goroutine
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				j.Fail("T", fmt.Sprintf("http://x/%d", i%5), fmt.Sprintf("reason %d", w%2))
				if fl := j.Failures(); fl != nil && len(fl.Items) > 10 {
					tooMany.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	require.Zero(t, tooMany.Load())
	fl := j.Failures()
	require.EqualValues(t, 800, fl.Total)
	require.Len(t, fl.Items, 10)
	var sum uint64
	for _, it := range fl.Items {
		sum += it.Count
	}
	require.EqualValues(t, 800, sum)
}

// An action run again after a crash continues its failures.
func TestRestoreFailures(t *testing.T) {
	t.Parallel()
	j := NewJob("tok", "SYNCHRONIZE", nil, []string{"T"})
	j.RestoreFailures(nil, 0)
	require.Nil(t, j.Failures())
	j.RestoreFailures([]*messages.Failure{{Task: "T", Url: "http://x/a", Reason: "HTTP 500", Count: 2}, nil}, 7)
	j.Fail("T", "http://x/a", "HTTP 500")
	j.Fail("T", "http://x/b", "HTTP 500")
	fl := j.Failures()
	require.EqualValues(t, 9, fl.Total)
	require.Equal(t, []*messages.Failure{
		{Task: "T", Url: "http://x/a", Reason: "HTTP 500", Count: 3},
		{Task: "T", Url: "http://x/b", Reason: "HTTP 500", Count: 1},
	}, fl.Items)
}
