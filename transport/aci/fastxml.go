package aci

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/connectorhq/connector/messages"
)

// AppendActionsXML appends a SUCCESS reply in XML whose responsedata is an
// <actions> element with one <action> per status: byte for byte what
//
//	Encode(dst, FormatXML, &Reply{Action: action, Data: []Node{
//		Container("actions", ActionNode(s1, now), ActionNode(s2, now), ...)}})
//
// gives, without building the tree. It is the hot path of QueueInfo
// (GetStatus by token is the most frequent request); a test holds the two
// paths to the same bytes.
func AppendActionsXML(dst []byte, action string, statuses []*messages.ActionStatus, now time.Time) []byte {
	dst = AppendActionsHead(dst, action, len(statuses))
	for _, s := range statuses {
		dst = appendActionXML(dst, s, now)
	}
	return AppendActionsTail(dst, len(statuses))
}

// AppendActionsHead appends what comes before the first <action> of
// AppendActionsXML's reply with n actions: a reply written in pieces is
// AppendActionsHead, then AppendActionXML of each status (or those bytes
// kept from an earlier call), then AppendActionsTail, all with the same n.
func AppendActionsHead(dst []byte, action string, n int) []byte {
	dst = append(dst, xmlHeader...)
	dst = appendXMLText(dst, action, false)
	dst = append(dst, "</action><response>SUCCESS</response><responsedata>"...)
	if n == 0 {
		return append(dst, "<actions/>"...)
	}
	return append(dst, "<actions>"...)
}

// AppendActionsTail appends what comes after the last <action> of
// AppendActionsXML's reply with n actions.
func AppendActionsTail(dst []byte, n int) []byte {
	if n > 0 {
		dst = append(dst, "</actions>"...)
	}
	return append(dst, "</responsedata></autnresponse>"...)
}

// AppendActionXML appends the <action> element of one status, as
// AppendActionsXML writes it. Its bytes depend on now only while the
// action has no end time (how long it has waited or run so far), and on
// now's time zone always.
func AppendActionXML(dst []byte, s *messages.ActionStatus, now time.Time) []byte {
	return appendActionXML(dst, s, now)
}

func appendTextElem(dst []byte, name, text string) []byte {
	if text == "" {
		dst = append(dst, '<')
		dst = append(dst, name...)
		return append(dst, '/', '>')
	}
	dst = append(dst, '<')
	dst = append(dst, name...)
	dst = append(dst, '>')
	dst = appendXMLText(dst, text, false)
	dst = append(dst, '<', '/')
	dst = append(dst, name...)
	return append(dst, '>')
}

func appendIntElem(dst []byte, name string, v int64) []byte {
	dst = append(dst, '<')
	dst = append(dst, name...)
	dst = append(dst, '>')
	dst = strconv.AppendInt(dst, v, 10)
	dst = append(dst, '<', '/')
	dst = append(dst, name...)
	return append(dst, '>')
}

func appendSecondsElem(dst []byte, name string, d int64) []byte {
	return appendIntElem(dst, name, max(d, 0))
}

func appendTimeElem(dst []byte, name string, sec int64, loc *time.Location) []byte {
	dst = append(dst, '<')
	dst = append(dst, name...)
	dst = append(dst, '>')
	dst = appendQueueTime(dst, sec, loc)
	dst = append(dst, '<', '/')
	dst = append(dst, name...)
	return append(dst, '>')
}

// appendQueueTime appends the time sec in loc as QueueTimeLayout
// (2006-Jan-02 15:04:05) formats it, without interpreting the layout: the
// zone's offset is looked up once and the fields read in UTC.
func appendQueueTime(dst []byte, sec int64, loc *time.Location) []byte {
	t := time.Unix(sec, 0).In(loc)
	_, offset := t.Zone()
	u := time.Unix(sec+int64(offset), 0).UTC()
	year, month, day := u.Date()
	if year < 1000 || year > 9999 {
		return t.AppendFormat(dst, QueueTimeLayout)
	}
	hour, minute, second := u.Clock()
	dst = append(dst, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-')
	dst = append(dst, month.String()[:3]...)
	return append(dst, '-', byte('0'+day/10), byte('0'+day%10), ' ',
		byte('0'+hour/10), byte('0'+hour%10), ':', byte('0'+minute/10), byte('0'+minute%10), ':', byte('0'+second/10), byte('0'+second%10))
}

// appendActionXML mirrors ActionNode followed by appendXMLNode.
func appendActionXML(dst []byte, s *messages.ActionStatus, now time.Time) []byte {
	if s == nil {
		return append(dst, "<action/>"...)
	}
	loc := now.Location()
	nowSec := now.Unix()
	queued := floorSec(s.GetQueuedUnixMs())
	started, ended := s.GetStartedUnixMs() != 0, s.GetEndedUnixMs() != 0
	start, end := floorSec(s.GetStartedUnixMs()), floorSec(s.GetEndedUnixMs())

	dst = append(dst, "<action>"...)
	dst = appendTextElem(dst, "status", messages.StatusName(s.GetState()))
	dst = appendTimeElem(dst, "queued_time", queued, loc)
	switch {
	case started:
		dst = appendSecondsElem(dst, "time_in_queue", start-queued)
	case ended:
		dst = appendSecondsElem(dst, "time_in_queue", end-queued)
	default:
		dst = appendSecondsElem(dst, "time_in_queue", nowSec-queued)
	}
	if started {
		until := nowSec
		if ended {
			until = end
		}
		dst = appendTimeElem(dst, "process_start_time", start, loc)
		dst = appendSecondsElem(dst, "time_processing", until-start)
	} else {
		dst = append(dst, "<process_start_time>"+NoTime+"</process_start_time><time_processing>0</time_processing>"...)
	}
	if ended {
		dst = appendTimeElem(dst, "process_end_time", end, loc)
	} else {
		dst = append(dst, "<process_end_time>"+NoTime+"</process_end_time>"...)
	}
	if s.GetState() == messages.State_STATE_ERROR {
		dst = appendTextElem(dst, "error", s.GetError())
	}
	if counts := s.GetCounts(); len(counts) > 0 {
		n := 0
		for _, c := range counts {
			if c != nil {
				n++
			}
		}
		if n == 0 {
			dst = append(dst, "<documentcounts/>"...)
		} else {
			dst = append(dst, "<documentcounts>"...)
			mask, ok := relevantMasks[strings.ToUpper(s.GetFetchAction())]
			if !ok {
				mask = ^uint32(0)
			}
			for _, c := range counts {
				if c != nil {
					dst = appendDocumentCountXML(dst, c, mask)
				}
			}
			dst = append(dst, "</documentcounts>"...)
		}
	}
	if fa := s.GetFetchAction(); fa != "" {
		dst = appendTextElem(dst, "fetchaction", fa)
	}
	dst = appendIntElem(dst, "priority", int64(s.GetPriority()))
	if r := s.GetRestarts(); r > 0 {
		dst = appendIntElem(dst, "restarts", int64(r))
	}
	for _, e := range s.GetResults() {
		if e != nil {
			dst = appendElementXML(dst, e)
		}
	}
	dst = appendTextElem(dst, "token", s.GetToken())
	if s.GetFailuresTotal() > 0 { // rare: the tree path is fast enough
		n := FailuresNode(s.GetFailures(), s.GetFailuresTotal())
		dst = appendXMLNode(dst, &n)
	}
	return append(dst, "</action>"...)
}

// appendElementXML mirrors ElementNode followed by appendXMLNode for a
// non-nil e, without building the tree (an action's results are encoded in
// every GetStatus of it). An element with attributes takes the tree path,
// which owns the attribute rules (names made valid, repeats dropped).
func appendElementXML(dst []byte, e *messages.Element) []byte {
	if len(e.GetAttrs()) > 0 {
		n := ElementNode(e)
		return appendXMLNode(dst, &n)
	}
	name := xmlName(e.GetName())
	dst = append(dst, '<')
	dst = append(dst, name...)
	text, children := e.GetText(), e.GetChildren()
	if text == "" && !slices.ContainsFunc(children, func(c *messages.Element) bool { return c != nil }) {
		return append(dst, '/', '>')
	}
	dst = append(dst, '>')
	dst = appendXMLText(dst, text, false)
	for _, c := range children {
		if c != nil {
			dst = appendElementXML(dst, c)
		}
	}
	dst = append(dst, '<', '/')
	dst = append(dst, name...)
	return append(dst, '>')
}

// appendDocumentCountXML mirrors DocumentCountNode followed by
// appendXMLNode.
func appendDocumentCountXML(dst []byte, c *messages.DocumentCount, mask uint32) []byte {
	dst = append(dst, "<documentcount"...)
	for i, k := range counters {
		switch {
		case k.name == "task":
			dst = append(dst, ` task="`...)
			dst = appendXMLText(dst, c.GetTask(), true)
			dst = append(dst, '"')
			continue
		case k.name == "errors" || mask&(1<<i) != 0:
		default:
			if k.get(c) == 0 {
				continue
			}
		}
		dst = append(dst, ' ')
		dst = append(dst, k.name...)
		dst = append(dst, '=', '"')
		dst = strconv.AppendUint(dst, k.get(c), 10)
		dst = append(dst, '"')
	}
	return append(dst, '/', '>')
}
