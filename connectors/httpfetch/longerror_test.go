package httpfetch

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLongValueErrorsShort: a setting check that names the bad part of a
// value quotes its first 100 bytes and its size (wording.Quote), as the
// configuration's own errors do: a value of a megabyte made a start-up
// error, a log line and a Config fragment's error reply of a megabyte.
func TestLongValueErrorsShort(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("A", 1<<20)
	for _, kv := range [][3]string{
		{"ExtractFormats", "pdf," + long, "… (1048576 bytes) is not a format"},
		{"OverrideUrlOrigins", "http://a.example," + long, "… (1048576 bytes) is not an http or https origin"},
		{"Depth" + long, "1", "… (1048581 bytes) is not a fetch task setting"},
	} {
		err := TaskKeys(kv[0], kv[1])
		require.Error(t, err, kv[0][:min(len(kv[0]), 20)])
		require.Less(t, len(err.Error()), 1000, err.Error()[:min(len(err.Error()), 1000)])
		require.Contains(t, err.Error(), kv[2])
	}
}

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
