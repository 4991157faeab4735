package loadgen

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// DefaultAlpha is the significance level of bench compare: a difference
// whose p-value is below it is reported beyond the noise.
const DefaultAlpha = 0.05

// TestName names the statistical test of a comparison, for the reader.
const TestName = "two-sided Mann-Whitney U test (Wilcoxon rank-sum; exact p-value without ties)"

// CompareGroup is one side of a comparison: one run, or several runs of
// the same configuration (repeated to measure the run-to-run noise).
type CompareGroup struct {
	Name  string
	Files []string
	Runs  []*Report
}

// Comparison is what bench compare reports: per latency row, each
// metric of each group (median over its runs, and range), its ratio to
// the first group, and whether the difference is beyond the noise.
type Comparison struct {
	Groups   []CompareGroup
	Alpha    float64
	Sections []CompareSection
	// Warnings say why the runs may not be comparable (different
	// configuration, machine, harness; a busy machine; a saturated
	// generator; a schedule not kept). Notes say what differs that may be
	// the point of the comparison (the target's product or version).
	Warnings []string
	Notes    []string
}

// CompareSection is one latency row: "operation", "fetch", ...
type CompareSection struct {
	Row     string
	Metrics []CompareMetric
}

// CompareMetric is one figure of a row across the groups.
type CompareMetric struct {
	Name string // "throughput", "p50", "p90", "p99", "p99.9", "max"
	// Rate is true for a per-second figure (higher is better); false for
	// a latency in microseconds (lower is better).
	Rate bool
	// Per group: the figure of each run, and the median, min and max.
	Values           [][]float64
	Median, Min, Max []float64
	// Per group, compared with the first (index 0 unused): the ratio of
	// the medians, the p-value, the verdict and what the test was run on.
	Ratio   []float64
	P       []float64
	Verdict []string
	// Basis is "runs" (each group's repeated runs), "intervals" (the
	// timeline intervals of single runs) or "" (no test).
	Basis []string
}

// Compare compares the groups, the first being the baseline. alpha 0
// means DefaultAlpha.
func Compare(groups []CompareGroup, alpha float64) (*Comparison, error) {
	if len(groups) < 2 {
		return nil, fmt.Errorf("loadgen: compare: need at least two groups of runs, got %d", len(groups))
	}
	for _, g := range groups {
		if len(g.Runs) == 0 {
			return nil, fmt.Errorf("loadgen: compare: group %s has no run", g.Name)
		}
	}
	if alpha == 0 {
		alpha = DefaultAlpha
	}
	if alpha <= 0 || alpha >= 1 {
		return nil, fmt.Errorf("loadgen: compare: alpha %v: must be between 0 and 1", alpha)
	}
	c := &Comparison{Groups: groups, Alpha: alpha}
	c.checkComparable()
	for _, row := range rowNames(groups) {
		sec := CompareSection{Row: row}
		metrics := []struct {
			name string
			rate bool
			run  func(*Report, Latency) (float64, bool)
			iv   func(Interval, IntervalLatency) (float64, bool)
		}{
			{"throughput", true, runThroughput(row), intervalThroughput(row)},
			{"p50", false, func(_ *Report, l Latency) (float64, bool) { return float64(l.P50Us), l.Count > 0 },
				func(_ Interval, l IntervalLatency) (float64, bool) { return float64(l.P50Us), l.Count > 0 }},
			{"p90", false, func(_ *Report, l Latency) (float64, bool) { return float64(l.P90Us), l.Count > 0 },
				func(_ Interval, l IntervalLatency) (float64, bool) { return float64(l.P90Us), l.Count > 0 }},
			{"p99", false, func(_ *Report, l Latency) (float64, bool) { return float64(l.P99Us), l.Count > 0 },
				func(_ Interval, l IntervalLatency) (float64, bool) { return float64(l.P99Us), l.Count > 0 }},
			{"p99.9", false, func(_ *Report, l Latency) (float64, bool) { return float64(l.P999Us), l.Count > 0 }, nil},
			{"max", false, func(_ *Report, l Latency) (float64, bool) { return float64(l.MaxUs), l.Count > 0 },
				func(_ Interval, l IntervalLatency) (float64, bool) { return float64(l.MaxUs), l.Count > 0 }},
		}
		for _, mdef := range metrics {
			if mdef.name == "throughput" && mdef.run == nil {
				continue
			}
			m := CompareMetric{Name: mdef.name, Rate: mdef.rate}
			have := false
			for _, g := range groups {
				var vals []float64
				for _, r := range g.Runs {
					if l, ok := rowOf(r, row); ok {
						if v, ok := mdef.run(r, l); ok {
							vals = append(vals, v)
						}
					}
				}
				have = have || len(vals) > 0
				m.Values = append(m.Values, vals)
				med, lo, hi := math.NaN(), math.NaN(), math.NaN()
				if len(vals) > 0 {
					med, lo, hi = median(vals), slices.Min(vals), slices.Max(vals)
				}
				m.Median, m.Min, m.Max = append(m.Median, med), append(m.Min, lo), append(m.Max, hi)
			}
			if !have {
				continue
			}
			m.Ratio = make([]float64, len(groups))
			m.P = make([]float64, len(groups))
			m.Verdict = make([]string, len(groups))
			m.Basis = make([]string, len(groups))
			for i := 1; i < len(groups); i++ {
				m.Ratio[i] = m.Median[i] / m.Median[0]
				c.decide(&m, i, row, mdef.iv)
			}
			sec.Metrics = append(sec.Metrics, m)
		}
		if len(sec.Metrics) > 0 {
			c.Sections = append(c.Sections, sec)
		}
	}
	return c, nil
}

// decide runs the test of group i against group 0 for one metric.
func (c *Comparison) decide(m *CompareMetric, i int, row string, iv func(Interval, IntervalLatency) (float64, bool)) {
	a, b := m.Values[0], m.Values[i]
	m.P[i] = math.NaN()
	if math.IsNaN(m.Ratio[i]) || len(a) == 0 || len(b) == 0 {
		m.Verdict[i] = "-"
		return
	}
	basis := "runs"
	if len(a) == 1 && len(b) == 1 {
		// Single runs: test over their intervals, a weaker basis (the
		// intervals of one run are not independent runs).
		if iv == nil {
			m.Verdict[i] = "? one run each"
			return
		}
		a = intervalValues(c.Groups[0].Runs[0], row, iv)
		b = intervalValues(c.Groups[i].Runs[0], row, iv)
		basis = "intervals"
		if len(a) < 3 || len(b) < 3 {
			m.Verdict[i] = "? one run each, too few intervals"
			return
		}
	}
	m.Basis[i] = basis
	if minPValue(len(a), len(b)) > c.Alpha {
		m.P[i] = mannWhitney(a, b)
		m.Verdict[i] = fmt.Sprintf("? too few %s to tell (need 4 a side)", basis)
		return
	}
	p := mannWhitney(a, b)
	m.P[i] = p
	if p >= c.Alpha {
		m.Verdict[i] = "~ within noise"
		return
	}
	better := m.Ratio[i] > 1
	if !m.Rate {
		better = m.Ratio[i] < 1
	}
	switch {
	case m.Ratio[i] == 1:
		m.Verdict[i] = "~ within noise"
	case better:
		m.Verdict[i] = "better"
	default:
		m.Verdict[i] = "WORSE"
	}
}

// rowNames lists the latency rows of the groups' runs, in the order of
// the first run that has each.
func rowNames(groups []CompareGroup) []string {
	var out []string
	for _, g := range groups {
		for _, r := range g.Runs {
			for _, l := range latencyOrder(r) {
				if !slices.Contains(out, l.Name) {
					out = append(out, l.Name)
				}
			}
		}
	}
	// The operation rows first: they are what a user compares.
	slices.SortStableFunc(out, func(a, b string) int {
		rank := func(s string) int {
			switch s {
			case rowOperation:
				return 0
			case rowCorrected:
				return 1
			case rowStop:
				return 2
			}
			return 3
		}
		return cmp.Compare(rank(a), rank(b))
	})
	return out
}

func rowOf(r *Report, name string) (Latency, bool) {
	for _, l := range latencyOrder(r) {
		if l.Name == name {
			return l, true
		}
	}
	return Latency{}, false
}

// runThroughput is the per-second figure of a row over a run: operations
// per second for "operation", requests of that type per second (ok or
// failed) for a request row; nil for rows that have none.
func runThroughput(row string) func(*Report, Latency) (float64, bool) {
	switch row {
	case rowOperation:
		return func(r *Report, _ Latency) (float64, bool) { return r.Operations.PerSecond, r.ElapsedUs > 0 }
	case rowCorrected, rowStop:
		return nil
	}
	return func(r *Report, l Latency) (float64, bool) {
		if r.ElapsedUs <= 0 {
			return 0, false
		}
		return float64(l.Count+l.Errors) / (float64(r.ElapsedUs) / 1e6), true
	}
}

// intervalThroughput is runThroughput per interval (request rows count
// their successful requests only: the timeline does not split failures
// by request type).
func intervalThroughput(row string) func(Interval, IntervalLatency) (float64, bool) {
	switch row {
	case rowOperation:
		return func(iv Interval, _ IntervalLatency) (float64, bool) {
			return float64(iv.OK+iv.Failed) / (float64(iv.LengthUs) / 1e6), true
		}
	case rowCorrected, rowStop:
		return nil
	}
	return func(iv Interval, l IntervalLatency) (float64, bool) {
		return float64(l.Count) / (float64(iv.LengthUs) / 1e6), true
	}
}

// intervalValues returns f of the row in each full interval of r (the
// last, shorter one is left out when shorter than half an interval).
func intervalValues(r *Report, row string, f func(Interval, IntervalLatency) (float64, bool)) []float64 {
	var out []float64
	for _, iv := range r.Timeline {
		if iv.LengthUs <= 0 || iv.LengthUs*2 < r.IntervalUs {
			continue
		}
		for _, l := range iv.Latency {
			if l.Name != row {
				continue
			}
			if v, ok := f(iv, l); ok {
				out = append(out, v)
			}
		}
	}
	return out
}

// checkComparable fills the warnings and notes.
func (c *Comparison) checkComparable() {
	type run struct {
		label string
		r     *Report
	}
	var runs []run
	for _, g := range c.Groups {
		for i, r := range g.Runs {
			label := g.Name
			if len(g.Runs) > 1 {
				label += "#" + strconv.Itoa(i+1)
			}
			if i < len(g.Files) {
				label += " (" + g.Files[i] + ")"
			}
			runs = append(runs, run{label, r})
		}
	}
	base := runs[0]
	differ := func(what string, get func(*Report) string, warn bool) {
		var diffs []string
		for _, o := range runs[1:] {
			if get(o.r) != get(base.r) {
				diffs = append(diffs, fmt.Sprintf("%s has %s", o.label, get(o.r)))
			}
		}
		if len(diffs) == 0 {
			return
		}
		msg := fmt.Sprintf("%s differs: %s has %s; %s", what, base.label, get(base.r), strings.Join(diffs, "; "))
		if warn {
			c.Warnings = append(c.Warnings, msg)
		} else {
			c.Notes = append(c.Notes, msg)
		}
	}
	differ("the scenario", func(r *Report) string { return r.Config.Scenario }, true)
	differ("the load", func(r *Report) string {
		s := r.Config
		model := fmt.Sprintf("closed loop at %d", s.Concurrency)
		if s.Rate > 0 {
			model = fmt.Sprintf("%s/s (at most %d in flight)", num(s.Rate), s.Concurrency)
		}
		return fmt.Sprintf("%s for %s", model, fmtUs(s.DurationUs))
	}, true)
	differ("the requests", func(r *Report) string {
		s := r.Config
		return fmt.Sprintf("form %s, format %s, fetchaction %s, params %q, filter %q, prepare %d, poll %s, queue %s",
			s.Form, s.Format, s.FetchAction, s.Params, s.Filter, s.Prepare, fmtUs(s.PollUs), s.Queue)
	}, true)
	differ("the machine", func(r *Report) string {
		e := r.Environment
		return fmt.Sprintf("%s (%s/%s, %d CPUs %s, generator on %d)", e.Host, e.OS, e.Arch, e.CPUs, e.CPUModel, e.GOMAXPROCS)
	}, true)
	differ("the harness", func(r *Report) string {
		e := r.Environment
		return fmt.Sprintf("connector %s (%s), %s", e.HarnessVersion, e.HarnessRevision, e.GoVersion)
	}, true)
	differ("the number of load generators", func(r *Report) string { return strconv.Itoa(max(len(r.Generators), 1)) }, true)
	differ("the target", func(r *Report) string { return r.Target.URL }, false)
	differ("the server", func(r *Report) string {
		return strings.TrimSpace(cmp.Or(r.Target.Product, "unknown") + " " + r.Target.Version)
	}, false)
	for _, o := range runs {
		e := o.r.Environment
		if len(e.LoadAverageStart) == 3 && e.CPUs > 0 && e.LoadAverageStart[0] > float64(e.CPUs) {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s began on a busy machine: load average %.2f on %d CPUs", o.label, e.LoadAverageStart[0], e.CPUs))
		}
		if o.r.Generator.Saturated {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: the load generator was saturated (%.0f%% of its CPUs): it may have been the bottleneck", o.label, 100*o.r.Generator.CPUShare))
		}
		if s := o.r.Schedule; s != nil && !s.KeptUp {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: the fixed rate was not kept (%d operations late)", o.label, s.Late))
		}
		if !o.r.Passed {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s failed: error rate %s", o.label, pct(o.r.ErrorRate)))
		}
	}
}

// fmtMetric prints one value of a metric.
func fmtMetric(m CompareMetric, v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	if m.Rate {
		return num(v) + "/s"
	}
	return fmtUs(int64(math.Round(v)))
}

// cell prints a group's median with its range when it has several runs.
func (m CompareMetric) cell(i int) string {
	if math.IsNaN(m.Median[i]) {
		return "-"
	}
	s := fmtMetric(m, m.Median[i])
	if len(m.Values[i]) > 1 {
		s += " (" + fmtMetric(m, m.Min[i]) + "–" + fmtMetric(m, m.Max[i]) + ")"
	}
	return s
}

// verdictText is the verdict with its p-value.
func (m CompareMetric) verdictText(i int) string {
	v := m.Verdict[i]
	if !math.IsNaN(m.P[i]) {
		v += fmt.Sprintf(" (p=%.3g", m.P[i])
		if m.Basis[i] == "intervals" {
			v += ", intervals"
		}
		v += ")"
	}
	return v
}

func ratioText(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "-"
	}
	return strconv.FormatFloat(r, 'f', 2, 64)
}

// WriteComparison writes c as aligned text.
func WriteComparison(w io.Writer, c *Comparison) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	for i, g := range c.Groups {
		role := "baseline"
		if i > 0 {
			role = "compared with " + c.Groups[0].Name
		}
		p("%s\t%d run(s), %s: %s\n", g.Name, len(g.Runs), role, strings.Join(g.Files, ", "))
	}
	for _, sec := range c.Sections {
		p("\n%s", sec.Row)
		for _, g := range c.Groups {
			p("\t%s", g.Name)
		}
		for _, g := range c.Groups[1:] {
			p("\t%s/%s\tverdict", g.Name, c.Groups[0].Name)
		}
		p("\n")
		for _, m := range sec.Metrics {
			p("  %s", m.Name)
			for i := range c.Groups {
				p("\t%s", m.cell(i))
			}
			for i := 1; i < len(c.Groups); i++ {
				p("\t%s\t%s", ratioText(m.Ratio[i]), m.verdictText(i))
			}
			p("\n")
		}
	}
	p("\n")
	p("test\t%s, α = %g, on each group's repeated runs (median and min–max shown);\n", TestName, c.Alpha)
	p("\twith one run a side, on the runs' timeline intervals (a weaker basis: intervals of one run are not independent).\n")
	p("\t\"~\" no difference beyond the noise; \"?\" not enough data to tell; better/WORSE: throughput up or latency down, and the reverse.\n")
	for _, n := range c.Notes {
		p("note\t%s\n", n)
	}
	for _, w := range c.Warnings {
		p("warning\t%s\n", w)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("loadgen: write comparison: %w", err)
	}
	return nil
}

// mergedRow returns the histogram of row over every run of g (runs
// without it add nothing), or nil.
func mergedRow(g CompareGroup, row string) *hdrhistogram.Histogram {
	var out *hdrhistogram.Histogram
	for _, r := range g.Runs {
		enc, ok := r.Histograms[row]
		if !ok {
			continue
		}
		h, err := hdrhistogram.Decode([]byte(enc))
		if err != nil {
			continue
		}
		if out == nil {
			out = newHDR()
		}
		out.Merge(h)
	}
	return out
}
