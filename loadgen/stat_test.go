package loadgen

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMannWhitneyExact(t *testing.T) {
	t.Parallel()
	// Fully separated samples of 4 and 4: U = 0, and 2 of the C(8,4) = 70
	// arrangements are as extreme: p = 2/70.
	require.InDelta(t, 2.0/70, mannWhitney([]float64{1, 2, 3, 4}, []float64{5, 6, 7, 8}), 1e-12)
	require.InDelta(t, 2.0/70, minPValue(4, 4), 1e-12)
	// 3 and 3 can never reach 5%: the minimum is 2/20.
	require.InDelta(t, 0.1, mannWhitney([]float64{1, 2, 3}, []float64{4, 5, 6}), 1e-12)
	require.InDelta(t, 0.1, minPValue(3, 3), 1e-12)
	// Interleaved samples: no evidence of a difference.
	require.Greater(t, mannWhitney([]float64{1, 3, 5, 7}, []float64{2, 4, 6, 8}), 0.5)
	// Against a brute-force count over all C(13,6) = 1716 splits (done
	// once, outside the project): 60 splits are as extreme, p = 0.034965.
	require.InDelta(t, 60.0/1716, mannWhitney([]float64{3.1, 1.2, 5.5, 2.2, 8.1, 0.4}, []float64{4.4, 9.9, 6.1, 7.7, 5.2, 8.8, 10.5}), 1e-9)
	require.Equal(t, 1.0, mannWhitney(nil, []float64{1}))
}

func TestMannWhitneyNormalApproximation(t *testing.T) {
	t.Parallel()
	// Ties force the normal approximation; equal samples give p = 1.
	require.Equal(t, 1.0, mannWhitney([]float64{1, 1, 1}, []float64{1, 1, 1}))
	// R's wilcox.test example data, unpaired, with ties (1.06, 1.29):
	// U = 58, normal approximation with tie and continuity corrections
	// p = 0.132919 (checked by an independent computation).
	x := []float64{1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30}
	y := []float64{0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29}
	require.InDelta(t, 0.132919, mannWhitney(x, y), 1e-5)
	var a, b []float64
	for i := range 40 {
		a = append(a, float64(i%10))
		b = append(b, float64(i%10)+3)
	}
	p := mannWhitney(a, b)
	require.Less(t, p, 1e-3)
	require.False(t, math.IsNaN(p))
}

func TestMedian(t *testing.T) {
	t.Parallel()
	require.Equal(t, 2.0, median([]float64{3, 1, 2}))
	require.Equal(t, 2.5, median([]float64{4, 1, 3, 2}))
	require.Equal(t, 0.0, median(nil))
}

// TestClipKeepsWholeCharacters: clip cut a failure's sample byte-wise, so
// an error reply in French or Japanese, cut inside a character, showed a
// replacement character in the report (and JSON "\ufffd").
func TestClipKeepsWholeCharacters(t *testing.T) {
	t.Parallel()
	require.Equal(t, "é…", clip("ééé", 3))
	require.Equal(t, "éé…", clip("ééé", 4))
	require.Equal(t, "…", clip("日本", 2))
	require.Equal(t, "a b", clip(" a\n b ", 3))
}
