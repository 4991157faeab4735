package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/stretchr/testify/require"
)

// runWithLog runs a short fixed-rate mixed load against the fake with
// 100 ms intervals and returns the report and its HDR log. The run ends
// after 120 operations (600 ms of schedule), not after a time in which a
// loaded machine might finish none.
func runWithLog(t *testing.T) (*Report, []byte) {
	t.Helper()
	f := newFake()
	f.queuedFor, f.processFor = time.Millisecond, 2*time.Millisecond
	base := f.start(t)
	var log bytes.Buffer
	rep, err := Run(context.Background(), Config{Target: base, Scenario: ScenarioMixed, Rate: 200, Requests: 120, Duration: time.Minute,
		Poll: time.Millisecond, Interval: 100 * time.Millisecond, HDRLog: &log})
	require.NoError(t, err)
	require.Positive(t, rep.Operations.OK)
	return rep, log.Bytes()
}

// The timeline covers the window, interval by interval, and adds up to
// the run's totals; the whole histograms are in the report and decode to
// the latency rows' counts.
func TestTimelineAddsUpToTheRun(t *testing.T) {
	t.Parallel()
	rep, _ := runWithLog(t)
	require.Equal(t, int64(100000), rep.IntervalUs)
	require.GreaterOrEqual(t, len(rep.Timeline), 2, "600 ms in 100 ms intervals (fewer when the ticker is starved)")
	var ok, failed, reqs, length int64
	rows := map[string]int64{}
	for i, iv := range rep.Timeline {
		require.Equal(t, length, iv.StartUs, "interval %d starts where the previous ended", i)
		ok += iv.OK
		failed += iv.Failed
		reqs += iv.Requests
		length += iv.LengthUs
		for _, l := range iv.Latency {
			rows[l.Name] += l.Count
		}
		require.GreaterOrEqual(t, iv.GeneratorCPU, 0.0)
	}
	require.Equal(t, rep.ElapsedUs, length)
	require.Equal(t, rep.Operations.OK, ok)
	require.Equal(t, rep.Operations.Failed, failed)
	require.Equal(t, rep.Requests.Count, reqs)
	all := append(append([]Latency{}, rep.RequestLatency...), rep.OperationLatency, *rep.CorrectedLatency)
	for _, l := range all {
		require.Equal(t, l.Count, rows[l.Name], l.Name)
		h, err := hdrhistogram.Decode([]byte(rep.Histograms[l.Name]))
		require.NoError(t, err, l.Name)
		require.Equal(t, l.Count, h.TotalCount(), l.Name)
		require.Equal(t, l.P99Us, h.ValueAtQuantile(99), l.Name)
	}
	require.Contains(t, rep.Histograms, "schedule-lag")
	require.Positive(t, rep.Generator.CPUSeconds)
	require.Positive(t, rep.Generator.CPUs)
	require.NotEmpty(t, rep.Environment.GoVersion)
	require.NotEmpty(t, rep.Environment.HarnessVersion)
	require.NotEmpty(t, rep.Environment.HarnessRevision)
}

// The HDR log reads back with hdrhistogram-go's log reader: one tagged
// histogram per row and interval, which add up to the report's rows.
func TestHDRLogReadsBack(t *testing.T) {
	t.Parallel()
	rep, log := runWithLog(t)
	require.Contains(t, string(log), "#[Histogram log format version 1.3]")
	require.Contains(t, string(log), "#[StartTime: ")
	rd := hdrhistogram.NewHistogramLogReader(bytes.NewReader(log))
	merged := map[string]*hdrhistogram.Histogram{}
	for {
		h, err := rd.NextIntervalHistogram()
		require.NoError(t, err)
		if h == nil {
			break
		}
		require.NotEmpty(t, h.Tag())
		if merged[h.Tag()] == nil {
			merged[h.Tag()] = newHDR()
		}
		merged[h.Tag()].Merge(h)
	}
	all := append(append([]Latency{}, rep.RequestLatency...), rep.OperationLatency, *rep.CorrectedLatency)
	for _, l := range all {
		require.NotNil(t, merged[l.Name], l.Name)
		require.Equal(t, l.Count, merged[l.Name].TotalCount(), l.Name)
		require.Equal(t, l.P99Us, merged[l.Name].ValueAtQuantile(99), l.Name)
		require.Equal(t, l.MaxUs, merged[l.Name].Max(), l.Name)
	}
}

// HdrHistogram's own HistogramLogProcessor (the Java reference
// implementation, Debian's libhdrhistogram-java) reads the log: its
// percentile distribution of a tag ends at the row's count and max.
func TestHDRLogReadByHdrHistogramJava(t *testing.T) {
	t.Parallel()
	const jar = "/usr/share/java/hdrhistogram.jar"
	if _, err := os.Stat(jar); err != nil {
		t.Fatalf("%s is missing: make test installs libhdrhistogram-java (%v)", jar, err)
	}
	java, err := exec.LookPath("java")
	require.NoError(t, err, "java is missing: make test installs default-jre-headless")
	rep, log := runWithLog(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "run.hlog")
	require.NoError(t, os.WriteFile(in, log, 0o600))
	for _, l := range []Latency{rep.RequestLatency[0], rep.OperationLatency} {
		out := filepath.Join(dir, l.Name)
		cmd := exec.Command(java, "-cp", jar, "org.HdrHistogram.HistogramLogProcessor",
			"-i", in, "-o", out, "-tag", l.Name, "-outputValueUnitRatio", "1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Run(), stderr.String())
		hgrm, err := os.ReadFile(out + ".hgrm")
		require.NoError(t, err)
		count, maxUs := parseHgrmFooter(t, hgrm)
		require.Equal(t, l.Count, count, "%s: %s", l.Name, hgrm)
		require.InDelta(t, float64(l.MaxUs), maxUs, float64(l.MaxUs)*0.001+1, l.Name)
	}
}

// parseHgrmFooter reads "#[Max = X, Total count = N]" from a .hgrm file.
func parseHgrmFooter(t *testing.T, b []byte) (int64, float64) {
	t.Helper()
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "#[Max") {
			continue
		}
		line = strings.Trim(line, "#[]")
		var count int64 = -1
		var maxV float64 = -1
		for _, part := range strings.Split(line, ",") {
			k, v, _ := strings.Cut(part, "=")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			switch k {
			case "Max":
				maxV, _ = strconv.ParseFloat(v, 64)
			case "Total count":
				count, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		return count, maxV
	}
	t.Fatalf("no #[Max ...] line in %s", b)
	return 0, 0
}

// The names of a workload's operations and clocks name latency rows, and
// each row is a tag of the HDR log, which cannot hold a space or a comma:
// a name that cannot be one is refused when the file is loaded, before
// anything is sent. An operation named "read all" (or a clock "sent,
// then") was accepted, the whole load ran, and the log could not be
// written at its end ("tag string cannot contain commas, spaces, or line
// breaks"): the run failed after the fact.
func TestWorkloadNamesAreHDRLogTags(t *testing.T) {
	t.Parallel()
	steps := "    steps:\n      - {name: a, request: action=GetVersion, mark: %s}\n      - {name: b, request: action=GetVersion, measure: %s}\n"
	for _, tc := range []struct{ op, clock, want string }{
		{"read all", "t", `load.yaml:4: operation name "read all": letters, digits, -, _ and . only`},
		{"read,all", "t", `operation name "read,all"`},
		{"read", "sent, then", `load.yaml:6: mark "sent, then": letters, digits, -, _ and . only`},
	} {
		text := "schema: connector-workload/1\nname: x\noperations:\n  - name: " + strconv.Quote(tc.op) + "\n" +
			fmt.Sprintf(steps, strconv.Quote(tc.clock), strconv.Quote(tc.clock)) + "  - name: other\n    steps:\n      - {name: c, request: action=GetVersion}\n"
		path := filepath.Join(t.TempDir(), "load.yaml")
		require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
		_, err := LoadWorkload(path)
		require.ErrorIs(t, err, ErrInvalidConfig, tc.op)
		require.ErrorContains(t, err, tc.want, tc.op)
	}

	// Every name the file may give is a tag the log takes.
	f := newFake()
	base := f.start(t)
	w := writeWorkload(t, "schema: connector-workload/1\nname: x\noperations:\n  - name: read-all_2.b\n"+fmt.Sprintf(steps, "t-0_x.y", "t-0_x.y")+
		"  - name: other\n    steps:\n      - {name: c, request: action=GetVersion}\n", nil)
	var log bytes.Buffer
	rep, err := Run(context.Background(), Config{Target: base, Workload: w, Requests: 10, Duration: time.Minute, HDRLog: &log})
	require.NoError(t, err)
	require.Equal(t, int64(10), rep.Operations.OK)
	require.Contains(t, log.String(), "Tag=operation:read-all_2.b,")
	require.Contains(t, log.String(), "Tag=t-0_x.y,")
}
