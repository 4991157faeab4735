// Package svgchart draws small, self-contained SVG charts: line charts
// on linear or logarithmic axes (with HdrHistogram's percentile axis),
// stacked bar charts over time, and grouped bar charts with whiskers.
// The output is one <svg> element with no script, no style sheet and no
// external reference, so that it can be inlined in an HTML page or saved
// as an .svg file and viewed anywhere, offline. Every plotted point
// carries its values in a <title> (shown on hover by browsers), and the
// chart's data attributes name its kind, so tests can read a rendered
// chart back.
//
// It is the renderer of the load harness's HTML report (package loadgen)
// and of the benchmark suite's charts (bench/).
package svgchart

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// Palette holds the series colours, in order: Okabe and Ito's palette,
// distinguishable with the common colour-vision deficiencies.
var Palette = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999999"}

// Color returns the i-th colour of Palette, cycling.
func Color(i int) string { return Palette[i%len(Palette)] }

// Scale is how an axis maps values.
type Scale int

// The scales.
const (
	Linear Scale = iota
	Log10
	// Percentile is HdrHistogram's percentile axis: a value q in [0, 1)
	// is placed at log10(1/(1-q)), so that 90%, 99%, 99.9%, ... are
	// evenly spaced.
	Percentile
)

// Axis describes one axis.
type Axis struct {
	Title string
	Scale Scale
	// Min and Max bound the axis; when both are zero they come from the
	// data (a linear value axis then starts at 0 unless FromData).
	Min, Max float64
	FromData bool
	// Integer keeps linear ticks on whole numbers (counts).
	Integer bool
	// Format prints a tick or a value; default strconv 'g'.
	Format func(float64) string
}

func (a *Axis) format(v float64) string {
	if a.Format != nil {
		return a.Format(v)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// Point is one plotted value; Label, when set, is its hover text.
type Point struct {
	X, Y  float64
	Label string
}

// Series is one line (or one stack of a bar chart).
type Series struct {
	Name   string
	Color  string // default: Color(index)
	Dashed bool
	Points []Point
}

// Chart is a line chart, or with Bars a stacked bar chart over X.
type Chart struct {
	ID     string // the svg element's id
	Title  string
	Width  int // default 880
	Height int // default 300
	X, Y   Axis
	Series []Series
	// Bars draws the series as bars stacked at each X, BarWidth wide in X
	// units.
	Bars     bool
	BarWidth float64
	// Note is a line of text under the title.
	Note string
	// Empty is written across the plot when no series has a point.
	Empty string
}

const (
	marginLeft   = 72
	marginRight  = 20
	marginTop    = 54
	marginBottom = 48
)

type frame struct {
	w, h                   float64
	x0, x1, y0, y1         float64 // plot area in pixels
	xmin, xmax, ymin, ymax float64 // data range (in scaled space)
	xs, ys                 Scale
}

func scaled(s Scale, v float64) float64 {
	switch s {
	case Log10:
		if v <= 0 {
			return math.NaN()
		}
		return math.Log10(v)
	case Percentile:
		if v >= 1 {
			return math.NaN()
		}
		return math.Log10(1 / (1 - v))
	}
	return v
}

func unscaled(s Scale, v float64) float64 {
	switch s {
	case Log10:
		return math.Pow(10, v)
	case Percentile:
		return 1 - math.Pow(10, -v)
	}
	return v
}

func (f *frame) px(x float64) float64 {
	return f.x0 + (scaled(f.xs, x)-f.xmin)/(f.xmax-f.xmin)*(f.x1-f.x0)
}

func (f *frame) py(y float64) float64 {
	return f.y1 - (scaled(f.ys, y)-f.ymin)/(f.ymax-f.ymin)*(f.y1-f.y0)
}

// dataRange returns the scaled range of the values.
func dataRange(a Axis, vals []float64, zero bool) (float64, float64) {
	if a.Min != 0 || a.Max != 0 {
		return scaled(a.Scale, a.Min), scaled(a.Scale, a.Max)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		s := scaled(a.Scale, v)
		if math.IsNaN(s) || math.IsInf(s, 0) {
			continue
		}
		lo, hi = math.Min(lo, s), math.Max(hi, s)
	}
	if math.IsInf(lo, 1) {
		lo, hi = 0, 1
	}
	if zero && a.Scale == Linear && !a.FromData {
		lo = math.Min(lo, 0)
	}
	switch a.Scale {
	case Log10:
		lo, hi = math.Floor(lo+1e-9), math.Ceil(hi-1e-9)
		if hi <= lo {
			hi = lo + 1
		}
	case Percentile:
		lo, hi = 0, math.Max(math.Ceil(hi-1e-9), 1)
	default:
		if hi <= lo {
			hi = lo + 1
		}
		step := niceStep((hi - lo) / 5)
		if a.Integer {
			step = math.Max(step, 1)
		}
		lo = math.Floor(lo/step) * step
		hi = math.Ceil(hi/step) * step
	}
	return lo, hi
}

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// ticks returns the tick values (unscaled) of an axis over [lo, hi]
// (scaled) that is pixels long.
func ticks(a Axis, lo, hi, pixels float64) []float64 {
	var out []float64
	switch a.Scale {
	case Log10:
		perDecade := pixels / math.Max(hi-lo, 1)
		for e := lo; e <= hi+1e-9; e++ {
			base := math.Pow(10, e)
			out = append(out, base)
			if perDecade >= 80 && e < hi-1e-9 {
				out = append(out, 2*base, 5*base)
			}
		}
	case Percentile:
		for e := lo; e <= hi+1e-9; e++ {
			out = append(out, 1-math.Pow(10, -e))
		}
	default:
		step := niceStep((hi - lo) / 5)
		if a.Integer {
			step = math.Max(step, 1)
		}
		for v := lo; v <= hi+step*1e-6; v += step {
			out = append(out, math.Round(v/step)*step)
		}
	}
	return out
}

// PercentileLabel prints a percentile axis tick: 0%, 90%, 99%, 99.9%.
func PercentileLabel(q float64) string {
	p := math.Round(q*100*1e4) / 1e4
	return strconv.FormatFloat(p, 'g', 6, 64) + "%"
}

type svgWriter struct{ strings.Builder }

func (b *svgWriter) f(format string, args ...any) { fmt.Fprintf(b, format, args...) }

func esc(s string) string { return html.EscapeString(s) }

func num(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// SVG renders the chart.
func (c *Chart) SVG() string {
	w, h := c.Width, c.Height
	if w == 0 {
		w = 880
	}
	if h == 0 {
		h = 300
	}
	legend, rows := c.legendItems(float64(w))
	extra := float64(rows-1) * 16
	h += int(extra)
	f := &frame{w: float64(w), h: float64(h), x0: marginLeft, x1: float64(w - marginRight),
		y0: marginTop + extra, y1: float64(h - marginBottom), xs: c.X.Scale, ys: c.Y.Scale}
	var xv, yv []float64
	if c.Bars {
		// Stacked: the Y range is that of the stack tops.
		tops := map[float64]float64{}
		for _, s := range c.Series {
			for _, p := range s.Points {
				tops[p.X] += p.Y
				xv = append(xv, p.X)
			}
		}
		for _, t := range tops {
			yv = append(yv, t)
		}
		if len(xv) > 0 {
			lo, hi := xv[0], xv[0]
			for _, x := range xv {
				lo, hi = math.Min(lo, x), math.Max(hi, x)
			}
			xv = append(xv, lo-c.BarWidth/2, hi+c.BarWidth/2)
		}
	} else {
		for _, s := range c.Series {
			for _, p := range s.Points {
				xv = append(xv, p.X)
				yv = append(yv, p.Y)
			}
		}
	}
	f.xmin, f.xmax = dataRange(c.X, xv, false)
	if c.X.Scale == Linear && c.X.Min == 0 && c.X.Max == 0 && len(xv) > 0 && !c.Bars {
		// Time axes end with the data, not a rounded tick.
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, x := range xv {
			lo, hi = math.Min(lo, x), math.Max(hi, x)
		}
		if hi > lo {
			f.xmin, f.xmax = math.Min(lo, 0), hi
		}
	}
	f.ymin, f.ymax = dataRange(c.Y, yv, true)

	var b svgWriter
	kind := "line"
	if c.Bars {
		kind = "bars"
	}
	b.f(`<svg xmlns="http://www.w3.org/2000/svg" id="%s" class="chart" data-kind="%s" width="%d" height="%d" viewBox="0 0 %d %d" font-family="system-ui, sans-serif" font-size="12" role="img" aria-label="%s">`,
		esc(c.ID), kind, w, h, w, h, esc(c.Title))
	b.f(`<title>%s</title>`, esc(c.Title))
	b.f(`<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`, w, h)
	b.f(`<text x="%d" y="18" font-size="14" font-weight="600" fill="#222">%s</text>`, marginLeft, esc(c.Title))
	if c.Note != "" {
		b.f(`<text x="%d" y="34" fill="#555">%s</text>`, marginLeft, esc(c.Note))
	}
	c.axes(&b, f)
	b.f(`<g class="series">`)
	if c.Bars {
		c.bars(&b, f)
	} else {
		c.lines(&b, f)
	}
	b.f(`</g>`)
	if len(xv) == 0 && c.Empty != "" {
		b.f(`<text x="%s" y="%s" text-anchor="middle" fill="#777" font-size="14">%s</text>`, num((f.x0+f.x1)/2), num((f.y0+f.y1)/2), esc(c.Empty))
	}
	drawLegend(&b, legend)
	b.f(`</svg>`)
	return b.String()
}

func (c *Chart) axes(b *svgWriter, f *frame) {
	b.f(`<g class="axes" stroke="#ccc" stroke-width="1">`)
	for _, t := range ticks(c.Y, f.ymin, f.ymax, f.y1-f.y0) {
		y := f.py(t)
		if math.IsNaN(y) || y < f.y0-0.5 || y > f.y1+0.5 {
			continue
		}
		b.f(`<line x1="%s" y1="%s" x2="%s" y2="%s"/>`, num(f.x0), num(y), num(f.x1), num(y))
	}
	for _, t := range ticks(c.X, f.xmin, f.xmax, f.x1-f.x0) {
		x := f.px(t)
		if math.IsNaN(x) || x < f.x0-0.5 || x > f.x1+0.5 {
			continue
		}
		b.f(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#eee"/>`, num(x), num(f.y0), num(x), num(f.y1))
	}
	b.f(`<rect x="%s" y="%s" width="%s" height="%s" fill="none" stroke="#888"/>`, num(f.x0), num(f.y0), num(f.x1-f.x0), num(f.y1-f.y0))
	b.f(`</g><g class="ticks" fill="#333">`)
	for _, t := range ticks(c.Y, f.ymin, f.ymax, f.y1-f.y0) {
		y := f.py(t)
		if math.IsNaN(y) || y < f.y0-0.5 || y > f.y1+0.5 {
			continue
		}
		b.f(`<text x="%s" y="%s" text-anchor="end" dominant-baseline="middle">%s</text>`, num(f.x0-6), num(y), esc(c.Y.format(t)))
	}
	for _, t := range ticks(c.X, f.xmin, f.xmax, f.x1-f.x0) {
		x := f.px(t)
		if math.IsNaN(x) || x < f.x0-0.5 || x > f.x1+0.5 {
			continue
		}
		label := c.X.format(t)
		if c.X.Scale == Percentile && c.X.Format == nil {
			label = PercentileLabel(t)
		}
		anchor := "middle"
		if x > f.x1-20 {
			anchor = "end"
		}
		b.f(`<text x="%s" y="%s" text-anchor="%s">%s</text>`, num(x), num(f.y1+16), anchor, esc(label))
	}
	b.f(`</g>`)
	if c.X.Title != "" {
		b.f(`<text x="%s" y="%s" text-anchor="middle" fill="#333">%s</text>`, num((f.x0+f.x1)/2), num(f.h-8), esc(c.X.Title))
	}
	if c.Y.Title != "" {
		b.f(`<text transform="translate(14 %s) rotate(-90)" text-anchor="middle" fill="#333">%s</text>`, num((f.y0+f.y1)/2), esc(c.Y.Title))
	}
}

// maxMarkers is the most points of a series that get a hover marker;
// longer series are drawn as a line only (their values stay in the
// path's data-points attribute).
const maxMarkers = 400

func (c *Chart) lines(b *svgWriter, f *frame) {
	for i, s := range c.Series {
		color := s.Color
		if color == "" {
			color = Color(i)
		}
		var d strings.Builder
		var values strings.Builder
		pen := false
		for _, p := range s.Points {
			x, y := f.px(p.X), f.py(p.Y)
			if math.IsNaN(x) || math.IsNaN(y) || math.IsInf(x, 0) || math.IsInf(y, 0) {
				pen = false
				continue
			}
			y = math.Max(math.Min(y, f.y1), f.y0)
			if pen {
				d.WriteString("L")
			} else {
				d.WriteString("M")
			}
			d.WriteString(num(x) + " " + num(y))
			pen = true
			if values.Len() > 0 {
				values.WriteString(" ")
			}
			values.WriteString(strconv.FormatFloat(p.X, 'g', 8, 64) + "," + strconv.FormatFloat(p.Y, 'g', 8, 64))
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		b.f(`<g class="line" data-series="%s">`, esc(s.Name))
		b.f(`<path d="%s" fill="none" stroke="%s" stroke-width="2"%s data-points="%s"><title>%s</title></path>`,
			d.String(), color, dash, values.String(), esc(s.Name))
		if len(s.Points) <= maxMarkers {
			for _, p := range s.Points {
				x, y := f.px(p.X), f.py(p.Y)
				if math.IsNaN(x) || math.IsNaN(y) || math.IsInf(x, 0) || math.IsInf(y, 0) {
					continue
				}
				y = math.Max(math.Min(y, f.y1), f.y0)
				label := p.Label
				if label == "" {
					label = s.Name + ": " + c.X.format(p.X) + ", " + c.Y.format(p.Y)
				}
				b.f(`<circle cx="%s" cy="%s" r="3" fill="%s"><title>%s</title></circle>`, num(x), num(y), color, esc(label))
			}
		}
		b.f(`</g>`)
	}
}

func (c *Chart) bars(b *svgWriter, f *frame) {
	base := map[float64]float64{}
	for i, s := range c.Series {
		color := s.Color
		if color == "" {
			color = Color(i)
		}
		b.f(`<g class="bar" data-series="%s" fill="%s">`, esc(s.Name), color)
		for _, p := range s.Points {
			if p.Y == 0 {
				continue
			}
			x0, x1 := f.px(p.X-c.BarWidth/2), f.px(p.X+c.BarWidth/2)
			y0, y1 := f.py(base[p.X]), f.py(base[p.X]+p.Y)
			base[p.X] += p.Y
			label := p.Label
			if label == "" {
				label = s.Name + ": " + c.Y.format(p.Y) + " at " + c.X.format(p.X)
			}
			wpx := math.Max(x1-x0-1, 1)
			b.f(`<rect x="%s" y="%s" width="%s" height="%s" data-value="%s"><title>%s</title></rect>`,
				num(x0+0.5), num(y1), num(wpx), num(math.Max(y0-y1, 0.5)), strconv.FormatFloat(p.Y, 'g', 8, 64), esc(label))
		}
		b.f(`</g>`)
	}
}

// legendItem is one entry of a legend, laid out.
type legendItem struct {
	name, color string
	dashed      bool
	x, y        float64
}

// layoutLegend places the legend entries in rows from (x0, y) within
// width and returns them and the number of rows.
func layoutLegend(names []string, colors []string, dashed []bool, x0, width, y float64) ([]legendItem, int) {
	var out []legendItem
	x, rows := x0, 1
	for i, n := range names {
		w := 28 + 7*float64(len([]rune(n)))
		if x > x0 && x+w > x0+width {
			x, rows = x0, rows+1
		}
		out = append(out, legendItem{name: n, color: colors[i], dashed: dashed[i], x: x, y: y + float64(rows-1)*16})
		x += w
	}
	return out, rows
}

func drawLegend(b *svgWriter, items []legendItem) {
	b.f(`<g class="legend">`)
	for _, it := range items {
		dash := ""
		if it.dashed {
			dash = ` stroke-dasharray="4 3"`
		}
		b.f(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="3"%s/>`, num(it.x), num(it.y-4), num(it.x+16), num(it.y-4), it.color, dash)
		b.f(`<text x="%s" y="%s" fill="#222">%s</text>`, num(it.x+20), num(it.y), esc(it.name))
	}
	b.f(`</g>`)
}

func (c *Chart) legendItems(width float64) ([]legendItem, int) {
	var names, colors []string
	var dashed []bool
	for i, s := range c.Series {
		color := s.Color
		if color == "" {
			color = Color(i)
		}
		names, colors, dashed = append(names, s.Name), append(colors, color), append(dashed, s.Dashed)
	}
	return layoutLegend(names, colors, dashed, marginLeft, width-marginLeft-marginRight, marginTop-8)
}

// BarGroup is one compared thing in a bar chart: a value per category,
// with an optional range (Low, High) drawn as a whisker (NaN: none).
type BarGroup struct {
	Name        string
	Color       string
	Values      []float64
	Low, High   []float64
	Labels      []string // hover text per category; default name and value
	ValueLabels bool     // print the value above each bar
}

// BarChart draws grouped vertical bars: one group of bars per category,
// one bar per BarGroup.
type BarChart struct {
	ID, Title, Note string
	Width, Height   int
	Categories      []string
	Y               Axis
	Groups          []BarGroup
}

// SVG renders the bar chart.
func (c *BarChart) SVG() string {
	w, h := c.Width, c.Height
	if w == 0 {
		w = 880
	}
	if h == 0 {
		h = 300
	}
	var names, colors []string
	var dashed []bool
	for i, g := range c.Groups {
		color := g.Color
		if color == "" {
			color = Color(i)
		}
		names, colors, dashed = append(names, g.Name), append(colors, color), append(dashed, false)
	}
	legend, rows := layoutLegend(names, colors, dashed, marginLeft, float64(w-marginLeft-marginRight), marginTop-8)
	extra := float64(rows-1) * 16
	h += int(extra)
	f := &frame{w: float64(w), h: float64(h), x0: marginLeft, x1: float64(w - marginRight),
		y0: marginTop + extra, y1: float64(h - marginBottom), xs: Linear, ys: c.Y.Scale}
	var yv []float64
	for _, g := range c.Groups {
		yv = append(yv, g.Values...)
		for _, v := range g.High {
			if !math.IsNaN(v) {
				yv = append(yv, v)
			}
		}
	}
	f.xmin, f.xmax = 0, float64(max(len(c.Categories), 1))
	f.ymin, f.ymax = dataRange(c.Y, yv, true)
	var b svgWriter
	b.f(`<svg xmlns="http://www.w3.org/2000/svg" id="%s" class="chart" data-kind="barchart" width="%d" height="%d" viewBox="0 0 %d %d" font-family="system-ui, sans-serif" font-size="12" role="img" aria-label="%s">`,
		esc(c.ID), w, h, w, h, esc(c.Title))
	b.f(`<title>%s</title>`, esc(c.Title))
	b.f(`<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`, w, h)
	b.f(`<text x="%d" y="18" font-size="14" font-weight="600" fill="#222">%s</text>`, marginLeft, esc(c.Title))
	if c.Note != "" {
		b.f(`<text x="%d" y="34" fill="#555">%s</text>`, marginLeft, esc(c.Note))
	}
	// Axes: horizontal grid and value ticks; category labels below.
	b.f(`<g class="axes" stroke="#ccc" stroke-width="1">`)
	yt := ticks(c.Y, f.ymin, f.ymax, f.y1-f.y0)
	for _, t := range yt {
		y := f.py(t)
		if math.IsNaN(y) || y < f.y0-0.5 || y > f.y1+0.5 {
			continue
		}
		b.f(`<line x1="%s" y1="%s" x2="%s" y2="%s"/>`, num(f.x0), num(y), num(f.x1), num(y))
	}
	b.f(`<rect x="%s" y="%s" width="%s" height="%s" fill="none" stroke="#888"/>`, num(f.x0), num(f.y0), num(f.x1-f.x0), num(f.y1-f.y0))
	b.f(`</g><g class="ticks" fill="#333">`)
	for _, t := range yt {
		y := f.py(t)
		if math.IsNaN(y) || y < f.y0-0.5 || y > f.y1+0.5 {
			continue
		}
		b.f(`<text x="%s" y="%s" text-anchor="end" dominant-baseline="middle">%s</text>`, num(f.x0-6), num(y), esc(c.Y.format(t)))
	}
	for i, cat := range c.Categories {
		b.f(`<text x="%s" y="%s" text-anchor="middle">%s</text>`, num(f.px(float64(i)+0.5)), num(f.y1+16), esc(cat))
	}
	b.f(`</g>`)
	if c.Y.Title != "" {
		b.f(`<text transform="translate(14 %s) rotate(-90)" text-anchor="middle" fill="#333">%s</text>`, num((f.y0+f.y1)/2), esc(c.Y.Title))
	}
	n := float64(max(len(c.Groups), 1))
	slot := 0.8 / n
	zero := f.py(math.Max(unscaled(c.Y.Scale, f.ymin), 0))
	if c.Y.Scale != Linear {
		zero = f.y1
	}
	b.f(`<g class="series">`)
	for gi, g := range c.Groups {
		color := colors[gi]
		b.f(`<g class="bar" data-series="%s" fill="%s">`, esc(g.Name), color)
		for ci := range c.Categories {
			if ci >= len(g.Values) || math.IsNaN(g.Values[ci]) {
				continue
			}
			v := g.Values[ci]
			x0 := f.px(float64(ci) + 0.1 + float64(gi)*slot)
			x1 := f.px(float64(ci) + 0.1 + float64(gi+1)*slot)
			y := math.Max(math.Min(f.py(v), f.y1), f.y0)
			label := g.Name + ", " + c.Categories[ci] + ": " + c.Y.format(v)
			if ci < len(g.Labels) && g.Labels[ci] != "" {
				label = g.Labels[ci]
			}
			b.f(`<rect x="%s" y="%s" width="%s" height="%s" data-value="%s"><title>%s</title></rect>`,
				num(x0+1), num(math.Min(y, zero)), num(math.Max(x1-x0-2, 1)), num(math.Max(math.Abs(zero-y), 0.5)),
				strconv.FormatFloat(v, 'g', 8, 64), esc(label))
			if ci < len(g.Low) && ci < len(g.High) && !math.IsNaN(g.Low[ci]) && !math.IsNaN(g.High[ci]) {
				xm := (x0 + x1) / 2
				lo, hi := f.py(g.Low[ci]), f.py(g.High[ci])
				b.f(`<path d="M%s %sL%s %sM%s %sL%s %sM%s %sL%s %s" stroke="#222" stroke-width="1.2" fill="none"/>`,
					num(xm), num(lo), num(xm), num(hi), num(xm-4), num(lo), num(xm+4), num(lo), num(xm-4), num(hi), num(xm+4), num(hi))
			}
			if g.ValueLabels {
				b.f(`<text x="%s" y="%s" text-anchor="middle" fill="#222" font-size="11">%s</text>`, num((x0+x1)/2), num(math.Min(y, zero)-4), esc(c.Y.format(v)))
			}
		}
		b.f(`</g>`)
	}
	b.f(`</g>`)
	drawLegend(&b, legend)
	b.f(`</svg>`)
	return b.String()
}
