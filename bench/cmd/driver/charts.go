package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/connectorhq/connector/bench/internal/result"
	"github.com/connectorhq/connector/internal/svgchart"
	"github.com/connectorhq/connector/loadgen"
)

// chartsFor draws the charts of RESULTS.md's key comparisons into
// results/ beside it (the same renderer as the load harness's HTML
// report): HTTP throughput of ours against the ceiling, ours against the
// peers, and, when the run kept the loadgen reports (raw), the
// HdrHistogram percentile plot of GetStatus by token. It returns the
// charts drawn, by name, as paths relative to RESULTS.md; a chart that
// cannot be drawn is left out (and said on stderr).
func chartsFor(c config, s *summary, res runs, raw string) map[string]string {
	out := map[string]string{}
	if c.results == "" {
		return out
	}
	dir := filepath.Join(filepath.Dir(c.results), "results")
	if c.quick {
		dir = filepath.Join(filepath.Dir(c.results), "charts.quick")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "driver: charts: %v\n", err)
		return out
	}
	write := func(name, svg string) {
		path := filepath.Join(dir, name+".svg")
		if err := os.WriteFile(path, []byte(svg+"\n"), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "driver: charts: %v\n", err)
			return
		}
		rel, err := filepath.Rel(filepath.Dir(c.results), path)
		if err != nil {
			rel = path
		}
		out[name] = filepath.ToSlash(rel)
	}
	r := &report{s: s, res: res}

	// HTTP throughput: ceiling, durable, memory.
	rows := []struct{ label, metric string }{{"submit (Fetch)", "submit_per_s"}, {"GetStatus by token", "status_per_s"}, {"GetStatus list of 100", "list_per_s"}}
	bc := &svgchart.BarChart{ID: "http-throughput", Title: "Over HTTP: requests per second (median of the runs; whiskers min–max)",
		Note: "the bare fasthttp ceiling and the real connector, driven by the same load generator at 32 connections",
		Y:    svgchart.Axis{Title: "requests/s", Format: func(v float64) string { return rate(v) }}}
	for _, row := range rows {
		bc.Categories = append(bc.Categories, row.label)
	}
	have := false
	for _, g := range []struct{ name, key string }{{"ceiling", "http.ceiling"}, {"ours, durable", "http.durable"}, {"ours, in memory", "http.memory"}} {
		grp := svgchart.BarGroup{Name: g.name, ValueLabels: true}
		for _, row := range rows {
			st, ok := r.fig(g.key, row.metric)
			if !ok {
				grp.Values, grp.Low, grp.High = append(grp.Values, math.NaN()), append(grp.Low, math.NaN()), append(grp.High, math.NaN())
				continue
			}
			have = true
			grp.Values, grp.Low, grp.High = append(grp.Values, st.Median), append(grp.Low, st.Min), append(grp.High, st.Max)
		}
		bc.Groups = append(bc.Groups, grp)
	}
	if have {
		write("http-throughput", bc.SVG())
	}

	// Ours durable ÷ each peer, on a log scale.
	peerRows := []struct{ label, mode, metric string }{
		{"enqueue/s", "submit", "submit_per_s"}, {"status by id/s", "status", "status_per_s"},
	}
	burnRow := struct{ label, mode, metric string }{"burn-down total/s", "complete", "total_per_s"}
	pc := &svgchart.BarChart{ID: "peers", Title: "Ours (durable) ÷ each peer: above 1, ours is faster (median; whiskers min–max; log scale)",
		Note: "in process, same machine, same run, 16 goroutines; see the table for each system's path",
		Y:    svgchart.Axis{Title: "ratio", Scale: svgchart.Log10, Format: func(v float64) string { return ratioF(v) }}}
	for _, row := range append(peerRows, burnRow) {
		pc.Categories = append(pc.Categories, row.label)
	}
	have = false
	for _, p := range []struct{ name, light, burn string }{
		{"asynq, Redis everysec", "peers.asynq-everysec", "burn.asynq-everysec"},
		{"asynq, Redis always", "peers.asynq-always", "burn.asynq-always"},
		{"River, PG sync commit", "peers.river", "burn.river"},
	} {
		grp := svgchart.BarGroup{Name: p.name, ValueLabels: true}
		for i, row := range append(peerRows, burnRow) {
			key := p.light
			if i == len(peerRows) {
				key = p.burn
			}
			st, ok := r.ratio("inproc."+row.mode+".durable", row.metric, key, row.metric)
			if !ok || st.Median <= 0 {
				grp.Values, grp.Low, grp.High = append(grp.Values, math.NaN()), append(grp.Low, math.NaN()), append(grp.High, math.NaN())
				continue
			}
			have = true
			grp.Values, grp.Low, grp.High = append(grp.Values, st.Median), append(grp.Low, st.Min), append(grp.High, st.Max)
		}
		pc.Groups = append(pc.Groups, grp)
	}
	if have {
		write("peers", pc.SVG())
	}

	// GetStatus by token, by percentile: the histograms of this run's
	// iterations merged.
	var series []svgchart.Series
	for _, t := range []struct{ name, key string }{{"ceiling", "http.ceiling"}, {"ours, durable", "http.durable"}, {"ours, in memory", "http.memory"}} {
		var merged *hdrhistogram.Histogram
		merges := 0
		for _, f := range statusReports(s, res, raw, t.key) {
			h, start, err := reportHistogram(f, "getstatus")
			if err != nil {
				if !errors.Is(err, os.ErrNotExist) {
					fmt.Fprintf(os.Stderr, "driver: charts: %s: %v\n", f, err)
				}
				continue
			}
			if start.Before(s.Meta.Started) || start.After(s.Meta.Finished) {
				fmt.Fprintf(os.Stderr, "driver: charts: %s is from another run (its load began %s), left out\n", f, start.Format(time.RFC3339))
				continue
			}
			if merged == nil {
				merged = h
			} else {
				merged.Merge(h)
			}
			merges++
		}
		if merged != nil {
			series = append(series, svgchart.Series{Name: fmt.Sprintf("%s (%d runs)", t.name, merges), Points: loadgen.PercentilePoints(t.name, merged)})
		}
	}
	if len(series) > 0 {
		ch := &svgchart.Chart{ID: "http-status-percentiles", Title: "GetStatus by token over HTTP: latency by percentile (HdrHistogram plot; every run merged)",
			Note: "32 connections, closed loop; the last point of each line is its max",
			X:    svgchart.Axis{Title: "percentile", Scale: svgchart.Percentile},
			Y: svgchart.Axis{Title: "latency (ms, log scale)", Scale: svgchart.Log10, Format: func(v float64) string {
				return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".") + " ms"
			}},
			Series: series}
		write("http-status-percentiles", ch.SVG())
	}
	return out
}

// statusReports returns the loadgen reports of the status scenario
// (httpbench -reports) of key's iterations that this run's figures hold:
// those in res, or, re-rendering a saved summary (res nil), every
// iteration of the light rows that the summary does not list as failed.
// out/raw is never emptied, so it also holds the reports of earlier runs
// of make bench (with more iterations, or an iteration that failed this
// time); a glob would merge them into this run's chart.
func statusReports(s *summary, res runs, raw, key string) []string {
	var iters []int
	if res != nil {
		for i := range res[key] {
			iters = append(iters, i)
		}
		slices.Sort(iters)
	} else {
		for i := range s.Meta.Runs {
			if !slices.ContainsFunc(s.Failures, func(f failure) bool { return f.Key == key && f.Iter == i }) {
				iters = append(iters, i)
			}
		}
	}
	files := make([]string, len(iters))
	for j, i := range iters {
		files[j] = filepath.Join(raw, fmt.Sprintf("%s-%d.status.json", key, i+1))
	}
	return files
}

// reportHistogram reads a loadgen report and returns one row's histogram
// and when the report's load began.
func reportHistogram(path, row string) (*hdrhistogram.Histogram, time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	rep, err := loadgen.ReadJSON(f)
	if err != nil {
		return nil, time.Time{}, err
	}
	enc, ok := rep.Histograms[row]
	if !ok {
		return nil, time.Time{}, fmt.Errorf("no %s histogram", row)
	}
	h, err := hdrhistogram.Decode([]byte(enc))
	return h, rep.Start, err
}

// rerender renders RESULTS.md and its charts again from a saved summary,
// running nothing (after a change to the rendering).
func rerender(c config, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("driver: %w", err)
	}
	var s summary
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("driver: %s: %w", path, err)
	}
	if s.Ratios == nil {
		s.Ratios = map[string]result.Stat{}
	}
	block := render(&s, nil, chartsFor(c, &s, nil, filepath.Join(c.out, "raw")))
	if c.results == "" {
		fmt.Print(block)
		return nil
	}
	return updateResults(c.results, block)
}
