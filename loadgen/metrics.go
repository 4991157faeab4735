package loadgen

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// metricBuckets are the upper bounds, in seconds, of the latency
// histograms of WriteMetrics: 1-2.5-5 steps from 100 µs to 60 s.
var metricBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// WriteMetrics writes a snapshot of the run in the Prometheus text
// exposition format (version 0.0.4), for node_exporter's textfile
// collector, a Pushgateway, or any tool that reads it: operation,
// request and error counters, the latency of every row as a summary
// (exact HDR quantiles) and as a histogram (fixed buckets, for
// aggregation across runs), throughput, error rate and verdict, and the
// generator's CPU use. Every sample carries the scenario and target
// labels. Names start with connector_bench_.
func WriteMetrics(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	base := fmt.Sprintf(`scenario="%s",target="%s"`, labelValue(r.Config.Scenario), labelValue(r.Target.URL))
	family := func(name, typ, help string) {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	sample := func(name, labels string, v float64) {
		l := base
		if labels != "" {
			l += "," + labels
		}
		fmt.Fprintf(bw, "%s{%s} %s\n", name, l, strconv.FormatFloat(v, 'g', -1, 64))
	}

	family("connector_bench_info", "gauge", "The run: harness build, machine and target server, as labels (value 1).")
	e := r.Environment
	sample("connector_bench_info", fmt.Sprintf(`harness_version="%s",harness_revision="%s",go_version="%s",host="%s",product="%s",version="%s"`,
		labelValue(e.HarnessVersion), labelValue(e.HarnessRevision), labelValue(e.GoVersion), labelValue(e.Host),
		labelValue(r.Target.Product), labelValue(r.Target.Version)), 1)
	family("connector_bench_start_timestamp_seconds", "gauge", "When the load began, in seconds since the epoch.")
	sample("connector_bench_start_timestamp_seconds", "", float64(r.Start.UnixMilli())/1000)
	family("connector_bench_window_seconds", "gauge", "The measurement window: every rate is over it.")
	sample("connector_bench_window_seconds", "", float64(r.ElapsedUs)/1e6)

	family("connector_bench_operations_total", "counter", "Operations of the load by outcome (unfinished: in flight when the window closed).")
	sample("connector_bench_operations_total", `outcome="ok"`, float64(r.Operations.OK))
	sample("connector_bench_operations_total", `outcome="failed"`, float64(r.Operations.Failed))
	sample("connector_bench_operations_total", `outcome="unfinished"`, float64(r.Operations.Unfinished))
	family("connector_bench_operations_per_second", "gauge", "Operations (ok and failed) per second of the window.")
	sample("connector_bench_operations_per_second", "", r.Operations.PerSecond)
	family("connector_bench_requests_per_second", "gauge", "HTTP requests per second of the window.")
	sample("connector_bench_requests_per_second", "", r.Requests.PerSecond)
	family("connector_bench_requests_total", "counter", "HTTP requests that completed in the window, by request type and outcome.")
	for _, l := range r.RequestLatency {
		sample("connector_bench_requests_total", fmt.Sprintf(`request="%s",outcome="ok"`, labelValue(l.Name)), float64(l.Count))
		sample("connector_bench_requests_total", fmt.Sprintf(`request="%s",outcome="failed"`, labelValue(l.Name)), float64(l.Errors))
	}
	family("connector_bench_errors_total", "counter", "Failed operations by the failure that ended each one: class and key.")
	er := r.Errors
	for _, c := range []struct {
		name string
		m    map[string]int64
	}{{"transport", er.Transport}, {"http", er.HTTP}, {"aci", er.ACI}, {"protocol", er.Protocol}, {"check", er.Check}} {
		for _, k := range slices.Sorted(maps.Keys(c.m)) {
			sample("connector_bench_errors_total", fmt.Sprintf(`class="%s",key="%s"`, c.name, labelValue(k)), float64(c.m[k]))
		}
	}
	family("connector_bench_error_rate", "gauge", "Failed operations over operations that ended.")
	sample("connector_bench_error_rate", "", r.ErrorRate)
	family("connector_bench_passed", "gauge", "1 when the run passed (error rate within the limit and a success), else 0.")
	passed := 0.0
	if r.Passed {
		passed = 1
	}
	sample("connector_bench_passed", "", passed)

	rows := latencyOrder(r)
	family("connector_bench_latency_seconds", "summary", "Latency of successful requests and operations by row; quantiles exact to 0.1% (HDR), quantile 1 is the max.")
	for _, l := range rows {
		lab := fmt.Sprintf(`row="%s"`, labelValue(l.Name))
		if l.Count > 0 {
			for _, q := range []struct {
				q  string
				us int64
			}{{"0.5", l.P50Us}, {"0.9", l.P90Us}, {"0.99", l.P99Us}, {"0.999", l.P999Us}, {"1", l.MaxUs}} {
				sample("connector_bench_latency_seconds", lab+`,quantile="`+q.q+`"`, float64(q.us)/1e6)
			}
		}
		sample("connector_bench_latency_seconds_sum", lab, l.MeanUs*float64(l.Count)/1e6)
		sample("connector_bench_latency_seconds_count", lab, float64(l.Count))
	}
	family("connector_bench_latency_bucketed_seconds", "histogram", "Latency of successful requests and operations by row, in fixed buckets (for aggregation).")
	for _, l := range rows {
		lab := fmt.Sprintf(`row="%s"`, labelValue(l.Name))
		var h *hdrhistogram.Histogram
		if enc, ok := r.Histograms[l.Name]; ok {
			h, _ = hdrhistogram.Decode([]byte(enc))
		}
		for _, le := range metricBuckets {
			var n int64
			if h != nil {
				n = countAtMost(h, int64(le*1e6))
			}
			sample("connector_bench_latency_bucketed_seconds_bucket", lab+`,le="`+strconv.FormatFloat(le, 'g', -1, 64)+`"`, float64(n))
		}
		sample("connector_bench_latency_bucketed_seconds_bucket", lab+`,le="+Inf"`, float64(l.Count))
		sample("connector_bench_latency_bucketed_seconds_sum", lab, l.MeanUs*float64(l.Count)/1e6)
		sample("connector_bench_latency_bucketed_seconds_count", lab, float64(l.Count))
	}

	g := r.Generator
	family("connector_bench_generator_cpu_share", "gauge", "The load generator's CPU time over the window and its CPUs (1: every CPU busy).")
	sample("connector_bench_generator_cpu_share", "", g.CPUShare)
	family("connector_bench_generator_saturated", "gauge", "1 when the generator used 90% or more of its CPUs: it may have been the bottleneck.")
	sat := 0.0
	if g.Saturated {
		sat = 1
	}
	sample("connector_bench_generator_saturated", "", sat)
	if s := r.Schedule; s != nil {
		family("connector_bench_schedule_late_total", "counter", "Fixed-rate operations that started more than 10 ms late.")
		sample("connector_bench_schedule_late_total", "", float64(s.Late))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("loadgen: write metrics: %w", err)
	}
	return nil
}

// countAtMost returns how many values of h are at most v (HDR: values
// equivalent to v count as v).
func countAtMost(h *hdrhistogram.Histogram, v int64) int64 {
	var n int64
	for _, b := range h.Distribution() {
		if b.To <= v || h.ValuesAreEquivalent(b.From, v) {
			n += b.Count
		}
	}
	return n
}

// labelValue escapes a label value for the text format.
func labelValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
