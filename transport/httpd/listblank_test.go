package httpd

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A list filter whose value is only white space other than ASCII's (a
// no-break space, an em space: what a spreadsheet or a web page pastes)
// is a value that names nothing, refused with ERRORPARAMINVALID naming the
// filter, as the same value around a word is (docs/protocol.md,
// Requests). It is never a blank, left-out filter: on main,
// CancelQueued&Confirm=true&Max-Priority=%C2%A0 read as no Max-Priority and
// cancelled every queued action, and GetStatus&State=%C2%A0 listed every
// state.
func TestListFilterOfNonASCIISpaceIsRefused(t *testing.T) {
	t.Parallel()
	e := start(t, nil) // one thread
	run := e.submit(t, "synchronize", "")
	e.waitStatus(t, run, "Processing")
	low := e.submit(t, "Collect", "&Priority=1")
	high := e.submit(t, "Collect", "&Priority=9")

	for _, name := range []string{"Max-Priority", "Min-Priority", "Queued-After", "Queued-Before", "Sort-By", "Sort-Order", "Start", "MaxResults", "State"} {
		for _, v := range []string{"%C2%A0", "%E2%80%83%C2%A0"} {
			r := e.cancelQueued(t, "&Confirm=true&"+name+"="+v)
			require.Equal(t, "ERROR", r.Response, "CancelQueued %s=%s: %+v", name, v, r.Data)
			require.Equal(t, "ERRORPARAMINVALID", r.Data.Code, "%s=%s", name, v)
			require.Contains(t, r.Data.Desc, name)

			x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&"+name+"="+v)
			require.Equal(t, "ERROR", x.Response, "GetStatus %s=%s", name, v)
			require.Equal(t, "ERRORPARAMINVALID", x.ResponseData.Code, "%s=%s", name, v)
		}
	}
	for _, name := range []string{"Finished-After", "Finished-Before"} {
		r := e.cancelQueued(t, "&Confirm=true&"+name+"=%C2%A0")
		require.Equal(t, "ERRORPARAMINVALID", r.Data.Code, "%s", name)
		require.Contains(t, r.Data.Desc, name)
	}
	for _, tok := range []string{low, high} {
		require.Equal(t, "Queued", e.status(t, tok).ResponseData.Actions[0].Status, "nothing was cancelled")
	}
	// ASCII white space alone is still a blank filter, left out.
	r := e.cancelQueued(t, "&Max-Priority=%20%09&State=+")
	require.Equal(t, "SUCCESS", r.Response, "%+v", r.Data)
	require.Equal(t, 2, r.Data.Matched)
}

// With a Token, GetStatus returns that action whatever the list's filters
// and paging say, but a filter or page value it cannot read is refused as
// it is without a Token (ERRORPARAMINVALID naming it): on main
// GetStatus&Token=X&State=finshed answered with the action, Processing,
// and a client that took its State=Finished for a filter read that as
// finished. GetActionParameters alike, for Start and MaxResults.
func TestGetStatusWithATokenRefusesBadFilters(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	run := e.submit(t, "synchronize", "")
	e.waitStatus(t, run, "Processing")
	tok := "&Token=" + url.QueryEscape(run)
	for _, f := range []string{"State=finshed", "Queued-After=yesterday", "Finished-Before=soon", "Min-Priority=high",
		"Max-Priority=x", "Sort-By=colour", "Sort-Order=up", "MaxResults=0", "MaxResults=100000", "Start=0", "Start=first"} {
		name, _, _ := strings.Cut(f, "=")
		x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus"+tok+"&"+f)
		require.Equal(t, "ERROR", x.Response, "GetStatus %s", f)
		require.Equal(t, "ERRORPARAMINVALID", x.ResponseData.Code, f)
		require.Contains(t, x.ResponseData.Desc, name, f)
		if name == "Start" || name == "MaxResults" {
			x = e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetActionParameters"+tok+"&"+f)
			require.Equal(t, "ERRORPARAMINVALID", x.ResponseData.Code, "GetActionParameters %s", f)
		}
	}
	// Valid filters are not applied: the action is returned, whatever
	// its state.
	x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus"+tok+"&State=finished&Start=2&MaxResults=1")
	require.Equal(t, "SUCCESS", x.Response)
	require.Len(t, x.ResponseData.Actions, 1)
	require.Equal(t, "Processing", x.ResponseData.Actions[0].Status)
}
