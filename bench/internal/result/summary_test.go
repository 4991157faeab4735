package result

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSummarise(t *testing.T) {
	t.Parallel()
	_, ok := Summarise(nil)
	require.False(t, ok)
	st, ok := Summarise([]float64{3, 1, 2})
	require.True(t, ok)
	require.Equal(t, Stat{Median: 2, Min: 1, Max: 3, N: 3}, st)
	st, _ = Summarise([]float64{4, 1, 2, 3})
	require.Equal(t, 2.5, st.Median)
}

func TestLastLines(t *testing.T) {
	t.Parallel()
	require.Equal(t, "b | c", LastLines("a\nb\nc\n", 2))
	require.Equal(t, "a", LastLines("a", 5))
}

func TestCommandList(t *testing.T) {
	t.Parallel()
	got := CommandList("Programs", map[string]map[string]string{
		"b": {"command": "prog -b"}, "a": {"command": "prog -a"}, "c": {"other": "x"},
	})
	require.Equal(t, "<details><summary>Programs</summary>\n\n- `a`: `prog -a`\n- `b`: `prog -b`\n\n</details>\n\n", got)
}

// A ratio to a same-run reference is taken run by run, then summarised:
// ours 10, 30, 20 against ceilings 10, 10, 40 in the same runs is 1, 3
// and 0.5, median 1 (0.5–3); the ratio of the two medians, 20 ÷ 10 = 2,
// compares figures of different runs (mailbench and restbench printed it).
func TestRatios(t *testing.T) {
	t.Parallel()
	st, ok := Summarise(Ratios([]float64{10, 30, 20}, []float64{10, 10, 40}))
	require.True(t, ok)
	require.Equal(t, Stat{Median: 1, Min: 0.5, Max: 3, N: 3}, st)
	require.Empty(t, Ratios([]float64{1}, []float64{0}), "no ratio to a zero reference")
	require.Equal(t, []float64{2}, Ratios([]float64{4, 5}, []float64{2}), "only the runs both have")
}
