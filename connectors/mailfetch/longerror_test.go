package mailfetch

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLongValueErrorsShort: a setting check that names the bad part of a
// value (or key) quotes its first 100 bytes and its size (wording), as
// the configuration's own errors do: a megabyte made a start-up error, a
// log line and a Config fragment's error reply of a megabyte.
func TestLongValueErrorsShort(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("A", 1<<20)
	err := TaskKeys("Folders"+long, "x") // an unknown key (restsync.Keys)
	require.Error(t, err)
	require.Less(t, len(err.Error()), 1000, err.Error()[:min(len(err.Error()), 1000)])
	require.Contains(t, err.Error(), "… (1048583 bytes) is not a Google Mail task setting")
}
