package loadgen

import (
	"embed"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// WorkloadSchema names the workload file format.
const WorkloadSchema = "connector-workload/1"

// A Workload is a load described in a workload file
// (docs/bench-harness.md, "Workload files"): variables, setup and cleanup
// requests, and a weighted list of operations, each a sequence of ACI
// requests whose parameters are templates. The built-in scenarios are
// workloads too (BuiltinWorkload).
type Workload struct {
	Name        string
	Description string
	// File is where the workload was read from ("builtin:NAME" for the
	// built-in ones); relative data files are found beside it.
	File string
	// Vars are the variables' default values, in file order.
	Vars       []Var
	Setup      []Step
	Operations []Operation
	Cleanup    []Step
	// Source is the file's text.
	Source []byte
	// files, when set, hold the data files instead of the file system
	// (a workload sent to a load generator).
	files map[string][]byte
}

// readData reads a data file named in a template: from the files a
// coordinator sent, else beside the workload file.
func (w *Workload) readData(name string) ([]byte, error) {
	if w.files != nil {
		if b, ok := w.files[name]; ok {
			return b, nil
		}
		return nil, fmt.Errorf("not sent with the workload")
	}
	return os.ReadFile(w.dataFile(name))
}

// Var is a variable with its default value.
type Var struct{ Name, Value string }

// Operation is one weighted operation: a sequence of steps.
type Operation struct {
	Name   string
	Weight int
	Steps  []Step
	line   int
}

// Step is one ACI request of an operation, a setup or a cleanup.
type Step struct {
	// Name is the request row the step's latencies go to; steps of one
	// name share a row.
	Name string
	// Request is the request's parameters in query form with templates:
	// "action=QueueInfo&QueueAction=GetStatus&QueueName={{queue}}&Token={{token}}".
	Request string
	// Expect says what a successful reply must carry besides
	// <response>SUCCESS</response>.
	Expect Expect
	// Save stores values of the reply in variables of the operation:
	// variable name -> source ("token", "status", or an element path
	// under <autnresponse>, e.g. "responsedata/hit/reference").
	Save map[string]string
	// Pool adds values of the reply to run-wide pools (read by
	// {{pool NAME}}): pool name -> source, as Save.
	Pool map[string]string
	// Poll repeats the step every Every until the status read matches
	// Until: "running" (Processing or ended), "ended" (a terminal status)
	// or a list of statuses.
	Poll *Poll
	// Mark starts a clock named Mark when the request is sent; Measure
	// records, when the step succeeds, the time since the mark of that
	// name into the latency row of that name.
	Mark, Measure string
	// Sleep waits this long before the step (think time).
	Sleep string
	// Repeat sends the step that many times (a template; setup and
	// cleanup only), with up to Concurrency requests in flight.
	Repeat      string
	Concurrency int

	line int
}

// Expect is what a reply must carry.
type Expect struct {
	Token bool // a <token> (else protocol/no-token)
	// Status, when not empty, is the statuses the reply's first
	// <action><status> may have ("any": any status, but one must be
	// there, else protocol/no-status). Another status fails the
	// operation as check/<Fail>-<Status>.
	Status []string
	Fail   string // the check key's prefix; default the step's name + "-status"
	Hint   string // added to the failure's sample message
}

// Poll repeats a step.
type Poll struct {
	Every string // a duration template, e.g. "10ms" or "{{poll}}"
	Until string // "running", "ended", or statuses separated by commas
}

//go:embed workloads/*.yaml
var builtinFS embed.FS

// BuiltinWorkload returns the workload of a built-in scenario, as
// written in loadgen/workloads/NAME.yaml.
func BuiltinWorkload(name Scenario) (*Workload, error) {
	b, err := builtinFS.ReadFile("workloads/" + string(name) + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("%w: scenario %q: no such built-in workload", ErrInvalidConfig, name)
	}
	return ParseWorkload("builtin:"+string(name), b)
}

// BuiltinWorkloadSource returns the text of a built-in scenario's
// workload file: the examples of the format.
func BuiltinWorkloadSource(name Scenario) ([]byte, error) {
	return builtinFS.ReadFile("workloads/" + string(name) + ".yaml")
}

// LoadWorkload reads and parses a workload file.
func LoadWorkload(path string) (*Workload, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: workload: %w", ErrInvalidConfig, err)
	}
	return ParseWorkload(path, b)
}

// workloadError is a mistake in a workload file, with its place.
func workloadError(file string, line int, format string, args ...any) error {
	return fmt.Errorf("%w: workload %s:%d: %s", ErrInvalidConfig, file, line, fmt.Sprintf(format, args...))
}

// ParseWorkload parses and checks the workload file text data; file
// names it in errors, which give the line and what is expected.
func ParseWorkload(file string, data []byte) (*Workload, error) {
	return parseWorkloadInto(&Workload{}, file, data)
}

// parseWorkloadInto parses into w (whose files, when set, hold the data
// files).
func parseWorkloadInto(w *Workload, file string, data []byte) (*Workload, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: workload %s: %v", ErrInvalidConfig, file, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, workloadError(file, 1, "must be a mapping with schema, name, operations, ...")
	}
	p := &wparser{file: file}
	w.File, w.Source = file, data
	root := doc.Content[0]
	var schema string
	err := p.mapping(root, map[string]func(*yaml.Node) error{
		"schema":      func(n *yaml.Node) error { return p.str(n, &schema) },
		"name":        func(n *yaml.Node) error { return p.str(n, &w.Name) },
		"description": func(n *yaml.Node) error { return p.str(n, &w.Description) },
		"vars": func(n *yaml.Node) error {
			if n.Kind != yaml.MappingNode {
				return p.fail(n, "vars must be a mapping of name: value")
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				var v Var
				if err := p.str(n.Content[i], &v.Name); err != nil {
					return err
				}
				if !validName(v.Name) {
					return p.fail(n.Content[i], "variable name %q: letters, digits, - and _ only", v.Name)
				}
				if err := p.str(n.Content[i+1], &v.Value); err != nil {
					return err
				}
				w.Vars = append(w.Vars, v)
			}
			return nil
		},
		"setup":   func(n *yaml.Node) error { return p.steps(n, &w.Setup, true) },
		"cleanup": func(n *yaml.Node) error { return p.steps(n, &w.Cleanup, true) },
		"operations": func(n *yaml.Node) error {
			if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
				return p.fail(n, "operations must be a list of at least one operation")
			}
			for _, on := range n.Content {
				op := Operation{Weight: 1, line: on.Line}
				err := p.mapping(on, map[string]func(*yaml.Node) error{
					"name":   func(n *yaml.Node) error { return p.str(n, &op.Name) },
					"weight": func(n *yaml.Node) error { return p.posInt(n, &op.Weight) },
					"steps":  func(n *yaml.Node) error { return p.steps(n, &op.Steps, false) },
				})
				if err != nil {
					return err
				}
				if op.Name == "" {
					return p.fail(on, "an operation needs a name")
				}
				if !validName(op.Name) {
					// It names the row operation:NAME, a tag of the HDR log.
					return p.fail(on, "operation name %q: letters, digits, -, _ and . only", op.Name)
				}
				if len(op.Steps) == 0 {
					return p.fail(on, "operation %s needs steps", op.Name)
				}
				w.Operations = append(w.Operations, op)
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	if schema != WorkloadSchema {
		return nil, workloadError(file, root.Line, "schema %q: want %q", schema, WorkloadSchema)
	}
	if w.Name == "" {
		return nil, workloadError(file, root.Line, "name is missing")
	}
	if len(w.Operations) == 0 {
		return nil, workloadError(file, root.Line, "operations are missing")
	}
	seen := map[string]bool{}
	for _, op := range w.Operations {
		if seen[op.Name] {
			return nil, workloadError(file, op.line, "operation name %s is used twice", op.Name)
		}
		seen[op.Name] = true
	}
	if _, err := compileWorkload(w, nil); err != nil {
		return nil, err
	}
	return w, nil
}

type wparser struct{ file string }

func (p *wparser) fail(n *yaml.Node, format string, args ...any) error {
	return workloadError(p.file, n.Line, format, args...)
}

// mapping decodes a mapping node with one handler per allowed key; any
// other key is an error that lists the allowed ones.
func (p *wparser) mapping(n *yaml.Node, keys map[string]func(*yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return p.fail(n, "expected a mapping of %s", strings.Join(sortedKeys(keys), ", "))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		h, ok := keys[k]
		if !ok {
			return p.fail(n.Content[i], "unknown key %q: expected one of %s", k, strings.Join(sortedKeys(keys), ", "))
		}
		if err := h(n.Content[i+1]); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys(m map[string]func(*yaml.Node) error) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (p *wparser) str(n *yaml.Node, dst *string) error {
	if n.Kind != yaml.ScalarNode {
		return p.fail(n, "expected a single value")
	}
	*dst = n.Value
	return nil
}

func (p *wparser) posInt(n *yaml.Node, dst *int) error {
	var s string
	if err := p.str(n, &s); err != nil {
		return err
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || v > 1_000_000 {
		return p.fail(n, "%q: expected a whole number from 1 to 1000000", s)
	}
	*dst = v
	return nil
}

func (p *wparser) strMap(n *yaml.Node, dst *map[string]string) error {
	if n.Kind != yaml.MappingNode {
		return p.fail(n, "expected a mapping of name: source (token, status, or an element path)")
	}
	*dst = map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		var k, v string
		if err := p.str(n.Content[i], &k); err != nil {
			return err
		}
		if !validName(k) {
			return p.fail(n.Content[i], "name %q: letters, digits, - and _ only", k)
		}
		if err := p.str(n.Content[i+1], &v); err != nil {
			return err
		}
		(*dst)[k] = v
	}
	return nil
}

func (p *wparser) steps(n *yaml.Node, dst *[]Step, setup bool) error {
	if n.Kind != yaml.SequenceNode {
		return p.fail(n, "expected a list of steps")
	}
	for _, sn := range n.Content {
		st := Step{line: sn.Line}
		keys := map[string]func(*yaml.Node) error{
			"name":    func(n *yaml.Node) error { return p.str(n, &st.Name) },
			"request": func(n *yaml.Node) error { return p.str(n, &st.Request) },
			"expect": func(n *yaml.Node) error {
				return p.mapping(n, map[string]func(*yaml.Node) error{
					"token": func(n *yaml.Node) error {
						var s string
						if err := p.str(n, &s); err != nil {
							return err
						}
						b, err := strconv.ParseBool(s)
						if err != nil {
							return p.fail(n, "token: expected true or false")
						}
						st.Expect.Token = b
						return nil
					},
					"status": func(n *yaml.Node) error {
						switch n.Kind {
						case yaml.ScalarNode:
							st.Expect.Status = []string{n.Value}
						case yaml.SequenceNode:
							for _, c := range n.Content {
								var s string
								if err := p.str(c, &s); err != nil {
									return err
								}
								st.Expect.Status = append(st.Expect.Status, s)
							}
						default:
							return p.fail(n, "status: expected a status, a list of statuses, or any")
						}
						return nil
					},
					"fail": func(n *yaml.Node) error { return p.str(n, &st.Expect.Fail) },
					"hint": func(n *yaml.Node) error { return p.str(n, &st.Expect.Hint) },
				})
			},
			"save": func(n *yaml.Node) error { return p.strMap(n, &st.Save) },
			"pool": func(n *yaml.Node) error { return p.strMap(n, &st.Pool) },
			"poll": func(n *yaml.Node) error {
				st.Poll = &Poll{}
				return p.mapping(n, map[string]func(*yaml.Node) error{
					"every": func(n *yaml.Node) error { return p.str(n, &st.Poll.Every) },
					"until": func(n *yaml.Node) error { return p.str(n, &st.Poll.Until) },
				})
			},
			"mark":    func(n *yaml.Node) error { return p.str(n, &st.Mark) },
			"measure": func(n *yaml.Node) error { return p.str(n, &st.Measure) },
			"sleep":   func(n *yaml.Node) error { return p.str(n, &st.Sleep) },
		}
		if setup {
			keys["repeat"] = func(n *yaml.Node) error { return p.str(n, &st.Repeat) }
			keys["concurrency"] = func(n *yaml.Node) error { return p.posInt(n, &st.Concurrency) }
		}
		if err := p.mapping(sn, keys); err != nil {
			return err
		}
		if st.Name == "" || !validName(st.Name) {
			return p.fail(sn, "a step needs a name (letters, digits, - and _): it names its latency row")
		}
		if st.Request == "" {
			return p.fail(sn, "step %s needs a request (action=...&Param=value)", st.Name)
		}
		if st.Mark != "" && !validName(st.Mark) {
			// It names the latency row of the steps that measure it.
			return p.fail(sn, "mark %q: letters, digits, -, _ and . only", st.Mark)
		}
		*dst = append(*dst, st)
	}
	return nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '-' || c == '_' || c == '.' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// statusNames maps the status names a workload may write to statuses.
var workloadStatuses = map[string]status{
	"queued": statusQueued, "processing": statusProcessing, "finished": statusFinished,
	"error": statusError, "stopped": statusStopped, "cancelled": statusCancelled, "canceled": statusCancelled,
	"paused": statusPaused,
}

// parseDurationValue reads a duration written as Go does ("10ms", "1.5s").
func parseDurationValue(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 10ms or 1.5s", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

// dataFile resolves a data file named in a template relative to the
// workload file's folder.
func (w *Workload) dataFile(name string) string {
	if filepath.IsAbs(name) || strings.HasPrefix(w.File, "builtin:") {
		return name
	}
	return filepath.Join(filepath.Dir(w.File), name)
}

// queryPairs splits a request template into its pairs: name, value
// template (percent-decoded), or a splice of a variable's pairs.
type queryPair struct {
	name   string
	value  string
	splice string // a lone {{var}}: the variable's value is pairs
}

func splitRequest(s string) ([]queryPair, error) {
	var out []queryPair
	for part := range strings.SplitSeq(s, "&") {
		if part == "" {
			continue
		}
		if v, ok := strings.CutPrefix(part, "{{"); ok && strings.HasSuffix(v, "}}") && !strings.Contains(part, "=") {
			out = append(out, queryPair{splice: strings.TrimSpace(strings.TrimSuffix(v, "}}"))})
			continue
		}
		rawName, rawValue, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not name=value", part)
		}
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", part, err)
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", part, err)
		}
		if strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("%q has no parameter name", part)
		}
		out = append(out, queryPair{name: strings.TrimSpace(name), value: value})
	}
	return out, nil
}
