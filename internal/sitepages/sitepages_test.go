package sitepages

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// testdata/site: index links a, b (with a fragment), an off-site page,
// a mailto, a missing page and a stylesheet; a and b link c; c links d.
func TestReachable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc  string
		depth int
		want  [][]string
	}{
		{"start only", 0, [][]string{{"index.html"}}},
		{"depth 1: existing .html files only, fragment dropped", 1, [][]string{{"index.html"}, {"a.html", "b.html"}}},
		{"depth 2: each page once, at its minimum depth", 2, [][]string{{"index.html"}, {"a.html", "b.html"}, {"c.html"}}},
		{"depth 3", 3, [][]string{{"index.html"}, {"a.html", "b.html"}, {"c.html"}, {"d.html"}}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, err := Reachable("testdata/site", "index.html", tc.depth)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestReachableMissingStart(t *testing.T) {
	t.Parallel()
	_, err := Reachable("testdata/site", "nope.html", 1)
	require.Error(t, err)
}
