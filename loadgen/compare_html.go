package loadgen

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"

	"github.com/connectorhq/connector/internal/svgchart"
)

// WriteComparisonHTML writes c as one self-contained HTML page: the
// groups, the warnings, one table per latency row (medians, ranges,
// ratios, verdicts), a bar chart of the throughputs with their ranges,
// and the HdrHistogram percentile plot of each row with one line per
// group (the group's runs merged). Like WriteHTML it loads nothing.
func WriteComparisonHTML(w io.Writer, c *Comparison) error {
	type table struct {
		Row     string
		Head    []string
		Rows    [][]string
		Verdict [][]string // class of each verdict cell
	}
	p := struct {
		C      *Comparison
		Title  string
		Test   string
		Charts []template.HTML
		Tables []table
	}{C: c, Test: TestName}
	var names []string
	for _, g := range c.Groups {
		names = append(names, g.Name)
	}
	p.Title = "connector bench compare: " + strings.Join(names, " vs ")

	// Throughput bars: one category per row that has a throughput.
	bars := &svgchart.BarChart{ID: "throughput", Title: "Throughput (median of each group's runs; whiskers: min–max)",
		Y: svgchart.Axis{Title: "per second", Format: func(v float64) string { return num(v) }}}
	groups := make([]svgchart.BarGroup, len(c.Groups))
	for i, g := range c.Groups {
		groups[i] = svgchart.BarGroup{Name: g.Name, ValueLabels: true}
	}
	for _, sec := range c.Sections {
		for _, m := range sec.Metrics {
			if m.Name != "throughput" {
				continue
			}
			bars.Categories = append(bars.Categories, sec.Row)
			for i := range c.Groups {
				groups[i].Values = append(groups[i].Values, m.Median[i])
				lo, hi := math.NaN(), math.NaN()
				if len(m.Values[i]) > 1 {
					lo, hi = m.Min[i], m.Max[i]
				}
				groups[i].Low, groups[i].High = append(groups[i].Low, lo), append(groups[i].High, hi)
				groups[i].Labels = append(groups[i].Labels, fmt.Sprintf("%s, %s: %s", c.Groups[i].Name, sec.Row, m.cell(i)))
			}
		}
	}
	bars.Groups = groups
	if len(bars.Categories) > 0 {
		p.Charts = append(p.Charts, template.HTML(bars.SVG())) // #nosec: svgchart escapes every text
	}
	// Percentile plots, one per row.
	for _, sec := range c.Sections {
		var series []svgchart.Series
		for _, g := range c.Groups {
			if h := mergedRow(g, sec.Row); h != nil {
				series = append(series, svgchart.Series{Name: fmt.Sprintf("%s (%d runs)", g.Name, len(g.Runs)), Points: PercentilePoints(g.Name+" "+sec.Row, h)})
			}
		}
		if len(series) == 0 {
			continue
		}
		ch := &svgchart.Chart{ID: "percentiles-" + sec.Row, Title: sec.Row + " latency by percentile (each group's runs merged)",
			X: svgchart.Axis{Title: "percentile", Scale: svgchart.Percentile},
			Y: svgchart.Axis{Title: "latency (ms, log scale)", Scale: svgchart.Log10, Format: fmtMs}, Series: series}
		p.Charts = append(p.Charts, template.HTML(ch.SVG())) // #nosec: svgchart escapes every text
	}
	for _, sec := range c.Sections {
		t := table{Row: sec.Row, Head: []string{"metric"}}
		t.Head = append(t.Head, names...)
		for _, g := range c.Groups[1:] {
			t.Head = append(t.Head, g.Name+"/"+c.Groups[0].Name, "verdict")
		}
		for _, m := range sec.Metrics {
			row := []string{m.Name}
			for i := range c.Groups {
				row = append(row, m.cell(i))
			}
			for i := 1; i < len(c.Groups); i++ {
				row = append(row, ratioText(m.Ratio[i]), m.verdictText(i))
			}
			t.Rows = append(t.Rows, row)
		}
		p.Tables = append(p.Tables, t)
	}
	if err := compareTemplate.Execute(w, p); err != nil {
		return fmt.Errorf("loadgen: write comparison html: %w", err)
	}
	return nil
}

var compareTemplate = template.Must(template.New("compare").Funcs(template.FuncMap{
	"verdictClass": func(s string) string {
		switch {
		case strings.HasPrefix(s, "better"):
			return "better"
		case strings.HasPrefix(s, "WORSE"):
			return "worse"
		}
		return ""
	},
}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 940px; color: #222; padding: 0 12px; }
h1 { font-size: 22px; margin: 0 0 8px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.sub { color: #555; }
.warn { background: #fff4e5; border: 1px solid #f0b35a; border-radius: 6px; padding: 8px 12px; margin: 12px 0; }
.note { background: #eef5fb; border: 1px solid #9cc3e4; border-radius: 6px; padding: 8px 12px; margin: 12px 0; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { text-align: left; padding: 3px 12px 3px 0; border-bottom: 1px solid #eee; vertical-align: top; }
td.better { color: #2e7d32; font-weight: 600; } td.worse { color: #c62828; font-weight: 600; }
svg.chart { display: block; margin: 10px 0 18px; max-width: 100%; height: auto; }
footer { color: #777; font-size: 12px; margin-top: 30px; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<table id="groups"><tr><th>group</th><th>runs</th><th>files</th></tr>
{{range $i, $g := .C.Groups}}<tr><td>{{$g.Name}}{{if eq $i 0}} (baseline){{end}}</td><td>{{len $g.Runs}}</td><td>{{range $g.Files}}{{.}} {{end}}</td></tr>
{{end}}</table>
{{if .C.Warnings}}<div class="warn" id="warnings"><b>Not comparable?</b><ul>{{range .C.Warnings}}<li>{{.}}</li>{{end}}</ul></div>{{end}}
{{if .C.Notes}}<div class="note" id="notes"><ul>{{range .C.Notes}}<li>{{.}}</li>{{end}}</ul></div>{{end}}
<p class="sub">Test: {{.Test}}, α = {{.C.Alpha}}, on each group's repeated runs; with one run a side, on the runs' timeline intervals (a weaker basis: the intervals of one run are not independent). "~" no difference beyond the noise; "?" not enough data to tell (the exact test cannot reach α with fewer than 4 values a side).</p>
<h2>Charts</h2>
{{range .Charts}}{{.}}
{{end}}
{{range .Tables}}<h2>{{.Row}}</h2>
<table class="cmp" data-row="{{.Row}}"><tr>{{range .Head}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range .}}<td class="{{verdictClass .}}">{{.}}</td>{{end}}</tr>
{{end}}</table>
{{end}}
<footer>Written by connector bench compare. This page is self-contained: it loads nothing from anywhere.</footer>
</body>
</html>
`))
