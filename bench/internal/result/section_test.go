package result

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSectionUpdate(t *testing.T) {
	s := Section{Begin: "<!-- B -->", End: "<!-- E -->", Head: "## Mine", Placeholder: "to come\n"}
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	read := func() string {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		return string(b)
	}

	// No file: a title, the heading, the block.
	require.NoError(t, s.Update(path, "one\n"))
	require.Equal(t, "# Benchmark results\n\n## Mine\n\n<!-- B -->\none\n<!-- E -->\n", read())

	// Markers there: only the block changes; a reading after End stays.
	require.NoError(t, os.WriteFile(path, []byte(read()+"reading\n\n## Other\n"), 0o644))
	require.NoError(t, s.Update(path, "two\n"))
	require.Equal(t, "# Benchmark results\n\n## Mine\n\n<!-- B -->\ntwo\n<!-- E -->\nreading\n\n## Other\n", read())

	// A heading without markers: the block goes under it, the placeholder goes.
	require.NoError(t, os.WriteFile(path, []byte("# R\n\n## Mine\n\nto come\n\n## Other\n"), 0o644))
	require.NoError(t, s.Update(path, "three\n"))
	require.Equal(t, "# R\n\n## Mine\n\n<!-- B -->\nthree\n<!-- E -->\n\n## Other\n", read())

	// Begin without End is an error; the file is left alone.
	require.NoError(t, os.WriteFile(path, []byte("# R\n<!-- B -->\nx\n"), 0o644))
	require.Error(t, s.Update(path, "four\n"))
	require.Equal(t, "# R\n<!-- B -->\nx\n", read())
}

func TestSpread(t *testing.T) {
	f := func(v float64) string { return fmt.Sprintf("%.1f", v) }
	require.Equal(t, "2.0 (1 run)", Spread(Stat{Median: 2, Min: 2, Max: 2, N: 1}, f))
	require.Equal(t, "2.0 (all 3 runs)", Spread(Stat{Median: 2, Min: 2, Max: 2.01, N: 3}, f))
	require.Equal(t, "2.0 (1.0–3.0)", Spread(Stat{Median: 2, Min: 1, Max: 3, N: 3}, f))
}
