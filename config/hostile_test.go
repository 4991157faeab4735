package config

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The configuration reader also reads text that anyone who reaches the
// ACI port sends: a request's Config fragment, parsed to validate it and
// to redact its secrets for the request log (for every request that
// carries one, whatever its action and whether the client may send it).
// Its cost must grow with the text's size, never with a product of its
// parts.

// TestParseDoesNotHangOnManyKeys is the regression test of the reader
// comparing each key with every other key of its section (and each
// section with every other section) to find one given twice: 40,000 keys
// (300 KB) took 7 s, and the time grew with the square of their number. A
// deadline stands for "does not hang": 100,000 keys take about a second
// (4 s under -race), and took minutes.
func TestParseDoesNotHangOnManyKeys(t *testing.T) {
	t.Parallel()
	const n = 100000
	var text strings.Builder
	text.WriteString("[T]\n")
	for i := range n {
		fmt.Fprintf(&text, "k%d=\n", i)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Parse("x.cfg", []byte(text.String()), testTaskKeys)
		done <- err
	}()
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrUnknownKey)
	case <-time.After(time.Minute):
		t.Fatalf("reading %d bytes of %d keys takes more than a minute", text.Len(), n)
	}
}

// TestParseMemoryOnHostileText: a "did you mean" hint compared two names
// with a table of the product of their lengths (a 16 KB text of one
// listed task and one section, 8,000 letters each, allocated 509 MiB;
// 350,000 letters each, a 1 MiB request, would need 980 GB), and the
// lines of a text were first split into a slice of 16 bytes per line (a
// text of line ends cost 16 times its size). Neither may allocate more
// than a few times the text's size.
func TestParseMemoryOnHostileText(t *testing.T) {
	for name, text := range map[string]string{
		"long task and section names": "[FetchTasks]\n0=" + strings.Repeat("a", 8000) + "\n[" + strings.Repeat("b", 8000) + "]\n",
		"long unknown key":            "[T]\n" + strings.Repeat("k", 100000) + "=1\n",
		"line ends":                   strings.Repeat("\n", 4<<20),
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

// TestFoldKeyIsEqualFold: names compared through foldKey in maps are equal
// exactly when strings.EqualFold says so, as they were compared before.
func TestFoldKeyIsEqualFold(t *testing.T) {
	t.Parallel()
	words := []string{"Server", "SERVER", "server", "ſerver", "Kelvin", "\u212Aelvin", "kelvin", "Straße", "STRASSE",
		"İstanbul", "istanbul", "ǅ", "ǆ", "Ǆ", "Σίσυφος", "ΣΊΣΥΦΟΣ", "σίσυφοσ", "\xff", "\xfe", "a\xffb", "", "ß", "ẞ"}
	for _, a := range words {
		for _, b := range words {
			require.Equal(t, strings.EqualFold(a, b), foldKey(a) == foldKey(b), "%q %q", a, b)
		}
	}
}
