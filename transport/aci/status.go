package aci

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/connectorhq/connector/messages"
)

// QueueTimeLayout is the Go layout of queued_time, process_start_time and
// process_end_time (autnSimpleTypes queueInfoDate).
const QueueTimeLayout = "2006-Jan-02 15:04:05"

// NoTime is what process_start_time and process_end_time say while the
// action has not started or not ended: the Unix epoch, printed the same in
// every time zone. OpenText's asynchronousTypes.xsd requires both elements
// (and time_processing, then 0) in every action and types them as dates,
// so an action that never ran cannot leave them out or leave them empty;
// the epoch is what a server whose unset times are zero prints, and no
// action of this server can have started or ended then.
const NoTime = "1970-Jan-01 00:00:00"

// TokenNode returns the <token> element of an asynchronous action's reply.
func TokenNode(token string) Node {
	return Node{Name: "token", Text: token}
}

// ActionNode returns one QueueInfo GetStatus <action> (a List element)
// for s. Times are printed in now's location (pass time.Now() for server
// local time); live durations are measured up to now. Durations are whole
// seconds between the printed (second-truncated) times, so they always
// agree with the times shown.
//
// Children, in the order real connectors print them: status, queued_time,
// time_in_queue, process_start_time, time_processing, process_end_time
// (always: NoTime and 0 for what has not happened yet), error (Error
// state), documentcounts (when there are counts), fetchaction (when set),
// priority, restarts (when not 0), the result elements, token, and the
// failures (when there were any), the one element of ours.
func ActionNode(s *messages.ActionStatus, now time.Time) Node {
	if s == nil {
		return Node{Name: "action", List: true, Children: []Node{}}
	}
	loc := now.Location()
	nowSec := now.Unix()
	queued := floorSec(s.GetQueuedUnixMs())
	started, ended := s.GetStartedUnixMs() != 0, s.GetEndedUnixMs() != 0
	start, end := floorSec(s.GetStartedUnixMs()), floorSec(s.GetEndedUnixMs())

	ch := make([]Node, 0, 12+len(s.GetResults()))
	ch = append(ch,
		TextNode("status", messages.StatusName(s.GetState())),
		TextNode("queued_time", formatQueueTime(queued, loc)))
	switch {
	case started:
		ch = append(ch, TextNode("time_in_queue", seconds(start-queued)))
	case ended:
		ch = append(ch, TextNode("time_in_queue", seconds(end-queued)))
	default:
		ch = append(ch, TextNode("time_in_queue", seconds(nowSec-queued)))
	}
	startText, endText, processing := NoTime, NoTime, int64(0)
	if started {
		until := nowSec
		if ended {
			until = end
		}
		startText, processing = formatQueueTime(start, loc), until-start
	}
	if ended {
		endText = formatQueueTime(end, loc)
	}
	ch = append(ch,
		TextNode("process_start_time", startText),
		TextNode("time_processing", seconds(processing)),
		TextNode("process_end_time", endText))
	if s.GetState() == messages.State_STATE_ERROR {
		ch = append(ch, TextNode("error", s.GetError()))
	}
	if counts := s.GetCounts(); len(counts) > 0 {
		dc := make([]Node, 0, len(counts))
		for _, c := range counts {
			if c != nil {
				dc = append(dc, DocumentCountNode(c, s.GetFetchAction()))
			}
		}
		ch = append(ch, Container("documentcounts", dc...))
	}
	if fa := s.GetFetchAction(); fa != "" {
		ch = append(ch, TextNode("fetchaction", fa))
	}
	ch = append(ch, TextNode("priority", strconv.FormatInt(int64(s.GetPriority()), 10)))
	if r := s.GetRestarts(); r > 0 {
		ch = append(ch, TextNode("restarts", strconv.FormatUint(uint64(r), 10)))
	}
	for _, e := range s.GetResults() {
		if e != nil {
			ch = append(ch, ElementNode(e))
		}
	}
	ch = append(ch, TokenNode(s.GetToken()))
	if s.GetFailuresTotal() > 0 {
		// After token: asynchronousTypes.xsd allows extra elements there only.
		ch = append(ch, FailuresNode(s.GetFailures(), s.GetFailuresTotal()))
	}
	return Node{Name: "action", List: true, Children: ch}
}

// FailuresNode returns an action's <failures total="N">: one
// <failure task="T" count="C"><url>…</url><reason>…</reason></failure> per
// listed failure, in the order they first happened. total counts every
// failure, listed or not (the list is bounded: fetch.MaxFailures).
func FailuresNode(list []*messages.Failure, total uint64) Node {
	ch := make([]Node, 0, len(list))
	for _, f := range list {
		if f == nil {
			continue
		}
		ch = append(ch, Node{Name: "failure", List: true,
			Attrs:    []Attr{{Name: "count", Value: strconv.FormatUint(f.GetCount(), 10)}, {Name: "task", Value: f.GetTask()}},
			Children: []Node{TextNode("url", f.GetUrl()), TextNode("reason", f.GetReason())}})
	}
	return Node{Name: "failures", Attrs: []Attr{{Name: "total", Value: strconv.FormatUint(total, 10)}}, Children: ch}
}

func floorSec(ms int64) int64 {
	if ms >= 0 {
		return ms / 1000
	}
	return (ms - 999) / 1000
}

func seconds(d int64) string {
	if d < 0 { // clock stepped back
		d = 0
	}
	return strconv.FormatInt(d, 10)
}

// FormatQueueTime prints a time given in Unix milliseconds the way
// QueueInfo prints its times (QueueTimeLayout, whole seconds), in now's
// location.
func FormatQueueTime(unixMs int64, now time.Time) string {
	return formatQueueTime(floorSec(unixMs), now.Location())
}

func formatQueueTime(sec int64, loc *time.Location) string {
	return time.Unix(sec, 0).In(loc).Format(QueueTimeLayout)
}

// counter is one documentcount attribute.
type counter struct {
	name string
	get  func(*messages.DocumentCount) uint64
}

// counters are the documentcount attributes in output (alphabetical)
// order, except errors and task which are printed always.
var counters = [...]counter{
	{"added", (*messages.DocumentCount).GetAdded},
	{"collected", (*messages.DocumentCount).GetCollected},
	{"deleted", (*messages.DocumentCount).GetDeleted},
	{"errors", (*messages.DocumentCount).GetErrors},
	{"holds", (*messages.DocumentCount).GetHolds},
	{"ingestadded", (*messages.DocumentCount).GetIngestadded},
	{"ingestdeleted", (*messages.DocumentCount).GetIngestdeleted},
	{"ingestfailed", (*messages.DocumentCount).GetIngestfailed},
	{"ingestupdated", (*messages.DocumentCount).GetIngestupdated},
	{"inserted", (*messages.DocumentCount).GetInserted},
	{"releasedholds", (*messages.DocumentCount).GetReleasedholds},
	{"seen", (*messages.DocumentCount).GetSeen},
	{"stubbed", (*messages.DocumentCount).GetStubbed},
	{"task", nil},
	{"unchanged", (*messages.DocumentCount).GetUnchanged},
	{"updated", (*messages.DocumentCount).GetUpdated},
}

// relevantCounters lists, per fetch action, the counters printed even when
// zero (besides errors and task). Counters of other actions are printed
// only when not zero; an unknown fetch action prints every counter.
var relevantCounters = map[string][]string{
	"SYNCHRONIZE": {"added", "deleted", "ingestadded", "ingestdeleted", "ingestfailed",
		"ingestupdated", "seen", "unchanged", "updated"},
	"IDENTIFIERS": {"seen"},
	"COLLECT":     {"collected"},
	"DELETE":      {"deleted", "ingestdeleted", "ingestfailed"},
	"REMOVE":      {"deleted", "ingestdeleted", "ingestfailed"},
	"INSERT":      {"inserted", "ingestadded", "ingestfailed"},
	"UPDATE":      {"updated", "ingestupdated", "ingestfailed"},
	"HOLD":        {"holds"},
	"RELEASEHOLD": {"releasedholds"},
	"STUB":        {"stubbed"},
}

// relevantMasks is relevantCounters as bit sets over counters.
var relevantMasks = func() map[string]uint32 {
	m := make(map[string]uint32, len(relevantCounters))
	for fa, names := range relevantCounters {
		var mask uint32
		for _, n := range names {
			for i, c := range counters {
				if c.name == n {
					mask |= 1 << i
				}
			}
		}
		m[fa] = mask
	}
	return m
}()

// DocumentCountNode returns one <documentcount> (a List element) for a
// task of an action of fetchAction: errors and task always, the counters
// relevant to fetchAction even when zero, any other counter that is not
// zero, all in alphabetical order as real connectors print them. For an
// unknown fetch action every counter is printed.
func DocumentCountNode(c *messages.DocumentCount, fetchAction string) Node {
	mask, ok := relevantMasks[strings.ToUpper(fetchAction)]
	if !ok {
		mask = math.MaxUint32
	}
	attrs := make([]Attr, 0, 4)
	for i, k := range counters {
		switch {
		case k.name == "task":
			attrs = append(attrs, Attr{Name: "task", Value: c.GetTask()})
		case k.name == "errors" || mask&(1<<i) != 0:
			attrs = append(attrs, Attr{Name: k.name, Value: strconv.FormatUint(k.get(c), 10)})
		default:
			if v := k.get(c); v != 0 {
				attrs = append(attrs, Attr{Name: k.name, Value: strconv.FormatUint(v, 10)})
			}
		}
	}
	return Node{Name: "documentcount", Attrs: attrs, List: true}
}

// QueueStatusNode returns the <queue> element of QueueAction=QueueStatus
// (and of queue-wide Pause and Resume): name, paused (true/false), pending
// (the actions waiting to start: queued, or paused before they started;
// r.Waiting), running (the actions holding a worker thread: processing,
// or paused while running; r.Running), completed (finished, cancelled,
// stopped and failed), maximum_threads, maximum_queue_size, and <states>
// with one count per state.
func QueueStatusNode(r *messages.QueueStatusReply) Node {
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	paused := "false"
	if r.GetPaused() {
		paused = "true"
	}
	return Node{Name: "queue", Children: []Node{
		TextNode("name", r.GetQueue()),
		TextNode("paused", paused),
		TextNode("pending", u(r.GetWaiting())),
		TextNode("running", u(r.GetRunning())),
		TextNode("completed", u(r.GetFinished()+r.GetCancelled()+r.GetStopped()+r.GetError())),
		TextNode("maximum_threads", u(uint64(r.GetMaximumThreads()))),
		TextNode("maximum_queue_size", u(uint64(r.GetMaximumQueueSize()))),
		Container("states",
			TextNode("queued", u(r.GetQueued())),
			TextNode("processing", u(r.GetProcessing())),
			TextNode("paused", u(r.GetPausedActions())),
			TextNode("finished", u(r.GetFinished())),
			TextNode("cancelled", u(r.GetCancelled())),
			TextNode("stopped", u(r.GetStopped())),
			TextNode("error", u(r.GetError()))),
	}}
}

// ProgressNode returns the <action> (a List element) of
// QueueAction=Progress: status, <progress> with percent (one decimal
// place) and the current stage, the stage tree as nested <stage name
// percent status> List elements down to maxDepth levels (negative: all
// levels; 0: none), and token. A nil p reads as no progress yet.
func ProgressNode(s *messages.ActionStatus, p *messages.Progress, maxDepth int) Node {
	ch := make([]Node, 0, 3+len(p.GetStages()))
	ch = append(ch,
		TextNode("status", messages.StatusName(s.GetState())),
		Node{Name: "progress", Children: []Node{
			TextNode("percent", percent(p.GetPercent())),
			TextNode("stage", p.GetStage()),
		}})
	ch = appendStages(ch, p.GetStages(), maxDepth)
	ch = append(ch, TokenNode(s.GetToken()))
	return Node{Name: "action", List: true, Children: ch}
}

func appendStages(dst []Node, stages []*messages.Stage, depth int) []Node {
	if depth == 0 {
		return dst
	}
	for _, st := range stages {
		if st == nil {
			continue
		}
		n := Node{Name: "stage", List: true, Attrs: []Attr{
			{Name: "name", Value: st.GetName()},
			{Name: "percent", Value: percent(st.GetPercent())},
			{Name: "status", Value: messages.StatusName(st.GetState())},
		}}
		if len(st.GetStages()) > 0 && depth != 1 {
			n.Children = appendStages(nil, st.GetStages(), depth-1)
		}
		dst = append(dst, n)
	}
	return dst
}

// percent formats p with one decimal place, clamped to [0, 100].
func percent(p float64) string {
	switch {
	case math.IsNaN(p) || p < 0:
		p = 0
	case p > 100:
		p = 100
	}
	return strconv.FormatFloat(p, 'f', 1, 64)
}

// ParamsNode returns the <action> (a List element) of
// QueueAction=GetActionParameters: token, fetchaction (when set), status,
// and <parameters> holding one <parameter name="...">value</parameter>
// (a List element) per parameter, in order.
func ParamsNode(s *messages.ActionStatus, params []*messages.Param) Node {
	ps := make([]Node, 0, len(params))
	for _, p := range params {
		if p != nil {
			ps = append(ps, Node{Name: "parameter", List: true,
				Attrs: []Attr{{Name: "name", Value: p.GetName()}}, Text: p.GetValue()})
		}
	}
	ch := make([]Node, 0, 4)
	ch = append(ch, TokenNode(s.GetToken()))
	if fa := s.GetFetchAction(); fa != "" {
		ch = append(ch, TextNode("fetchaction", fa))
	}
	ch = append(ch,
		TextNode("status", messages.StatusName(s.GetState())),
		Container("parameters", ps...))
	return Node{Name: "action", List: true, Children: ch}
}
