package loadgen

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// runs returns n short closed-loop status-list runs against a fake that
// answers each request after delay.
func runs(t *testing.T, n int, delay time.Duration, cfg Config) []*Report {
	t.Helper()
	var out []*Report
	for range n {
		f := newFake()
		f.delay = delay
		c := cfg
		c.Target = f.start(t)
		if c.Scenario == "" {
			c.Scenario = ScenarioStatusList
		}
		if c.Duration == 0 {
			c.Duration = 250 * time.Millisecond
		}
		if c.Concurrency == 0 {
			c.Concurrency = 2
		}
		rep, err := Run(context.Background(), c)
		require.NoError(t, err)
		// The machine's real load average would make the warnings
		// depend on what else runs: pretend a quiet machine.
		rep.Environment.LoadAverageStart = []float64{0.1, 0.1, 0.1}
		out = append(out, rep)
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
	fast := runs(t, 4, 0, Config{})
	slow := runs(t, 4, 5*time.Millisecond, Config{})
	c, err := Compare([]CompareGroup{{Name: "fast", Runs: fast}, {Name: "slow", Runs: slow}}, 0)
	require.NoError(t, err)
	require.Equal(t, DefaultAlpha, c.Alpha)
	require.Equal(t, "operation", c.Sections[0].Row, "the operation row comes first")
	p50 := metric(t, c, "operation", "p50")
	require.Equal(t, "WORSE", p50.Verdict[1])
	require.Equal(t, "runs", p50.Basis[1])
	require.Less(t, p50.P[1], DefaultAlpha, "no overlap: 2/70 exact, about 0.029 with ties")
	require.Greater(t, p50.Ratio[1], 2.0)
	require.Len(t, p50.Values[1], 4)
	thr := metric(t, c, "operation", "throughput")
	require.True(t, thr.Rate)
	require.Equal(t, "WORSE", thr.Verdict[1], "a closed loop gets less through a slower server")
	require.Less(t, thr.Ratio[1], 0.5)
	metric(t, c, "getstatus-list", "p99")
	require.Empty(t, c.Warnings, "same configuration, same machine")
	require.NotEmpty(t, c.Notes, "the targets' addresses differ")

	var text bytes.Buffer
	require.NoError(t, WriteComparison(&text, c))
	out := text.String()
	require.Contains(t, out, "fast  4 run(s), baseline")
	require.Contains(t, out, "WORSE (p=0.0")
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
	cfg := Config{Duration: 600 * time.Millisecond, Interval: 50 * time.Millisecond}
	a := runs(t, 1, 0, cfg)
	b := runs(t, 1, 5*time.Millisecond, cfg)
	c, err := Compare([]CompareGroup{{Name: "a", Runs: a}, {Name: "b", Runs: b}}, 0)
	require.NoError(t, err)
	p50 := metric(t, c, "operation", "p50")
	require.Equal(t, "intervals", p50.Basis[1])
	require.Equal(t, "WORSE", p50.Verdict[1])
	require.Equal(t, "? one run each", metric(t, c, "operation", "p99.9").Verdict[1], "no p99.9 per interval")

	a3 := runs(t, 3, 0, Config{})
	b3 := runs(t, 3, 5*time.Millisecond, Config{})
	c, err = Compare([]CompareGroup{{Name: "a", Runs: a3}, {Name: "b", Runs: b3}}, 0)
	require.NoError(t, err)
	m := metric(t, c, "operation", "p50")
	require.Equal(t, "? too few runs to tell (need 4 a side)", m.Verdict[1])
}

// Runs that were not made alike are flagged: another scenario or load,
// a busy machine, a generator that saturated.
func TestCompareWarnsWhenRunsAreNotComparable(t *testing.T) {
	t.Parallel()
	a := runs(t, 1, 0, Config{})
	b := runs(t, 1, 0, Config{Scenario: ScenarioVersion, Concurrency: 3})
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
	a := runs(t, 2, 0, Config{})
	b := runs(t, 2, 3*time.Millisecond, Config{})
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
