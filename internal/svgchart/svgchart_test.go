package svgchart

import (
	"encoding/xml"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// wellFormed parses s as XML: every chart is a standalone SVG document.
func wellFormed(t *testing.T, s string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		_, err := d.Token()
		if err != nil {
			require.Equal(t, "EOF", err.Error(), s)
			return
		}
	}
}

func TestLineChartIsSelfContainedSVG(t *testing.T) {
	t.Parallel()
	c := &Chart{ID: "c1", Title: `Latency <"&'>`, X: Axis{Title: "percentile", Scale: Percentile}, Y: Axis{Title: "ms", Scale: Log10},
		Series: []Series{{Name: "a&b", Points: []Point{{0, 0.5, ""}, {0.9, 2, "a p90: 2 ms"}, {0.99, 40, ""}, {0.999, 900, ""}}}}}
	s := c.SVG()
	wellFormed(t, s)
	require.True(t, strings.HasPrefix(s, `<svg xmlns="http://www.w3.org/2000/svg" id="c1"`))
	require.Contains(t, s, "Latency &lt;&#34;&amp;&#39;&gt;")
	require.Contains(t, s, "<title>a p90: 2 ms</title>")
	require.Contains(t, s, `data-series="a&amp;b"`)
	for _, tick := range []string{">0%<", ">90%<", ">99%<", ">99.9%<"} {
		require.Contains(t, s, tick)
	}
	require.NotContains(t, s, "<script")
	require.NotContains(t, s, "href")
}

func TestScales(t *testing.T) {
	t.Parallel()
	require.InDelta(t, 2, scaled(Percentile, 0.99), 1e-9)
	require.InDelta(t, 0.999, unscaled(Percentile, 3), 1e-12)
	require.True(t, math.IsNaN(scaled(Log10, 0)))
	require.True(t, math.IsNaN(scaled(Percentile, 1)))
	require.Equal(t, []float64{1, 2, 5, 10, 20, 50, 100}, ticks(Axis{Scale: Log10}, 0, 2, 200))
	require.Equal(t, []float64{1, 10, 100}, ticks(Axis{Scale: Log10}, 0, 2, 100), "no room for 2 and 5")
	require.Equal(t, []float64{0, 20, 40, 60, 80, 100}, ticks(Axis{}, 0, 100, 200))
	require.Equal(t, []float64{0, 1}, ticks(Axis{Integer: true}, 0, 1, 200))
	lo, hi := dataRange(Axis{Scale: Percentile}, []float64{0, 0.9999}, false)
	require.Equal(t, 0.0, lo)
	require.Equal(t, 4.0, hi, "1-1/10000 is at 4 decades, not 5")
	require.Equal(t, "99.99%", PercentileLabel(0.9999))
	require.Equal(t, "36.9043%", PercentileLabel(1-math.Pow(10, -0.2)))
}

func TestBarChartsStackAndGroup(t *testing.T) {
	t.Parallel()
	c := &Chart{ID: "e", Title: "Errors", Bars: true, BarWidth: 0.8,
		Series: []Series{{Name: "http", Points: []Point{{1, 3, ""}, {2, 1, ""}}}, {Name: "aci", Points: []Point{{1, 2, ""}}}}}
	s := c.SVG()
	wellFormed(t, s)
	require.Equal(t, 3, strings.Count(s, "data-value="))
	b := &BarChart{ID: "g", Title: "Throughput", Categories: []string{"submit", "status"},
		Groups: []BarGroup{{Name: "ours", Values: []float64{10, 20}, Low: []float64{9, 18}, High: []float64{11, 22}, ValueLabels: true},
			{Name: "ceiling", Values: []float64{30, math.NaN()}}}}
	s = b.SVG()
	wellFormed(t, s)
	require.Equal(t, 3, strings.Count(s, "data-value="), "a NaN value draws no bar")
	require.Contains(t, s, "<title>ours, status: 20</title>")
}
