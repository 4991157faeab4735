package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Scenario names a workload (see the package documentation).
type Scenario string

// The scenarios.
const (
	ScenarioVersion    Scenario = "version"     // GetVersion: reads only, queues nothing (the default)
	ScenarioSubmit     Scenario = "submit"      // Fetch submits
	ScenarioStatus     Scenario = "status"      // QueueInfo GetStatus by token
	ScenarioStatusList Scenario = "status-list" // QueueInfo GetStatus without token
	ScenarioMixed      Scenario = "mixed"       // submit, poll to a terminal status
	ScenarioCancel     Scenario = "cancel"      // submit and cancel on a paused queue
	ScenarioStop       Scenario = "stop"        // submit, wait for Processing, stop
)

// Scenarios lists every scenario, in documentation order.
var Scenarios = []Scenario{ScenarioVersion, ScenarioSubmit, ScenarioStatus, ScenarioStatusList, ScenarioMixed, ScenarioCancel, ScenarioStop}

// Submits reports whether each operation of the scenario queues an
// action on the target: submit, mixed, cancel and stop submit a Fetch
// in every operation. (status and status-list submit their Prepare
// actions in the setup instead; version queues nothing.)
func (s Scenario) Submits() bool {
	switch s {
	case ScenarioSubmit, ScenarioMixed, ScenarioCancel, ScenarioStop:
		return true
	}
	return false
}

// Form is how a request carries its parameters (aci-protocol.md §1).
type Form string

// The request forms.
const (
	FormPath  Form = "path"  // GET /action=X&P=V (the documented form; default)
	FormQuery Form = "query" // GET /?action=X&P=V
	FormPost  Form = "post"  // POST / with body action=X&P=V as text/plain, as the Java client sends it
)

// Format is the ResponseFormat asked of the server.
type Format string

// The response formats.
const (
	FormatXML        Format = "xml"        // default; no ResponseFormat parameter is sent
	FormatSimpleJSON Format = "simplejson" // ResponseFormat=simplejson
	FormatJSON       Format = "json"       // ResponseFormat=json (BadgerFish)
)

// Defaults applied by Run to zero fields of Config.
const (
	DefaultTarget = "http://127.0.0.1:7000"
	// DefaultScenario reads only: a run with every default queues no
	// action on the server it loads.
	DefaultScenario     = ScenarioVersion
	DefaultDuration     = 10 * time.Second
	DefaultConcurrency  = 8
	DefaultFetchAction  = "Synchronize"
	DefaultPrepare      = 1000
	DefaultPoll         = 10 * time.Millisecond
	DefaultQueue        = "fetch"
	DefaultTimeout      = 10 * time.Second
	DefaultMaxErrorRate = 0.01
)

// LateThreshold is how late (behind its intended send time) a fixed-rate
// operation may start before it counts as late in Schedule.Late.
const LateThreshold = 10 * time.Millisecond

// ErrInvalidConfig is wrapped by every error Run returns for a Config it
// cannot use; ErrRemoteTarget for a target the loopback guard refuses.
var (
	ErrInvalidConfig = errors.New("loadgen: invalid configuration")
	ErrRemoteTarget  = errors.New("loadgen: target is not a loopback address (use AllowRemote / -allow-remote to load a remote server)")
	// ErrSetup: the scenario's setup (preparing tokens, pausing the queue)
	// failed; no load was sent.
	ErrSetup = errors.New("loadgen: setup failed")
	// ErrCleanup: the scenario's cleanup (resuming the queue) failed after
	// the load; Run returns the Report as well.
	ErrCleanup = errors.New("loadgen: cleanup failed")
)

// Config is one run. The zero value of each field means its default, so
// Config{Target: "http://127.0.0.1:7000"} is a 10 s closed-loop run of
// GetVersion requests with 8 workers, which queues nothing on the server.
type Config struct {
	// Target is the server's base URL, scheme://host[:port] with no path:
	// http (port 80 by default) or https. Default DefaultTarget. Every
	// request goes to this one host; redirects are not followed.
	Target string
	// AllowRemote lifts the loopback guard. Without it Run resolves the
	// host and refuses (ErrRemoteTarget) unless every address is a
	// loopback address, and then connects to the resolved address only.
	AllowRemote bool

	// Scenario is the workload; default DefaultScenario (version). Each
	// scenario is a built-in workload file (BuiltinWorkload) whose
	// variables FetchAction, Params, Queue, Filter, Prepare and Poll set.
	Scenario Scenario
	// Workload, when set, is run instead of a scenario (Scenario,
	// FetchAction, Params, Filter, Prepare, Poll and Queue are then not
	// used); Vars override its variables' defaults.
	Workload *Workload
	Vars     map[string]string
	// Duration bounds the run; default DefaultDuration. It must be
	// positive: a run always ends by itself.
	Duration time.Duration
	// Requests, when positive, also ends the run after that many
	// operations (see Report.Operations); 0 means no bound but Duration.
	Requests int64
	// Concurrency is, in closed loop (Rate 0), the number of workers, each
	// starting its next operation when the previous one ends; default
	// DefaultConcurrency. At a fixed Rate it caps the operations in flight;
	// 0 then sizes the pool from the rate (see the package documentation).
	Concurrency int
	// Rate, when positive, runs an open loop: operations start on a fixed
	// schedule of Rate per second and latencies are also measured from the
	// intended start (coordinated-omission correction).
	Rate float64

	// Form is the request form; default FormPath.
	Form Form
	// Format is the response format; default FormatXML.
	Format Format
	// FetchAction is sent with every Fetch; default DefaultFetchAction.
	FetchAction string
	// Params are extra Fetch parameters in query form, percent-encoded as
	// in a URL: "ConfigSection=MyTask&Url=http%3A%2F%2F127.0.0.1%3A8080%2F".
	// They may not set action, a, FetchAction or ResponseFormat.
	Params string
	// Prepare is the number of actions the status scenario submits before
	// the load to collect tokens (default DefaultPrepare), and the number
	// status-list submits first (default 0).
	Prepare int
	// Filter holds the status-list parameters in query form, e.g.
	// "State=finished&MaxResults=10"; empty sends none. They may not set
	// action, a, QueueAction, QueueName, Token or ResponseFormat.
	Filter string
	// Poll is the wait between GetStatus polls in mixed and stop; default
	// DefaultPoll.
	Poll time.Duration
	// Queue is the QueueName of QueueInfo requests; default DefaultQueue.
	Queue string
	// Timeout bounds each request; default DefaultTimeout.
	Timeout time.Duration
	// MaxErrorRate is the fraction of failed operations above which the
	// run fails (Report.Passed false). 0 means DefaultMaxErrorRate; a
	// negative value allows no error at all.
	MaxErrorRate float64

	// Interval is the length of the intervals of the report's timeline,
	// of the HDR log and of the progress line; default DefaultInterval,
	// at least 10 ms.
	Interval time.Duration
	// HDRLog, when not nil, receives the run's latencies in HdrHistogram's
	// interval log format (one histogram per latency row and interval,
	// tagged with the row's name; values in microseconds), written when
	// the load ends.
	HDRLog io.Writer

	// Plan, when not nil, receives the plan of the run (see Describe)
	// after the loopback guard and before anything is sent to the target.
	Plan io.Writer
	// Workers, when set, are the addresses (host:port) of load generators
	// (`connector bench worker`) that send the load instead of this
	// process, each its share; this process runs the setup and the
	// cleanup, and merges what they measured (see ServeWorker).
	Workers []string
	// WorkerSecret is sent to the workers as a bearer token.
	WorkerSecret string

	// Progress, when not nil, receives a progress line once a second.
	Progress io.Writer
	// OnLoad, when not nil, is called with true just before the load
	// starts (after the setup: the status scenario's prepared submits, a
	// pause) and with false once it has ended (its requests in flight
	// done), before the cleanup. What a caller measures of the server
	// between the two calls (its CPU time, say) is the load's alone; read
	// around Run it would include the setup's requests, which the report's
	// counts leave out.
	OnLoad func(start bool)
	// Logger receives setup and cleanup events; nil discards them.
	Logger *slog.Logger
	// Dial, when not nil, opens every connection instead of TCP (for
	// in-process servers, e.g. fasthttputil.InmemoryListener). It is given
	// the address Run would dial. The loopback guard still applies.
	Dial func(addr string) (net.Conn, error)

	// lookup resolves a host name for the loopback guard (tests); nil uses
	// net.DefaultResolver.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// param is one request parameter, decoded.
type param struct{ name, value string }

// settings is a validated Config with defaults applied.
type settings struct {
	Config
	params    []param
	filter    []param
	workers   int      // goroutines sending operations
	maxErrors float64  // effective error-rate limit
	pg        *program // the workload, compiled
	vars      map[string]string
	// A generator of a distributed run takes the schedule's slots
	// slotOffset, slotOffset+slotStride, ...
	slotStride, slotOffset int64
}

// WorkloadScenario is the Scenario a report names for a run of a
// workload file.
const WorkloadScenario Scenario = "workload"

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// resolve applies defaults and validates c.
func (c Config) resolve() (*settings, error) {
	if c.Target == "" {
		c.Target = DefaultTarget
	}
	if c.Workload != nil {
		c.Scenario = WorkloadScenario
	} else if len(c.Vars) > 0 {
		return nil, invalid("vars: only a workload file has variables to set (the scenarios take -params, -fetchaction, ...)")
	}
	if c.Scenario == "" {
		c.Scenario = DefaultScenario
	}
	c.Scenario = Scenario(strings.ToLower(string(c.Scenario)))
	known := c.Workload != nil
	for _, s := range Scenarios {
		known = known || s == c.Scenario
	}
	if !known {
		return nil, invalid("scenario %q: must be one of version, submit, status, status-list, mixed, cancel, stop", c.Scenario)
	}
	switch {
	case c.Duration == 0:
		c.Duration = DefaultDuration
	case c.Duration < 0:
		return nil, invalid("duration %v: must be positive", c.Duration)
	}
	if c.Requests < 0 {
		return nil, invalid("requests %d: must be 0 (no bound) or positive", c.Requests)
	}
	if c.Concurrency < 0 {
		return nil, invalid("concurrency %d: must be positive", c.Concurrency)
	}
	if math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) || c.Rate < 0 {
		return nil, invalid("rate %v: must be 0 (closed loop) or a positive number of operations per second", c.Rate)
	}
	if c.Rate > 1e6 {
		return nil, invalid("rate %v: more than 1e6 operations per second is not a schedule this harness can keep", c.Rate)
	}
	if c.Form == "" {
		c.Form = FormPath
	}
	c.Form = Form(strings.ToLower(string(c.Form)))
	if c.Form != FormPath && c.Form != FormQuery && c.Form != FormPost {
		return nil, invalid("form %q: must be path, query or post", c.Form)
	}
	if c.Format == "" {
		c.Format = FormatXML
	}
	c.Format = Format(strings.ToLower(string(c.Format)))
	if c.Format != FormatXML && c.Format != FormatSimpleJSON && c.Format != FormatJSON {
		return nil, invalid("format %q: must be xml, simplejson or json", c.Format)
	}
	if c.FetchAction == "" {
		c.FetchAction = DefaultFetchAction
	}
	if strings.ContainsAny(c.FetchAction, "&= \t\r\n") {
		return nil, invalid("fetchaction %q: must be a single name", c.FetchAction)
	}
	if c.Prepare < 0 {
		return nil, invalid("prepare %d: must not be negative", c.Prepare)
	}
	if c.Prepare == 0 && c.Scenario == ScenarioStatus {
		c.Prepare = DefaultPrepare
	}
	switch {
	case c.Poll == 0:
		c.Poll = DefaultPoll
	case c.Poll < 0:
		return nil, invalid("poll %v: must be positive", c.Poll)
	}
	if c.Queue == "" {
		c.Queue = DefaultQueue
	}
	if strings.ContainsAny(c.Queue, "&= \t\r\n") {
		return nil, invalid("queue %q: must be a single name", c.Queue)
	}
	switch {
	case c.Interval == 0:
		c.Interval = DefaultInterval
	case c.Interval < 10*time.Millisecond:
		return nil, invalid("interval %v: must be at least 10ms", c.Interval)
	}
	switch {
	case c.Timeout == 0:
		c.Timeout = DefaultTimeout
	case c.Timeout < 0:
		return nil, invalid("timeout %v: must be positive", c.Timeout)
	}
	s := &settings{}
	switch {
	case math.IsNaN(c.MaxErrorRate) || c.MaxErrorRate > 1:
		return nil, invalid("max error rate %v: must be a fraction between 0 and 1", c.MaxErrorRate)
	case c.MaxErrorRate == 0:
		c.MaxErrorRate = DefaultMaxErrorRate
		s.maxErrors = DefaultMaxErrorRate
	case c.MaxErrorRate < 0:
		s.maxErrors = 0
	default:
		s.maxErrors = c.MaxErrorRate
	}
	var err error
	if s.params, err = parseParams("params", c.Params, "action", "a", "FetchAction", "ResponseFormat"); err != nil {
		return nil, err
	}
	if s.filter, err = parseParams("filter", c.Filter, "action", "a", "QueueAction", "QueueName", "Token", "ResponseFormat"); err != nil {
		return nil, err
	}
	w := c.Workload
	over := map[string]string{}
	if w == nil {
		if w, err = BuiltinWorkload(c.Scenario); err != nil {
			return nil, err
		}
		// The scenario flags are the built-in workloads' variables.
		flags := map[string]string{"fetchaction": c.FetchAction, "params": c.Params, "queue": c.Queue,
			"filter": c.Filter, "prepare": strconv.Itoa(c.Prepare), "poll": c.Poll.String()}
		for _, v := range w.Vars {
			if f, ok := flags[v.Name]; ok {
				over[v.Name] = f
			}
		}
	} else {
		maps.Copy(over, c.Vars)
	}
	if s.pg, err = compileWorkload(w, over); err != nil {
		return nil, err
	}
	s.vars = s.pg.vars
	s.workers = c.Concurrency
	if s.workers == 0 {
		if c.Rate > 0 {
			s.workers = autoWorkers(s.pg.polls || c.Scenario == ScenarioCancel, c.Rate)
		} else {
			s.workers = DefaultConcurrency
		}
	}
	if s.workers > 100000 {
		return nil, invalid("concurrency %d: more than 100000 workers", s.workers)
	}
	s.Config = c
	return s, nil
}

// autoWorkers sizes the fixed-rate pool: enough operations in flight for
// a mean operation time of 100 ms, or 1 s for workloads that poll (and
// the cancel scenario), between 16 and 4096.
func autoWorkers(polls bool, rate float64) int {
	window := 0.1
	if polls {
		window = 1
	}
	return int(min(max(math.Ceil(rate*window), 16), 4096))
}

// parseParams reads name=value pairs in query form, percent-decoded, in
// order. Names in forbidden (case-insensitive) are refused: the harness
// sets them itself.
func parseParams(what, s string, forbidden ...string) ([]param, error) {
	var out []param
	for pair := range strings.SplitSeq(s, "&") {
		if pair == "" {
			continue
		}
		rawName, rawValue, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			return nil, invalid("%s: %q: %v", what, pair, err)
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, invalid("%s: %q: %v", what, pair, err)
		}
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, invalid("%s: %q has no parameter name", what, pair)
		}
		for _, f := range forbidden {
			if strings.EqualFold(name, f) {
				return nil, invalid("%s: %s is set by the harness and may not be given here", what, name)
			}
		}
		out = append(out, param{name, value})
	}
	return out, nil
}

// ParseFraction reads a fraction between 0 and 1 written as a number
// ("0.01") or a percentage ("1%"), for -max-error-rate.
func ParseFraction(s string) (float64, error) {
	s = strings.TrimSpace(s)
	scale := 1.0
	if rest, ok := strings.CutSuffix(s, "%"); ok {
		s, scale = strings.TrimSpace(rest), 0.01
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) {
		return 0, fmt.Errorf("loadgen: %q is not a number", s)
	}
	f *= scale
	if f < 0 || f > 1 {
		return 0, fmt.Errorf("loadgen: %v is not a fraction between 0 and 1 (or 0%% and 100%%)", f)
	}
	return f, nil
}
