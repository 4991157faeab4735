package loadgen

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testlog"
	"github.com/connectorhq/connector/transport/aci"
)

// latencyNames returns the names of the request latencies.
func latencyNames(r *Report) []string {
	var out []string
	for _, l := range r.RequestLatency {
		out = append(out, l.Name)
	}
	return out
}

func TestScenariosEndToEnd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc      string
		scenario  Scenario
		form      Form
		format    Format
		params    string
		filter    string
		prepare   int
		setup     func(f *fakeACI)
		wantKinds []string
		check     func(t *testing.T, f *fakeACI, r *Report)
	}{
		{
			desc: "version path xml (the default)", scenario: "", form: FormPath, format: FormatXML,
			wantKinds: []string{"getversion"},
			check: func(t *testing.T, f *fakeACI, r *Report) {
				require.Equal(t, "version", r.Config.Scenario)
				require.Zero(t, f.count("FETCH"), "the default queues nothing")
				require.Equal(t, 41, f.count("GETVERSION"), "one for the report, one per operation")
			},
		},
		{
			desc: "submit path xml", scenario: ScenarioSubmit, form: FormPath, format: FormatXML,
			params:    "ConfigSection=MyTask&Url=http%3A%2F%2F127.0.0.1%2F%3Fa%3Db",
			wantKinds: []string{"fetch"},
			check: func(t *testing.T, f *fakeACI, r *Report) {
				require.Equal(t, 40, f.count("FETCH"))
				f.mu.Lock()
				defer f.mu.Unlock()
				require.Equal(t, "MyTask", f.params["configsection"])
				require.Equal(t, "http://127.0.0.1/?a=b", f.params["url"], "params are decoded and re-encoded")
				require.Equal(t, "Synchronize", f.params["fetchaction"])
				require.Equal(t, f.n, f.forms["path"])
			},
		},
		{
			desc: "status query simplejson", scenario: ScenarioStatus, form: FormQuery, format: FormatSimpleJSON,
			prepare: 40, wantKinds: []string{"getstatus"},
			check: func(t *testing.T, f *fakeACI, r *Report) {
				require.Equal(t, 40, f.count("FETCH"), "prepare submits -prepare actions, outside the load")
				require.GreaterOrEqual(t, f.count("QUEUEINFO/GETSTATUS"), int(r.Operations.OK))
				f.mu.Lock()
				defer f.mu.Unlock()
				require.Zero(t, f.unknown, "every token survives the query encoding")
				require.Equal(t, f.n, f.forms["query"])
			},
		},
		{
			desc: "status-list post badgerfish", scenario: ScenarioStatusList, form: FormPost, format: FormatJSON,
			filter: "State=finished&MaxResults=10", prepare: 5, wantKinds: []string{"getstatus-list"},
			check: func(t *testing.T, f *fakeACI, r *Report) {
				f.mu.Lock()
				defer f.mu.Unlock()
				require.Equal(t, "finished", f.params["state"])
				require.Equal(t, "10", f.params["maxresults"])
				_, hasToken := f.params["token"]
				require.False(t, hasToken)
				require.Equal(t, f.n, f.forms["post"])
			},
		},
		{
			desc: "mixed path simplejson", scenario: ScenarioMixed, form: FormPath, format: FormatSimpleJSON,
			setup:     func(f *fakeACI) { f.queuedFor, f.processFor = 2*time.Millisecond, 5*time.Millisecond },
			wantKinds: []string{"fetch", "getstatus"},
			check: func(t *testing.T, f *fakeACI, r *Report) {
				require.NotNil(t, r.Actions)
				require.Equal(t, r.Operations.OK, r.Actions.Final["Finished"])
				require.Equal(t, r.Operations.OK, r.Actions.Completed)
				// Submit to Finished takes at least queuedFor+processFor.
				require.GreaterOrEqual(t, r.OperationLatency.MinUs, int64(7000))
				require.Greater(t, r.RequestLatency[1].Count, r.RequestLatency[0].Count, "several polls per action")
			},
		},
		{
			desc: "cancel post xml", scenario: ScenarioCancel, form: FormPost, format: FormatXML,
			wantKinds: []string{"fetch", "cancel", "getstatus"},
			check: func(t *testing.T, f *fakeACI, r *Report) {
				f.mu.Lock()
				defer f.mu.Unlock()
				require.Equal(t, 1, f.pauses)
				require.Equal(t, 1, f.resumes)
				require.False(t, f.paused, "the queue is resumed at the end")
				require.Zero(t, f.unknown)
			},
		},
		{
			desc: "stop query xml", scenario: ScenarioStop, form: FormQuery, format: FormatXML,
			params:    "Long=true",
			setup:     func(f *fakeACI) { f.queuedFor, f.stopDelay = time.Millisecond, 3*time.Millisecond },
			wantKinds: []string{"fetch", "getstatus", "stop"},
			check: func(t *testing.T, f *fakeACI, r *Report) {
				require.NotNil(t, r.StopLatency)
				require.Equal(t, r.Operations.OK, r.StopLatency.Count)
				require.GreaterOrEqual(t, r.StopLatency.MinUs, int64(3000), "Stopped is read no earlier than the server's stop delay")
				require.Equal(t, r.Operations.OK, r.Actions.Final["Stopped"])
				require.Equal(t, r.Operations.OK, r.RequestLatency[2].Count, "one Stop per operation")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			f := newFake()
			if tc.setup != nil {
				tc.setup(f)
			}
			base := f.start(t)
			rep, err := Run(context.Background(), Config{
				Target: base, Scenario: tc.scenario, Form: tc.form, Format: tc.format,
				Requests: 40, Duration: time.Minute, Concurrency: 3, Params: tc.params, Filter: tc.filter,
				Prepare: tc.prepare, Poll: time.Millisecond,
			})
			require.NoError(t, err)
			require.Equal(t, tc.wantKinds, latencyNames(rep))
			require.Equal(t, int64(40), rep.Operations.OK, "errors: %+v", rep.Errors)
			require.Zero(t, rep.Operations.Failed)
			require.Zero(t, rep.Operations.Unfinished)
			require.True(t, rep.Passed)
			require.Equal(t, "requests", rep.EndReason)
			require.Equal(t, "fake ACI", rep.Target.Product)
			require.Equal(t, "1.2.3", rep.Target.Version)
			require.Equal(t, rep.Operations.OK, rep.OperationLatency.Count)
			// The only warning a scenario may bring is a saturated generator:
			// the fake server runs in the generator's process, and a loaded
			// machine (GOMAXPROCS=1 beside a CPU hog) saturates it.
			for _, w := range rep.Warnings {
				require.True(t, rep.Generator.Saturated && strings.Contains(w, "saturated"), "warning: %s", w)
			}
			f.mu.Lock()
			require.Equal(t, map[string]int{strings.TrimPrefix(base, "http://"): f.n}, f.hosts, "Host header is the target's")
			f.mu.Unlock()
			tc.check(t, f, rep)
		})
	}
}

func TestRequestsBoundEndsTheRun(t *testing.T) {
	t.Parallel()
	for _, rate := range []float64{0, 500} {
		f := newFake()
		base := f.start(t)
		start := time.Now()
		rep, err := Run(context.Background(), Config{Target: base, Scenario: ScenarioSubmit, Requests: 25, Duration: time.Minute, Concurrency: 4, Rate: rate})
		require.NoError(t, err)
		require.Less(t, time.Since(start), 30*time.Second, "rate %v", rate)
		require.Equal(t, "requests", rep.EndReason)
		require.Equal(t, int64(25), rep.Operations.OK)
		require.Equal(t, 25, f.count("FETCH"))
		require.Equal(t, int64(25), rep.Requests.Count)
		require.Positive(t, rep.ElapsedUs)
	}
}

func TestDurationEndsTheRun(t *testing.T) {
	t.Parallel()
	f := newFake()
	base := f.start(t)
	start := time.Now()
	rep, err := Run(context.Background(), Config{Target: base, Scenario: ScenarioStatusList, Duration: 200 * time.Millisecond, Concurrency: 2})
	require.NoError(t, err)
	require.Less(t, time.Since(start), 5*time.Second)
	require.Equal(t, "duration", rep.EndReason)
	require.Equal(t, int64(200000), rep.ElapsedUs)
	require.InDelta(t, float64(rep.Operations.OK)/0.2, rep.Operations.PerSecond, 0.01)
}

// A fixed-rate run ends when its schedule leaves the window: 20/s for
// 500 ms offers the slots 0, 50, ..., 450 ms, and the workers are done
// before the deadline. That is still the end of -duration (with or
// without a -requests bound the schedule never reaches), and the rates
// are over the scheduled span, Duration, not the shorter wall time.
func TestFixedRateEndsByDuration(t *testing.T) {
	t.Parallel()
	for _, requests := range []int64{0, 1000} {
		f := newFake()
		base := f.start(t)
		rep, err := Run(context.Background(), Config{Target: base, Scenario: ScenarioStatusList,
			Rate: 20, Requests: requests, Duration: 500 * time.Millisecond})
		require.NoError(t, err)
		require.Equal(t, "duration", rep.EndReason, "requests %d", requests)
		require.Equal(t, int64(500000), rep.ElapsedUs, "requests %d", requests)
		require.Positive(t, rep.Operations.OK)
		require.InDelta(t, float64(rep.Operations.OK+rep.Operations.Failed)/0.5, rep.Operations.PerSecond, 0.01)
		require.InDelta(t, float64(rep.Requests.Count)/0.5, rep.Requests.PerSecond, 0.01)
		require.NotNil(t, rep.Schedule)
		require.LessOrEqual(t, rep.Schedule.AchievedRate, 20.0, "at most 10 slots in 0.5 s")
	}
}

func TestMixedActionThatNeverEndsIsUnfinished(t *testing.T) {
	t.Parallel()
	f := newFake()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var polls atomic.Int32
	f.onRequest = func(_, qa string) {
		if qa == "GETSTATUS" && polls.Add(1) == 3 {
			cancel()
		}
	}
	base := f.start(t)
	rep, err := Run(ctx, Config{Target: base, Scenario: ScenarioMixed, Params: "Long=true",
		Duration: time.Minute, Concurrency: 1, Poll: time.Millisecond})
	require.NoError(t, err)
	require.Equal(t, "interrupted", rep.EndReason)
	require.Zero(t, rep.Operations.OK)
	require.Zero(t, rep.Operations.Failed)
	require.Equal(t, int64(1), rep.Operations.Unfinished, "the action was cut by the end of the run")
	require.False(t, rep.Passed)
	require.Contains(t, rep.Warnings, "no operation succeeded")
}

func TestMixedCountsFailedActions(t *testing.T) {
	t.Parallel()
	f := newFake()
	base := f.start(t)
	rep, err := Run(context.Background(), Config{Target: base, Scenario: ScenarioMixed, FetchAction: "Fail",
		Requests: 5, Duration: time.Minute, Concurrency: 2, Poll: time.Millisecond})
	require.NoError(t, err)
	require.Zero(t, rep.Operations.OK)
	require.Equal(t, int64(5), rep.Operations.Failed)
	require.Equal(t, rep.Operations.Failed, rep.Errors.Check["final-Error"])
	require.Equal(t, rep.Operations.Failed, rep.Actions.Final["Error"])
	require.Equal(t, 1.0, rep.ErrorRate)
}

// The fake stalls one request for 200 ms. With one operation in flight at
// 250/s, the ~50 operations scheduled during the stall start late: their
// corrected latencies (from the intended start) show the stall, while
// their service times do not. The run is bounded by Requests, so that a
// busy machine changes no count.
func TestCoordinatedOmissionCorrection(t *testing.T) {
	t.Parallel()
	f := newFake()
	f.stallAt, f.stall = 20, 200*time.Millisecond
	base := f.start(t)
	rep, err := Run(context.Background(), Config{Target: base, Scenario: ScenarioStatusList,
		Rate: 250, Concurrency: 1, Requests: 200, Duration: time.Minute})
	require.NoError(t, err)
	require.Equal(t, int64(200), rep.Operations.OK)
	unc, cor := rep.OperationLatency, rep.CorrectedLatency
	require.NotNil(t, cor)
	require.GreaterOrEqual(t, unc.MaxUs, int64(200000), "the stalled request itself")
	require.GreaterOrEqual(t, cor.P99Us, int64(150000), "corrected latencies show it: %+v", cor)
	require.GreaterOrEqual(t, cor.P90Us, unc.P90Us)
	// Service times hide the stall: of the 25 operations due during its
	// first 100 ms, only the stalled one took 100 ms to serve, while the
	// corrected latencies, counted from when each was due, show them all.
	// (Counted, not read off a percentile: on a loaded machine other
	// operations are slow too, in both measures alike.)
	slow := func(row string) int64 {
		h, err := hdrhistogram.Decode([]byte(rep.Histograms[row]))
		require.NoError(t, err, row)
		var n int64
		for _, b := range h.Distribution() {
			if b.From >= 100000 {
				n += b.Count
			}
		}
		return n
	}
	require.GreaterOrEqual(t, slow(cor.Name)-slow(unc.Name), int64(20),
		"service times hide the stall: %+v, corrected: %+v", unc, cor)
	require.NotNil(t, rep.Schedule)
	require.False(t, rep.Schedule.KeptUp)
	require.Greater(t, rep.Schedule.Late, int64(10))
	require.GreaterOrEqual(t, rep.Schedule.LagMaxUs, int64(150000))
	require.NotEmpty(t, rep.Warnings)
}

func TestFixedRateKeepsSchedule(t *testing.T) {
	t.Parallel()
	f := newFake()
	base := f.start(t)
	rep, err := Run(context.Background(), Config{Target: base, Rate: 100, Requests: 30, Duration: time.Minute})
	require.NoError(t, err)
	require.Equal(t, 16, rep.Config.Concurrency, "the pool is sized from the rate")
	require.Equal(t, int64(30), rep.Operations.OK)
	// The 30th slot is due at 290 ms: an open loop never runs ahead of
	// its schedule.
	require.GreaterOrEqual(t, rep.ElapsedUs, int64(290000))
	require.LessOrEqual(t, rep.Schedule.AchievedRate, 30/0.29)
}

func TestErrorClassification(t *testing.T) {
	t.Parallel()
	f := newFake()
	f.fail = func(n int, key string) (int, string) {
		if key != "FETCH" {
			return 0, ""
		}
		switch {
		case n%5 == 0:
			return 500, "boom"
		case n%7 == 0:
			return 200, "<html>not ACI</html>"
		case n%11 == 0:
			return 200, "<autnresponse><action>FETCH</action><response>ERROR</response><responsedata/></autnresponse>"
		case n%3 == 0:
			return 200, "<autnresponse><action>FETCH</action><response>ERROR</response><responsedata><error><errorcode>ERRORQUEUEFULL</errorcode></error></responsedata></autnresponse>"
		case n%13 == 0:
			return 200, "<autnresponse><action>FETCH</action><response>SUCCESS</response><responsedata/></autnresponse>"
		}
		return 0, ""
	}
	base := f.start(t)
	rep, err := Run(context.Background(), Config{Target: base, Scenario: ScenarioSubmit, Requests: 400, Concurrency: 4})
	require.NoError(t, err)
	e := rep.Errors
	require.Positive(t, e.HTTP["500"])
	require.Positive(t, e.ACI["ERRORQUEUEFULL"])
	require.Positive(t, e.ACI["UNKNOWN"])
	require.Positive(t, e.Protocol["malformed"])
	require.Positive(t, e.Protocol["no-token"])
	require.Empty(t, e.Transport)
	sum := e.HTTP["500"] + e.ACI["ERRORQUEUEFULL"] + e.ACI["UNKNOWN"] + e.Protocol["malformed"] + e.Protocol["no-token"]
	require.Equal(t, e.Total, sum)
	require.Equal(t, rep.Operations.Failed, e.Total)
	require.Equal(t, int64(400), rep.Operations.OK+rep.Operations.Failed)
	require.Equal(t, e.Total-e.Protocol["no-token"], rep.RequestLatency[0].Errors, "a SUCCESS without token is a good request but a failed operation")
	require.Contains(t, e.Samples["http/500"], "boom")
	require.False(t, rep.Passed)
	require.InDelta(t, float64(e.Total)/400, rep.ErrorRate, 1e-9)

	// The same run passes with a limit above its error rate.
	f2 := newFake()
	f2.fail = f.fail
	rep, err = Run(context.Background(), Config{Target: f2.start(t), Scenario: ScenarioSubmit, Requests: 100, Concurrency: 2, MaxErrorRate: 0.9})
	require.NoError(t, err)
	require.True(t, rep.Passed)
}

func TestRefusedConnectionsAreTransportErrors(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	rep, err := Run(context.Background(), Config{Target: "http://" + addr, Requests: 3, Duration: time.Minute, Concurrency: 2})
	require.NoError(t, err)
	require.Equal(t, int64(3), rep.Errors.Transport["refused"])
	require.Equal(t, int64(3), rep.Errors.Total)
	require.Zero(t, rep.Operations.OK)
	require.False(t, rep.Passed)
	require.Contains(t, rep.Target.Error, "refused")
}

func TestCancelResumesQueueWhenInterrupted(t *testing.T) {
	t.Parallel()
	f := newFake()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cancels atomic.Int32
	f.onRequest = func(action, qa string) {
		if qa == "CANCEL" && cancels.Add(1) == 5 {
			cancel() // Ctrl-C in the middle of the load
		}
	}
	base := f.start(t)
	rep, err := Run(ctx, Config{Target: base, Scenario: ScenarioCancel, Duration: time.Minute, Concurrency: 2})
	require.NoError(t, err)
	require.Equal(t, "interrupted", rep.EndReason)
	require.Less(t, rep.ElapsedUs, int64(time.Minute/time.Microsecond))
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Equal(t, 1, f.pauses)
	require.Equal(t, 1, f.resumes)
	require.False(t, f.paused)
}

func TestCancelResumesQueueAfterErrors(t *testing.T) {
	t.Parallel()
	f := newFake()
	f.fail = func(_ int, key string) (int, string) {
		if key == "FETCH" {
			return 503, "busy"
		}
		return 0, ""
	}
	base := f.start(t)
	rep, err := Run(context.Background(), Config{Target: base, Scenario: ScenarioCancel, Requests: 4, Duration: time.Minute, Concurrency: 2})
	require.NoError(t, err)
	require.Equal(t, int64(4), rep.Errors.HTTP["503"])
	require.False(t, rep.Passed)
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Equal(t, 1, f.resumes)
	require.False(t, f.paused)
}

func TestCancelSetupFailureStillResumes(t *testing.T) {
	t.Parallel()
	f := newFake()
	f.fail = func(_ int, key string) (int, string) {
		if key == "QUEUEINFO/PAUSE" {
			return 200, "<autnresponse><response>ERROR</response><responsedata><error><errorcode>ERRORPARAMINVALID</errorcode></error></responsedata></autnresponse>"
		}
		return 0, ""
	}
	base := f.start(t)
	rep, err := Run(context.Background(), Config{Target: base, Scenario: ScenarioCancel, Duration: time.Second})
	require.ErrorIs(t, err, ErrSetup)
	require.ErrorContains(t, err, "ERRORPARAMINVALID")
	require.Nil(t, rep)
	require.Equal(t, 1, f.count("QUEUEINFO/RESUME"), "a pause that may have happened is undone")
	require.Zero(t, f.count("FETCH"))
}

func TestCancelResumeFailureIsReported(t *testing.T) {
	t.Parallel()
	f := newFake()
	f.fail = func(_ int, key string) (int, string) {
		if key == "QUEUEINFO/RESUME" {
			return 500, "no"
		}
		return 0, ""
	}
	base := f.start(t)
	rep, err := Run(context.Background(), Config{Target: base, Scenario: ScenarioCancel, Requests: 3, Duration: time.Minute})
	require.ErrorIs(t, err, ErrCleanup)
	require.NotNil(t, rep)
	require.Equal(t, int64(3), rep.Operations.OK)
	require.Contains(t, strings.Join(rep.Warnings, "\n"), "step resume (action=QueueInfo&QueueAction=Resume")
}

func TestStatusPrepareFailure(t *testing.T) {
	t.Parallel()
	f := newFake()
	f.fail = func(n int, key string) (int, string) {
		if key == "FETCH" && n > 5 {
			return 200, "<autnresponse><response>ERROR</response><responsedata><error><errorcode>ERRORQUEUEFULL</errorcode></error></responsedata></autnresponse>"
		}
		return 0, ""
	}
	base := f.start(t)
	_, err := Run(context.Background(), Config{Target: base, Scenario: ScenarioStatus, Prepare: 20, Concurrency: 1})
	require.ErrorIs(t, err, ErrSetup)
	require.ErrorContains(t, err, "ERRORQUEUEFULL")
}

func TestStopOfActionThatEndsFirstIsACheckFailure(t *testing.T) {
	t.Parallel()
	f := newFake()
	base := f.start(t) // actions finish at once: there is nothing to stop
	rep, err := Run(context.Background(), Config{Target: base, Scenario: ScenarioStop, Requests: 5, Concurrency: 1, Poll: time.Millisecond})
	require.NoError(t, err)
	require.Equal(t, int64(5), rep.Errors.Check["ended-before-stop-Finished"])
	require.Contains(t, rep.Errors.Samples["check/ended-before-stop-Finished"], "runs longer")
	require.Zero(t, f.count("QUEUEINFO/STOP"))
}

func TestProgressLines(t *testing.T) {
	t.Parallel()
	f := newFake()
	base := f.start(t)
	var buf testlog.Buffer
	start := time.Now()
	_, err := Run(context.Background(), Config{Target: base, Duration: 1500 * time.Millisecond, Concurrency: 1, Progress: &buf})
	require.NoError(t, err)
	wall := time.Since(start)
	out := buf.String()
	require.Contains(t, out, "requests")
	require.Contains(t, out, "req/s")
	require.Contains(t, out, "errors")
	require.Contains(t, out, "p99")
	lines := strings.Count(out, "\n")
	require.GreaterOrEqual(t, lines, 1, "a line after the first second: %q", out)
	require.LessOrEqual(t, float64(lines), wall.Seconds(), "one line a second: %q", out)
}

func TestLoopbackGuard(t *testing.T) {
	t.Parallel()
	fixed := func(addrs ...string) func(context.Context, string) ([]netip.Addr, error) {
		return func(context.Context, string) ([]netip.Addr, error) {
			var out []netip.Addr
			for _, a := range addrs {
				out = append(out, netip.MustParseAddr(a))
			}
			return out, nil
		}
	}
	tests := []struct {
		desc     string
		url      string
		remote   bool
		lookup   func(context.Context, string) ([]netip.Addr, error)
		wantAddr string
		wantErr  error
	}{
		{desc: "ipv4 loopback", url: "http://127.0.0.1:7000", wantAddr: "127.0.0.1:7000"},
		{desc: "other 127/8", url: "http://127.0.0.2:7000/", wantAddr: "127.0.0.2:7000"},
		{desc: "ipv6 loopback", url: "http://[::1]:7000", wantAddr: "[::1]:7000"},
		{desc: "default port", url: "http://127.0.0.1", wantAddr: "127.0.0.1:80"},
		{desc: "name to loopback", url: "http://aci.test:7000", lookup: fixed("127.0.0.1", "::1"), wantAddr: "127.0.0.1:7000"},
		{desc: "test-net", url: "http://192.0.2.1:7000", wantErr: ErrRemoteTarget},
		{desc: "mapped test-net", url: "http://[::ffff:192.0.2.1]:7000", wantErr: ErrRemoteTarget},
		{desc: "unspecified", url: "http://0.0.0.0:7000", wantErr: ErrRemoteTarget},
		{desc: "name to remote", url: "http://aci.test:7000", lookup: fixed("10.1.2.3"), wantErr: ErrRemoteTarget},
		{desc: "name to loopback and remote", url: "http://aci.test:7000", lookup: fixed("127.0.0.1", "192.0.2.1"), wantErr: ErrRemoteTarget},
		{desc: "allow remote", url: "http://192.0.2.1:7000", remote: true, wantAddr: "192.0.2.1:7000"},
		{desc: "allow remote name, not resolved", url: "http://aci.test:7000", remote: true,
			lookup: func(context.Context, string) ([]netip.Addr, error) { panic("resolved") }, wantAddr: "aci.test:7000"},
		{desc: "path", url: "http://127.0.0.1:7000/aci", wantErr: ErrInvalidConfig},
		{desc: "query", url: "http://127.0.0.1:7000/?a=b", wantErr: ErrInvalidConfig},
		{desc: "scheme", url: "ftp://127.0.0.1:7000", wantErr: ErrInvalidConfig},
		{desc: "no host", url: "http://:7000", wantErr: ErrInvalidConfig},
		{desc: "bad port", url: "http://127.0.0.1:99999", wantErr: ErrInvalidConfig},
		{desc: "user", url: "http://u:p@127.0.0.1:7000", wantErr: ErrInvalidConfig},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			tg, err := checkTarget(context.Background(), tc.url, tc.remote, tc.lookup)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantAddr, tg.addr)
		})
	}
}

// A target URL with a password is refused without printing it: the error
// quoted the URL as given, so `connector bench http://admin:PASSWORD@host`
// wrote the password to stderr (a terminal, a CI log). Whatever else is
// wrong with such a URL, its error never holds the password.
func TestTargetErrorsHideThePassword(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"http://admin:s3cret@127.0.0.1:7000",
		"http://admin:s3cret@127.0.0.1:7000/aci?x=1",
		"ftp://admin:s3cret@127.0.0.1:7000",
		"http://admin:s3cret@127.0.0.1:99999",
		"http://admin:s3cret@127.0.0.1:70%zz",
		"http://admin:s3cret@[::1",
		"http://admin:s3cret@:7000",
		"http://:s3cret@127.0.0.1:7000",
	} {
		_, err := checkTarget(context.Background(), u, false, nil)
		require.ErrorIs(t, err, ErrInvalidConfig, u)
		require.NotContains(t, err.Error(), "s3cret", u)
		_, err = Run(context.Background(), Config{Target: u, Duration: 50 * time.Millisecond})
		require.Error(t, err, u)
		require.NotContains(t, err.Error(), "s3cret", u)
		_, err = Describe(context.Background(), Config{Target: u})
		require.Error(t, err, u)
		require.NotContains(t, err.Error(), "s3cret", u)
	}
}

// Run refuses a non-loopback target before any connection, and
// AllowRemote lets it dial; the Dial hook stands in for the network so
// that nothing leaves the machine.
func TestRunLoopbackGuardDialsNothing(t *testing.T) {
	t.Parallel()
	var dials atomic.Int32
	var dialled atomic.Value
	dial := func(addr string) (net.Conn, error) {
		dials.Add(1)
		dialled.Store(addr)
		return nil, errors.New("test: no network")
	}
	_, err := Run(context.Background(), Config{Target: "http://192.0.2.1:7000", Dial: dial, Duration: 50 * time.Millisecond})
	require.ErrorIs(t, err, ErrRemoteTarget)
	require.Zero(t, dials.Load(), "refused before any connection attempt")

	rep, err := Run(context.Background(), Config{Target: "http://192.0.2.1:7000", AllowRemote: true, Dial: dial,
		Requests: 2, Duration: time.Minute, Concurrency: 1})
	require.NoError(t, err)
	require.Positive(t, dials.Load())
	require.Equal(t, "192.0.2.1:7000", dialled.Load())
	require.True(t, rep.Config.AllowRemote)
	require.Equal(t, int64(2), rep.Errors.Transport["other"])
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		cfg  Config
		want string
	}{
		{"negative duration", Config{Duration: -time.Second}, "duration"},
		{"unknown scenario", Config{Scenario: "soak"}, "scenario"},
		{"negative rate", Config{Rate: -1}, "rate"},
		{"form", Config{Form: "multipart"}, "form"},
		{"format", Config{Format: "yaml"}, "format"},
		{"params sets action", Config{Params: "action=GetVersion"}, "action"},
		{"params sets fetchaction", Config{Params: "fetchaction=Collect"}, "fetchaction is set by the harness"},
		{"filter sets token", Config{Filter: "Token=x"}, "Token"},
		{"bad escape", Config{Params: "a%zz=1"}, "params"},
		{"empty name", Config{Params: "=1"}, "no parameter name"},
		{"error rate", Config{MaxErrorRate: 2}, "max error rate"},
		{"negative requests", Config{Requests: -1}, "requests"},
		{"negative poll", Config{Poll: -1}, "poll"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := Run(context.Background(), tc.cfg)
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	s, err := Config{}.resolve()
	require.NoError(t, err)
	require.Equal(t, DefaultTarget, s.Target)
	require.Equal(t, ScenarioVersion, s.Scenario)
	require.Equal(t, DefaultDuration, s.Duration)
	require.Equal(t, DefaultConcurrency, s.workers)
	require.Equal(t, FormPath, s.Form)
	require.Equal(t, FormatXML, s.Format)
	require.Equal(t, 0.01, s.maxErrors)
	s, err = Config{Scenario: ScenarioStatus, MaxErrorRate: -1}.resolve()
	require.NoError(t, err)
	require.Equal(t, DefaultPrepare, s.Prepare)
	require.Zero(t, s.maxErrors)
	s, err = Config{Scenario: ScenarioMixed, Rate: 2000}.resolve()
	require.NoError(t, err)
	require.Equal(t, 2000, s.workers)
}

func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFake()
	f.fail = func(n int, key string) (int, string) {
		if key == "FETCH" && n%4 == 0 {
			return 502, "bad gateway"
		}
		return 0, ""
	}
	base := f.start(t)
	rep, err := Run(context.Background(), Config{Target: base, Scenario: ScenarioMixed, Rate: 200, Duration: 200 * time.Millisecond, Poll: time.Millisecond})
	require.NoError(t, err)
	require.NotNil(t, rep.CorrectedLatency)
	var buf bytes.Buffer
	require.NoError(t, WriteJSON(&buf, rep))
	require.Contains(t, buf.String(), `"p99_9_us"`)
	got, err := ReadJSON(&buf)
	require.NoError(t, err)
	require.Equal(t, rep, got)

	_, err = ReadJSON(strings.NewReader(`{"schema":"other/9"}`))
	require.ErrorContains(t, err, "schema")
}

func TestTablePrints(t *testing.T) {
	t.Parallel()
	f := newFake()
	base := f.start(t)
	rep, err := Run(context.Background(), Config{Target: base, Scenario: ScenarioStop, Params: "Long=true",
		Rate: 50, Requests: 3, Duration: time.Minute, Poll: time.Millisecond})
	require.NoError(t, err)
	rep.Errors.ACI["ERRORQUEUEFULL"] = 3
	rep.Errors.Samples["aci/ERRORQUEUEFULL"] = "queue full"
	var buf bytes.Buffer
	require.NoError(t, WriteTable(&buf, rep))
	out := buf.String()
	for _, want := range []string{
		"fake ACI 1.2.3", base, "scenario", "stop (fixed rate 50/s", "params \"Long=true\"", "ended by -requests",
		"operations/s", "requests/s", "actions/s", "Stopped",
		"p50", "p90", "p99", "p99.9", "max", "fetch", "getstatus", "stop", "operation-corrected", "stop-to-stopped",
		"schedule", "aci ERRORQUEUEFULL", "queue full", "PASS",
	} {
		require.Contains(t, out, want)
	}
	// Columns are aligned: in every latency row the count starts under
	// the "count" heading.
	lines := strings.Split(out, "\n")
	col := -1
	rows := 0
	for _, line := range lines {
		if strings.HasPrefix(line, "latency ") {
			col = strings.Index(line, "count")
			continue
		}
		if col < 0 || line == "" {
			continue
		}
		if strings.HasPrefix(line, "schedule") {
			break
		}
		rows++
		require.Greater(t, len(line), col, "line %q", line)
		require.Equal(t, byte(' '), line[col-1], "line %q", line)
		require.NotEqual(t, byte(' '), line[col], "line %q", line)
	}
	require.Equal(t, 6, rows, "fetch, getstatus, stop, operation, operation-corrected, stop-to-stopped")
}

func TestAppendEscapeMatchesQueryEscape(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "abc", "a b+c/d=e&f", "++//==", "é\x00\xff~-_.", "http://127.0.0.1/?a=b"} {
		require.Equal(t, url.QueryEscape(s), string(aci.AppendQueryEscape(nil, s)))
	}
}

func TestParseFraction(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]float64{"0.01": 0.01, "1%": 0.01, " 2.5 % ": 0.025, "0": 0, "100%": 1, "1": 1} {
		got, err := ParseFraction(in)
		require.NoError(t, err, in)
		require.InDelta(t, want, got, 1e-12, in)
	}
	for _, in := range []string{"", "x", "101%", "-1", "2", "NaN", "%"} {
		_, err := ParseFraction(in)
		require.Error(t, err, in)
	}
}

// The plan names the target, what every operation sends in the form it
// goes on the wire, and what the run leaves on the server; Run writes
// it before it sends anything.
func TestPlan(t *testing.T) {
	t.Parallel()
	p, err := Describe(context.Background(), Config{})
	require.NoError(t, err)
	require.False(t, p.Submits)
	require.Equal(t, "127.0.0.1:7000", p.Address)
	require.Contains(t, p.String(), "GET /action=GetVersion\n")
	require.Contains(t, p.String(), "queues no action")

	p, err = Describe(context.Background(), Config{Scenario: ScenarioCancel, Params: "TaskSections=Small", Rate: 50,
		Duration: 5 * time.Second, Form: FormPost, Format: FormatSimpleJSON})
	require.NoError(t, err)
	require.True(t, p.Submits)
	out := p.String()
	require.Contains(t, out, "POST / action=QueueInfo&QueueAction=Pause&QueueName=fetch&ResponseFormat=simplejson")
	require.Contains(t, out, "POST / action=Fetch&FetchAction=Synchronize&TaskSections=Small&ResponseFormat=simplejson")
	require.Contains(t, out, "at most 250)", "50/s for 5 s")
	require.Contains(t, out, "QueueAction=Resume")

	p, err = Describe(context.Background(), Config{Scenario: ScenarioStatus, Params: "TaskSections=Small", Prepare: 7})
	require.NoError(t, err)
	require.True(t, p.Submits)
	require.Contains(t, p.String(), "queues 7 actions on the server before the load")

	_, err = Describe(context.Background(), Config{Target: "http://192.0.2.1:7000"})
	require.ErrorIs(t, err, ErrRemoteTarget)

	f := newFake()
	base := f.start(t)
	var buf testlog.Buffer
	var early atomic.Int64
	f.onRequest = func(string, string) {
		if buf.String() == "" {
			early.Add(1)
		}
	}
	_, err = Run(context.Background(), Config{Target: base, Requests: 3, Plan: &buf})
	require.NoError(t, err)
	require.Contains(t, buf.String(), "target    "+base)
	require.Zero(t, early.Load(), "the plan is written before the first request")
}

// OnLoad brackets the load alone: the status scenario's prepared submits
// come before its first call, the cancel scenario's resume after its
// second, and what the server does in between is what the report counts.
func TestOnLoadBracketsTheLoadAlone(t *testing.T) {
	t.Parallel()
	for _, sc := range []Scenario{ScenarioStatus, ScenarioCancel} {
		f := newFake()
		base := f.start(t)
		type seen struct{ fetch, status, resume int }
		read := func() seen {
			return seen{f.count("FETCH"), f.count("QUEUEINFO/GETSTATUS"), f.count("QUEUEINFO/RESUME")}
		}
		var calls []bool
		var at [2]seen
		rep, err := Run(context.Background(), Config{Target: base, Scenario: sc, Prepare: 50, Requests: 40, Duration: time.Minute, Concurrency: 4,
			Params: "TaskSections=Small", OnLoad: func(start bool) {
				if start {
					at[0] = read()
				} else {
					at[1] = read()
				}
				calls = append(calls, start)
			}})
		require.NoError(t, err, sc)
		require.Equal(t, []bool{true, false}, calls, "%s: called once as the load starts, once as it ends", sc)
		switch sc {
		case ScenarioStatus:
			require.Equal(t, seen{fetch: 50}, at[0], "status: every prepared submit is before the load")
			require.Equal(t, seen{fetch: 50, status: 40}, at[1], "status: the load's 40 GetStatus, no more")
			require.Equal(t, int64(40), rep.Requests.Count)
		case ScenarioCancel:
			require.Zero(t, at[0].fetch)
			require.Equal(t, 40, at[1].fetch)
			require.Zero(t, at[1].resume, "cancel: the resume is the cleanup's, after the load")
			require.Equal(t, 1, read().resume)
		}
	}
}
