package config

import (
	"fmt"
	"math/rand/v2"
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

// hostileListing is a text of n listed tasks without sections and n
// sections no task lists, every task name at least four edits from every
// section name (so no "did you mean" is found, and each task is compared
// with each section), all of one length.
func hostileListing(n int) string {
	var text strings.Builder
	text.WriteString("[FetchTasks]\n")
	for i := range n {
		fmt.Fprintf(&text, "%d=Tqqqq%06d\n", i, i)
	}
	for i := range n {
		fmt.Fprintf(&text, "[Szzzz%06d]\n", i)
	}
	return text.String()
}

// TestListedWithoutSectionIsNotQuadratic: the "did you mean" check of the
// tasks [FetchTasks] lists without a section compared each such task with
// every section no task lists: 3,000 of each (83 KB) took 0.5 to 0.9 s,
// a 1 MiB request's fragment about 75 s. Doubling both now at most
// doubles the work. The work is counted in allocations (each comparison
// allocated), which are deterministic where time is not: with a product,
// doubling n made four times as many.
func TestListedWithoutSectionIsNotQuadratic(t *testing.T) {
	allocs := func(n int) float64 {
		text := []byte(hostileListing(n))
		return testing.AllocsPerRun(1, func() {
			_, err := Parse("x.cfg", text, testTaskKeys)
			require.NoError(t, err)
		})
	}
	small, large := allocs(500), allocs(1000)
	t.Logf("allocations: %.0f for 500 tasks and sections, %.0f for 1000", small, large)
	require.Less(t, large, 2.5*small, "doubling the tasks and sections multiplied the allocations by %.1f", large/small)
}

// TestNearIndexIsClosest: within its budget, the index that
// listedWithoutSection uses finds what Closest finds (the nearest
// candidate, the first on a tie, case-insensitive), over random names of
// a small alphabet (so many are within two edits of each other) and of
// several lengths; and a typo among many tasks and sections is still
// refused with its hint.
func TestNearIndexIsClosest(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	name := func() string {
		b := make([]byte, 1+r.IntN(7))
		for i := range b {
			b[i] = "abAB√"[r.IntN(5)]
		}
		return string(b)
	}
	for range 300 {
		candidates := make([]string, r.IntN(30))
		for i := range candidates {
			candidates[i] = name()
		}
		x := newNearIndex(candidates, nearBudget)
		for range 20 {
			w := name()
			require.Equal(t, Closest(w, candidates), x.closest(w), "%q in %q", w, candidates)
		}
	}
	require.Empty(t, newNearIndex([]string{"Server"}, 5*len("Servr")).closest("Servr"), "beyond the budget")
	require.Equal(t, "Server", newNearIndex([]string{"Server"}, 5*(len("Servr")+1)).closest("Servr"))

	var text strings.Builder
	text.WriteString("[FetchTasks]\n")
	for i := range 300 {
		fmt.Fprintf(&text, "%d=Task%d\n", i, i)
	}
	fmt.Fprintf(&text, "300=Docs\n")
	for i := range 300 {
		fmt.Fprintf(&text, "[Task%d]\n[Other%d]\n", i, i)
	}
	text.WriteString("[Dcos]\n")
	_, err := Parse("c.cfg", []byte(text.String()), testTaskKeys)
	require.ErrorContains(t, err, "task Docs has no section [Docs] (did you mean [Dcos]?)")
}

// BenchmarkHostileListing reads hostileListing's text: 3,000 listed tasks
// without sections beside 3,000 unlisted sections (83 KB), and 38,000 of
// each (about 1 MiB, a request's fragment).
func BenchmarkHostileListing(b *testing.B) {
	for _, n := range []int{3000, 38000} {
		text := []byte(hostileListing(n))
		b.Run(fmt.Sprintf("%d bytes", len(text)), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if _, err := Parse("x.cfg", text, testTaskKeys); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
