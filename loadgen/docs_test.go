package loadgen

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every workload file example in docs/bench-harness.md parses and
// compiles, so the documentation cannot show a file the harness refuses.
func TestDocumentedWorkloadsParse(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "bench-harness.md"))
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(doc, -1)
	require.NotEmpty(t, blocks, "the guide shows a workload file")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "words.txt"), []byte("alpha\nbeta\n"), 0o600))
	for i, b := range blocks {
		path := filepath.Join(dir, "example.yaml")
		require.NoError(t, os.WriteFile(path, b[1], 0o600))
		w, err := LoadWorkload(path)
		require.NoError(t, err, "example %d:\n%s", i+1, b[1])
		_, err = compileWorkload(w, nil)
		require.NoError(t, err, "example %d", i+1)
	}
}
