//go:build !race

package aci

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestParseSmallRequestAllocations: a request of up to four parameters
// (a Fetch as the load generator sends it, a GetStatus) is parsed in two
// allocations, its decoded text and the Request with its parameters
// (newRequest); larger ones take two more. Each parameter is still read
// back in order (the race detector's instrumentation changes allocation
// counts, hence the build tag).
func TestParseSmallRequestAllocations(t *testing.T) {
	for n := 0; n <= 6; n++ {
		uri := []byte("/action=Fetch")
		for i := range n {
			uri = fmt.Appendf(uri, "&P%d=v%d", i, i)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := Parse([]byte("GET"), uri, nil, nil); err != nil {
				t.Fatal(err)
			}
		})
		want := 2.0
		if n > 4 {
			want = 4
		}
		require.Equal(t, want, allocs, "%d parameters", n)
		req, err := Parse([]byte("GET"), uri, nil, nil)
		require.NoError(t, err)
		require.Len(t, req.Params, n)
		require.Equal(t, n, cap(req.Params), "no room to append into another request's memory")
		for i, p := range req.Params {
			require.Equal(t, fmt.Sprintf("P%d", i), p.GetName())
			require.Equal(t, fmt.Sprintf("v%d", i), p.GetValue())
		}
	}
}
