package loadgen

import (
	"cmp"
	"fmt"
	"html/template"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/connectorhq/connector/internal/svgchart"
)

// WriteHTML writes r as one self-contained HTML page: a summary, the
// charts (throughput, errors and latency over time, the HdrHistogram
// percentile distribution of every latency row, the generator's CPU
// use), the latency table, the errors, the configuration, the target
// and the machine. The page loads nothing: no script, no style sheet, no
// font, no image from anywhere; the charts are inline SVG.
func WriteHTML(w io.Writer, r *Report) error {
	p := htmlPage{R: r, Title: fmt.Sprintf("connector bench: %s against %s", r.Config.Scenario, r.Target.URL)}
	p.Charts = reportCharts(r)
	p.Summary = summaryCards(r)
	p.Latency = latencyRows(r)
	p.Config = configRows(r)
	p.Machine = machineRows(r)
	p.Errors = errorRows(r)
	if err := pageTemplate.Execute(w, p); err != nil {
		return fmt.Errorf("loadgen: write html report: %w", err)
	}
	return nil
}

type htmlPage struct {
	R       *Report
	Title   string
	Summary []card
	Charts  []template.HTML
	Latency [][]string
	Config  [][2]string
	Machine [][2]string
	Errors  [][3]string
}

type card struct{ Label, Value, Note string }

// fmtMs prints milliseconds for an axis or a label: 0.25 ms, 12.3 ms,
// 1,250 ms.
func fmtMs(ms float64) string {
	switch {
	case ms == 0:
		return "0"
	case ms < 0.01:
		return strconv.FormatFloat(ms, 'g', 2, 64) + " ms"
	case ms < 10:
		return trimZeros(strconv.FormatFloat(ms, 'f', 2, 64)) + " ms"
	case ms < 1000:
		return trimZeros(strconv.FormatFloat(ms, 'f', 1, 64)) + " ms"
	}
	return trimZeros(strconv.FormatFloat(ms/1000, 'f', 2, 64)) + " s"
}

func trimZeros(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

func fmtRate(v float64) string {
	if v >= 100 || v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64) + "/s"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + "/s"
}

func fmtShare(v float64) string { return strconv.FormatFloat(v*100, 'f', 0, 64) + "%" }

// PercentilePoints returns the points of h's HdrHistogram percentile
// plot, in milliseconds: evenly spaced on the percentile axis (five a
// decade: 0%, 36.9%, 60.2%, ... 90%, ... 99%, ...), the labelled points
// p50, p90, p99, p99.9 and p99.99, and the max at the last percentile
// the count resolves (1 - 1/count). name prefixes the labels.
func PercentilePoints(name string, h *hdrhistogram.Histogram) []svgchart.Point {
	n := h.TotalCount()
	if n == 0 {
		return nil
	}
	top := 1 - 1/float64(n)
	if n == 1 {
		top = 0
	}
	type q struct {
		q     float64
		label string
	}
	var qs []q
	decades := math.Log10(float64(n))
	for k := 0; float64(k)/5 < decades; k++ {
		qs = append(qs, q{q: 1 - math.Pow(10, -float64(k)/5)})
	}
	for _, named := range []struct {
		q float64
		l string
	}{{0.5, "p50"}, {0.9, "p90"}, {0.99, "p99"}, {0.999, "p99.9"}, {0.9999, "p99.99"}} {
		if named.q <= top {
			qs = append(qs, q{named.q, named.l})
		}
	}
	// Labelled points first among equal ones, so that they survive the
	// removal of duplicates (1 - 10^-1 is 90%, p90's point).
	slices.SortFunc(qs, func(a, b q) int {
		if math.Abs(a.q-b.q) < 1e-12 {
			return cmp.Compare(b.label, a.label)
		}
		return cmp.Compare(a.q, b.q)
	})
	var out []svgchart.Point
	for i, x := range qs {
		if i > 0 && math.Abs(x.q-qs[i-1].q) < 1e-12 {
			continue
		}
		v := float64(h.ValueAtQuantile(x.q*100)) / 1000
		label := fmt.Sprintf("%s at %s: %s", name, svgchart.PercentileLabel(x.q), fmtMs(v))
		if x.label != "" {
			label = fmt.Sprintf("%s %s: %s", name, x.label, fmtMs(v))
		}
		out = append(out, svgchart.Point{X: x.q, Y: v, Label: label})
	}
	maxMs := float64(h.Max()) / 1000
	out = append(out, svgchart.Point{X: top, Y: maxMs, Label: fmt.Sprintf("%s max: %s (of %d)", name, fmtMs(maxMs), n)})
	return out
}

// latencyOrder lists the report's latency rows in table order.
func latencyOrder(r *Report) []Latency {
	out := append([]Latency{}, r.RequestLatency...)
	out = append(out, r.OperationLatency)
	if r.CorrectedLatency != nil {
		out = append(out, *r.CorrectedLatency)
	}
	if r.StopLatency != nil {
		out = append(out, *r.StopLatency)
	}
	out = append(out, r.MeasuredLatency...)
	return append(out, r.PerOperationLatency...)
}

// timeOf is the x of interval iv on time charts: its end, in seconds.
func timeOf(iv Interval) float64 { return float64(iv.StartUs+iv.LengthUs) / 1e6 }

func reportCharts(r *Report) []template.HTML {
	secs := svgchart.Axis{Title: "seconds since the start", Format: func(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }}
	msAxis := svgchart.Axis{Title: "latency (ms, log scale)", Scale: svgchart.Log10, Format: fmtMs}
	var charts []template.HTML
	add := func(svg string) { charts = append(charts, template.HTML(svg)) } // #nosec: rendered by svgchart, which escapes every text

	// Throughput over time.
	var ops, reqs, oks []svgchart.Point
	for _, iv := range r.Timeline {
		if iv.LengthUs <= 0 {
			continue
		}
		s := float64(iv.LengthUs) / 1e6
		t := timeOf(iv)
		o := float64(iv.OK+iv.Failed) / s
		ops = append(ops, svgchart.Point{X: t, Y: o, Label: fmt.Sprintf("%s s: %s operations (%d ok, %d failed)", strconv.FormatFloat(t, 'g', 4, 64), fmtRate(o), iv.OK, iv.Failed)})
		q := float64(iv.Requests) / s
		reqs = append(reqs, svgchart.Point{X: t, Y: q, Label: fmt.Sprintf("%s s: %s requests (%d)", strconv.FormatFloat(t, 'g', 4, 64), fmtRate(q), iv.Requests)})
		k := float64(iv.OK) / s
		oks = append(oks, svgchart.Point{X: t, Y: k, Label: fmt.Sprintf("%s s: %s successful operations", strconv.FormatFloat(t, 'g', 4, 64), fmtRate(k))})
	}
	add((&svgchart.Chart{ID: "throughput", Title: "Throughput over time",
		Note: fmt.Sprintf("per %s interval; the run: %s operations, %s requests", fmtUs(r.IntervalUs), fmtRate(r.Operations.PerSecond), fmtRate(r.Requests.PerSecond)),
		X:    secs, Y: svgchart.Axis{Title: "per second", Format: func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }},
		Series: []svgchart.Series{{Name: "requests/s", Points: reqs}, {Name: "operations/s", Points: ops}, {Name: "successful operations/s", Points: oks, Dashed: true}}}).SVG())

	// The HdrHistogram percentile plot of every latency row.
	var pctSeries []svgchart.Series
	for _, l := range latencyOrder(r) {
		enc, ok := r.Histograms[l.Name]
		if !ok {
			continue
		}
		h, err := hdrhistogram.Decode([]byte(enc))
		if err != nil {
			continue
		}
		pctSeries = append(pctSeries, svgchart.Series{Name: l.Name, Points: PercentilePoints(l.Name, h), Dashed: l.Name == rowCorrected})
	}
	add((&svgchart.Chart{ID: "percentiles", Title: "Latency by percentile (HdrHistogram percentile plot)",
		Note: "successful requests and operations over the whole window; the last point of each line is its max",
		X:    svgchart.Axis{Title: "percentile", Scale: svgchart.Percentile}, Y: msAxis, Series: pctSeries}).SVG())

	// Latency over time: the operation row's percentiles per interval,
	// and the corrected p99 at a fixed rate.
	row := func(name string, pick func(IntervalLatency) int64, what string) []svgchart.Point {
		var out []svgchart.Point
		for _, iv := range r.Timeline {
			for _, l := range iv.Latency {
				if l.Name == name && l.Count > 0 {
					v := float64(pick(l)) / 1000
					out = append(out, svgchart.Point{X: timeOf(iv), Y: v,
						Label: fmt.Sprintf("%s s: %s %s %s (%d)", strconv.FormatFloat(timeOf(iv), 'g', 4, 64), name, what, fmtMs(v), l.Count)})
				}
			}
		}
		return out
	}
	overTime := []svgchart.Series{
		{Name: "operation p50", Points: row(rowOperation, func(l IntervalLatency) int64 { return l.P50Us }, "p50")},
		{Name: "operation p90", Points: row(rowOperation, func(l IntervalLatency) int64 { return l.P90Us }, "p90")},
		{Name: "operation p99", Points: row(rowOperation, func(l IntervalLatency) int64 { return l.P99Us }, "p99")},
		{Name: "operation max", Points: row(rowOperation, func(l IntervalLatency) int64 { return l.MaxUs }, "max")},
	}
	if r.CorrectedLatency != nil {
		overTime = append(overTime, svgchart.Series{Name: "corrected p99", Dashed: true,
			Points: row(rowCorrected, func(l IntervalLatency) int64 { return l.P99Us }, "p99")})
	}
	add((&svgchart.Chart{ID: "latency", Title: "Operation latency over time",
		Note: "percentiles of the operations that ended in each interval", X: secs, Y: msAxis, Series: overTime}).SVG())

	// Errors over time, stacked by class.
	var errSeries []svgchart.Series
	width := float64(r.IntervalUs) / 1e6 * 0.9
	for _, class := range classNames {
		var pts []svgchart.Point
		for _, iv := range r.Timeline {
			if n := iv.Errors[class]; n > 0 {
				t := float64(iv.StartUs)/1e6 + float64(iv.LengthUs)/2e6
				pts = append(pts, svgchart.Point{X: t, Y: float64(n),
					Label: fmt.Sprintf("%s errors in the interval ending at %s s: %d", class, strconv.FormatFloat(timeOf(iv), 'g', 4, 64), n)})
			}
		}
		errSeries = append(errSeries, svgchart.Series{Name: class, Points: pts})
	}
	var xmax float64
	if n := len(r.Timeline); n > 0 {
		xmax = timeOf(r.Timeline[n-1])
	}
	errNote := fmt.Sprintf("failed operations per interval, by class: %d in all (%s)", r.Errors.Total, pct(r.ErrorRate))
	add((&svgchart.Chart{ID: "errors", Title: "Errors over time", Note: errNote, Bars: true, BarWidth: width,
		X:      svgchart.Axis{Title: secs.Title, Format: secs.Format, Min: 0, Max: max(xmax, 1e-3)},
		Y:      svgchart.Axis{Title: "failed operations", Integer: true, Format: func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }},
		Series: errSeries, Empty: "no failed operations"}).SVG())

	// The generator's CPU.
	var gen, mach []svgchart.Point
	for _, iv := range r.Timeline {
		t := timeOf(iv)
		if iv.GeneratorCPU >= 0 {
			gen = append(gen, svgchart.Point{X: t, Y: iv.GeneratorCPU * 100, Label: fmt.Sprintf("%s s: generator %s of its CPUs", strconv.FormatFloat(t, 'g', 4, 64), fmtShare(iv.GeneratorCPU))})
		}
		if iv.MachineCPU >= 0 {
			mach = append(mach, svgchart.Point{X: t, Y: iv.MachineCPU * 100, Label: fmt.Sprintf("%s s: machine %s busy", strconv.FormatFloat(t, 'g', 4, 64), fmtShare(iv.MachineCPU))})
		}
	}
	cpuNote := fmt.Sprintf("the generator used %s of its %d CPUs over the run", fmtShare(r.Generator.CPUShare), r.Generator.CPUs)
	if r.Generator.Saturated {
		cpuNote += ": saturated, it may have been the bottleneck"
	}
	add((&svgchart.Chart{ID: "cpu", Title: "Load generator CPU", Note: cpuNote, X: secs,
		Y:      svgchart.Axis{Title: "% busy", Min: 0, Max: 100, Format: func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) + "%" }},
		Series: []svgchart.Series{{Name: "generator (share of its CPUs)", Points: gen}, {Name: "whole machine", Points: mach, Dashed: true}}}).SVG())
	return charts
}

func summaryCards(r *Report) []card {
	out := []card{
		{"operations/s", fmtRate(r.Operations.PerSecond), fmt.Sprintf("%d ok, %d failed, %d unfinished", r.Operations.OK, r.Operations.Failed, r.Operations.Unfinished)},
		{"requests/s", fmtRate(r.Requests.PerSecond), fmt.Sprintf("%d requests", r.Requests.Count)},
	}
	op := r.OperationLatency
	if op.Count > 0 {
		out = append(out, card{"operation p50", fmtUs(op.P50Us), "p90 " + fmtUs(op.P90Us)},
			card{"operation p99", fmtUs(op.P99Us), "p99.9 " + fmtUs(op.P999Us) + ", max " + fmtUs(op.MaxUs)})
	}
	verdict := "PASS"
	if !r.Passed {
		verdict = "FAIL"
	}
	out = append(out, card{"errors", pct(r.ErrorRate), fmt.Sprintf("%d failed operations, limit %s: %s", r.Errors.Total, pct(r.Config.MaxErrorRate), verdict)})
	g := r.Generator
	note := fmt.Sprintf("of %d CPUs", g.CPUs)
	if g.MachineCPUShare >= 0 {
		note += ", machine " + fmtShare(g.MachineCPUShare) + " busy"
	}
	if g.Saturated {
		note += ": SATURATED"
	}
	out = append(out, card{"generator CPU", fmtShare(g.CPUShare), note})
	return out
}

func latencyRows(r *Report) [][]string {
	var out [][]string
	for _, l := range latencyOrder(r) {
		if l.Count == 0 {
			out = append(out, []string{l.Name, "0", strconv.FormatInt(l.Errors, 10), "-", "-", "-", "-", "-", "-"})
			continue
		}
		out = append(out, []string{l.Name, strconv.FormatInt(l.Count, 10), strconv.FormatInt(l.Errors, 10), fmtUs(int64(l.MeanUs)),
			fmtUs(l.P50Us), fmtUs(l.P90Us), fmtUs(l.P99Us), fmtUs(l.P999Us), fmtUs(l.MaxUs)})
	}
	return out
}

func configRows(r *Report) [][2]string {
	c := r.Config
	model := fmt.Sprintf("closed loop, %d workers", c.Concurrency)
	if c.Rate > 0 {
		model = fmt.Sprintf("fixed rate %s/s, at most %d in flight", num(c.Rate), c.Concurrency)
	}
	rows := [][2]string{
		{"target", c.Target + " (dialled " + c.Address + ")"},
		{"server", strings.TrimSpace(cmp.Or(r.Target.Product, "unknown product") + " " + r.Target.Version)},
		{"scenario", c.Scenario},
		{"load model", model},
		{"duration", fmtUs(c.DurationUs)},
	}
	if c.Requests > 0 {
		rows = append(rows, [2]string{"requests bound", strconv.FormatInt(c.Requests, 10)})
	}
	rows = append(rows,
		[2]string{"request form, format", c.Form + ", " + c.Format},
		[2]string{"fetch action, params", fmt.Sprintf("%s, %q", c.FetchAction, c.Params)},
		[2]string{"prepare, filter, queue", fmt.Sprintf("%d, %q, %s", c.Prepare, c.Filter, c.Queue)},
		[2]string{"poll, timeout", fmtUs(c.PollUs) + ", " + fmtUs(c.TimeoutUs)},
		[2]string{"max error rate", pct(c.MaxErrorRate)},
		[2]string{"start", r.Start.Format(time.RFC3339)},
		[2]string{"window", fmtUs(r.ElapsedUs) + ", ended by " + r.EndReason},
	)
	if s := r.Schedule; s != nil {
		kept := "kept"
		if !s.KeptUp {
			kept = "NOT kept"
		}
		rows = append(rows, [2]string{"schedule", fmt.Sprintf("%s: target %s/s, achieved %s/s, %d late, lag p99 %s, max %s",
			kept, num(s.TargetRate), num(s.AchievedRate), s.Late, fmtUs(s.LagP99Us), fmtUs(s.LagMaxUs))})
	}
	if a := r.Actions; a != nil {
		rows = append(rows, [2]string{"actions ended", fmt.Sprintf("%d (%s/s):%s", a.Completed, num(a.PerSecond), counts(a.Final))})
	}
	return rows
}

func machineRows(r *Report) [][2]string {
	e := r.Environment
	la := func(v []float64) string {
		if len(v) != 3 {
			return "unknown"
		}
		return fmt.Sprintf("%.2f %.2f %.2f", v[0], v[1], v[2])
	}
	rows := [][2]string{
		{"host", e.Host},
		{"system", fmt.Sprintf("%s/%s, kernel %s", e.OS, e.Arch, cmp.Or(e.Kernel, "unknown"))},
		{"CPUs", fmt.Sprintf("%d (%s); the generator may use %d", e.CPUs, cmp.Or(e.CPUModel, "model unknown"), e.GOMAXPROCS)},
		{"load average before, after", la(e.LoadAverageStart) + " / " + la(e.LoadAverageEnd)},
		{"harness", fmt.Sprintf("connector %s (revision %s), %s", e.HarnessVersion, e.HarnessRevision, e.GoVersion)},
	}
	for i, g := range r.Generators {
		rows = append(rows, [2]string{fmt.Sprintf("generator %d", i+1), fmt.Sprintf("%s: %s; %s of %d CPUs; %d operations",
			g.Address, g.Environment.describe(), fmtShare(g.Generator.CPUShare), g.Generator.CPUs, g.Operations.OK+g.Operations.Failed)})
	}
	return rows
}

func errorRows(r *Report) [][3]string {
	var out [][3]string
	e := r.Errors
	for _, class := range []struct {
		name string
		m    map[string]int64
	}{{"transport", e.Transport}, {"http", e.HTTP}, {"aci", e.ACI}, {"protocol", e.Protocol}, {"check", e.Check}} {
		for _, k := range slices.Sorted(maps.Keys(class.m)) {
			out = append(out, [3]string{class.name + " " + k, strconv.FormatInt(class.m[k], 10), clip(e.Samples[class.name+"/"+k], 300)})
		}
	}
	return out
}

var pageTemplate = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="connector bench {{.R.Environment.HarnessVersion}}">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 940px; color: #222; padding: 0 12px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.sub { color: #555; margin: 0 0 16px; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; color: #fff; font-weight: 600; }
.pass { background: #2e7d32; } .fail { background: #c62828; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px; min-width: 130px; }
.card .v { font-size: 20px; font-weight: 600; } .card .l { color: #555; font-size: 12px; } .card .n { color: #777; font-size: 11px; }
.warn { background: #fff4e5; border: 1px solid #f0b35a; border-radius: 6px; padding: 8px 12px; margin: 12px 0; }
.warn li { margin: 2px 0; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { text-align: left; padding: 3px 10px 3px 0; border-bottom: 1px solid #eee; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
svg.chart { display: block; margin: 10px 0 18px; max-width: 100%; height: auto; }
footer { color: #777; font-size: 12px; margin-top: 30px; }
</style>
</head>
<body>
<h1>Load test of {{.R.Target.URL}}</h1>
<p class="sub">{{if .R.Target.Product}}{{.R.Target.Product}} {{.R.Target.Version}}{{else}}server did not name itself{{end}} ·
scenario <b>{{.R.Config.Scenario}}</b> · {{.R.Start.Format "2006-01-02 15:04:05 MST"}} ·
<span class="verdict {{if .R.Passed}}pass{{else}}fail{{end}}" id="verdict">{{if .R.Passed}}PASS{{else}}FAIL{{end}}</span></p>
{{if .R.Warnings}}<div class="warn" id="warnings"><b>Warnings</b><ul>{{range .R.Warnings}}<li>{{.}}</li>{{end}}</ul></div>{{end}}
<div class="cards" id="summary">{{range .Summary}}<div class="card"><div class="l">{{.Label}}</div><div class="v">{{.Value}}</div><div class="n">{{.Note}}</div></div>{{end}}</div>
<h2>Charts</h2>
{{range .Charts}}{{.}}
{{end}}
<h2>Latency</h2>
<table id="latency-table"><tr><th>row</th><th class="num">count</th><th class="num">errors</th><th class="num">mean</th><th class="num">p50</th><th class="num">p90</th><th class="num">p99</th><th class="num">p99.9</th><th class="num">max</th></tr>
{{range .Latency}}<tr>{{range $i, $c := .}}{{if eq $i 0}}<td>{{$c}}</td>{{else}}<td class="num">{{$c}}</td>{{end}}{{end}}</tr>
{{end}}</table>
<p class="sub">Request rows run from sending a request to reading its whole reply; <i>operation</i> is one iteration of the scenario from its actual start{{if .R.CorrectedLatency}}, <i>operation-corrected</i> from its intended start on the fixed schedule (coordinated-omission corrected){{end}}. Only successful requests and operations are in the latencies.</p>
<h2>Errors</h2>
{{if .Errors}}<table id="errors-table"><tr><th>class and key</th><th class="num">operations</th><th>sample</th></tr>
{{range .Errors}}<tr><td>{{index . 0}}</td><td class="num">{{index . 1}}</td><td>{{index . 2}}</td></tr>
{{end}}</table>{{else}}<p>None.</p>{{end}}
<h2>Configuration</h2>
<table id="config-table">{{range .Config}}<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>
{{end}}</table>
<h2>Machine</h2>
<table id="machine-table">{{range .Machine}}<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>
{{end}}</table>
<footer>Written by connector bench {{.R.Environment.HarnessVersion}} ({{.R.Environment.HarnessRevision}}), schema {{.R.Schema}}. This page is self-contained: it loads nothing from anywhere. The run's JSON (-json) holds every figure and the whole histograms.</footer>
</body>
</html>
`))
