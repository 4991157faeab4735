//go:build !race

package aci

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The parser allocates nothing for a GetStatus Decoded and only the token
// string for a submit Decoded (the race detector's instrumentation changes
// allocation counts, hence the build tag).
func TestDecodeReplyAllocations(t *testing.T) {
	var r Decoded
	for _, body := range [][]byte{benchStatusXML, benchStatusJSON} {
		n := testing.AllocsPerRun(100, func() {
			if err := DecodeReply(body, &r); err != nil {
				t.Fatal(err)
			}
		})
		require.Zero(t, n, "%s", body[:40])
	}
	n := testing.AllocsPerRun(100, func() {
		if err := DecodeReply(benchTokenXML, &r); err != nil {
			t.Fatal(err)
		}
	})
	require.Equal(t, 1.0, n)
}
