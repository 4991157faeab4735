package httpd

import (
	"encoding/xml"
	"fmt"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// cancelQueuedReply is a CancelQueued reply.
type cancelQueuedReply struct {
	Response string `xml:"response"`
	Data     struct {
		Confirmed string   `xml:"cancelqueued>confirmed"`
		Matched   int      `xml:"cancelqueued>matched"`
		Cancelled int      `xml:"cancelqueued>cancelled"`
		Skipped   int      `xml:"cancelqueued>skipped"`
		Listed    int      `xml:"cancelqueued>listed"`
		Actions   []action `xml:"actions>action"`
		Code      string   `xml:"error>errorcode"`
		Desc      string   `xml:"error>errordescription"`
	} `xml:"responsedata"`
}

func (e *env) cancelQueued(t *testing.T, params string) cancelQueuedReply {
	t.Helper()
	resp, body := e.get(t, "/action=QueueInfo&QueueName=fetch&QueueAction=CancelQueued"+params)
	require.Equal(t, 200, resp.StatusCode)
	var r cancelQueuedReply
	require.NoError(t, xml.Unmarshal(body, &r), string(body))
	return r
}

// CancelQueued cancels the actions the GetStatus filters select that have
// not started, only with Confirm=true; without it, it says what it would
// cancel and changes nothing.
func TestCancelQueued(t *testing.T) {
	t.Parallel()
	e := start(t, nil) // one thread
	run := e.submit(t, "synchronize", "")
	e.waitStatus(t, run, "Processing")
	low := e.submit(t, "Collect", "&Priority=1")
	mid := e.submit(t, "Collect", "&Priority=2")
	high := e.submit(t, "Collect", "&Priority=3")
	paused := e.submit(t, "Collect", "&Priority=2")
	require.Equal(t, "Paused", e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Pause&Token="+url.QueryEscape(paused)).ResponseData.Actions[0].Status)

	// A dry run.
	r := e.cancelQueued(t, "")
	require.Equal(t, "SUCCESS", r.Response)
	require.Equal(t, "false", r.Data.Confirmed)
	require.Equal(t, 4, r.Data.Matched, "the running one is not selected")
	require.Zero(t, r.Data.Cancelled)
	require.Equal(t, 4, r.Data.Listed)
	require.Equal(t, []string{paused, high, mid, low}, tokens(r.Data.Actions), "GetStatus order: most recent first")
	for _, a := range r.Data.Actions {
		require.Contains(t, []string{"Queued", "Paused"}, a.Status)
	}
	require.Equal(t, "Queued", e.status(t, low).ResponseData.Actions[0].Status, "nothing changed")

	// Filters select; MaxResults bounds, in the sort order.
	r = e.cancelQueued(t, "&Confirm=true&Min-Priority=2&State=queued&Sort-By=priority&MaxResults=1")
	require.Equal(t, "true", r.Data.Confirmed)
	require.Equal(t, []int{1, 1, 0}, []int{r.Data.Matched, r.Data.Cancelled, r.Data.Skipped})
	require.Equal(t, []string{high}, tokens(r.Data.Actions))
	require.Equal(t, "Cancelled", r.Data.Actions[0].Status)

	r = e.cancelQueued(t, "&Confirm=true")
	require.Equal(t, []int{3, 3, 0}, []int{r.Data.Matched, r.Data.Cancelled, r.Data.Skipped})
	for _, tok := range []string{low, mid, paused, high} {
		require.Equal(t, "Cancelled", e.status(t, tok).ResponseData.Actions[0].Status)
	}
	require.Equal(t, "Processing", e.status(t, run).ResponseData.Actions[0].Status, "a running action is never touched")
	r = e.cancelQueued(t, "&Confirm=true")
	require.Equal(t, []int{0, 0, 0}, []int{r.Data.Matched, r.Data.Cancelled, r.Data.Skipped})
	require.Empty(t, r.Data.Actions)

	// Refusals: each is an ERRORPARAMINVALID naming the parameter.
	for params, name := range map[string]string{
		"&Token=" + url.QueryEscape(low): "Token",
		"&State=processing":              "State",
		"&State=queued,finished":         "State",
		"&Finished-After=0":              "Finished-After",
		"&Confirm=please":                "Confirm",
		"&Confirm=true&MaxResults=0":     "MaxResults",
	} {
		r := e.cancelQueued(t, params)
		require.Equal(t, "ERROR", r.Response, params)
		require.Equal(t, "ERRORPARAMINVALID", r.Data.Code, params)
		require.Contains(t, r.Data.Desc, name, params)
	}
	// The refusal of a Token quotes the token given, as every
	// ERRORPARAMINVALID quotes the value it refuses (it said
	// `invalid value ""`).
	r = e.cancelQueued(t, "&Token="+url.QueryEscape(low))
	require.Contains(t, r.Data.Desc, fmt.Sprintf("invalid value %q for parameter Token", low))
}

func tokens(as []action) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Token
	}
	return out
}
