package main

import "testing"

// TestQuantile: the Stop rows' percentiles. p99 of the default 100 Stops
// (-conn-stop-n) was the 100th value, the largest: the row's p99 always
// equalled its max, and the goal (p99 < 50 ms) was judged on the max; the
// p50 of an even count was the upper of the two middle values. A
// percentile is now the value of its nearest rank (the 99th of 100, as
// HdrHistogram reads its own), the median of an even count the mean of
// the two middle values.
func TestQuantile(t *testing.T) {
	t.Parallel()
	seq := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(i + 1)
		}
		return v
	}
	for _, tc := range []struct {
		n    int
		q    float64
		want float64
	}{
		{100, 0.99, 99}, {200, 0.99, 198}, {400, 0.99, 396}, {20, 0.99, 20}, {150, 0.99, 149},
		{100, 0.5, 50.5}, {4, 0.5, 2.5}, {99, 0.5, 50}, {1, 0.5, 1}, {1, 0.99, 1}, {2, 0.99, 2},
	} {
		if got := quantile(seq(tc.n), tc.q); got != tc.want {
			t.Errorf("quantile of 1..%d at %v = %v, want %v", tc.n, tc.q, got, tc.want)
		}
	}
}
