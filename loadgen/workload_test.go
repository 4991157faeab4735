package loadgen

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Every scenario is a workload file that parses and compiles with its
// defaults.
func TestBuiltinScenariosAreWorkloads(t *testing.T) {
	t.Parallel()
	for _, sc := range Scenarios {
		w, err := BuiltinWorkload(sc)
		require.NoError(t, err, sc)
		require.Equal(t, string(sc), w.Name)
		require.NotEmpty(t, w.Description)
		_, err = compileWorkload(w, nil)
		require.NoError(t, err, sc)
	}
	_, err := BuiltinWorkload("soak")
	require.ErrorIs(t, err, ErrInvalidConfig)
}

// writeWorkload writes a workload file (and its data files) into a
// temporary folder and parses it.
func writeWorkload(t *testing.T, text string, files map[string]string) *Workload {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600))
	}
	path := filepath.Join(dir, "load.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	w, err := LoadWorkload(path)
	require.NoError(t, err)
	return w
}

const mixWorkload = `schema: connector-workload/1
name: mix
description: reads three times as often as it submits
vars:
  task: Small
  queue: fetch
operations:
  - name: read
    weight: 3
    steps:
      - name: version
        request: action=GetVersion&Word={{line words.txt}}&N={{random 5 9}}&Seq={{seq}}
  - name: write
    steps:
      - name: fetch
        request: action=Fetch&FetchAction=Synchronize&TaskSections={{task}}
        expect: {token: true}
        save: {tok: token}
        pool: {tokens: token}
        mark: submitted
      - name: poll
        request: action=QueueInfo&QueueAction=GetStatus&QueueName={{queue}}&Token={{tok}}
        poll: {every: 1ms, until: ended}
        expect: {status: Finished}
        save: {again: responsedata/actions/action/token}
        measure: submitted
      - name: again
        request: action=QueueInfo&QueueAction=GetStatus&QueueName={{queue}}&Token={{again}}
        expect: {status: any}
      - name: any-token
        request: action=QueueInfo&QueueAction=GetStatus&QueueName={{queue}}&Token={{pool tokens}}
        expect: {status: any}
`

// A workload file drives its own mix: operations by weight, templates
// filled from variables, data files, random numbers and the sequence,
// tokens saved from earlier replies (by the reply's token and by an
// element path) and pooled across operations, a poll, and a measured
// interval.
func TestWorkloadRunsItsMix(t *testing.T) {
	t.Parallel()
	f := newFake()
	f.queuedFor, f.processFor = time.Millisecond, time.Millisecond
	base := f.start(t)
	w := writeWorkload(t, mixWorkload, map[string]string{"words.txt": "alpha\n\nbeta gamma\n"})
	rep, err := Run(context.Background(), Config{Target: base, Workload: w, Vars: map[string]string{"task": "Big"},
		Requests: 40, Duration: time.Minute, Concurrency: 2, Format: FormatSimpleJSON})
	require.NoError(t, err)
	require.Equal(t, int64(40), rep.Operations.OK, "%+v", rep.Errors)
	require.Equal(t, "workload", rep.Config.Scenario)
	require.Equal(t, "mix", rep.Config.Workload.Name)
	require.Equal(t, "Big", rep.Config.Workload.Vars["task"])
	require.Len(t, rep.Config.Workload.SHA256, 64)
	require.Equal(t, []string{"version", "fetch", "poll", "again", "any-token"}, latencyNames(rep))
	require.Len(t, rep.PerOperationLatency, 2)
	require.Equal(t, "operation:read", rep.PerOperationLatency[0].Name)
	require.Equal(t, int64(30), rep.PerOperationLatency[0].Count, "3 in 4 operations read")
	require.Equal(t, int64(10), rep.PerOperationLatency[1].Count)
	require.Len(t, rep.MeasuredLatency, 1)
	require.Equal(t, "submitted", rep.MeasuredLatency[0].Name)
	require.Equal(t, int64(10), rep.MeasuredLatency[0].Count)
	require.NotNil(t, rep.Actions, "a polling workload reports the actions' final statuses")
	require.Equal(t, int64(10), rep.Actions.Final["Finished"])
	require.Equal(t, 10, f.count("FETCH"))
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Zero(t, f.unknown, "every saved and pooled token was one the server issued")
	require.Equal(t, "Big", f.params["tasksections"], "-set overrides the default")
	require.Contains(t, []string{"alpha", "beta gamma"}, f.params["word"])
	require.Contains(t, []string{"5", "6", "7", "8", "9"}, f.params["n"])
	require.NotEmpty(t, f.params["seq"])
}

// The plan of a workload lists every step with its placeholders.
func TestWorkloadPlan(t *testing.T) {
	t.Parallel()
	w := writeWorkload(t, mixWorkload, map[string]string{"words.txt": "alpha\n"})
	p, err := Describe(context.Background(), Config{Workload: w, Rate: 10, Duration: 2 * time.Second})
	require.NoError(t, err)
	out := p.String()
	require.Contains(t, out, "workload  mix (")
	require.Contains(t, out, "operation read (3 in 4):  GET /action=GetVersion&Word={{line words.txt}}&N={{random 5 9}}&Seq={{seq}}")
	require.Contains(t, out, "then GET /action=QueueInfo&QueueAction=GetStatus&QueueName=fetch&Token={{tok}}  every 1ms until ended")
	require.Contains(t, out, "1 step(s) of the operations send a Fetch")
	require.True(t, p.Submits)
}

// A mistake in a workload file is refused before anything is sent, with
// the file, the line and what was expected.
func TestWorkloadErrors(t *testing.T) {
	t.Parallel()
	head := "schema: connector-workload/1\nname: x\n"
	op := func(steps string) string { return head + "operations:\n  - name: o\n    steps:\n" + steps }
	for _, tc := range []struct{ desc, text, want string }{
		{"schema", "schema: other/2\nname: x\noperations:\n  - name: o\n    steps:\n      - {name: a, request: action=GetVersion}\n", `load.yaml:1: schema "other/2"`},
		{"unknown key", op("      - name: a\n        request: action=GetVersion\n        retry: 3\n"), `load.yaml:8: unknown key "retry": expected one of expect, mark, measure, name, poll, pool, request, save, sleep`},
		{"unknown variable", op("      - name: a\n        request: action=GetVersion&X={{nope}}\n"), "load.yaml:6: step a: request: {{nope}} is neither a variable"},
		{"used before saved", op("      - name: a\n        request: action=GetStatus&Token={{tok}}\n      - name: b\n        request: action=Fetch\n        save: {tok: token}\n"), "{{tok}} is neither a variable of the workload nor saved by an earlier step"},
		{"poll until", op("      - name: a\n        request: action=QueueInfo\n        poll: {every: 1ms, until: done}\n"), `poll until "done"`},
		{"poll every", op("      - name: a\n        request: action=QueueInfo\n        poll: {every: soon, until: ended}\n"), `poll every: "soon"`},
		{"status", op("      - name: a\n        request: action=QueueInfo\n        expect: {status: Done}\n"), `expect status "Done"`},
		{"response format", op("      - name: a\n        request: action=GetVersion&ResponseFormat=json\n"), "ResponseFormat is set by -format"},
		{"measure without mark", op("      - name: a\n        request: action=GetVersion\n        measure: t\n"), "no earlier step marks t"},
		{"no action", op("      - name: a\n        request: Text=x\n"), "no action="},
		{"no operations", head, "operations are missing"},
		{"weight", head + "operations:\n  - name: o\n    weight: 0\n    steps:\n      - {name: a, request: action=GetVersion}\n", `load.yaml:5: "0": expected a whole number from 1`},
		{"missing data file", op("      - name: a\n        request: action=GetVersion&W={{line none.txt}}\n"), "{{line none.txt}}: open"},
		{"pool nobody fills", op("      - name: a\n        request: action=GetStatus&Token={{pool p}}\n"), "needs a pool that a step fills"},
		{"not yaml", "schema: [\n", "workload"},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "load.yaml")
		require.NoError(t, os.WriteFile(path, []byte(tc.text), 0o600))
		_, err := LoadWorkload(path)
		require.ErrorIs(t, err, ErrInvalidConfig, tc.desc)
		require.ErrorContains(t, err, tc.want, tc.desc)
	}
	w := writeWorkload(t, op("      - name: a\n        request: action=GetVersion\n"), nil)
	_, err := Run(context.Background(), Config{Workload: w, Vars: map[string]string{"speed": "1"}})
	require.ErrorContains(t, err, `has no variable "speed"`)
	_, err = Run(context.Background(), Config{Scenario: ScenarioSubmit, Vars: map[string]string{"x": "1"}})
	require.ErrorContains(t, err, "only a workload file has variables")
}

// extractPath reads an element of any reply format.
func TestExtractPath(t *testing.T) {
	t.Parallel()
	xml := []byte(`<?xml version="1.0"?><autnresponse xmlns:autn="x"><action>QUERY</action><response>SUCCESS</response><responsedata><autn:numhits>2</autn:numhits><autn:hit><autn:reference>one</autn:reference></autn:hit><autn:hit><autn:reference>two</autn:reference></autn:hit></responsedata></autnresponse>`)
	v, ok := extractPath(xml, sourcePath("responsedata/hit/reference"))
	require.True(t, ok)
	require.Equal(t, "one", v)
	v, ok = extractPath(xml, sourcePath("ResponseData/NumHits"))
	require.True(t, ok)
	require.Equal(t, "2", v)
	_, ok = extractPath(xml, sourcePath("responsedata/hit/title"))
	require.False(t, ok)
	sj := []byte(`{"autnresponse":{"action":"QUERY","response":"SUCCESS","responsedata":{"numhits":2,"hit":[{"reference":"one"},{"reference":"two"}]}}}`)
	v, ok = extractPath(sj, sourcePath("responsedata/hit/reference"))
	require.True(t, ok)
	require.Equal(t, "one", v)
	v, ok = extractPath(sj, sourcePath("responsedata/numhits"))
	require.True(t, ok)
	require.Equal(t, "2", v)
	bf := []byte(`{"autnresponse":{"responsedata":{"autn:hit":[{"autn:reference":{"$":"one"}}]}}}`)
	v, ok = extractPath(bf, sourcePath("responsedata/hit/reference"))
	require.True(t, ok)
	require.Equal(t, "one", v)
	require.False(t, strings.Contains(v, "$"))
}

// {{random LOW HIGH}} took HIGH - LOW + 1 as the count of its numbers in
// an int64, which overflows for a range of 2^63 numbers or more
// ({{random 0 9223372036854775807}}, any non-negative number): the first
// request of the load panicked the generator, without a report and
// without the workload's cleanup. Every range LOW <= HIGH now works.
func TestWorkloadRandomOverTheWholeRange(t *testing.T) {
	t.Parallel()
	f := newFake()
	base := f.start(t)
	w := writeWorkload(t, `schema: connector-workload/1
name: wide
operations:
  - name: read
    steps:
      - name: version
        request: action=GetVersion&Pos={{random 0 9223372036854775807}}&All={{random -9223372036854775808 9223372036854775807}}&One={{random -3 -3}}
`, nil)
	rep, err := Run(context.Background(), Config{Target: base, Workload: w, Requests: 20, Duration: time.Minute, Concurrency: 2})
	require.NoError(t, err)
	require.Equal(t, int64(20), rep.Operations.OK, "%+v", rep.Errors)
	f.mu.Lock()
	defer f.mu.Unlock()
	pos, err := strconv.ParseInt(f.params["pos"], 10, 64)
	require.NoError(t, err)
	require.GreaterOrEqual(t, pos, int64(0))
	_, err = strconv.ParseInt(f.params["all"], 10, 64)
	require.NoError(t, err)
	require.Equal(t, "-3", f.params["one"])
}
