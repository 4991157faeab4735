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
