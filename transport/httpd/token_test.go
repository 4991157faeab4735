package httpd

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBlankTokenIsUnknownToken checks that a Token parameter that is present
// but empty (or only spaces) is an unknown token for every QueueAction that
// takes one, never "no token": GetStatus must not list every action and
// Pause/Resume must not act on the whole queue.
func TestBlankTokenIsUnknownToken(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	run := e.submit(t, "Synchronize", "")
	e.waitStatus(t, run, "Processing")
	queued := e.submit(t, "Collect", "&Priority=3")

	for _, qa := range []string{"GetStatus", "Cancel", "Stop", "ChangePriority", "Pause", "Resume", "Progress", "GetActionParameters", "Duplicate"} {
		for _, blank := range []string{"", " ", "%20%20", "+"} {
			t.Run(qa+"/"+url.PathEscape(blank), func(t *testing.T) {
				t.Parallel()
				x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction="+qa+"&Priority=7&Token="+blank)
				require.Equal(t, "ERROR", x.Response)
				require.Equal(t, "ERRORPARAMINVALID", x.ResponseData.Code, string(x.ResponseData.Inner))
				require.Equal(t, "CONQUEUEINFO111", x.ResponseData.ErrorID, "the unknown-token error")
				require.Empty(t, x.ResponseData.Actions, "an error, not an empty success or a listing")
			})
		}
	}

	t.Cleanup(func() {
		// Runs after the parallel subtests: none of them touched the queue.
		x := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=QueueStatus")
		require.Contains(t, string(x.ResponseData.Inner), "<paused>false</paused>")
		require.Equal(t, "Processing", e.status(t, run).ResponseData.Actions[0].Status)
		st := e.status(t, queued).ResponseData.Actions[0]
		require.Equal(t, "Queued", st.Status)
		require.Equal(t, "3", st.Priority)
		all := e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus")
		require.Len(t, all.ResponseData.Actions, 2, "Duplicate with a blank token queued nothing")
	})
}
