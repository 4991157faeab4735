package mailfetch

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/fetch/fetchtest"
	"github.com/connectorhq/connector/messages"
)

// TestConformance runs the fetch contract's conformance suite on the Google
// Mail connector: Validate refuses bad parameters naming them, Run honours
// cancellation while a server keeps it waiting, a Synchronize of a Dovecot
// mailbox reports its counts, and the identifiers of indexed messages
// round-trip through View and Collect.
func TestConformance(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{user: "pw"}})
	for i := range 3 {
		d.MustDeliver(t, user, "INBOX", mailtest.Message{From: "bob@example.com", Subject: fmt.Sprintf("m%d", i), Text: "hello"}.Raw(), "")
	}
	// A server that accepts connections and never greets.
	hold, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer hold.Close()
	var held atomic.Int64
	go func() {
		for {
			c, err := hold.Accept()
			if err != nil {
				return
			}
			held.Add(1)
			defer c.Close()
		}
	}()
	collectTo := t.TempDir()
	host, port, _ := strings.Cut(d.Addr, ":")
	_, holdPort, _ := strings.Cut(hold.Addr().String(), ":")
	text := fmt.Sprintf(`[Connector]
Type=GOOGLEMAIL
[Security]
CollectFolders=%s
[FetchTasks]
0=Mail
[Mail]
ImapServer=%s
ImapPort=%s
ImapSecurity=NONE
Username=%s
Password=pw
[Slow]
ImapServer=127.0.0.1
ImapPort=%s
ImapSecurity=NONE
Username=%s
Password=pw
`, collectTo, host, port, user, holdPort, user)
	newRepo := resttest.ConformanceNew(Descriptor(), text)
	p := resttest.Params
	fetchtest.Run(t, fetchtest.Conformance{
		Descriptor: Descriptor(),
		New:        newRepo,
		BadSettings: []fetchtest.BadSetting{
			{Action: fetchtest.Action{FetchAction: fetch.ActionSynchronize, Params: p("TaskSections", "NoSuchTask")}, Key: "TaskSections"},
			{Action: fetchtest.Action{FetchAction: fetch.ActionSynchronize, Params: p("ConfigSection", "NoSuchTask")}, Key: "ConfigSection"},
			{Action: fetchtest.Action{FetchAction: fetch.ActionCollect, Params: p("Destination", collectTo)}, Key: "Identifiers"},
			{Action: fetchtest.Action{FetchAction: fetch.ActionCollect, Params: p("Identifiers", "not-an-id")}, Key: "Identifiers"},
			{Action: fetchtest.Action{FetchAction: fetch.ActionInsert, Params: p("ConfigSection", "Mail")}, Key: "InsertXML"},
		},
		BadKeys: []fetchtest.BadKey{
			{Key: "NoSuchSetting", Value: "1", Unknown: true},
			{Key: "ImapPort", Value: "99999"},
			{Key: "ImapSecurity", Value: "SSL3"},
		},
		Long:    fetchtest.Action{FetchAction: fetch.ActionSynchronize, Params: p("ConfigSection", "Slow")},
		Started: func(*fetch.Job) bool { return held.Load() > 0 },
		Counted: fetchtest.Action{FetchAction: fetch.ActionSynchronize, Params: p("ConfigSection", "Mail")},
		Identifiers: func(t *testing.T, r fetch.Repository, _ []*messages.Element) []string {
			tasks, err := r.Validate(fetch.ActionIdentifiers, p("ConfigSection", "Mail"))
			require.NoError(t, err)
			res, err := r.Run(context.Background(), fetch.NewJob("ids", fetch.ActionIdentifiers, p("ConfigSection", "Mail"), tasks))
			require.NoError(t, err)
			var ids []string
			for _, el := range res[0].Children {
				ids = append(ids, el.Text)
			}
			return ids
		},
		CollectParams: p("Destination", collectTo),
	})
}
