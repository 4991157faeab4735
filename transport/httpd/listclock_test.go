package httpd

import (
	"context"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
)

// A front end with its own clock (Config.Now) shows the times of a list's
// ended actions, whose entries the queue keeps encoded, in that clock's
// time zone, as it shows them for the same action asked by token.
func TestListEntriesUseTheFrontEndsClock(t *testing.T) {
	t.Parallel()
	// A zone that is not the local one, whatever this machine's is.
	_, local := time.Now().Zone()
	zone := time.FixedZone("test", local+3*3600+15*60)
	clock := func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, zone) }
	e := startWith(t, setup{front: func(c *Config) { c.Now = clock }})
	tok := e.submit(t, "COLLECT", "")
	e.waitStatus(t, tok, "Finished")
	testwait.For(t, 10*time.Second, func() bool {
		entries, err := e.q.ListEntries(context.Background(), &messages.ListActions{})
		require.NoError(t, err)
		return len(entries) == 1 && entries[0].Encoded != ""
	}, "the ended action's list entry")

	times := regexp.MustCompile(`<(queued_time|process_start_time|process_end_time)>[^<]*<`)
	_, one := e.get(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(tok))
	_, list := e.get(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus")
	want := times.FindAllString(string(one), -1)
	require.Len(t, want, 3, string(one))
	require.Equal(t, want, times.FindAllString(string(list), -1), "list:\n%s\nby token:\n%s", list, one)
}
