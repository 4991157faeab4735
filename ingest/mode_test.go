package ingest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The output of IDX and JSONL (documents that may be confidential) is
// readable by the owner and the group only, as what Collect writes: files
// 0640, folders 0750 (less the umask). They were 0644 and 0755: readable by
// every user of the machine.
func TestOutputIsNotWorldReadable(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"IDX", "JSONL"} {
		dir := filepath.Join(t.TempDir(), "out", "docs") // created by the target
		opts := Options{Directory: dir, BatchSize: 1}
		require.NoError(t, opts.withDefaults())
		var (
			tg  Target
			err error
		)
		if kind == "IDX" {
			tg, err = openIDXFolder(opts, osFS{}, slog.New(slog.DiscardHandler))
		} else {
			tg, err = openJSONL(opts, osFS{}, slog.New(slog.DiscardHandler))
		}
		require.NoError(t, err, kind)
		require.NoError(t, tg.Add(context.Background(), makeDocs("http://site", 1)), kind)
		require.NoError(t, tg.Remove(context.Background(), []string{"http://site/0"}), kind)
		require.NoError(t, tg.Close(), kind)
		for _, d := range []string{dir, filepath.Dir(dir)} {
			st, err := os.Stat(d)
			require.NoError(t, err)
			require.Zero(t, st.Mode().Perm()&^0o750, "%s: folder %s is %v", kind, d, st.Mode().Perm())
		}
		names := dirFiles(t, dir)
		require.NotEmpty(t, names, kind)
		for _, n := range names {
			st, err := os.Stat(filepath.Join(dir, n))
			require.NoError(t, err)
			require.Zero(t, st.Mode().Perm()&^0o640, "%s: file %s is %v", kind, n, st.Mode().Perm())
			require.NotZero(t, st.Mode().Perm()&0o400, "%s: file %s is readable by its owner", kind, n)
		}
	}
}
