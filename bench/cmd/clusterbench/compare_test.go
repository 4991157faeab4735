package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectorhq/connector/bench/internal/result"
)

func writeRound(t *testing.T, dir, side string, round int, metrics map[string][]float64) {
	t.Helper()
	o := result.New("cluster", "scale")
	for name, vs := range metrics {
		for _, v := range vs {
			o.Add(name, v, "")
		}
	}
	f, err := os.Create(filepath.Join(dir, side+"-"+string(rune('0'+round))+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Write(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// cluster-compare.sh's table gives, beside each side's median (min–max),
// after ÷ before taken within each round (the house rule: a ratio within
// an iteration, then its median), pairing only the rounds where both sides
// ran. The sides' medians alone mislead: here after costs 1.2× before in
// every round, but a third round whose after failed leaves before's median
// at 20 against after's 18, which reads as after being cheaper.
func TestCompareRatiosWithinRounds(t *testing.T) {
	dir := t.TempDir()
	writeRound(t, dir, "before", 1, map[string][]float64{"cpu": {10}, "takeover_s": {3, 3.2, 9}})
	writeRound(t, dir, "after", 1, map[string][]float64{"cpu": {12}, "takeover_s": {3.3, 3.3, 3.3}})
	writeRound(t, dir, "before", 2, map[string][]float64{"cpu": {20}, "takeover_s": {3, 3, 3}})
	writeRound(t, dir, "after", 2, map[string][]float64{"cpu": {24}, "takeover_s": {3.6}})
	writeRound(t, dir, "before", 3, map[string][]float64{"cpu": {40}})
	// round 3's after failed (cluster-compare.sh leaves its JSON out)
	var b bytes.Buffer
	if err := compareRounds(dir, &b); err != nil {
		t.Fatal(err)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(b.String(), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[f[0]] = l
		}
	}
	for _, metric := range []string{"cpu", "takeover_s"} {
		if _, ok := lines[metric]; !ok {
			t.Fatalf("no row for %s in:\n%s", metric, b.String())
		}
	}
	if !strings.HasSuffix(lines["cpu"], "1.2 (1.2–1.2) n=2") {
		t.Errorf("cpu row %q: want after ÷ before 1.2 in both paired rounds (1.2 (1.2–1.2) n=2)", lines["cpu"])
	}
	if !strings.Contains(lines["cpu"], "20 (10–40) n=3") || !strings.Contains(lines["cpu"], "18 (12–24) n=2") {
		t.Errorf("cpu row %q: want each side's median (min–max) of its values", lines["cpu"])
	}
	// takeover_s has several values a round: the ratio is of the rounds'
	// medians, 3.3/3.2 and 3.6/3.
	if !strings.HasSuffix(lines["takeover_s"], "1.116 (1.031–1.2) n=2") {
		t.Errorf("takeover_s row %q: want 1.116 (1.031–1.2) n=2", lines["takeover_s"])
	}
	if !strings.Contains(b.String(), "after ÷ before") {
		t.Errorf("no header naming the ratio column:\n%s", b.String())
	}
}
