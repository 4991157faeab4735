//go:build !race

package loadgen

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The parser allocates nothing for a GetStatus reply and only the token
// string for a submit reply (the race detector's instrumentation changes
// allocation counts, hence the build tag).
func TestParseReplyAllocations(t *testing.T) {
	var r reply
	for _, body := range [][]byte{benchStatusXML, benchStatusJSON} {
		n := testing.AllocsPerRun(100, func() {
			if err := parseReply(body, &r); err != nil {
				t.Fatal(err)
			}
		})
		require.Zero(t, n, "%s", body[:40])
	}
	n := testing.AllocsPerRun(100, func() {
		if err := parseReply(benchTokenXML, &r); err != nil {
			t.Fatal(err)
		}
	})
	require.Equal(t, 1.0, n)
}
