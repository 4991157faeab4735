package httpd

import (
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
