// Package loadgen is a load harness for ACI servers: this connector or
// any IDOL-style server that speaks the ACI HTTP protocol. It sends a
// workload's requests (a built-in scenario, or a workload file: weighted
// operations of templated ACI requests, see Workload) to one base URL for
// a bounded time and reports throughput, latency percentiles (HDR
// histograms), a timeline and errors by kind: as a table (WriteTable),
// JSON (WriteJSON), a self-contained HTML page with charts (WriteHTML),
// HdrHistogram's interval log (Config.HDRLog) and a Prometheus snapshot
// (WriteMetrics). Compare tells whether runs differ beyond their noise;
// Config.Workers and ServeWorker drive several load generators as one
// run, merging their histograms exactly. The connector bench command is
// a thin wrapper over Run; the benchmark suite calls Run in process.
// docs/bench-harness.md is the user guide and the reference of the JSON
// report and of the workload format.
//
//	rep, err := loadgen.Run(ctx, loadgen.Config{
//		Target:   "http://127.0.0.1:7000",
//		Scenario: loadgen.ScenarioMixed,
//		Params:   "ConfigSection=MyTask",
//		Rate:     200,
//		Duration: 30 * time.Second,
//	})
//	if err != nil { ... }
//	_ = loadgen.WriteTable(os.Stdout, rep)
//
// # Safety
//
// Describe returns the plan of a run (the target, the address dialled,
// every request of an operation as it goes on the wire, what the run
// leaves on the server) without sending anything; Run writes the same
// plan to Config.Plan before its first request.
//
// Every request goes to the one target host; redirects are not followed.
// Unless Config.AllowRemote is set, Run resolves the target's host before
// sending anything and refuses it (ErrRemoteTarget) unless every address
// is a loopback address; it then dials the resolved address, never the
// name again. A run always ends by itself: Duration is required to be
// positive (default 10 s), Requests may end it sooner, and cancelling the
// context ends it at once (in-flight requests are bounded by Timeout).
//
// # Operations and load models
//
// An operation is one iteration of the scenario (see Scenario). In the
// closed-loop model (Rate 0) Concurrency workers each start the next
// operation when the previous one ends. In the open-loop model (Rate > 0)
// operation i is due at start + i/Rate; a pool of at most Concurrency
// workers takes the slots in order (0 sizes the pool from the rate: room
// for 100 ms per operation, 1 s for the polling scenarios, between 16 and
// 4096). When every worker is busy a slot starts late: Report.Schedule
// counts operations that started more than LateThreshold late and says
// whether the schedule was kept (at most 1% late).
//
// Coordinated omission: a closed loop, or an open loop that falls behind,
// sends fewer requests while the server stalls, so the stall shows in
// only the few requests that were in flight. At a fixed rate Run
// therefore also measures each operation from its intended start
// (CorrectedLatency) as well as from its actual start (OperationLatency):
// the operations that were due during a stall carry the time they waited.
//
// Measurements count when they complete inside the window: from the
// start to Duration, to the interruption, or to the last operation when
// Requests ends the run. Operations still running when the window closes
// are Unfinished: neither successes nor errors. Every per-second figure
// is a count over the window.
//
// At a fixed rate the schedule holds the slots due before Duration,
// ceil(Duration*Rate) of them, so it covers [0, Duration): when it runs
// out the run ends by duration and the window is Duration, even though
// the workers are done as soon as the last slot's operation ends (up to
// 1/Rate earlier). The scheduled span, not the wall time, is the interval
// the load was offered over, so that a schedule that was kept reports an
// achieved rate of Rate (within 1/Duration) and throughput comparable
// with a closed-loop run of the same Duration.
//
// # Scenarios
//
//   - version (the default): GetVersion; success is a SUCCESS reply. It
//     reads only: a run with every default queues nothing on the server.
//   - submit: Fetch with FetchAction (default Synchronize) and Params;
//     success is a <token> in a SUCCESS reply.
//   - status: setup submits Prepare actions (default 1000) and keeps
//     their tokens; each operation is a QueueInfo GetStatus of the next
//     token, round robin, and needs an <action><status>.
//   - status-list: QueueInfo GetStatus without a token, with the Filter
//     parameters (setup submits Prepare actions, default none).
//   - mixed: submit, then GetStatus at once and every Poll until the
//     status is terminal (Finished, Error, Stopped, Cancelled). The
//     operation latency is submit to final status; a final status other
//     than Finished is a check failure.
//   - cancel: setup pauses the queue (QueueAction=Pause without token) so
//     that actions stay queued; each operation submits, cancels
//     (QueueAction=Cancel) and checks that GetStatus reads Cancelled.
//     Cleanup resumes the queue, always: after errors, after an
//     interruption, and after a failed pause.
//   - stop: each operation submits (Params must make the action run
//     long), polls until Processing, sends QueueAction=Stop, and polls
//     until Stopped. The stop request latency is the Stop reply; the
//     StopLatency is from sending Stop to the GetStatus reply that reads
//     Stopped (so its resolution is Poll).
//
// # Replies and errors
//
// Replies are read by a small parser (XML, simplejson or BadgerFish
// json, told apart by their first byte) that follows the element path
// and takes only what the harness needs: response, errorcode, token, the
// first action's status, GetVersion's product and version. It allocates
// only the token and the strings of error replies. Each failed operation
// counts once, by the failure that ended it: transport (no HTTP reply:
// refused, timeout, reset, closed, ...), http (a status other than 200),
// aci (<response>ERROR</response>, by errorcode, UNKNOWN without one),
// protocol (a 200 reply the harness cannot use) or check (a status the
// scenario did not expect). The error rate is failed / (ok + failed)
// operations; the run passes when it is at most MaxErrorRate and at
// least one operation succeeded.
//
// # Requests
//
// Requests use the path form /action=Fetch&... by default, the query
// form /?action=... or a POST of the same pairs as text/plain (as the
// Java ACI client sends them) with Form; values are percent-encoded with
// + for space. They go through one fasthttp.HostClient with keep-alive
// and one connection per worker, no retries (a retried Fetch would
// submit twice), and Timeout per request.
package loadgen
