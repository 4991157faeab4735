package httpd

import (
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/actors/queue"
)

// The time filters compare in the whole seconds a reply shows: a client
// that asks for what was queued or finished after the queued_time or
// process_end_time it read last (an incremental poll) is not given that
// action again, although the action's clock had milliseconds past that
// second. (On main, Queued-After and Finished-After compared milliseconds:
// an action queued at 10:00:05.300, shown as 10:00:05, was "after"
// 10:00:05, and every such poll listed it again.)
func TestTimeFiltersCompareTheSecondsShown(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 15, 10, 0, 5, 300*int(time.Millisecond), time.Local)
	e := start(t, func(c *queue.Config) { c.Now = func() time.Time { return at } })
	tok := e.submit(t, "COLLECT", "")
	x := e.waitStatus(t, tok, "Finished")
	times := regexp.MustCompile(`<(queued_time|process_end_time)>([^<]*)<`).FindAllStringSubmatch(string(x.ResponseData.Inner), -1)
	require.Len(t, times, 2, string(x.ResponseData.Inner))
	queued, ended := times[0][2], times[1][2]
	require.Equal(t, "2026-Jan-15 10:00:05", queued)
	require.Equal(t, "2026-Jan-15 10:00:05", ended)

	list := func(filters string) []string {
		t.Helper()
		x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus"+filters)
		require.Equal(t, "SUCCESS", x.Response, string(x.ResponseData.Inner))
		var toks []string
		for _, a := range x.ResponseData.Actions {
			toks = append(toks, a.Token)
		}
		return toks
	}
	for _, f := range []string{
		"&Queued-After=" + url.QueryEscape(queued),
		"&Finished-After=" + url.QueryEscape(ended),
		"&Queued-After=" + url.QueryEscape(at.Truncate(time.Second).Format(time.RFC3339)),
		"&Queued-After=" + url.QueryEscape(at.Format(time.RFC3339Nano)), // a fraction of the second shown is that second
		"&Queued-Before=" + url.QueryEscape(queued),
		"&Finished-Before=" + url.QueryEscape(ended),
	} {
		require.Empty(t, list(f), "%s: bounds are exclusive, in the seconds shown", f)
	}
	for _, f := range []string{
		"&Queued-After=" + url.QueryEscape("2026-Jan-15 10:00:04"),
		"&Finished-After=" + url.QueryEscape("2026-Jan-15 10:00:04"),
		"&Queued-Before=" + url.QueryEscape("2026-Jan-15 10:00:06"),
		"&Finished-Before=" + url.QueryEscape("2026-Jan-15 10:00:06"),
	} {
		require.Equal(t, []string{tok}, list(f), "%s", f)
	}
}

// docs/protocol.md says what a simplejson list with no action is: an
// empty object, with no "action" key (it said lists were always arrays).
func TestSimpleJSONEmptyListAsDocumented(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	_, body := e.get(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&ResponseFormat=simplejson")
	require.Equal(t, `{"autnresponse":{"action":"QUEUEINFO","response":"SUCCESS","responsedata":{"actions":{}}}}`, string(body))
}

// A Before filter at the Unix epoch (Queued-Before=0, or the epoch in any
// form) selects what was queued or finished before 1970: nothing. On main
// its bound, 0 milliseconds, was the proto's "no filter": the list held
// every action, and a CancelQueued with Confirm=true cancelled every queued
// action where the client asked for none.
func TestBeforeTheEpochSelectsNothing(t *testing.T) {
	t.Parallel()
	e := start(t, nil) // one thread
	run := e.submit(t, "synchronize", "")
	e.waitStatus(t, run, "Processing")
	queued := e.submit(t, "Collect", "")
	for _, f := range []string{
		"&Queued-Before=0",
		"&Finished-Before=0",
		"&Queued-Before=" + url.QueryEscape("1970-01-01T00:00:00Z"),
		"&Queued-Before=" + url.QueryEscape("1970-01-01T00:00:00.5Z"), // the epoch's second
	} {
		x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus"+f)
		require.Equal(t, "SUCCESS", x.Response, string(x.ResponseData.Inner))
		require.Empty(t, x.ResponseData.Actions, "%s: nothing was queued or finished before 1970", f)
	}
	x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Queued-Before=1")
	require.Len(t, x.ResponseData.Actions, 0, "Queued-Before=1: nothing either")

	r := e.cancelQueued(t, "&Confirm=true&Queued-Before=0")
	require.Equal(t, "SUCCESS", r.Response)
	require.Equal(t, []int{0, 0, 0}, []int{r.Data.Matched, r.Data.Cancelled, r.Data.Skipped})
	require.Equal(t, "Queued", e.status(t, queued).ResponseData.Actions[0].Status, "nothing was cancelled")
}
