package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/connectorhq/connector/loadgen"
)

// benchCompareMain runs `connector bench compare [flags] GROUP GROUP...`:
// the runs' throughput and percentiles side by side, per latency row,
// with the ratio to the first group and whether the difference is beyond
// the run-to-run noise (docs/bench-harness.md, "Comparing runs"). It
// returns 0, 1 when a run cannot be read or the page cannot be written,
// 2 for bad usage, and 3 with -fail-worse when a figure is WORSE.
func benchCompareMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("connector bench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	htmlOut := fs.String("html", "", "also write the comparison as a self-contained HTML page with charts to this file")
	alpha := fs.Float64("alpha", loadgen.DefaultAlpha, "significance level of the test")
	failWorse := fs.Bool("fail-worse", false, "exit 3 when any figure is significantly worse than the baseline's")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: connector bench compare [-html FILE] [-alpha 0.05] [-fail-worse] GROUP GROUP [GROUP...]\n\n"+
			"Compares runs saved with -json. Each GROUP is one run or several runs of one configuration:\n"+
			"  run.json | 'base-*.json' | a.json,b.json,c.json | NAME=FILES (any of those, named)\n"+
			"The first group is the baseline. The difference is tested with the %s\n"+
			"over each group's runs (4 or more a side can reach 5%%), or over the timeline intervals of single runs.\n\n", loadgen.TestName)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if f := flagAfterArgs(fs.Args()); f != "" || fs.NArg() < 2 {
		if f != "" {
			fmt.Fprintln(stderr, flagAfterArgsError("connector bench compare", f))
		} else {
			fmt.Fprintf(stderr, "connector bench compare: two GROUPs or more expected (the baseline first), got %d\n", fs.NArg())
		}
		fs.Usage()
		return 2
	}
	var groups []loadgen.CompareGroup
	for i, arg := range fs.Args() {
		g, err := readGroup(arg, i)
		if err != nil {
			fmt.Fprintf(stderr, "connector bench compare: %v\n", err)
			return 1
		}
		groups = append(groups, g)
	}
	uniqueNames(groups)
	c, err := loadgen.Compare(groups, *alpha)
	if err != nil {
		fmt.Fprintf(stderr, "connector bench compare: %v\n", err)
		return 2
	}
	if err := loadgen.WriteComparison(stdout, c); err != nil {
		fmt.Fprintf(stderr, "connector bench compare: %v\n", err)
		return 1
	}
	if *htmlOut != "" {
		f, err := os.Create(*htmlOut)
		if err == nil {
			err = errors.Join(loadgen.WriteComparisonHTML(f, c), f.Close())
		}
		if err != nil {
			fmt.Fprintf(stderr, "connector bench compare: %v\n", err)
			return 1
		}
	}
	if *failWorse {
		for _, s := range c.Sections {
			for _, m := range s.Metrics {
				if slices.Contains(m.Verdict, "WORSE") {
					return 3
				}
			}
		}
	}
	return 0
}

// readGroup reads one GROUP argument: [NAME=]FILE[,FILE...], each FILE a
// path or a glob pattern.
func readGroup(arg string, index int) (loadgen.CompareGroup, error) {
	var g loadgen.CompareGroup
	spec := arg
	if name, rest, ok := strings.Cut(arg, "="); ok && !strings.ContainsAny(name, "/\\,*?[") {
		g.Name, spec = name, rest
	}
	for part := range strings.SplitSeq(spec, ",") {
		if part == "" {
			continue
		}
		matches, err := filepath.Glob(part)
		if err != nil {
			return g, fmt.Errorf("%s: %w", part, err)
		}
		if len(matches) == 0 {
			matches = []string{part} // not a pattern, or nothing matched: let the open say why
		}
		for _, path := range matches {
			rep, err := readReport(path)
			if err != nil {
				return g, err
			}
			g.Files = append(g.Files, path)
			g.Runs = append(g.Runs, rep)
		}
	}
	if len(g.Runs) == 0 {
		return g, fmt.Errorf("group %q names no file", arg)
	}
	if g.Name == "" {
		g.Name = groupName(g.Files, index)
	}
	return g, nil
}

// uniqueNames renames groups whose names repeat: name, name#2, ...,
// skipping a name another group has already.
func uniqueNames(groups []loadgen.CompareGroup) {
	given := map[string]bool{}
	for _, g := range groups {
		given[g.Name] = true
	}
	used := map[string]bool{}
	for i := range groups {
		name := groups[i].Name
		for n := 2; used[name]; n++ {
			if c := fmt.Sprintf("%s#%d", groups[i].Name, n); !given[c] && !used[c] {
				name = c
			}
		}
		used[name] = true
		groups[i].Name = name
	}
}

// groupName names a group after its files: the file name without .json
// for one, their common prefix (whole characters) for several, else a letter.
func groupName(files []string, index int) string {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.TrimSuffix(filepath.Base(f), ".json")
	}
	prefix := names[0]
	for _, n := range names[1:] {
		for !strings.HasPrefix(n, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	for len(prefix) < len(names[0]) && len(prefix) > 0 && !utf8.RuneStart(names[0][len(prefix)]) {
		prefix = prefix[:len(prefix)-1] // never half a character
	}
	if len(names) > 1 {
		prefix = strings.TrimRight(prefix, "-_.0123456789")
	}
	if prefix == "" {
		return string(rune('A' + index%26))
	}
	return prefix
}
