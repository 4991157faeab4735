package loadgen

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The snapshot passes promtool's check (Debian's prometheus package) and
// carries the run's counts and percentiles.
func TestMetricsSnapshotPassesPromtool(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	require.NoError(t, err, "promtool is missing: make test installs the prometheus package")
	f := newFake()
	f.fail = func(n int, key string) (int, string) {
		if key == "FETCH" && n%7 == 0 {
			return 500, "boom"
		}
		return 0, ""
	}
	rep, err := Run(context.Background(), Config{Target: f.start(t), Scenario: ScenarioSubmit, Requests: 200, Duration: time.Minute, Concurrency: 2, MaxErrorRate: 0.5})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, WriteMetrics(&buf, rep))
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(buf.Bytes())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s\n%s", out, buf.String())
	text := buf.String()
	base := `scenario="submit",target="` + rep.Target.URL + `"`
	require.Contains(t, text, "connector_bench_operations_total{"+base+`,outcome="ok"} `+itoa(rep.Operations.OK)+"\n")
	require.Contains(t, text, "connector_bench_errors_total{"+base+`,class="http",key="500"} `+itoa(rep.Errors.HTTP["500"])+"\n")
	require.Contains(t, text, `connector_bench_latency_bucketed_seconds_bucket{`+base+`,row="fetch",le="+Inf"} `+itoa(rep.RequestLatency[0].Count)+"\n")
	require.Contains(t, text, `connector_bench_latency_seconds{`+base+`,row="operation",quantile="0.99"} `)
	require.True(t, strings.HasSuffix(text, "\n"))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
