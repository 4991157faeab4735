package httpd

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/transport/aci"
)

// fetch queues a fetch action: /action=Fetch&FetchAction=X&... The queue
// checks it (the FetchAction, the repository's Validate) as it checks
// every submission.
func (s *Server) fetch(ctx context.Context, req *aci.Request) (*result, error) {
	fa, err := req.Require("FetchAction")
	if err != nil {
		return nil, err
	}
	prio, err := req.IntRange("Priority", 0, -1<<31, 1<<31-1)
	if err != nil {
		return nil, err
	}
	// The submission and its reply in one object, reused: Submit keeps
	// nothing of spec but its parameters (the queue queues a copy, see
	// queue.API), so it may share the reply's memory, and handle gives
	// the reply back once it is written (result.recycle).
	r := fetchResults.Get().(*fetchResult)
	r.spec.Action, r.spec.FetchAction, r.spec.Params, r.spec.Priority = "FETCH", fa, queuedParams(req), int32(prio)
	if c := callerOf(ctx); c != nil {
		r.spec.Client, r.spec.Role = c.client(), c.role()
	}
	token, err := s.cfg.Queue.Submit(ctx, &r.spec)
	if err != nil {
		recycleFetch(&r.result)
		return nil, err
	}
	r.node[0] = aci.TokenNode(token)
	r.data = r.node[:]
	r.recycle = recycleFetch
	return &r.result, nil
}

// fetchResults are Fetch's replies with their submissions (416 bytes of
// garbage per submit otherwise).
var fetchResults = sync.Pool{New: func() any { return new(fetchResult) }}

// recycleFetch puts the fetchResult whose result r is back in
// fetchResults, holding nothing of its request.
func recycleFetch(r *result) {
	f := (*fetchResult)(unsafe.Pointer(r)) // result is a fetchResult's first field
	f.result, f.node = result{}, [1]aci.Node{}
	f.spec.Reset()
	fetchResults.Put(f)
}

// queuedParams returns the parameters of a Fetch that its action keeps
// (the queue holds them as long as the action): its action parameters
// (aci.Request.ActionParams) without FetchAction and Priority, nil when
// there are none. They are copies in memory of their own, since a queued
// action would otherwise keep the whole request alive: the parser's
// parameters are an array of every parameter (72 bytes each), and their
// names and values share one buffer with the whole request's (up to
// MaxRequestBytes per queued action for a request padded with a
// parameter it ignores). The kept names and values go into one string;
// the usual single parameter comes with its slice in one allocation.
func queuedParams(req *aci.Request) messages.Params {
	keep := func(p *messages.Param) bool {
		name := p.GetName()
		return !aci.IsStandardParam(name) && !strings.EqualFold(name, "FetchAction") && !strings.EqualFold(name, "Priority")
	}
	n, size := 0, 0
	for _, p := range req.Params {
		if keep(p) {
			n++
			size += len(p.GetName()) + len(p.GetValue())
		}
	}
	if n == 0 {
		return nil
	}
	var text strings.Builder
	text.Grow(size)
	for _, p := range req.Params {
		if keep(p) {
			text.WriteString(p.GetName())
			text.WriteString(p.GetValue())
		}
	}
	own := text.String()
	var out messages.Params
	var vals []messages.Param
	if n == 1 {
		one := &struct {
			ptr [1]*messages.Param
			val [1]messages.Param
		}{}
		out, vals = one.ptr[:0:1], one.val[:]
	} else {
		out, vals = make(messages.Params, 0, n), make([]messages.Param, n)
	}
	at := 0
	for _, p := range req.Params {
		if keep(p) {
			v := &vals[len(out)]
			nl, vl := len(p.GetName()), len(p.GetValue())
			v.Name, v.Value = own[at:at+nl], own[at+nl:at+nl+vl]
			at += nl + vl
			out = append(out, v)
		}
	}
	return out
}

// fetchResult is a Fetch's reply of one token node, with the submission
// it was the answer to, allocated at once. result must stay its first
// field (recycleFetch).
type fetchResult struct {
	result
	node [1]aci.Node
	spec messages.ActionSpec
}

var queueActions = []string{"GetStatus", "Cancel", "Stop", "ChangePriority", "Pause", "Resume", "Progress", "QueueStatus", "GetActionParameters", "Duplicate", "CancelQueued"}

// queueActionKeys are queueActions in lower case, as queueInfo switches
// on them.
var queueActionKeys = func() []string {
	keys := make([]string, len(queueActions))
	for i, a := range queueActions {
		keys[i] = strings.ToLower(a)
	}
	return keys
}()

// queueAction is a QueueAction's value in lower case, without surrounding
// white space, when it is one of queueActions in any ASCII case; otherwise
// qa without surrounding white space, which matches none. (Equal lengths
// make strings.EqualFold an ASCII comparison here. strings.ToLower would
// turn a non-ASCII letter into an ASCII one: Dupl\u0130cate into
// duplicate.)
func queueAction(qa string) string {
	qa = strings.Trim(qa, " \t\n\v\f\r") // ASCII white space only: Duplicate\u00a0 is not Duplicate
	for i, a := range queueActions {
		if len(a) == len(qa) && strings.EqualFold(a, qa) {
			return queueActionKeys[i]
		}
	}
	return qa
}

// asciiFold returns a test of whether v, without surrounding ASCII white
// space, is the ASCII name in any ASCII case (messages.IsValue:
// strings.ToLower would read pr\u0130ority, with a capital I with a dot,
// as priority, and strings.TrimSpace would trim a no-break space).
func asciiFold(v string) func(name string) bool {
	return func(name string) bool { return messages.IsValue(v, name) }
}

// tokenActions are the QueueActions (lower case) that take a Token.
var tokenActions = []string{"getstatus", "cancel", "stop", "changepriority", "pause", "resume", "progress", "getactionparameters", "duplicate"}

// queueInfo serves /action=QueueInfo&QueueName=fetch&QueueAction=X[&Token=...].
func (s *Server) queueInfo(ctx context.Context, req *aci.Request) (*result, error) {
	qa, err := req.Require("QueueAction")
	if err != nil {
		return nil, err
	}
	qn, err := req.Require("QueueName")
	if err != nil {
		return nil, err
	}
	q := s.cfg.Queue
	if !messages.IsValue(qn, q.Name()) {
		return nil, fmt.Errorf("%w: there is no queue %q; this server has one queue, %q", messages.ErrUnknownQueue, qn, q.Name())
	}
	action := queueAction(qa)
	token, hasToken := req.Params.Get("Token")
	if hasToken && strings.TrimSpace(token) == "" && slices.Contains(tokenActions, action) {
		// Token= present but blank is a token that names nothing, not "no
		// token": it must not list every action or pause the whole queue.
		return nil, fmt.Errorf("%w: the Token parameter is empty", messages.ErrUnknownToken)
	}
	needToken := func() error {
		if !hasToken {
			return messages.Missing("Token")
		}
		return nil
	}
	actionReply := func(r *messages.ActionReply, err error) (*result, error) {
		if err != nil {
			return nil, err
		}
		return oneAction(r.Status), nil
	}
	switch action {
	case "getstatus":
		// The list's filters and page are read with a Token too: they
		// do not apply to the one action, but a value that cannot be
		// read is refused, never taken for a filter that held.
		f, err := listFilter(req, s.cfg.MaxListResults)
		if err != nil {
			return nil, err
		}
		if hasToken {
			st, err := q.Status(ctx, token)
			if err != nil {
				return nil, err
			}
			return oneAction(st), nil
		}
		if el, ok := q.(entryLister); ok && req.Format == aci.FormatXML {
			entries, err := el.ListEntries(ctx, f)
			if err != nil {
				return nil, err
			}
			return &result{entries: entries, listed: true}, nil
		}
		list, err := q.List(ctx, f)
		if err != nil {
			return nil, err
		}
		if list == nil {
			list = []*messages.ActionStatus{} // <actions/>, not a reply without data
		}
		return &result{actions: list}, nil
	case "cancel":
		if err := needToken(); err != nil {
			return nil, err
		}
		return actionReply(q.Cancel(ctx, token))
	case "stop":
		if err := needToken(); err != nil {
			return nil, err
		}
		return actionReply(q.Stop(ctx, token))
	case "changepriority":
		if err := needToken(); err != nil {
			return nil, err
		}
		// A blank Priority is a missing one, never 0 (as a blank Token
		// is never "no token").
		if v, ok := req.Params.Get("Priority"); !ok || messages.TrimASCIISpace(v) == "" {
			return nil, messages.Missing("Priority")
		}
		p, err := req.IntRange("Priority", 0, -1<<31, 1<<31-1)
		if err != nil {
			return nil, err
		}
		return actionReply(q.ChangePriority(ctx, token, int32(p)))
	case "pause", "resume":
		pause := action == "pause"
		if hasToken {
			if pause {
				return actionReply(q.PauseAction(ctx, token))
			}
			return actionReply(q.ResumeAction(ctx, token))
		}
		var qs *messages.QueueStatusReply
		if pause {
			qs, err = q.Pause(ctx)
		} else {
			qs, err = q.Resume(ctx)
		}
		if err != nil {
			return nil, err
		}
		return &result{data: []aci.Node{aci.QueueStatusNode(qs)}}, nil
	case "progress":
		if err := needToken(); err != nil {
			return nil, err
		}
		depth, err := req.IntRange("MaxDepth", -1, 0, 1<<20)
		if err != nil {
			return nil, err
		}
		if _, err := req.Bool("AllStages", false); err != nil {
			return nil, err
		}
		r, err := q.Progress(ctx, token)
		if err != nil {
			return nil, err
		}
		return &result{data: []aci.Node{aci.Container("actions", aci.ProgressNode(r.Status, r.Progress, int(depth)))}}, nil
	case "queuestatus":
		qs, err := q.QueueStatus(ctx)
		if err != nil {
			return nil, err
		}
		return &result{data: []aci.Node{aci.QueueStatusNode(qs)}}, nil
	case "getactionparameters":
		skip, maxResults, err := listPage(req, s.cfg.MaxListResults) // read with a Token too (getstatus)
		if err != nil {
			return nil, err
		}
		if hasToken {
			r, err := q.ActionParameters(ctx, token)
			if err != nil {
				return nil, err
			}
			return &result{data: []aci.Node{aci.Container("actions", aci.ParamsNode(r.Status, s.shownParams(r.Params)))}}, nil
		}
		all, err := q.ListParams(ctx, skip, maxResults)
		if err != nil {
			return nil, err
		}
		// A page also ends once the parameters it shows reach the body
		// limit: an action's parameters may be that large.
		nodes := make([]aci.Node, 0, len(all))
		size := 0
		for _, r := range all {
			if len(nodes) > 0 && size >= s.cfg.MaxRequestBytes {
				break
			}
			for _, p := range r.Params {
				size += len(p.GetName()) + len(p.GetValue())
			}
			nodes = append(nodes, aci.ParamsNode(r.Status, s.shownParams(r.Params)))
		}
		return &result{data: []aci.Node{aci.Container("actions", nodes...)}}, nil
	case "cancelqueued":
		return s.cancelQueued(ctx, req)
	case "duplicate":
		if err := needToken(); err != nil {
			return nil, err
		}
		r, err := q.Duplicate(ctx, token)
		if err != nil {
			return nil, err
		}
		return &result{data: []aci.Node{aci.TokenNode(r.NewToken)}}, nil
	}
	return nil, messages.Invalid("QueueAction", qa, "must be one of "+strings.Join(queueActions, ", "))
}

// cancelQueued serves QueueAction=CancelQueued, an extension of ours: it
// cancels, in one request, the actions that have not started and that the
// GetStatus filters select. Without Confirm=true it is a dry run that says
// what it would cancel, so that no client cancels many actions by mistake
// (a Cancel whose Token was lost, a typo in the action's name).
func (s *Server) cancelQueued(ctx context.Context, req *aci.Request) (*result, error) {
	if token, ok := req.Params.Get("Token"); ok {
		return nil, messages.Invalid("Token", token, "CancelQueued selects actions with the GetStatus filters, not a Token; use QueueAction=Cancel to cancel one action")
	}
	confirm, err := req.Bool("Confirm", false)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"Finished-After", "Finished-Before"} {
		if v, ok := req.Params.Get(name); ok && messages.TrimASCIISpace(v) != "" {
			return nil, messages.Invalid(name, v, "an action that has not started has not finished: CancelQueued takes State, Queued-After, Queued-Before, Min-Priority, Max-Priority, Sort-By, Sort-Order, Start and MaxResults")
		}
	}
	f, err := listFilter(req, s.cfg.MaxListResults)
	if err != nil {
		return nil, err
	}
	for _, st := range f.States {
		if st != messages.State_STATE_QUEUED && st != messages.State_STATE_PAUSED {
			v, _ := req.Params.Get("State")
			return nil, messages.Invalid("State", v, "CancelQueued cancels actions that have not started: State may be Queued, Paused (before starting), or both (the default)")
		}
	}
	if v, ok := req.Params.Get("MaxResults"); !ok || messages.TrimASCIISpace(v) == "" {
		f.MaxResults = 0 // every match; the reply lists the first MaxListResults
	}
	r, err := s.cfg.Queue.CancelQueued(ctx, f, !confirm, s.cfg.MaxListResults)
	if err != nil {
		return nil, err
	}
	if confirm {
		s.log.Info("queued actions cancelled in one request (QueueAction=CancelQueued)",
			"matched", r.Matched, "cancelled", r.Cancelled, "skipped", r.Skipped)
	}
	nodes := make([]aci.Node, len(r.Actions))
	now := s.cfg.Now()
	for i, st := range r.Actions {
		nodes[i] = aci.ActionNode(st, now)
	}
	return &result{data: []aci.Node{
		aci.Container("cancelqueued",
			aci.TextNode("confirmed", strconv.FormatBool(confirm)),
			aci.TextNode("matched", strconv.Itoa(r.Matched)),
			aci.TextNode("cancelled", strconv.Itoa(r.Cancelled)),
			aci.TextNode("skipped", strconv.Itoa(r.Skipped)),
			aci.TextNode("listed", strconv.Itoa(len(r.Actions)))),
		aci.Container("actions", nodes...),
	}}, nil
}

// listPage reads a listing's page: Start (1-based, default 1) and
// MaxResults (1 to maxList, default maxList, [Actions] MaxListResults).
func listPage(req *aci.Request, maxList int) (skip, maxResults uint32, err error) {
	start, err := req.IntRange("Start", 1, 1, 1<<31-1)
	if err != nil {
		return 0, 0, err
	}
	n := int64(maxList)
	if v, ok := req.Params.Get("MaxResults"); ok && messages.TrimASCIISpace(v) != "" {
		if n, err = req.IntRange("MaxResults", 0, 1, 1<<31-1); err != nil {
			return 0, 0, err
		}
		if n > int64(maxList) {
			// The dashboard (dashboard/assets/app.js, limitIn)
			// reads the limit from this wording: keep "parameter MaxResults: a
			// reply lists at most N actions"
			// (TestDashboardPagesUnderTheServersLimit).
			return 0, 0, messages.Invalid("MaxResults", v, fmt.Sprintf(
				"a reply lists at most %d actions ([Actions] MaxListResults); ask for the next ones with Start", maxList))
		}
	}
	return uint32(start - 1), uint32(n), nil
}

// listFilter reads GetStatus's filters: State (CSV), Queued-After,
// Queued-Before, Finished-After, Finished-Before, Min-Priority,
// Max-Priority, Sort-By, Sort-Order; and its page, Start and MaxResults
// (listPage).
func listFilter(req *aci.Request, maxList int) (*messages.ListActions, error) {
	f := &messages.ListActions{}
	if v, ok := req.Params.Get("State"); ok && messages.TrimASCIISpace(v) != "" {
		for _, name := range strings.Split(v, ",") {
			st, ok := messages.ParseState(name)
			if !ok {
				return nil, messages.Invalid("State", v, "states are Queued, Processing, Paused, Finished, Cancelled, Stopped, Error")
			}
			f.States = append(f.States, st)
		}
	}
	for _, tf := range []struct {
		name  string
		dst   *int64
		after bool
	}{
		{"Queued-After", &f.QueuedAfterUnixMs, true}, {"Queued-Before", &f.QueuedBeforeUnixMs, false},
		{"Finished-After", &f.FinishedAfterUnixMs, true}, {"Finished-Before", &f.FinishedBeforeUnixMs, false},
	} {
		if v, ok := req.Params.Get(tf.name); ok && messages.TrimASCIISpace(v) != "" {
			t, err := parseTime(v)
			if err != nil {
				return nil, messages.Invalid(tf.name, v, err.Error())
			}
			*tf.dst = boundMs(t, tf.after)
		}
	}
	var err error
	if v, ok := req.Params.Get("Min-Priority"); ok && messages.TrimASCIISpace(v) != "" {
		p, err := req.IntRange("Min-Priority", 0, -1<<31, 1<<31-1)
		if err != nil {
			return nil, err
		}
		f.HasMinPriority, f.MinPriority = true, int32(p)
	}
	if v, ok := req.Params.Get("Max-Priority"); ok && messages.TrimASCIISpace(v) != "" {
		p, err := req.IntRange("Max-Priority", 0, -1<<31, 1<<31-1)
		if err != nil {
			return nil, err
		}
		f.HasMaxPriority, f.MaxPriority = true, int32(p)
	}
	if v, ok := req.Params.Get("Sort-By"); ok && messages.TrimASCIISpace(v) != "" {
		is := asciiFold(v)
		switch {
		case is("queue-time"):
			f.SortBy = messages.SortBy_SORT_BY_QUEUE_TIME
		case is("start-time"):
			f.SortBy = messages.SortBy_SORT_BY_START_TIME
		case is("finish-time"):
			f.SortBy = messages.SortBy_SORT_BY_FINISH_TIME
		case is("priority"):
			f.SortBy = messages.SortBy_SORT_BY_PRIORITY
		default:
			return nil, messages.Invalid("Sort-By", v, "must be queue-time, start-time, finish-time or priority")
		}
	}
	if v, ok := req.Params.Get("Sort-Order"); ok && messages.TrimASCIISpace(v) != "" {
		is := asciiFold(v)
		switch {
		case is("ascending"), is("asc"):
			f.Ascending = true
		case is("descending"), is("desc"):
		default:
			return nil, messages.Invalid("Sort-Order", v, "must be ascending or descending")
		}
	}
	if f.Skip, f.MaxResults, err = listPage(req, maxList); err != nil {
		return nil, err
	}
	return f, nil
}

// boundMs is the exclusive bound, in Unix milliseconds (the queue's
// ListActions), of a time filter at t: after (Queued-After,
// Finished-After) or before it. A reply shows times in whole seconds, so
// the filters compare the seconds shown: an action shown at t's second is
// neither after nor before t, whatever milliseconds its clock had (a
// client polling for what was queued or finished after the last time it
// read is not given that action again). Times past the range of
// milliseconds are clamped. ListActions reads a bound of 0 as no bound,
// so the bound before the epoch's second (Queued-Before=0) is -1: no
// action was queued or finished before either, and it selects nothing (0
// selected every action, and a CancelQueued with it cancelled every
// queued one).
func boundMs(t time.Time, after bool) int64 {
	const maxSec = math.MaxInt64/1000 - 1
	sec := min(max(t.Unix(), -maxSec), maxSec)
	if after {
		return (sec+1)*1000 - 1 // the action's second is later than t's; never 0
	}
	if sec == 0 {
		return -1
	}
	return sec * 1000 // the action's second is earlier than t's
}

// timeLayouts are the forms accepted by the time filters, in server local
// time unless they carry a zone: the queueinfo form, the errortime form,
// RFC 3339 and ISO dates. A plain number is Unix seconds.
var timeLayouts = []string{aci.QueueTimeLayout, aci.ErrorTimeLayout, time.RFC3339, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"}

func parseTime(v string) (time.Time, error) {
	v = messages.TrimASCIISpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not a time: use Unix seconds or %q", aci.QueueTimeLayout)
}

func (s *Server) getVersion(context.Context, *aci.Request) (*result, error) {
	v := s.cfg.Version
	now := s.cfg.Now()
	up := now.Sub(s.started)
	n := func(name, text string) aci.Node { return aci.TextNode("autn:"+name, text) }
	return &result{data: []aci.Node{
		n("version", v.Version),
		n("aciversion", aciVersion(v)),
		n("productname", v.Product),
		n("commonname", v.Product),
		n("producttypecsv", productTypes(v)),
		n("productUID", productUID(v.Product)),
		n("build", strconv.FormatUint(v.Build, 10)),
		n("wordsize", strconv.Itoa(strconv.IntSize)),
		n("operatingsystem", runtime.GOOS),
		n("compiler", runtime.Version()),
		n("directory", v.Directory),
		n("configpath", v.ConfigPath),
		aci.Container("autn:servertime", n("epoch", strconv.FormatInt(now.Unix(), 10)), n("string", now.Format(aci.ErrorTimeLayout))),
		aci.Container("autn:performance", aci.Container("autn:qps",
			n("qps", strconv.FormatFloat(float64(s.served.Load())/max(up.Seconds(), 1), 'f', 1, 64)),
			n("queries", strconv.FormatUint(s.served.Load(), 10)),
			n("period", humanDuration(up)))),
		aci.Container("autn:uptime", n("uptime", humanDuration(up)), n("seconds", strconv.FormatInt(int64(up.Seconds()), 10)),
			n("starttime", s.started.Format(aci.ErrorTimeLayout))),
	}}, nil
}

// aciVersion is GetVersion's autn:aciversion: the version with the source
// revision as semantic-versioning build metadata (1.2.0+0123456789ab), or
// the version alone when the revision is not known. autn:version stays the
// bare version for clients that compare versions; autn:build must be a
// number (getVersionResponse.xsd), so aciversion is where the revision goes.
func aciVersion(v Version) string {
	if v.Revision == "" || v.Revision == "unknown" {
		return v.Version
	}
	return v.Version + "+" + v.Revision
}

// productTypes is GetVersion's producttypecsv: CONNECTOR and the
// connector's product type.
func productTypes(v Version) string {
	if v.ProductType == "" {
		return "CONNECTOR"
	}
	return "CONNECTOR," + v.ProductType
}

// productUID is a stable number derived from the product name.
func productUID(product string) string {
	var h uint32 = 2166136261
	for i := 0; i < len(product); i++ {
		h = (h ^ uint32(product[i])) * 16777619
	}
	return strconv.FormatUint(uint64(h&0x7fffffff), 10)
}

func humanDuration(d time.Duration) string {
	s := int64(d.Seconds())
	days, s := s/86400, s%86400
	hours, s := s/3600, s%3600
	mins, secs := s/60, s%60
	return fmt.Sprintf("%d days, %d hours, %d mins, %d secs", days, hours, mins, secs)
}

func (s *Server) getStatus(ctx context.Context, _ *aci.Request) (*result, error) {
	qs, err := s.cfg.Queue.QueueStatus(ctx)
	if err != nil {
		return nil, err
	}
	v := s.cfg.Version
	supported := []aci.Node{}
	for _, fa := range s.cfg.Queue.FetchActions() {
		supported = append(supported, aci.Node{Name: "action", List: true, Attrs: []aci.Attr{{Name: "action", Value: "fetch"}, {Name: "fetchaction", Value: strings.ToLower(fa)}}})
	}
	for name := range s.routes {
		if name != "FETCH" {
			supported = append(supported, aci.Node{Name: "action", List: true, Attrs: []aci.Attr{{Name: "action", Value: strings.ToLower(name)}}})
		}
	}
	slices.SortStableFunc(supported, func(a, b aci.Node) int {
		return strings.Compare(a.Attrs[0].Value+"/"+attr(a, 1), b.Attrs[0].Value+"/"+attr(b, 1))
	})
	host, _ := os.Hostname()
	data := []aci.Node{
		aci.TextNode("product", v.Product),
		aci.TextNode("version", v.Version),
		aci.TextNode("build", strconv.FormatUint(v.Build, 10)),
		aci.TextNode("revision", revisionText(v.Revision)),
		aci.TextNode("hostname", host),
		aci.TextNode("aciport", strconv.Itoa(s.Port())),
	}
	if p := s.cfg.ServicePort; p > 0 {
		data = append(data, aci.TextNode("serviceport", strconv.Itoa(p)))
	}
	return &result{data: append(data,
		aci.TextNode("directory", v.Directory),
		aci.TextNode("configpath", v.ConfigPath),
		aci.TextNode("acithreads", strconv.Itoa(runtime.GOMAXPROCS(0))),
		aci.TextNode("uptime", strconv.FormatInt(int64(s.cfg.Now().Sub(s.started).Seconds()), 10)),
		aci.TextNode("requests", strconv.FormatUint(s.served.Load(), 10)),
		aci.Container("queues", queueListed(aci.QueueStatusNode(qs))),
		aci.Container("supportedactions", supported...),
	)}, nil
}

// queueListed marks GetStatus's <queue> as one of the list <queues>: an
// array in simplejson, as every repeatable element is.
func queueListed(n aci.Node) aci.Node {
	n.List = true
	return n
}

func revisionText(r string) string {
	if r == "" {
		return "unknown"
	}
	return r
}

func attr(n aci.Node, i int) string {
	if i < len(n.Attrs) {
		return n.Attrs[i].Value
	}
	return ""
}

// getRequestLog serves GetRequestLog: the most recent requests, oldest
// first. Tail (IDOL's name) or MaxEntries (this server's earlier one)
// returns only the last N; given both, they must agree.
func (s *Server) getRequestLog(_ context.Context, req *aci.Request) (*result, error) {
	maxN, err := req.IntRange("MaxEntries", 0, 1, 1<<31-1)
	if err != nil {
		return nil, err
	}
	tail, err := req.IntRange("Tail", 0, 1, 1<<31-1)
	if err != nil {
		return nil, err
	}
	switch {
	case tail > 0 && maxN > 0 && tail != maxN:
		v, _ := req.Params.Get("Tail")
		return nil, messages.Invalid("Tail", v, fmt.Sprintf("differs from MaxEntries=%d; give one of them", maxN))
	case tail > 0:
		maxN = tail
	}
	if s.reqlog == nil {
		return &result{data: []aci.Node{}}, nil // RequestLogSize=0: none kept
	}
	res, err := s.cfg.System.Root.RequestFuture(s.reqlog, &getLog{}, 5*time.Second).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: request log: %v", messages.ErrTimeout, err)
	}
	entries := res.(*logReply).entries
	if maxN > 0 && int(maxN) < len(entries) {
		entries = entries[len(entries)-int(maxN):]
	}
	nodes := make([]aci.Node, 0, len(entries))
	for i := range entries {
		e := &entries[i]
		n := func(name, text string) aci.Node { return aci.TextNode("autn:"+name, text) }
		nodes = append(nodes, aci.Node{Name: "logentry", List: true, Children: []aci.Node{
			n("action", e.action),
			n("request", e.request),
			n("client", e.client.String()),
			n("time", time.UnixMilli(e.unixMs).Format(aci.ErrorTimeLayout)),
			n("duration", strconv.FormatFloat(e.duration, 'f', 2, 64)+" ms"),
			n("status", e.status),
			n("thread", strconv.FormatUint(e.conn, 10)),
		}})
	}
	return &result{data: nodes}, nil
}
