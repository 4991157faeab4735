//go:build !race

package aci

import "testing"

// TestEncodeAllocs guards the hot path: encoding a success reply into a
// buffer with room allocates nothing. (Allocation counts differ under the
// race detector, hence the build tag.)
func TestEncodeAllocs(t *testing.T) {
	for _, r := range benchReplies() {
		for _, f := range []Format{FormatXML, FormatSimpleJSON, FormatJSON} {
			buf, _ := Encode(nil, f, r.reply)
			allocs := testing.AllocsPerRun(100, func() {
				buf, _ = Encode(buf[:0], f, r.reply)
			})
			if allocs != 0 {
				t.Errorf("%s/%s: %v allocations per Encode, want 0", r.name, f, allocs)
			}
		}
	}
}
