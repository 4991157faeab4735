package loadgen

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// SchemaVersion identifies the JSON layout of Report. It changes only
// when a field is renamed, removed or changes meaning; new fields may be
// added within a version.
const SchemaVersion = "connector-loadgen/1"

// Report is the result of a run. Its JSON form (WriteJSON) is the stable,
// documented schema of docs/bench-harness.md; every duration in it is a
// number of microseconds (…_us), every rate a number per second.
type Report struct {
	Schema string   `json:"schema"` // SchemaVersion
	Config Settings `json:"config"` // the configuration used, defaults applied
	Target Target   `json:"target"`

	Start     time.Time `json:"start"`      // UTC, when the load began
	ElapsedUs int64     `json:"elapsed_us"` // the measurement window: Duration when it ended the run, also at a fixed rate
	// EndReason is "duration", "requests" or "interrupted".
	EndReason string `json:"end_reason"`

	Operations Operations `json:"operations"`
	Requests   Requests   `json:"requests"`
	// Actions is set for mixed, stop and every workload with a polling
	// step: operations that read a terminal status.
	Actions *Actions `json:"actions,omitempty"`

	// RequestLatency has one entry per request type the scenario sends
	// (fetch, getstatus, getstatus-list, cancel, stop), from sending the
	// request to reading the whole reply, successful requests only.
	RequestLatency []Latency `json:"request_latency"`
	// OperationLatency is per successful operation, from its actual start
	// to its end ("operation").
	OperationLatency Latency `json:"operation_latency"`
	// CorrectedLatency is set at a fixed rate: per successful operation,
	// from its intended start to its end ("operation-corrected").
	CorrectedLatency *Latency `json:"corrected_latency,omitempty"`
	// StopLatency is set for stop: from sending Stop to the GetStatus
	// reply that reads Stopped ("stop-to-stopped").
	StopLatency *Latency `json:"stop_latency,omitempty"`
	// MeasuredLatency has the other intervals a workload measures between
	// a step's mark and a later step's measure, by name.
	MeasuredLatency []Latency `json:"measured_latency,omitempty"`
	// PerOperationLatency is set for a workload of several operations:
	// each operation's latency from its actual start ("operation:NAME").
	PerOperationLatency []Latency `json:"per_operation_latency,omitempty"`
	// Schedule is set at a fixed rate.
	Schedule *Schedule `json:"schedule,omitempty"`

	Errors Errors `json:"errors"`
	// ErrorRate is failed / (ok + failed) operations, 0 when none ended.
	ErrorRate float64 `json:"error_rate"`
	// Passed is ErrorRate <= Config.MaxErrorRate and at least one
	// operation succeeded.
	Passed bool `json:"passed"`
	// Warnings says what the reader should know: a schedule not kept, a
	// failed GetVersion, a failed cleanup, a saturated generator.
	Warnings []string `json:"warnings"`

	// Environment is the machine and build that generated the load (in a
	// distributed run, the coordinator's; Generators has each worker's).
	Environment Environment `json:"environment"`
	// Generator is the load generator's own CPU use: whether it, not the
	// server, may have limited the run.
	Generator Generator `json:"generator"`
	// Generators lists the load generators of a distributed run, one per
	// worker; empty for a run from one process.
	Generators []WorkerInfo `json:"generators,omitempty"`
	// IntervalUs is the length of the timeline's intervals.
	IntervalUs int64 `json:"interval_us"`
	// Timeline has one entry per interval of the window, in order.
	Timeline []Interval `json:"timeline"`
	// Histograms holds each latency row's whole histogram, by row name
	// (and "schedule-lag" at a fixed rate), in HdrHistogram's V2
	// compressed encoding, base64 (values in microseconds): what merges
	// exactly across runs and generators, and what compare plots.
	Histograms map[string]string `json:"histograms"`
}

// Environment describes where and with what a run was made.
type Environment struct {
	Host       string `json:"host"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	Kernel     string `json:"kernel"` // uname -r, where the system says it
	CPUModel   string `json:"cpu_model"`
	CPUs       int    `json:"cpus"`       // logical CPUs of the machine
	GOMAXPROCS int    `json:"gomaxprocs"` // CPUs the generator may use
	// LoadAverageStart and LoadAverageEnd are the 1, 5 and 15 minute load
	// averages before and after the load (absent where the system does
	// not say them).
	LoadAverageStart []float64 `json:"load_average_start,omitempty"`
	LoadAverageEnd   []float64 `json:"load_average_end,omitempty"`
	GoVersion        string    `json:"go_version"`
	HarnessVersion   string    `json:"harness_version"`  // the connector build that ran the load
	HarnessRevision  string    `json:"harness_revision"` // its source revision
}

// Generator is the load generator's CPU use over the window.
type Generator struct {
	// CPUs the generator could use (GOMAXPROCS; summed over the workers
	// of a distributed run).
	CPUs int `json:"cpus"`
	// CPUSeconds is the user and system CPU time the generator used.
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUShare is CPUSeconds / window / CPUs: 1 means every CPU it could
	// use was busy all the time. PeakCPUShare is the highest interval's.
	CPUShare     float64 `json:"cpu_share"`
	PeakCPUShare float64 `json:"peak_cpu_share"`
	// MachineCPUShare is how busy all the machine's CPUs were (the
	// generator's, the server's if it runs there, and anything else); -1
	// when the system does not say (it is /proc/stat's).
	MachineCPUShare float64 `json:"machine_cpu_share"`
	// Saturated is CPUShare >= SaturatedShare: the generator, not the
	// server, may have been the bottleneck.
	Saturated bool `json:"saturated"`
}

// SaturatedShare is the share of its CPUs above which the generator is
// reported saturated.
const SaturatedShare = 0.9

// WorkerInfo is one load generator of a distributed run.
type WorkerInfo struct {
	Address     string      `json:"address"`
	Environment Environment `json:"environment"`
	Generator   Generator   `json:"generator"`
	Operations  Operations  `json:"operations"`
}

// Interval is one interval of the timeline: what completed in it.
type Interval struct {
	StartUs  int64 `json:"start_us"` // after Start
	LengthUs int64 `json:"length_us"`
	OK       int64 `json:"ok"`     // operations that succeeded
	Failed   int64 `json:"failed"` // operations that failed
	Requests int64 `json:"requests"`
	// Errors counts the failed operations by class (transport, http, aci,
	// protocol, check); only classes that occurred.
	Errors map[string]int64 `json:"errors,omitempty"`
	// Latency has one entry per latency row (the request types, then
	// operation, operation-corrected, stop-to-stopped).
	Latency []IntervalLatency `json:"latency"`
	// GeneratorCPU is the generator's CPU share in the interval (as
	// Generator.CPUShare); MachineCPU the machine's (-1 unknown).
	GeneratorCPU float64 `json:"generator_cpu"`
	MachineCPU   float64 `json:"machine_cpu"`
}

// IntervalLatency summarises one latency row over one interval, in
// microseconds.
type IntervalLatency struct {
	Name  string `json:"name"`
	Count int64  `json:"count"`
	P50Us int64  `json:"p50_us"`
	P90Us int64  `json:"p90_us"`
	P99Us int64  `json:"p99_us"`
	MaxUs int64  `json:"max_us"`
}

// Settings is the configuration a run used, defaults applied.
type Settings struct {
	Target       string  `json:"target"`
	Address      string  `json:"address"` // what was dialled
	AllowRemote  bool    `json:"allow_remote"`
	Scenario     string  `json:"scenario"`
	DurationUs   int64   `json:"duration_us"`
	Requests     int64   `json:"requests"`    // operation bound, 0 = none
	Concurrency  int     `json:"concurrency"` // workers (closed loop) or cap on operations in flight (fixed rate)
	Rate         float64 `json:"rate"`        // operations per second, 0 = closed loop
	Form         string  `json:"form"`
	Format       string  `json:"format"`
	FetchAction  string  `json:"fetch_action"`
	Params       string  `json:"params"`
	Prepare      int     `json:"prepare"`
	Filter       string  `json:"filter"`
	PollUs       int64   `json:"poll_us"`
	Queue        string  `json:"queue"`
	TimeoutUs    int64   `json:"timeout_us"`
	MaxErrorRate float64 `json:"max_error_rate"`
	// Workload is set for a run of a workload file: its name and file,
	// a SHA-256 of its text, and the variables' values used.
	Workload *WorkloadInfo `json:"workload,omitempty"`
}

// WorkloadInfo identifies the workload file of a run.
type WorkloadInfo struct {
	Name   string            `json:"name"`
	File   string            `json:"file"`
	SHA256 string            `json:"sha256"`
	Vars   map[string]string `json:"vars"`
}

// Target is the server loaded, as its GetVersion (sent once before the
// load) describes it.
type Target struct {
	URL     string `json:"url"`
	Product string `json:"product"` // autn:productname
	Version string `json:"version"` // autn:version
	// Error says why GetVersion gave nothing; empty when it worked.
	Error string `json:"error"`
}

// Operations counts the operations of the load. An operation is one
// iteration of the scenario: one request for submit, status and
// status-list; submit-and-poll for mixed; submit, cancel and check for
// cancel; submit, wait, stop and wait for stop.
type Operations struct {
	OK     int64 `json:"ok"`
	Failed int64 `json:"failed"`
	// Unfinished were in flight when the window closed (not counted as
	// errors and not in the latencies).
	Unfinished int64   `json:"unfinished"`
	PerSecond  float64 `json:"per_second"` // (ok + failed) / window
}

// Requests counts HTTP requests that completed in the window, whatever
// their outcome.
type Requests struct {
	Count     int64   `json:"count"`
	PerSecond float64 `json:"per_second"`
}

// Actions counts actions that reached a terminal status (mixed, stop).
type Actions struct {
	Completed int64   `json:"completed"`
	PerSecond float64 `json:"per_second"`
	// Final counts the terminal statuses read: Finished, Error, Stopped,
	// Cancelled.
	Final map[string]int64 `json:"final"`
}

// Latency summarises one latency distribution, in microseconds.
type Latency struct {
	Name   string  `json:"name"`
	Count  int64   `json:"count"`  // measurements (successful requests or operations)
	Errors int64   `json:"errors"` // failed requests of this type (request latencies only)
	MinUs  int64   `json:"min_us"`
	MeanUs float64 `json:"mean_us"`
	P50Us  int64   `json:"p50_us"`
	P90Us  int64   `json:"p90_us"`
	P99Us  int64   `json:"p99_us"`
	P999Us int64   `json:"p99_9_us"`
	MaxUs  int64   `json:"max_us"`
}

// Schedule says how well a fixed-rate run kept its schedule.
type Schedule struct {
	TargetRate   float64 `json:"target_rate"`
	AchievedRate float64 `json:"achieved_rate"` // operations started per second of the window
	// Late counts operations that started more than LateThreshold after
	// their intended time: every worker was busy.
	Late     int64 `json:"late"`
	LagP99Us int64 `json:"lag_p99_us"`
	LagMaxUs int64 `json:"lag_max_us"`
	// KeptUp is false when more than 1% of operations started late.
	KeptUp bool `json:"kept_up"`
}

// Errors counts failed operations by the failure that ended each one.
type Errors struct {
	Total int64 `json:"total"`
	// Transport: no HTTP reply (refused, timeout, reset, closed,
	// no-free-connections, other).
	Transport map[string]int64 `json:"transport"`
	// HTTP: a status other than 200, by status code.
	HTTP map[string]int64 `json:"http"`
	// ACI: <response>ERROR</response>, by errorcode (UNKNOWN when none).
	ACI map[string]int64 `json:"aci"`
	// Protocol: a 200 reply the harness could not use (malformed, no
	// token, no status, unexpected response value).
	Protocol map[string]int64 `json:"protocol"`
	// Check: a reply that contradicts the scenario (a status other than
	// the expected one).
	Check map[string]int64 `json:"check"`
	// Samples holds one message per "class/key", for diagnosis.
	Samples map[string]string `json:"samples"`
}

// WriteJSON writes r as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // parameters hold & and <, for people to read
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("loadgen: write json report: %w", err)
	}
	return nil
}

// ReadJSON reads a report written by WriteJSON.
func ReadJSON(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("loadgen: read json report: %w", err)
	}
	if r.Schema != SchemaVersion {
		return nil, fmt.Errorf("loadgen: read json report: schema %q, want %q", r.Schema, SchemaVersion)
	}
	return &r, nil
}

// WriteTable writes r for people: configuration, throughput, latency
// percentiles, schedule, errors and warnings, aligned.
func WriteTable(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	c := r.Config
	product := r.Target.Product
	if product == "" {
		product = "unknown product"
	}
	if r.Target.Version != "" {
		product += " " + r.Target.Version
	}
	p("target\t%s (%s, dialled %s)\n", r.Target.URL, product, c.Address)
	model := fmt.Sprintf("closed loop, %d workers", c.Concurrency)
	if c.Rate > 0 {
		model = fmt.Sprintf("fixed rate %s/s, at most %d in flight", num(c.Rate), c.Concurrency)
	}
	p("scenario\t%s (%s)\n", c.Scenario, model)
	bound := fmt.Sprintf("duration %s", fmtUs(c.DurationUs))
	if c.Requests > 0 {
		bound += fmt.Sprintf(", requests %d", c.Requests)
	}
	p("config\t%s, form %s, format %s, timeout %s, max error rate %s\n", bound, c.Form, c.Format, fmtUs(c.TimeoutUs), pct(c.MaxErrorRate))
	switch Scenario(c.Scenario) {
	case ScenarioVersion:
	case ScenarioSubmit, ScenarioMixed, ScenarioCancel, ScenarioStop, ScenarioStatus:
		p("\tfetchaction %s, params %q", c.FetchAction, c.Params)
		if Scenario(c.Scenario) == ScenarioStatus {
			p(", prepare %d", c.Prepare)
		}
		if Scenario(c.Scenario) == ScenarioMixed || Scenario(c.Scenario) == ScenarioStop {
			p(", poll %s", fmtUs(c.PollUs))
		}
		p(", queue %s\n", c.Queue)
	case ScenarioStatusList:
		p("\tfilter %q, prepare %d, queue %s\n", c.Filter, c.Prepare, c.Queue)
	}
	if wl := c.Workload; wl != nil {
		p("\tworkload %s (%s, sha256 %.12s)", wl.Name, wl.File, wl.SHA256)
		for _, k := range slices.Sorted(maps.Keys(wl.Vars)) {
			p(", %s=%q", k, wl.Vars[k])
		}
		p("\n")
	}
	end := map[string]string{"duration": "ended by -duration", "requests": "ended by -requests", "interrupted": "interrupted"}[r.EndReason]
	if end == "" {
		end = "ended (" + r.EndReason + ")"
	}
	p("run\t%s, %s after %s\n", r.Start.Format(time.RFC3339), end, fmtUs(r.ElapsedUs))
	if e := r.Environment; e.GoVersion != "" {
		p("machine\t%s\n", e.describe())
	}
	p("\n")
	o := r.Operations
	p("throughput\t%s operations/s\t(%d ok, %d failed, %d unfinished)\n", num(o.PerSecond), o.OK, o.Failed, o.Unfinished)
	p("\t%s requests/s\t(%d requests)\n", num(r.Requests.PerSecond), r.Requests.Count)
	if r.Actions != nil {
		p("\t%s actions/s\t(%d actions ended:%s)\n", num(r.Actions.PerSecond), r.Actions.Completed, counts(r.Actions.Final))
	}
	p("\n")
	p("latency\tcount\terrors\tmean\tp50\tp90\tp99\tp99.9\tmax\n")
	row := func(l Latency) {
		if l.Count == 0 {
			p("%s\t%d\t%d\t-\t-\t-\t-\t-\t-\n", l.Name, l.Count, l.Errors)
			return
		}
		p("%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Name, l.Count, l.Errors, fmtUs(int64(l.MeanUs)),
			fmtUs(l.P50Us), fmtUs(l.P90Us), fmtUs(l.P99Us), fmtUs(l.P999Us), fmtUs(l.MaxUs))
	}
	for _, l := range r.RequestLatency {
		row(l)
	}
	row(r.OperationLatency)
	if r.CorrectedLatency != nil {
		row(*r.CorrectedLatency)
	}
	if r.StopLatency != nil {
		row(*r.StopLatency)
	}
	for _, l := range r.MeasuredLatency {
		row(l)
	}
	for _, l := range r.PerOperationLatency {
		row(l)
	}
	if s := r.Schedule; s != nil {
		p("\n")
		kept := "kept"
		if !s.KeptUp {
			kept = "NOT KEPT"
		}
		p("schedule\t%s: target %s/s, achieved %s/s, %d late (> %s), lag p99 %s, max %s\n", kept,
			num(s.TargetRate), num(s.AchievedRate), s.Late, LateThreshold, fmtUs(s.LagP99Us), fmtUs(s.LagMaxUs))
	}
	g := r.Generator
	if g.CPUs > 0 {
		p("\n")
		line := fmt.Sprintf("%s of its %d CPUs (peak %s of an interval)", pct0(g.CPUShare), g.CPUs, pct0(g.PeakCPUShare))
		if g.MachineCPUShare >= 0 {
			line += fmt.Sprintf("; the machine's CPUs %s busy", pct0(g.MachineCPUShare))
		}
		if g.Saturated {
			line += ": SATURATED, the generator may have been the bottleneck"
		}
		p("generator\t%s\n", line)
	}
	p("\n")
	verdict := "PASS"
	if !r.Passed {
		verdict = "FAIL"
	}
	p("errors\t%d (%s of operations, limit %s): %s\n", r.Errors.Total, pct(r.ErrorRate), pct(c.MaxErrorRate), verdict)
	e := r.Errors
	for _, class := range []struct {
		name string
		m    map[string]int64
	}{{"transport", e.Transport}, {"http", e.HTTP}, {"aci", e.ACI}, {"protocol", e.Protocol}, {"check", e.Check}} {
		for _, k := range slices.Sorted(maps.Keys(class.m)) {
			p("\t%s %s\t%d\t%s\n", class.name, k, class.m[k], clip(e.Samples[class.name+"/"+k], 100))
		}
	}
	for _, w := range r.Warnings {
		p("warning\t%s\n", w)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("loadgen: write table: %w", err)
	}
	return nil
}

func counts(m map[string]int64) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, " %s %d", k, m[k])
	}
	return b.String()
}

// clip is s on one line, cut to at most n bytes, never inside a character.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		return s[:n] + "…"
	}
	return s
}

// fmtUs prints microseconds as 850µs, 1.23ms or 2.50s.
func fmtUs(us int64) string {
	switch {
	case us < 1000:
		return strconv.FormatInt(us, 10) + "µs"
	case us < 1000000:
		return strconv.FormatFloat(float64(us)/1e3, 'f', 2, 64) + "ms"
	default:
		return strconv.FormatFloat(float64(us)/1e6, 'f', 2, 64) + "s"
	}
}

func num(f float64) string {
	if f >= 100 || f == math.Trunc(f) {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'f', 1, 64)
}

// pct0 prints a fraction as a whole percentage.
func pct0(f float64) string { return strconv.FormatFloat(f*100, 'f', 0, 64) + "%" }

// describe says where and with what a run was made, on one line.
func (e Environment) describe() string {
	var b strings.Builder
	b.WriteString(cmp.Or(e.Host, "unknown host"))
	fmt.Fprintf(&b, " (%s/%s, %d CPUs", e.OS, e.Arch, e.CPUs)
	if e.CPUModel != "" {
		b.WriteString(" " + e.CPUModel)
	}
	b.WriteString(")")
	if len(e.LoadAverageStart) == 3 {
		fmt.Fprintf(&b, ", load average %.2f %.2f %.2f", e.LoadAverageStart[0], e.LoadAverageStart[1], e.LoadAverageStart[2])
	}
	fmt.Fprintf(&b, "; connector %s (%s), %s", e.HarnessVersion, e.HarnessRevision, e.GoVersion)
	return b.String()
}

// pct prints a fraction as a percentage with at most two decimals.
func pct(f float64) string {
	s := strconv.FormatFloat(f*100, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "%"
}
