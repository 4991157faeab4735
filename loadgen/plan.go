package loadgen

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/connectorhq/connector/transport/aci"
)

// Plan says what a run will send, and where, before anything is sent:
// the target and the address that will be dialled, the load model and
// bound, every request the scenario sends in the form it goes on the
// wire, and what the run leaves on the server (actions it queues, a
// queue it pauses).
type Plan struct {
	Target  string // the base URL
	Address string // what will be dialled
	// Submits is true when the run queues actions on the target, in its
	// operations or in its setup.
	Submits bool
	// Lines describe the run for people, one statement a line.
	Lines []string
}

// String returns the plan's lines, each ending in a newline.
func (p *Plan) String() string {
	var b strings.Builder
	for _, l := range p.Lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// Describe validates cfg and applies the loopback guard as Run does
// (resolving the target's host name, sending nothing to it) and returns
// the plan of the run. It fails where Run would fail before the load.
func Describe(ctx context.Context, cfg Config) (*Plan, error) {
	s, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	t, err := checkTarget(ctx, s.Target, s.AllowRemote, s.lookup)
	if err != nil {
		return nil, err
	}
	return s.plan(t), nil
}

// plan describes the run of s against t.
func (s *settings) plan(t *target) *Plan {
	var p *Plan
	if s.Workload != nil {
		p = s.workloadPlan(t)
	} else {
		p = s.scenarioPlan(t)
	}
	if n := len(s.Workers); n > 0 {
		line := fmt.Sprintf("generators %d load generators send it, each its share (%s); this process runs the setup and the cleanup",
			n, strings.Join(s.Workers, ", "))
		p.Lines = append(p.Lines[:1], append([]string{line}, p.Lines[1:]...)...)
	}
	return p
}

// scenarioPlan describes a built-in scenario's run.
func (s *settings) scenarioPlan(t *target) *Plan {
	p := &Plan{Target: t.url, Address: t.addr, Submits: s.Scenario.Submits() || s.Prepare > 0}
	q := buildQueries(s)
	line := func(format string, args ...any) { p.Lines = append(p.Lines, fmt.Sprintf(format, args...)) }
	wire := func(query []byte, suffix string) string { return s.wire(string(query) + suffix) }

	line("target    %s (dialled %s)", t.url, t.addr)
	model := fmt.Sprintf("closed loop, %d workers", s.workers)
	slots := int64(-1) // most operations the run can start; -1: bounded by time only
	if s.Rate > 0 {
		model = fmt.Sprintf("fixed rate %s/s, at most %d in flight", num(s.Rate), s.workers)
		slots = int64(math.Ceil(s.Duration.Seconds() * s.Rate))
	}
	if s.Requests > 0 && (slots < 0 || s.Requests < slots) {
		slots = s.Requests
	}
	bound := "for " + s.Duration.String()
	if s.Requests > 0 {
		bound += fmt.Sprintf(" or %d operations, whichever ends first", s.Requests)
	}
	line("scenario  %s: %s, %s", s.Scenario, model, bound)
	submit := wire(q.submit, "")
	token := "<token>"
	switch s.Scenario {
	case ScenarioVersion:
		line("each operation sends  %s", wire(q.version, ""))
	case ScenarioSubmit:
		line("each operation sends  %s", submit)
	case ScenarioStatus:
		line("setup sends           %s  %d times (not measured)", submit, s.Prepare)
		line("each operation sends  %s", wire(q.status, token)+"  (the prepared tokens in turn)")
	case ScenarioStatusList:
		if s.Prepare > 0 {
			line("setup sends           %s  %d times (not measured)", submit, s.Prepare)
		}
		line("each operation sends  %s", wire(q.list, ""))
	case ScenarioMixed:
		line("each operation sends  %s", submit)
		line("                then  %s  every %s until the action ends", wire(q.status, token), s.Poll)
	case ScenarioCancel:
		line("setup sends           %s  (pauses the queue)", wire(q.pause, ""))
		line("each operation sends  %s", submit)
		line("                then  %s", wire(q.cancel, token))
		line("                then  %s", wire(q.status, token))
		line("cleanup sends         %s  (always, even if the queue was paused before)", wire(q.resume, ""))
	case ScenarioStop:
		line("each operation sends  %s", submit)
		line("                then  %s  every %s until it runs", wire(q.status, token), s.Poll)
		line("                then  %s", wire(q.stop, token))
		line("                then  %s  every %s until it ends", wire(q.status, token), s.Poll)
	}
	switch {
	case !p.Submits:
		line("effect    reads only: queues no action on the server")
	case !s.Scenario.Submits():
		line("effect    queues %d actions on the server before the load", s.Prepare)
	default:
		n := "as many as the server accepts in " + s.Duration.String()
		if slots >= 0 {
			n = fmt.Sprintf("at most %d", slots)
		}
		line("effect    queues one %s action on the server per operation (%s)", s.FetchAction, n)
	}
	return p
}

// wire shows query as it goes on the wire in the configured form, its
// secrets redacted (redactQuery).
func (s *settings) wire(query string) string {
	query = redactQuery(query)
	if s.Format != FormatXML {
		query += "&ResponseFormat=" + string(s.Format)
	}
	switch s.Form {
	case FormQuery:
		return "GET /?" + query
	case FormPost:
		return "POST / " + query
	}
	return "GET /" + query
}

// queries are the encoded request parameter strings, built once per run.
type queries struct {
	submit, list, pause, resume, version []byte
	status, cancel, stop                 []byte // each ends in "&Token="
}

func buildQueries(s *settings) *queries {
	q := &queries{}
	queue := aci.AppendQueryEscape(nil, s.Queue)
	qi := func(action string) []byte {
		b := append([]byte("action=QueueInfo&QueueAction="), action...)
		b = append(b, "&QueueName="...)
		return append(b, queue...)
	}
	q.submit = append([]byte("action=Fetch&FetchAction="), aci.AppendQueryEscape(nil, s.FetchAction)...)
	q.submit = appendParams(q.submit, s.params)
	q.list = appendParams(qi("GetStatus"), s.filter)
	q.pause = qi("Pause")
	q.resume = qi("Resume")
	q.version = []byte("action=GetVersion")
	q.status = append(qi("GetStatus"), "&Token="...)
	q.cancel = append(qi("Cancel"), "&Token="...)
	q.stop = append(qi("Stop"), "&Token="...)
	return q
}

func isProcessingOrEnded(s status) bool { return s == statusProcessing || s.Terminal() }

// workloadPlan describes the run of a workload file: every step of the
// setup, of each operation (with its share of the operations) and of
// the cleanup, as it goes on the wire with its placeholders as written.
func (s *settings) workloadPlan(t *target) *Plan {
	p := &Plan{Target: t.url, Address: t.addr}
	line := func(format string, args ...any) { p.Lines = append(p.Lines, fmt.Sprintf(format, args...)) }
	pg := s.pg
	line("target    %s (dialled %s)", t.url, t.addr)
	model := fmt.Sprintf("closed loop, %d workers", s.workers)
	if s.Rate > 0 {
		model = fmt.Sprintf("fixed rate %s/s, at most %d in flight", num(s.Rate), s.workers)
	}
	bound := "for " + s.Duration.String()
	if s.Requests > 0 {
		bound += fmt.Sprintf(" or %d operations, whichever ends first", s.Requests)
	}
	line("workload  %s (%s): %s, %s", pg.w.Name, pg.w.File, model, bound)
	fetchSetup, fetchOps := 0, 0
	for _, cs := range pg.setup {
		line("setup     %s  %d times (not measured)", s.wire(cs.shown()), cs.repeat)
		if cs.sendsFetch() {
			fetchSetup += cs.repeat
		}
	}
	total := len(pg.order)
	for i, op := range pg.ops {
		head := fmt.Sprintf("operation %s (%d in %d):", op.name, countOf(pg.order, i), total)
		for j, cs := range op.steps {
			what := s.wire(cs.shown())
			if cs.poll != nil {
				what += fmt.Sprintf("  every %s until %s", cs.poll.every, cs.poll.what)
			}
			if cs.sendsFetch() {
				fetchOps++
			}
			if j == 0 {
				line("%s  %s", head, what)
			} else {
				line("%s  then %s", strings.Repeat(" ", len(head)-5), what)
			}
		}
	}
	for _, cs := range pg.cleanup {
		line("cleanup   %s  (always)", s.wire(cs.shown()))
		if cs.sendsFetch() {
			fetchSetup += cs.repeat
		}
	}
	p.Submits = fetchSetup+fetchOps > 0
	switch {
	case fetchOps > 0:
		line("effect    %d step(s) of the operations send a Fetch: on an ACI connector each queues an action", fetchOps)
	case fetchSetup > 0:
		line("effect    the setup sends %d Fetch requests: on an ACI connector each queues an action", fetchSetup)
	default:
		line("effect    sends no Fetch")
	}
	return p
}

func countOf(order []int, i int) int {
	n := 0
	for _, o := range order {
		if o == i {
			n++
		}
	}
	return n
}
