package loadgen

import (
	"math"
	"slices"
	"sort"
)

// mannWhitney returns the two-sided p-value of the Mann-Whitney U test
// (Wilcoxon rank-sum test) of the samples a and b: the probability,
// were both drawn from one distribution, of a rank sum at least as far
// from its expectation as the one observed. It makes no assumption on
// the shape of the distribution (benchmark figures are rarely normal)
// and, like benchstat, is what bench compare uses to decide whether a
// difference is beyond the run-to-run noise.
//
// Without ties and with at most 60 values in all the p-value is exact
// (the distribution of U counted over every arrangement); otherwise it
// is the normal approximation with the tie correction and a continuity
// correction. It returns 1 when either sample is empty.
func mannWhitney(a, b []float64) float64 {
	n1, n2 := len(a), len(b)
	if n1 == 0 || n2 == 0 {
		return 1
	}
	type obs struct {
		v     float64
		first bool
	}
	all := make([]obs, 0, n1+n2)
	for _, v := range a {
		all = append(all, obs{v, true})
	}
	for _, v := range b {
		all = append(all, obs{v, false})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].v < all[j].v })
	n := n1 + n2
	var r1, tieTerm float64
	ties := false
	for i := 0; i < n; {
		j := i
		for j < n && all[j].v == all[i].v {
			j++
		}
		rank := float64(i+j+1) / 2 // the mean of ranks i+1 .. j
		t := float64(j - i)
		if t > 1 {
			ties = true
			tieTerm += t*t*t - t
		}
		for k := i; k < j; k++ {
			if all[k].first {
				r1 += rank
			}
		}
		i = j
	}
	u1 := r1 - float64(n1*(n1+1))/2
	mu := float64(n1*n2) / 2
	if !ties && n <= 60 {
		u := math.Min(u1, float64(n1*n2)-u1)
		return math.Min(1, 2*uCDF(n1, n2, int(math.Round(u))))
	}
	sigma2 := float64(n1*n2) / 12 * (float64(n+1) - tieTerm/float64(n*(n-1)))
	if sigma2 <= 0 {
		return 1 // every value equal
	}
	z := (math.Abs(u1-mu) - 0.5) / math.Sqrt(sigma2)
	if z < 0 {
		return 1
	}
	return math.Min(1, math.Erfc(z/math.Sqrt2))
}

// uCDF returns P(U <= u) for the Mann-Whitney statistic of samples of n1
// and n2 values without ties: the share of the C(n1+n2, n1) arrangements
// whose U is at most u. The counts follow c(m, n, u) = c(m-1, n, u-n) +
// c(m, n-1, u), kept as float64 (exact well past 60 values).
func uCDF(n1, n2, u int) float64 {
	maxU := n1 * n2
	// f[m][k]: for the current number of second-sample values j, the
	// number of arrangements of m first-sample and j second-sample
	// values with U = k.
	prev := make([][]float64, n1+1) // j-1
	cur := make([][]float64, n1+1)
	for m := range prev {
		prev[m] = make([]float64, maxU+1)
		cur[m] = make([]float64, maxU+1)
	}
	// j = 0: only U = 0.
	for m := 0; m <= n1; m++ {
		prev[m][0] = 1
	}
	for j := 1; j <= n2; j++ {
		for m := 0; m <= n1; m++ {
			clear(cur[m])
			for k := 0; k <= maxU; k++ {
				// The largest value is a second-sample value: U unchanged
				// (c(m, j-1, k)); or a first-sample value, which exceeds
				// all j second-sample values: U grows by j (c(m-1, j, k-j)).
				v := prev[m][k]
				if m > 0 && k >= j {
					v += cur[m-1][k-j]
				}
				cur[m][k] = v
			}
		}
		prev, cur = cur, prev
	}
	dist := prev[n1]
	var total, below float64
	for k, c := range dist {
		total += c
		if k <= u {
			below += c
		}
	}
	return below / total
}

// minPValue is the smallest two-sided p-value the exact test can give
// for samples of n1 and n2 values: 2 / C(n1+n2, n1). When it exceeds
// alpha no difference can be significant, however large.
func minPValue(n1, n2 int) float64 {
	if n1 == 0 || n2 == 0 {
		return 1
	}
	lc := lgammaInt(n1+n2+1) - lgammaInt(n1+1) - lgammaInt(n2+1)
	return math.Min(1, 2/math.Exp(lc))
}

func lgammaInt(n int) float64 {
	v, _ := math.Lgamma(float64(n))
	return v
}

// median returns the median of v (the mean of the middle two for an even
// count), 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
