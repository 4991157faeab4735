package result

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Section is a generated block of RESULTS.md: the text between Begin and
// End, under the heading Head. Everything outside the markers (other
// sections, a hand-written reading after End) is kept.
type Section struct {
	Begin, End, Head string
	// Placeholder, when present under Head, is removed the first time the
	// block is inserted there.
	Placeholder string
}

// Update replaces the block in the file at path; without markers yet, it
// inserts the block right under Head, or appends Head and the block at
// the end. A missing file starts as "# Benchmark results".
func (s Section) Update(path, block string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	text := string(old)
	if text == "" {
		text = "# Benchmark results\n"
	}
	gen := s.Begin + "\n" + block + s.End + "\n"
	if i := strings.Index(text, s.Begin); i >= 0 {
		j := strings.Index(text[i:], s.End)
		if j < 0 {
			return fmt.Errorf("%s: %q without %q after it", path, s.Begin, s.End)
		}
		text = text[:i] + gen + strings.TrimPrefix(text[i+j+len(s.End):], "\n")
	} else if h := strings.Index(text, "\n"+s.Head+"\n"); h >= 0 {
		at := h + 1 + len(s.Head) + 1
		rest := strings.TrimLeft(text[at:], "\n")
		if s.Placeholder != "" {
			rest = strings.Replace(rest, s.Placeholder, "", 1)
		}
		text = text[:at] + "\n" + gen + "\n" + strings.TrimLeft(rest, "\n")
	} else {
		text = strings.TrimRight(text, "\n") + "\n\n" + s.Head + "\n\n" + gen
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// Spread renders st as RESULTS.md cells do: "median (min–max)", "v (all N
// runs)" when every run gave the same figure, "v (1 run)" for one.
func Spread(st Stat, f func(float64) string) string {
	if st.N <= 1 {
		return f(st.Median) + " (1 run)"
	}
	if f(st.Min) == f(st.Max) {
		return fmt.Sprintf("%s (all %d runs)", f(st.Median), st.N)
	}
	return fmt.Sprintf("%s (%s–%s)", f(st.Median), f(st.Min), f(st.Max))
}

// RatioSpread is num ÷ den taken run by run (Ratios), as Spread renders it,
// with f formatting each ratio; "—" when no run has both.
func RatioSpread(num, den []float64, f func(float64) string) string {
	st, ok := Summarise(Ratios(num, den))
	if !ok {
		return "—"
	}
	return Spread(st, f)
}
