package httpfetch

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLongRegexErrorShort: a URL regex that does not compile is refused
// with its first 100 bytes and its size; Go's error quoted the whole
// expression, so a megabyte of one made a megabyte of error.
func TestLongRegexErrorShort(t *testing.T) {
	t.Parallel()
	err := TaskKeys("UrlMustHaveRegex", "("+strings.Repeat("A", 1<<20))
	require.Error(t, err)
	require.Less(t, len(err.Error()), 1000, err.Error()[:min(len(err.Error()), 1000)])
	require.Contains(t, err.Error(), "not a valid regular expression (Go RE2 syntax): missing closing ): \"^(?:(AAA")
	require.Contains(t, err.Error(), "… (1048583 bytes)")
}
