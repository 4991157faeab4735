package messages

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestParamErrorHidesURLPasswords: a refused value is quoted in the error,
// which is the ERRORPARAMINVALID reply's description and a log line; the
// password of a URL in it is not (docs/security.md). An Identifiers of
// http://alice:hunter2@host/x (refused: no task knows it) showed hunter2
// in the reply.
func TestParamErrorHidesURLPasswords(t *testing.T) {
	t.Parallel()
	err := Invalid("Identifiers", "http://alice:hunter2@127.0.0.1:8080/x", "not an identifier of a configured task")
	require.Equal(t, `invalid value "http://alice:[REDACTED]@127.0.0.1:8080/x" for parameter Identifiers: not an identifier of a configured task`, err.Error())
	require.Equal(t, `invalid value "http://127.0.0.1/" for parameter Url: no`, Invalid("Url", "http://127.0.0.1/", "no").Error())
}

// TestParamErrorQuotesLongValueShort: a refused value is quoted by its
// first 100 bytes and its size, as the configuration's errors quote it: a
// request setting of a megabyte (Depth=AAA…) made an error reply and a
// log line of a megabyte.
func TestParamErrorQuotesLongValueShort(t *testing.T) {
	t.Parallel()
	long := "http://alice:hunter2@127.0.0.1/" + strings.Repeat("A", 1<<20)
	msg := Invalid("[MyTask] Depth", long, "must be a whole number").Error()
	require.Less(t, len(msg), 300, msg[:min(len(msg), 300)])
	require.Contains(t, msg, `"http://alice:[REDACTED]@127.0.0.1/AAA`)
	require.Contains(t, msg, "… (1048610 bytes) for parameter [MyTask] Depth: must be a whole number")
}
