package loadgen

import (
	"context"
	"net"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/stretchr/testify/require"
)

// startWorkers starts n load generators on 127.0.0.1 that stop with the
// test, and returns their addresses.
func startWorkers(t *testing.T, n int, opts WorkerOptions) []string {
	t.Helper()
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ServeWorker(ctx, ln, opts) }()
		t.Cleanup(func() {
			cancel()
			require.NoError(t, <-done)
		})
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

// Three generators on loopback run one status run: the coordinator runs
// the setup (its prepared tokens go to every generator), each generator
// sends its share, and the report adds their counts and merges their
// histograms.
func TestDistributedRun(t *testing.T) {
	t.Parallel()
	f := newFake()
	base := f.start(t)
	addrs := startWorkers(t, 3, WorkerOptions{Secret: "s3cret"})
	rep, err := Run(context.Background(), Config{Target: base, Scenario: ScenarioStatus, Prepare: 30, Requests: 90,
		Concurrency: 6, Duration: time.Minute, Workers: addrs, WorkerSecret: "s3cret", Interval: 100 * time.Millisecond})
	require.NoError(t, err)
	require.Equal(t, int64(90), rep.Operations.OK, "%+v", rep.Errors)
	require.Equal(t, 30, f.count("FETCH"), "the setup ran once, on the coordinator")
	require.Equal(t, 90, f.count("QUEUEINFO/GETSTATUS"))
	f.mu.Lock()
	require.Zero(t, f.unknown, "every generator used the coordinator's tokens")
	f.mu.Unlock()
	require.Len(t, rep.Generators, 3)
	var sum int64
	for i, g := range rep.Generators {
		require.Equal(t, addrs[i], g.Address)
		require.Equal(t, int64(30), g.Operations.OK, "an equal share each")
		require.NotEmpty(t, g.Environment.GoVersion)
		sum += g.Operations.OK
	}
	require.Equal(t, rep.Operations.OK, sum)
	h, err := hdrhistogram.Decode([]byte(rep.Histograms["getstatus"]))
	require.NoError(t, err)
	require.Equal(t, int64(90), h.TotalCount())
	require.Equal(t, rep.RequestLatency[0].P99Us, h.ValueAtQuantile(99))
	var tl int64
	for _, iv := range rep.Timeline {
		tl += iv.OK
	}
	require.Equal(t, int64(90), tl, "the merged timeline adds up")
	require.Equal(t, 3*rep.Generators[0].Generator.CPUs, rep.Generator.CPUs)
}

// At a fixed rate the generators interleave one schedule: generator i
// of 3 takes the slots i, i+3, ..., so 60 operations at 300/s take 197 ms
// whatever the number of generators (each alone at 300/s would be done
// with its 20 in 63 ms).
func TestDistributedFixedRateSharesTheSchedule(t *testing.T) {
	t.Parallel()
	f := newFake()
	base := f.start(t)
	addrs := startWorkers(t, 3, WorkerOptions{})
	rep, err := Run(context.Background(), Config{Target: base, Scenario: ScenarioVersion, Rate: 300, Requests: 60, Duration: time.Minute,
		Concurrency: 30, Workers: addrs})
	require.NoError(t, err)
	require.Equal(t, int64(60), rep.Operations.OK)
	require.GreaterOrEqual(t, rep.ElapsedUs, int64(59*1000000/300), "the last slot is due at 59/300 s")
	require.NotNil(t, rep.Schedule)
	require.NotNil(t, rep.CorrectedLatency)
	for _, g := range rep.Generators {
		require.Equal(t, int64(20), g.Operations.OK)
	}
}

// The coordinator runs the setup and the cleanup once: the cancel
// scenario pauses and resumes the queue one time, whatever the number of
// generators.
func TestDistributedCancelPausesOnce(t *testing.T) {
	t.Parallel()
	f := newFake()
	base := f.start(t)
	addrs := startWorkers(t, 2, WorkerOptions{})
	rep, err := Run(context.Background(), Config{Target: base, Scenario: ScenarioCancel, Requests: 20, Duration: time.Minute,
		Concurrency: 2, Workers: addrs})
	require.NoError(t, err)
	require.Equal(t, int64(20), rep.Operations.OK, "%+v", rep.Errors)
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Equal(t, 1, f.pauses)
	require.Equal(t, 1, f.resumes)
}

// A generator refuses a plan without its secret, one whose target it
// may not load, and it needs a secret to listen beyond loopback.
func TestWorkerRefusals(t *testing.T) {
	t.Parallel()
	f := newFake()
	base := f.start(t)
	addrs := startWorkers(t, 1, WorkerOptions{Secret: "right"})
	_, err := Run(context.Background(), Config{Target: base, Requests: 3, Duration: time.Minute, Workers: addrs, WorkerSecret: "wrong"})
	require.ErrorIs(t, err, ErrWorker)
	require.ErrorContains(t, err, "HTTP 401")

	open := startWorkers(t, 1, WorkerOptions{})
	_, err = Run(context.Background(), Config{Target: "http://192.0.2.1:7000", AllowRemote: true, Requests: 3, Duration: time.Minute,
		Timeout: time.Second, Workers: open})
	require.ErrorIs(t, err, ErrWorker)
	require.ErrorContains(t, err, "not a loopback address", "the generator applies its own guard")

	_, err = Run(context.Background(), Config{Target: base, Requests: 3, Duration: time.Minute, Concurrency: 1, Workers: append(open, open[0])})
	require.ErrorContains(t, err, "at least one worker per load generator")

	ln, err := net.Listen("tcp", "0.0.0.0:0")
	require.NoError(t, err)
	defer ln.Close()
	err = ServeWorker(context.Background(), ln, WorkerOptions{})
	require.ErrorContains(t, err, "needs a secret")
}

// Merging is exact: two generators, one that saw only fast requests and
// one only slow ones, merge into the distribution of all the values (p90
// slow), not an average of their percentiles.
func TestMergeIsExact(t *testing.T) {
	t.Parallel()
	mk := func(us int64, n int) *measurements {
		h := newHDR()
		for range n {
			_ = h.RecordValue(us)
		}
		m := &measurements{start: time.Unix(100, 0), elapsed: time.Second, interval: time.Second, ok: int64(n), cpus: 2,
			rows: []rowTotal{{name: rowOperation, kind: rowOp, h: h}}, final: map[string]int64{}, samples: map[string]string{}}
		for c := range m.errors {
			m.errors[c] = map[string]int64{}
		}
		m.intervals = []intervalData{{startNs: 0, lengthNs: int64(time.Second), ok: int64(n), rows: []IntervalLatency{intervalSummary(rowOperation, h)}, enc: [][]byte{encodeHist(h)}}}
		back, err := fromWire(toWire(m))
		require.NoError(t, err)
		return back
	}
	m := mergeMeasurements([]*measurements{mk(1000, 80), mk(100000, 20)})
	h := m.rows[0].h
	require.Equal(t, int64(100), h.TotalCount())
	require.Equal(t, int64(1000), h.ValueAtQuantile(50))
	require.InDelta(t, 100000, h.ValueAtQuantile(90), 100, "the slow fifth is the tail; an average of p90s would be 50.5 ms")
	require.Equal(t, int64(100), m.ok)
	require.Equal(t, 4, m.cpus)
	require.Len(t, m.intervals, 1)
	require.Equal(t, int64(100), m.intervals[0].rows[0].Count)
	require.InDelta(t, 100000, m.intervals[0].rows[0].P90Us, 100)
}

// Cancelling the coordinator's run (Ctrl-C) stops the generators, and
// their interrupted results still make the report.
func TestDistributedInterruptKeepsTheResults(t *testing.T) {
	t.Parallel()
	f := newFake()
	base := f.start(t)
	addrs := startWorkers(t, 2, WorkerOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	f.onRequest = func(action, _ string) {
		if action == "GETVERSION" && f.count("GETVERSION") > 20 {
			cancel()
		}
	}
	start := time.Now()
	rep, err := Run(ctx, Config{Target: base, Duration: time.Minute, Concurrency: 2, Workers: addrs})
	require.NoError(t, err)
	require.Less(t, time.Since(start), 30*time.Second, "the generators stopped long before the minute")
	require.Equal(t, "interrupted", rep.EndReason)
	require.Positive(t, rep.Operations.OK)
	require.Len(t, rep.Generators, 2)
}
