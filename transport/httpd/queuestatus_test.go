package httpd

import (
	"net/url"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// QueueStatus's pending counts the actions waiting to start (Queued, or
// Paused before they started: they hold no thread and count against
// MaximumQueueSize), and running the actions holding a worker thread
// (Processing, or Paused while running), as ThreadStatus shows them. On
// main, an action paused before it started was counted as running and
// not as pending: one worker thread showed two actions running, and a
// backlog of paused actions showed as none.
func TestQueueStatusCountsWaitingAndThreadsHeld(t *testing.T) {
	t.Parallel()
	e := start(t, nil) // one thread
	run := e.submit(t, "synchronize", "")
	e.waitStatus(t, run, "Processing")
	e.submit(t, "Collect", "")
	paused := e.submit(t, "Collect", "")
	require.Equal(t, "Paused", e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Pause&Token="+url.QueryEscape(paused)).ResponseData.Actions[0].Status)

	count := func(body, name string) string {
		m := regexp.MustCompile("<" + name + ">([0-9]+)</" + name + ">").FindStringSubmatch(body)
		require.NotNil(t, m, "%s in %s", name, body)
		return m[1]
	}
	_, body := e.get(t, "/action=QueueInfo&QueueName=fetch&QueueAction=QueueStatus")
	require.Equal(t, "2", count(string(body), "pending"), "the queued action and the one paused before it started: %s", body)
	require.Equal(t, "1", count(string(body), "running"), "one thread, held by the running action: %s", body)
	require.Equal(t, "1", count(string(body), "queued"), "%s", body)
	require.Equal(t, "1", count(string(body), "processing"), "%s", body)

	// Paused while it runs, it still holds its thread.
	e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Pause&Token="+url.QueryEscape(run))
	_, body = e.get(t, "/action=QueueInfo&QueueName=fetch&QueueAction=QueueStatus")
	require.Equal(t, "2", count(string(body), "pending"), "%s", body)
	require.Equal(t, "1", count(string(body), "running"), "%s", body)
}
