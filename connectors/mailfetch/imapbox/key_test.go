package imapbox

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/require"
)

// Key, version and ParseKey give what they gave when written with
// FormatUint, a sorted copy and Join.
func TestKeyAndVersionAsBefore(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, v := range []uint32{0, 1, 7, 1790000000, math.MaxUint32} {
		for _, u := range []uint32{1, 42, 100000, math.MaxUint32, r.Uint32()} {
			k := Key(v, imap.UID(u))
			require.Equal(t, strconv.FormatUint(uint64(v), 10)+"."+strconv.FormatUint(uint64(u), 10), k)
			gv, gu, ok := ParseKey(k)
			require.True(t, ok)
			require.Equal(t, []uint32{v, u}, []uint32{gv, uint32(gu)})
		}
	}
	before := func(flags, labels []string) string {
		f := slices.Clone(flags)
		slices.Sort(f)
		v := strings.Join(f, " ")
		if labels != nil {
			l := slices.Clone(labels)
			slices.Sort(l)
			v += "|" + strings.Join(l, "\x1f")
		}
		return v
	}
	all := []string{`\Seen`, `\Answered`, `\Flagged`, `$Label1`, `\Draft`, "a", "A"}
	for range 2000 {
		var flags, labels []string
		if r.IntN(4) > 0 {
			flags = []string{}
		}
		for range r.IntN(4) {
			flags = append(flags, all[r.IntN(len(all))])
		}
		if r.IntN(2) == 0 {
			labels = []string{}
			for range r.IntN(3) {
				labels = append(labels, all[r.IntN(len(all))])
			}
		}
		in := slices.Clone(flags)
		require.Equal(t, before(flags, labels), version(flags, labels), "%q %q", flags, labels)
		require.Equal(t, in, flags, "version changed its argument")
	}
	require.Equal(t, 0.0, testing.AllocsPerRun(10, func() { version([]string{`\Seen`}, nil) }))
}
