package config

import (
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The configuration reader also reads text that anyone who reaches the
// ACI port sends: a request's Config fragment, parsed to validate it and
// to redact its secrets for the request log (for every request that
// carries one, whatever its action and whether the client may send it).
// Its cost must grow with the text's size, never with a product of its
// parts.

// TestParseMemoryOnHostileText: a "did you mean" hint compared two names
// with a table of the product of their lengths (a 16 KB text of one
// listed task and one section, 8,000 letters each, allocated 509 MiB;
// 350,000 letters each, a 1 MiB request, would need 980 GB). Reading a
// text may not allocate more than a few times its size.
func TestParseMemoryOnHostileText(t *testing.T) {
	for name, text := range map[string]string{
		"long task and section names": "[FetchTasks]\n0=" + strings.Repeat("a", 8000) + "\n[" + strings.Repeat("b", 8000) + "]\n",
		"long unknown key":            "[T]\n" + strings.Repeat("k", 100000) + "=1\n",
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, _ = Parse("x.cfg", []byte(text), testTaskKeys)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		require.LessOrEqual(t, alloc, uint64(8*len(text)+1<<20), "%s: %d bytes of text allocated %d bytes", name, len(text), alloc)
	}
}
