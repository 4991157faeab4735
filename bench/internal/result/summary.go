package result

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// Stat summarises one figure over the iterations of a run: what every
// cell of RESULTS.md shows as "median (min–max)".
type Stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

// Summarise returns the Stat of vs (the median of an even count is the
// mean of the two middle values); false when vs is empty.
func Summarise(vs []float64) (Stat, bool) {
	if len(vs) == 0 {
		return Stat{}, false
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stat{Median: med, Min: s[0], Max: s[len(s)-1], N: len(s)}, true
}

// Ratios pairs num and den run by run (index i is run i of both) and
// returns num[i] ÷ den[i] for each run both have with a non-zero den: the
// ratio to a reference measured in the same run, which Summarise then
// turns into median (min–max). The ratio of two medians would set figures
// of different runs against each other.
func Ratios(num, den []float64) []float64 {
	var out []float64
	for i := range min(len(num), len(den)) {
		if den[i] != 0 {
			out = append(out, num[i]/den[i])
		}
	}
	return out
}

// LoadAvg returns the 1, 5 and 15 minute load averages from /proc/loadavg
// ("" where it cannot be read): the machine's foreign load, which every
// RESULTS.md header states before and after a run.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// LastLines returns the last n lines of s joined with " | ", for an
// error message that quotes a failed program's output.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// CommandList renders, as a collapsed Markdown list titled summary, the
// "command" entry of each key's info (sorted by key): how to rerun every
// row of a RESULTS.md section by itself.
func CommandList(summary string, info map[string]map[string]string) string {
	keys := make([]string, 0, len(info))
	for k := range info {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "<details><summary>%s</summary>\n\n", summary)
	for _, k := range keys {
		if cmd := info[k]["command"]; cmd != "" {
			fmt.Fprintf(&b, "- `%s`: `%s`\n", k, cmd)
		}
	}
	b.WriteString("\n</details>\n\n")
	return b.String()
}
