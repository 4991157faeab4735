package wording

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestQuoteAndClip: short text is kept whole, long text is cut to
// MaxQuoted bytes (never inside a character) with its size, and a URL's
// password in long text is hidden before the cut, also when hiding it
// leaves the text short enough to show whole.
func TestQuoteAndClip(t *testing.T) {
	t.Parallel()
	require.Equal(t, `"a\x01"`, Quote("a\x01"))
	require.Equal(t, "a b", Clip("a b"))

	long := strings.Repeat("é", 80) // 160 bytes
	require.Equal(t, `"`+strings.Repeat("é", 50)+`"… (160 bytes)`, Quote(long))
	require.Equal(t, strings.Repeat("é", 50)+"… (160 bytes)", Clip(long))

	pw := strings.Repeat("s3cret", 20)
	for _, text := range []string{
		"http://alice:" + pw + "@cfs/",                              // whole once hidden
		"http://alice:" + pw + "@cfs/" + strings.Repeat("x", 200),   // still cut
		strings.Repeat("y", 90) + " http://alice:" + pw + "@cfs/ z", // cut before the URL's user
	} {
		for _, got := range []string{Quote(text), Clip(text)} {
			require.NotContains(t, got, "s3cret", text)
		}
	}
	require.Equal(t, `"http://alice:[REDACTED]@cfs/"`, Quote("http://alice:"+pw+"@cfs/"))
}
