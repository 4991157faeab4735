package aci

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

func childNames(n Node) []string {
	out := make([]string, 0, len(n.Children))
	for _, c := range n.Children {
		out = append(out, c.Name)
	}
	return out
}

func child(t *testing.T, n Node, name string) Node {
	t.Helper()
	for _, c := range n.Children {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s in %v", name, childNames(n))
	return Node{}
}

func TestActionNodeStates(t *testing.T) {
	t.Parallel()
	now := at("2015-Aug-17 18:00:00")
	queued := ms("2015-Aug-17 17:00:00") + 900 // durations count whole printed seconds
	started := ms("2015-Aug-17 17:00:10") + 100
	ended := ms("2015-Aug-17 17:01:00") + 500
	tests := []struct {
		desc      string
		s         *messages.ActionStatus
		wantNames []string
		wantText  map[string]string
	}{
		{
			desc: "queued: time in queue up to now",
			s:    &messages.ActionStatus{Token: "t", State: messages.State_STATE_QUEUED, QueuedUnixMs: queued},
			wantNames: []string{"status", "queued_time", "time_in_queue", "process_start_time", "time_processing",
				"process_end_time", "priority", "token"},
			wantText: map[string]string{"status": "Queued", "queued_time": "2015-Aug-17 17:00:00",
				"time_in_queue": "3600", "process_start_time": NoTime, "time_processing": "0",
				"process_end_time": NoTime, "priority": "0", "token": "t"},
		},
		{
			desc: "paused while queued",
			s:    &messages.ActionStatus{Token: "t", State: messages.State_STATE_PAUSED, QueuedUnixMs: queued, Priority: 3},
			wantNames: []string{"status", "queued_time", "time_in_queue", "process_start_time", "time_processing",
				"process_end_time", "priority", "token"},
			wantText: map[string]string{"status": "Paused", "priority": "3", "process_start_time": NoTime,
				"time_processing": "0", "process_end_time": NoTime},
		},
		{
			desc: "processing: processing time up to now",
			s: &messages.ActionStatus{Token: "t", State: messages.State_STATE_PROCESSING, QueuedUnixMs: queued,
				StartedUnixMs: started, FetchAction: "SYNCHRONIZE"},
			wantNames: []string{"status", "queued_time", "time_in_queue", "process_start_time", "time_processing",
				"process_end_time", "fetchaction", "priority", "token"},
			wantText: map[string]string{"status": "Processing", "time_in_queue": "10",
				"process_start_time": "2015-Aug-17 17:00:10", "time_processing": "3590",
				"process_end_time": NoTime, "fetchaction": "SYNCHRONIZE"},
		},
		{
			desc: "finished",
			s: &messages.ActionStatus{Token: "t", State: messages.State_STATE_FINISHED, QueuedUnixMs: queued,
				StartedUnixMs: started, EndedUnixMs: ended, FetchAction: "COLLECT",
				Counts: []*messages.DocumentCount{{Task: "A", Collected: 2}}},
			wantNames: []string{"status", "queued_time", "time_in_queue", "process_start_time", "time_processing",
				"process_end_time", "documentcounts", "fetchaction", "priority", "token"},
			wantText: map[string]string{"status": "Finished", "time_in_queue": "10", "time_processing": "50",
				"process_end_time": "2015-Aug-17 17:01:00"},
		},
		{
			desc: "error with message, restarts and results",
			s: &messages.ActionStatus{Token: "t", State: messages.State_STATE_ERROR, QueuedUnixMs: queued,
				StartedUnixMs: started, EndedUnixMs: ended, Error: "boom", Restarts: 2, FetchAction: "HOLD",
				Results: []*messages.Element{{Name: "tasks"}, nil, {Name: "extra", Text: "x"}}},
			wantNames: []string{"status", "queued_time", "time_in_queue", "process_start_time", "time_processing",
				"process_end_time", "error", "fetchaction", "priority", "restarts", "tasks", "extra", "token"},
			wantText: map[string]string{"status": "Error", "error": "boom", "restarts": "2", "extra": "x"},
		},
		{
			desc: "cancelled before starting: queue time up to the end",
			s: &messages.ActionStatus{Token: "t", State: messages.State_STATE_CANCELLED, QueuedUnixMs: queued,
				EndedUnixMs: ended},
			wantNames: []string{"status", "queued_time", "time_in_queue", "process_start_time", "time_processing",
				"process_end_time", "priority", "token"},
			wantText: map[string]string{"status": "Cancelled", "time_in_queue": "60", "process_start_time": NoTime,
				"time_processing": "0", "process_end_time": "2015-Aug-17 17:01:00"},
		},
		{
			desc: "stopped before it started",
			s: &messages.ActionStatus{Token: "t", State: messages.State_STATE_STOPPED, QueuedUnixMs: queued,
				EndedUnixMs: ended},
			wantNames: []string{"status", "queued_time", "time_in_queue", "process_start_time", "time_processing",
				"process_end_time", "priority", "token"},
			wantText: map[string]string{"status": "Stopped", "time_in_queue": "60", "process_start_time": NoTime,
				"time_processing": "0", "process_end_time": "2015-Aug-17 17:01:00"},
		},
		{
			desc: "stopped while running",
			s: &messages.ActionStatus{Token: "t", State: messages.State_STATE_STOPPED, QueuedUnixMs: queued,
				StartedUnixMs: started, EndedUnixMs: ended},
			wantNames: []string{"status", "queued_time", "time_in_queue", "process_start_time", "time_processing",
				"process_end_time", "priority", "token"},
			wantText: map[string]string{"status": "Stopped", "time_processing": "50"},
		},
		{
			desc: "clock stepped back: durations never negative",
			s: &messages.ActionStatus{Token: "t", State: messages.State_STATE_PROCESSING,
				QueuedUnixMs: ms("2015-Aug-17 19:00:00"), StartedUnixMs: ms("2015-Aug-17 18:59:00")},
			wantNames: []string{"status", "queued_time", "time_in_queue", "process_start_time", "time_processing",
				"process_end_time", "priority", "token"},
			wantText: map[string]string{"time_in_queue": "0", "time_processing": "0", "process_end_time": NoTime},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			n := ActionNode(tc.s, now)
			require.Equal(t, "action", n.Name)
			require.True(t, n.List)
			require.Equal(t, tc.wantNames, childNames(n))
			for name, want := range tc.wantText {
				require.Equal(t, want, child(t, n, name).Text, name)
			}
		})
	}
}

func TestActionNodeLocation(t *testing.T) {
	t.Parallel()
	s := &messages.ActionStatus{QueuedUnixMs: time.Date(2022, 11, 3, 19, 19, 37, 886e6, time.UTC).UnixMilli()}
	n := ActionNode(s, time.Date(2022, 11, 3, 20, 0, 0, 0, time.UTC))
	require.Equal(t, "2022-Nov-03 19:19:37", child(t, n, "queued_time").Text)
	n = ActionNode(s, time.Date(2022, 11, 3, 20, 0, 0, 0, time.UTC).In(time.FixedZone("X", -5*3600)))
	require.Equal(t, "2022-Nov-03 14:19:37", child(t, n, "queued_time").Text)
}

func TestActionNodeNil(t *testing.T) {
	t.Parallel()
	n := ActionNode(nil, testNow)
	require.Equal(t, "action", n.Name)
	out, _ := Encode(nil, FormatSimpleJSON, &Reply{Data: []Node{n}})
	require.Contains(t, string(out), `"action":[{}]`)
}

func attrMap(n Node) (names []string, values map[string]string) {
	values = map[string]string{}
	for _, a := range n.Attrs {
		names = append(names, a.Name)
		values[a.Name] = a.Value
	}
	return names, values
}

func TestDocumentCountNode(t *testing.T) {
	t.Parallel()
	zero := &messages.DocumentCount{Task: "T"}
	tests := []struct {
		fetchAction string
		c           *messages.DocumentCount
		want        []string
	}{
		{"SYNCHRONIZE", zero, []string{"added", "deleted", "errors", "ingestadded", "ingestdeleted", "ingestfailed",
			"ingestupdated", "seen", "task", "unchanged", "updated"}},
		{"IDENTIFIERS", zero, []string{"errors", "seen", "task"}},
		{"identifiers", zero, []string{"errors", "seen", "task"}},
		{"COLLECT", zero, []string{"collected", "errors", "task"}},
		{"DELETE", zero, []string{"deleted", "errors", "ingestdeleted", "ingestfailed", "task"}},
		{"REMOVE", zero, []string{"deleted", "errors", "ingestdeleted", "ingestfailed", "task"}},
		{"INSERT", zero, []string{"errors", "ingestadded", "ingestfailed", "inserted", "task"}},
		{"UPDATE", zero, []string{"errors", "ingestfailed", "ingestupdated", "task", "updated"}},
		{"HOLD", zero, []string{"errors", "holds", "task"}},
		{"RELEASEHOLD", zero, []string{"errors", "releasedholds", "task"}},
		{"STUB", zero, []string{"errors", "stubbed", "task"}},
		{"", zero, []string{"added", "collected", "deleted", "errors", "holds", "ingestadded", "ingestdeleted",
			"ingestfailed", "ingestupdated", "inserted", "releasedholds", "seen", "stubbed", "task", "unchanged", "updated"}},
		{"SOMETHINGELSE", zero, []string{"added", "collected", "deleted", "errors", "holds", "ingestadded", "ingestdeleted",
			"ingestfailed", "ingestupdated", "inserted", "releasedholds", "seen", "stubbed", "task", "unchanged", "updated"}},
		{"COLLECT", &messages.DocumentCount{Task: "T", Collected: 1, Seen: 4, Stubbed: 1},
			[]string{"collected", "errors", "seen", "stubbed", "task"}},
	}
	for _, tc := range tests {
		n := DocumentCountNode(tc.c, tc.fetchAction)
		require.Equal(t, "documentcount", n.Name)
		require.True(t, n.List)
		names, _ := attrMap(n)
		require.Equal(t, tc.want, names, tc.fetchAction)
	}

	all := &messages.DocumentCount{Task: "MYTASK", Seen: 1, Added: 2, Updated: 3, Deleted: 4, Unchanged: 5,
		Collected: 6, Inserted: 7, Holds: 8, Releasedholds: 9, Ingestadded: 10, Ingestupdated: 11,
		Ingestdeleted: 12, Ingestfailed: 13, Errors: 14, Stubbed: 15}
	_, values := attrMap(DocumentCountNode(all, "IDENTIFIERS"))
	require.Equal(t, map[string]string{"task": "MYTASK", "seen": "1", "added": "2", "updated": "3", "deleted": "4",
		"unchanged": "5", "collected": "6", "inserted": "7", "holds": "8", "releasedholds": "9", "ingestadded": "10",
		"ingestupdated": "11", "ingestdeleted": "12", "ingestfailed": "13", "errors": "14", "stubbed": "15"}, values)

	// The fixture's exact rendering.
	out, _ := Encode(nil, FormatXML, &Reply{Data: []Node{
		DocumentCountNode(&messages.DocumentCount{Task: "MYTASK", Seen: 3}, "IDENTIFIERS")}})
	require.Contains(t, string(out), `<documentcount errors="0" seen="3" task="MYTASK"/>`)
}

func TestQueueStatusNode(t *testing.T) {
	t.Parallel()
	n := QueueStatusNode(&messages.QueueStatusReply{Queue: "FETCH", Queued: 4, Processing: 2, PausedActions: 1,
		Finished: 7, Cancelled: 1, Stopped: 1, Error: 3, MaximumThreads: 2, MaximumQueueSize: 50,
		Waiting: 4, Running: 3}) // the paused action is paused while running
	require.Equal(t, "queue", n.Name)
	require.Equal(t, []string{"name", "paused", "pending", "running", "completed", "maximum_threads",
		"maximum_queue_size", "states"}, childNames(n))
	want := map[string]string{"name": "FETCH", "paused": "false", "pending": "4", "running": "3", "completed": "12",
		"maximum_threads": "2", "maximum_queue_size": "50"}
	for name, v := range want {
		require.Equal(t, v, child(t, n, name).Text, name)
	}
	states := child(t, n, "states")
	require.Equal(t, []string{"queued", "processing", "paused", "finished", "cancelled", "stopped", "error"}, childNames(states))
	for i, v := range []string{"4", "2", "1", "7", "1", "1", "3"} {
		require.Equal(t, v, states.Children[i].Text)
	}
	require.Equal(t, "true", child(t, QueueStatusNode(&messages.QueueStatusReply{Paused: true}), "paused").Text)
	require.NotPanics(t, func() { QueueStatusNode(nil) })
}

func TestProgressNode(t *testing.T) {
	t.Parallel()
	s := &messages.ActionStatus{Token: "tok", State: messages.State_STATE_PROCESSING}
	p := &messages.Progress{Percent: 33.333, Stage: "b", Stages: []*messages.Stage{
		{Name: "a", Percent: 100, State: messages.State_STATE_FINISHED},
		{Name: "b", Percent: 50, State: messages.State_STATE_PROCESSING, Stages: []*messages.Stage{
			{Name: "b1", Percent: 50, State: messages.State_STATE_PROCESSING, Stages: []*messages.Stage{
				{Name: "b1x", Percent: 10, State: messages.State_STATE_PROCESSING}}},
			nil,
		}},
	}}
	depthOf := func(ns []Node) int {
		var d func([]Node) int
		d = func(ns []Node) int {
			m := 0
			for _, n := range ns {
				if n.Name == "stage" {
					m = max(m, 1+d(n.Children))
				}
			}
			return m
		}
		return d(ns)
	}
	for depth, want := range map[int]int{-1: 3, 0: 0, 1: 1, 2: 2, 3: 3, 10: 3} {
		n := ProgressNode(s, p, depth)
		require.Equal(t, want, depthOf(n.Children), "maxDepth %d", depth)
		require.Equal(t, "status", n.Children[0].Name)
		require.Equal(t, "progress", n.Children[1].Name)
		require.Equal(t, "token", n.Children[len(n.Children)-1].Name)
	}
	n := ProgressNode(s, p, -1)
	require.Equal(t, []Node{TextNode("percent", "33.3"), TextNode("stage", "b")}, n.Children[1].Children)
	require.Equal(t, []Attr{{"name", "a"}, {"percent", "100.0"}, {"status", "Finished"}}, n.Children[2].Attrs)

	n = ProgressNode(s, nil, -1)
	require.Equal(t, []string{"status", "progress", "token"}, childNames(n))
	require.Equal(t, "0.0", n.Children[1].Children[0].Text)

	for in, want := range map[float64]string{0: "0.0", 99.96: "100.0", 12.34: "12.3", -5: "0.0", 250: "100.0",
		math.NaN(): "0.0", math.Inf(1): "100.0", math.Inf(-1): "0.0"} {
		require.Equal(t, want, percent(in), "%v", in)
	}
}

func TestParamsNode(t *testing.T) {
	t.Parallel()
	s := &messages.ActionStatus{Token: "tok", State: messages.State_STATE_QUEUED, FetchAction: "SYNCHRONIZE"}
	n := ParamsNode(s, []*messages.Param{param("TaskSections", "A,B"), nil, param("Config", "x<y")})
	require.Equal(t, []string{"token", "fetchaction", "status", "parameters"}, childNames(n))
	ps := child(t, n, "parameters")
	require.Equal(t, []Node{
		{Name: "parameter", List: true, Attrs: []Attr{{"name", "TaskSections"}}, Text: "A,B"},
		{Name: "parameter", List: true, Attrs: []Attr{{"name", "Config"}}, Text: "x<y"},
	}, ps.Children)

	n = ParamsNode(&messages.ActionStatus{Token: "tok"}, nil)
	require.Equal(t, []string{"token", "status", "parameters"}, childNames(n))
	out, _ := Encode(nil, FormatSimpleJSON, &Reply{Data: []Node{n}})
	require.Contains(t, string(out), `"parameters":{}`)
}

func TestElementNode(t *testing.T) {
	t.Parallel()
	e := &messages.Element{Name: "identifiers", List: true, Attrs: []*messages.Param{param("parent_identifier", "ROOT"), nil},
		Children: []*messages.Element{{Name: "identifier", List: true, Text: "id", Attrs: []*messages.Param{param("type", "File")}}, nil}}
	require.Equal(t, Node{Name: "identifiers", List: true, Attrs: []Attr{{"parent_identifier", "ROOT"}},
		Children: []Node{{Name: "identifier", List: true, Text: "id", Attrs: []Attr{{"type", "File"}}}}}, ElementNode(e))
	require.Equal(t, Node{}, ElementNode(nil))
	require.Equal(t, []Node{{Name: "a"}}, ElementNodes([]*messages.Element{nil, {Name: "a"}}))
}

func TestTokenNode(t *testing.T) {
	t.Parallel()
	require.Equal(t, Node{Name: "token", Text: "abc="}, TokenNode("abc="))
}

// An action's failures come after its token (asynchronousTypes.xsd allows
// other elements there only), with the total; none, no element.
func TestActionNodeFailures(t *testing.T) {
	t.Parallel()
	s := &messages.ActionStatus{Token: "t", State: messages.State_STATE_FINISHED, FetchAction: "SYNCHRONIZE",
		Counts:        []*messages.DocumentCount{{Task: "MYTASK", Errors: 5}},
		Failures:      []*messages.Failure{{Task: "MYTASK", Url: "http://x/a?b=1&c=<2>", Reason: "unexpected HTTP status: HTTP 404", Count: 2}, nil, {Task: "MYTASK", Url: "http://x/b", Reason: "request timed out", Count: 1}},
		FailuresTotal: 5,
	}
	n := ActionNode(s, time.Now())
	names := childNames(n)
	require.Equal(t, []string{"token", "failures"}, names[len(names)-2:])
	out, _ := Encode(nil, FormatXML, &Reply{Action: "QUEUEINFO", Data: []Node{Container("actions", n)}})
	require.Contains(t, string(out), `<token>t</token><failures total="5">`+
		`<failure count="2" task="MYTASK"><url>http://x/a?b=1&amp;c=&lt;2&gt;</url><reason>unexpected HTTP status: HTTP 404</reason></failure>`+
		`<failure count="1" task="MYTASK"><url>http://x/b</url><reason>request timed out</reason></failure>`+
		`</failures></action>`)
	js, _ := Encode(nil, FormatSimpleJSON, &Reply{Action: "QUEUEINFO", Data: []Node{Container("actions", n)}})
	require.Contains(t, string(js), `"failures":{"@total":"5","failure":[{"@count":"2","@task":"MYTASK","url":"http://x/a?b=1&c=<2>","reason":"unexpected HTTP status: HTTP 404"}`)

	s.Failures, s.FailuresTotal = nil, 0
	require.NotContains(t, childNames(ActionNode(s, time.Now())), "failures")
	s.FailuresTotal = 3 // counted, none listed (a restored record, say)
	require.Equal(t, Node{Name: "failures", Attrs: []Attr{{"total", "3"}}, Children: []Node{}}, child(t, ActionNode(s, time.Now()), "failures"))
}
