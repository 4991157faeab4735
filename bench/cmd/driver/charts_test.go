package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/connectorhq/connector/bench/internal/result"
	"github.com/connectorhq/connector/loadgen"
)

// writeStatusReport writes what httpbench -reports keeps for one run's
// status scenario: a loadgen report whose GetStatus histogram holds n
// values of us microseconds, its load begun at start.
func writeStatusReport(t *testing.T, path string, start time.Time, us int64, n int64) {
	t.Helper()
	h := hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)
	if err := h.RecordValues(us, n); err != nil {
		t.Fatal(err)
	}
	enc, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	rep := &loadgen.Report{Schema: loadgen.SchemaVersion, Start: start, Histograms: map[string]string{"getstatus": string(enc)}}
	if err := loadgen.WriteJSON(f, rep); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// The percentile chart merges the GetStatus histograms of this run's
// iterations only. out/raw/ is never emptied: it still holds the reports of
// an earlier make bench with more runs (or of an iteration of this run that
// failed and is left out of every figure), which must not be merged into
// the chart of this one, live or re-rendered from the summary.
func TestStatusChartMergesOnlyThisRunsReports(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "out", "raw")
	if err := os.MkdirAll(raw, 0o750); err != nil {
		t.Fatal(err)
	}
	started := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	m := &meta{Started: started, Finished: started.Add(20 * time.Minute), Runs: 3, HeavyRuns: 1}
	// This run: iterations 1 and 3 of the ceiling succeeded, iteration 2
	// failed after its status scenario had written its report.
	writeStatusReport(t, filepath.Join(raw, "http.ceiling-1.status.json"), started.Add(time.Minute), 100, 1000)
	writeStatusReport(t, filepath.Join(raw, "http.ceiling-2.status.json"), started.Add(2*time.Minute), 900_000, 1000)
	writeStatusReport(t, filepath.Join(raw, "http.ceiling-3.status.json"), started.Add(3*time.Minute), 120, 1000)
	// An earlier make bench with RUNS=5 left iterations 4 and 5.
	old := started.Add(-24 * time.Hour)
	writeStatusReport(t, filepath.Join(raw, "http.ceiling-4.status.json"), old, 700_000, 1000)
	writeStatusReport(t, filepath.Join(raw, "http.ceiling-5.status.json"), old, 800_000, 1000)

	out := func(v float64) *result.Output {
		o := result.New("http", "load/ceiling")
		o.Add("status_per_s", v, "/s")
		return o
	}
	res := runs{"http.ceiling": {0: out(40000), 2: out(41000)}}
	fails := []failure{{Key: "http.ceiling", Iter: 1, Err: "httpbench: mixed: failed"}}
	c := config{results: filepath.Join(dir, "RESULTS.md"), out: filepath.Join(dir, "out")}

	check := func(what string, charts map[string]string) {
		t.Helper()
		path, ok := charts["http-status-percentiles"]
		if !ok {
			t.Fatalf("%s: no percentile chart drawn: %v", what, charts)
		}
		b, err := os.ReadFile(filepath.Join(dir, path))
		if err != nil {
			t.Fatal(err)
		}
		svg := string(b)
		if !strings.Contains(svg, "ceiling (2 runs)") {
			t.Errorf("%s: the chart's ceiling series does not say 2 runs (iterations 1 and 3 of this run); its labels: %q", what, seriesLabels(svg))
		}
		// A stale or failed report's 0.7–0.9 s latencies would be the
		// chart's top (the y axis is labelled in ms).
		for _, bad := range []string{"700 ms", "800 ms", "900 ms", "1000 ms"} {
			if strings.Contains(svg, bad) {
				t.Errorf("%s: the chart shows %s: a report of another run or of the failed iteration was merged", what, bad)
			}
		}
	}

	s := summarize(res, fails, m)
	check("live", chartsFor(c, s, res, raw))

	// Re-rendered from the saved summary (driver -render-only): the same
	// iterations, although the raw folder also holds the others.
	s2 := summarize(res, fails, m)
	check("re-rendered", chartsFor(c, s2, nil, raw))
}

// seriesLabels returns the "NAME (N runs)" labels of an SVG, for a
// failure message.
func seriesLabels(svg string) []string {
	var out []string
	for _, f := range strings.Split(svg, ">") {
		if i := strings.Index(f, " runs)"); i >= 0 {
			start := strings.LastIndex(f[:i], "(")
			if start >= 0 {
				from := strings.LastIndexAny(f[:start], "<>\"") + 1
				out = append(out, f[from:i+len(" runs)")])
			}
		}
	}
	return out
}
