package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/connectorhq/connector/bench/internal/result"
)

// compareRounds reads the outputs cluster-compare.sh keeps of its rounds,
// dir/before-N.json and dir/after-N.json (clusterbench -runs 1 of each
// connector in round N), and writes for every metric each side's median
// (min–max) over its values and the median (min–max) of after ÷ before
// taken within each round where both sides ran (of the round's median when
// a metric has several values a run, as takeover's kill rounds): the ratio
// the house rule asks for, which the sides' medians alone do not give when
// the machine's load moves between rounds or a round of one side failed.
func compareRounds(dir string, w io.Writer) error {
	// vals[side][round][metric]
	vals := map[string]map[int]map[string][]float64{"before": {}, "after": {}}
	var names []string
	files, err := filepath.Glob(filepath.Join(dir, "*-*.json"))
	if err != nil {
		return err
	}
	for _, f := range files {
		side, n, ok := strings.Cut(strings.TrimSuffix(filepath.Base(f), ".json"), "-")
		round, err := strconv.Atoi(n)
		if !ok || err != nil || vals[side] == nil {
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			return err
		}
		o, err := result.Read(fh)
		fh.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		m := map[string][]float64{}
		for _, mt := range o.Metrics {
			m[mt.Name] = append(m[mt.Name], mt.Value)
			if !slices.Contains(names, mt.Name) {
				names = append(names, mt.Name)
			}
		}
		vals[side][round] = m
	}
	if len(names) == 0 {
		return fmt.Errorf("no before-N.json or after-N.json with figures in %s", dir)
	}
	slices.Sort(names)
	var rounds []int
	for r := range vals["before"] {
		if vals["after"][r] != nil {
			rounds = append(rounds, r)
		}
	}
	slices.Sort(rounds)
	all := func(side, name string) []float64 {
		var out []float64
		for _, m := range vals[side] {
			out = append(out, m[name]...)
		}
		return out
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "metric\tbefore\tafter\tafter ÷ before, within each round\n")
	for _, name := range names {
		var ratios []float64
		for _, r := range rounds {
			b, a := vals["before"][r][name], vals["after"][r][name]
			if len(b) == 0 || len(a) == 0 {
				continue
			}
			if mb := medianOf(b); mb != 0 {
				ratios = append(ratios, medianOf(a)/mb)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, spreadOf(all("before", name)), spreadOf(all("after", name)), spreadOf(ratios))
	}
	return tw.Flush()
}

func medianOf(v []float64) float64 {
	st, _ := result.Summarise(v)
	return st.Median
}

// spreadOf is "median (min–max) n=N", to three decimals; "-" for none.
func spreadOf(v []float64) string {
	st, ok := result.Summarise(v)
	if !ok {
		return "-"
	}
	r := func(x float64) string { return strconv.FormatFloat(math.Round(x*1000)/1000, 'f', -1, 64) }
	return fmt.Sprintf("%s (%s–%s) n=%d", r(st.Median), r(st.Min), r(st.Max), st.N)
}
