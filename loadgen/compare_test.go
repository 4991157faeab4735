package loadgen

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// synth returns n made-up runs whose operations take about latUs
// microseconds and whose throughput is about perSec, each figure off by a
// deterministic few percent, so that the verdicts do not depend on how
// busy the machine running the test is.
func synth(n int, perSec float64, latUs int64, seed uint64) []*Report {
	rng := rand.New(rand.NewPCG(seed, 7))
	jit := func(v float64) float64 { return v * (0.97 + 0.06*rng.Float64()) }
	var out []*Report
	for range n {
		r := &Report{Schema: SchemaVersion, Passed: true, ElapsedUs: 1_000_000, IntervalUs: 100_000,
			Config: Settings{Target: "http://127.0.0.1:7000", Scenario: "status-list", Concurrency: 2, DurationUs: 1_000_000, Form: "path", Format: "xml"},
			Environment: Environment{Host: "h", OS: "linux", Arch: "amd64", CPUs: 2, GOMAXPROCS: 2, GoVersion: "go1", HarnessVersion: "1", HarnessRevision: "r",
				LoadAverageStart: []float64{0.1, 0.1, 0.1}},
			Histograms: map[string]string{}}
		r.Operations.PerSecond = jit(perSec)
		for _, name := range []string{"getstatus-list", rowOperation} {
			h := newHDR()
			for i := range 200 {
				_ = h.RecordValue(int64(jit(float64(latUs) * (1 + float64(i%20)/10))))
			}
			l := summarize(name, h)
			r.Histograms[name] = string(encodeHist(h))
			if name == rowOperation {
				r.OperationLatency = l
			} else {
				r.RequestLatency = []Latency{l}
			}
		}
		for k := range 10 {
			iv := Interval{StartUs: int64(k) * 100_000, LengthUs: 100_000, OK: int64(jit(perSec / 10))}
			for _, name := range []string{"getstatus-list", rowOperation} {
				v := int64(jit(float64(latUs)))
				iv.Latency = append(iv.Latency, IntervalLatency{Name: name, Count: 20, P50Us: v, P90Us: v * 2, P99Us: v * 3, MaxUs: v * 3})
			}
			r.Timeline = append(r.Timeline, iv)
		}
		out = append(out, r)
	}
	return out
}

func metric(t *testing.T, c *Comparison, row, name string) CompareMetric {
	t.Helper()
	for _, s := range c.Sections {
		if s.Row != row {
			continue
		}
		for _, m := range s.Metrics {
			if m.Name == name {
				return m
			}
		}
	}
	t.Fatalf("no %s %s in the comparison", row, name)
	return CompareMetric{}
}

// Four runs a side of a server that got 5 ms slower: the exact U test
// (p = 2/70 with no overlap) finds the latency worse and the closed-loop
// throughput lower, and the medians and ratios say by how much.
func TestCompareFindsARegression(t *testing.T) {
	t.Parallel()
	fast := synth(4, 1000, 1000, 1)
	slow := synth(4, 400, 2500, 2)
	c, err := Compare([]CompareGroup{{Name: "fast", Runs: fast}, {Name: "slow", Runs: slow}}, 0)
	require.NoError(t, err)
	require.Equal(t, DefaultAlpha, c.Alpha)
	require.Equal(t, "operation", c.Sections[0].Row, "the operation row comes first")
	p50 := metric(t, c, "operation", "p50")
	require.Equal(t, "WORSE", p50.Verdict[1])
	require.Equal(t, "runs", p50.Basis[1])
	require.Less(t, p50.P[1], 0.03, "no overlap: 2/70 exact (ties in the histograms' p50s take the normal approximation, 0.028)")
	require.Greater(t, p50.Ratio[1], 2.0)
	require.Len(t, p50.Values[1], 4)
	thr := metric(t, c, "operation", "throughput")
	require.True(t, thr.Rate)
	require.Equal(t, "WORSE", thr.Verdict[1], "a closed loop gets less through a slower server")
	require.Less(t, thr.Ratio[1], 0.5)
	metric(t, c, "getstatus-list", "p99")
	require.Empty(t, c.Warnings, "same configuration, same machine")
	require.Empty(t, c.Notes)

	var text bytes.Buffer
	require.NoError(t, WriteComparison(&text, c))
	out := text.String()
	require.Contains(t, out, "fast  4 run(s), baseline")
	require.Contains(t, out, "WORSE (p=0.02")
	require.Contains(t, out, "Mann-Whitney")

	// The other way round it is better.
	c, err = Compare([]CompareGroup{{Name: "slow", Runs: slow}, {Name: "fast", Runs: fast}}, 0)
	require.NoError(t, err)
	require.Equal(t, "better", metric(t, c, "operation", "p50").Verdict[1])
}

// With one run a side the test runs over the timeline intervals, and
// says so; with three runs a side it cannot reach 5% and says that.
func TestCompareSingleRunsAndTooFewRuns(t *testing.T) {
	t.Parallel()
	a := synth(1, 1000, 1000, 3)
	b := synth(1, 1000, 2000, 4)
	c, err := Compare([]CompareGroup{{Name: "a", Runs: a}, {Name: "b", Runs: b}}, 0)
	require.NoError(t, err)
	p50 := metric(t, c, "operation", "p50")
	require.Equal(t, "intervals", p50.Basis[1])
	require.Equal(t, "WORSE", p50.Verdict[1])
	require.Equal(t, "? one run each", metric(t, c, "operation", "p99.9").Verdict[1], "no p99.9 per interval")

	a3 := synth(3, 1000, 1000, 5)
	b3 := synth(3, 1000, 3000, 6)
	c, err = Compare([]CompareGroup{{Name: "a", Runs: a3}, {Name: "b", Runs: b3}}, 0)
	require.NoError(t, err)
	m := metric(t, c, "operation", "p50")
	require.Equal(t, "? too few runs to tell (need 4 a side)", m.Verdict[1])
}

// Runs that were not made alike are flagged: another scenario or load,
// a busy machine, a generator that saturated.
func TestCompareWarnsWhenRunsAreNotComparable(t *testing.T) {
	t.Parallel()
	a := synth(1, 1000, 1000, 7)
	b := synth(1, 1000, 1000, 8)
	b[0].Config.Scenario, b[0].Config.Concurrency = "version", 3
	b[0].Environment.LoadAverageStart = []float64{9, 5, 3}
	b[0].Environment.CPUs = 1
	b[0].Generator.Saturated = true
	c, err := Compare([]CompareGroup{{Name: "a", Runs: a, Files: []string{"a.json"}}, {Name: "b", Runs: b, Files: []string{"b.json"}}}, 0)
	require.NoError(t, err)
	w := strings.Join(c.Warnings, "\n")
	require.Contains(t, w, "the scenario differs: a (a.json) has status-list; b (b.json) has version")
	require.Contains(t, w, "the load differs")
	require.Contains(t, w, "b (b.json) began on a busy machine: load average 9.00 on 1 CPUs")
	require.Contains(t, w, "saturated")
	require.Contains(t, w, "the machine differs", "CPUs changed")

	_, err = Compare([]CompareGroup{{Name: "a", Runs: a}}, 0)
	require.ErrorContains(t, err, "at least two groups")
	_, err = Compare([]CompareGroup{{Name: "a", Runs: a}, {Name: "b", Runs: b}}, 1.5)
	require.ErrorContains(t, err, "alpha")
}

// The HTML comparison renders in Chromium with its throughput bars and a
// percentile plot per row, one line per group.
func TestCompareHTMLRendersInChromium(t *testing.T) {
	t.Parallel()
	a := synth(2, 1000, 1000, 9)
	b := synth(2, 700, 1500, 10)
	c, err := Compare([]CompareGroup{{Name: "before", Runs: a}, {Name: "after", Runs: b}}, 0)
	require.NoError(t, err)
	var page bytes.Buffer
	require.NoError(t, WriteComparisonHTML(&page, c))
	charts, _, external, _ := renderInChromium(t, bytes.Replace(page.Bytes(), []byte("<h1>"), []byte(`<span id="verdict"></span><h1>`), 1))
	require.Empty(t, external)
	bars := charts["throughput"]
	require.Equal(t, "barchart", bars.Kind)
	require.Len(t, bars.Bars, 4, "two rows with a throughput, two groups")
	for _, b := range bars.Bars {
		require.Positive(t, b.Height)
	}
	op := charts["percentiles-operation"]
	require.Len(t, op.Lines, 2)
	require.Positive(t, op.SeriesWidth)
	require.Contains(t, page.String(), "Mann-Whitney")
}
