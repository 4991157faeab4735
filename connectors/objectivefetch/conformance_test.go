package objectivefetch

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/objectivefetch/objectivetest"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/fetch/fetchtest"
	"github.com/connectorhq/connector/messages"
)

// TestConformance runs the fetch contract's conformance suite on the
// Objective connector: against the stand-in, and, for the cancellation
// bound, against a server that accepts connections and never answers.
func TestConformance(t *testing.T) {
	srv := objectivetest.New(objectivetest.Options{})
	defer srv.Close()
	f := srv.AddFolder(objectivetest.RootID, "Docs")
	for i := range 3 {
		srv.AddDocument(f, objectivetest.Doc{Name: fmt.Sprintf("d%d.txt", i), Data: []byte("text")})
	}
	hold, held := resttest.Hold(t)
	collectTo := filepath.Join(t.TempDir(), "collect")
	text := fmt.Sprintf(`[Connector]
Type=OBJECTIVE
[Security]
CollectFolders=%[1]s
[FetchTasks]
0=Objective
[Objective]
ServerUrl=%[2]s
Username=alice
Password=alice-password
[Slow]
ServerUrl=http://%[3]s
AuthMethod=OAUTH
Username=alice
Password=alice-password
OAuthClientID=connector
`, collectTo, srv.URL, hold)
	newRepo := resttest.ConformanceNew(Descriptor(), text)
	p := resttest.Params
	fetchtest.Run(t, fetchtest.Conformance{
		Descriptor: Descriptor(),
		New:        newRepo,
		BadSettings: []fetchtest.BadSetting{
			{Action: fetchtest.Action{FetchAction: fetch.ActionSynchronize, Params: p("TaskSections", "NoSuchTask")}, Key: "TaskSections"},
			{Action: fetchtest.Action{FetchAction: fetch.ActionCollect, Params: p("Identifiers", "not-an-id")}, Key: "Identifiers"},
			{Action: fetchtest.Action{FetchAction: fetch.ActionDelete, Params: p("ConfigSection", "Objective")}, Key: "Identifiers"},
			{Action: fetchtest.Action{FetchAction: fetch.ActionInsert, Params: p("ConfigSection", "Objective")}, Key: "InsertXML"},
			{Action: fetchtest.Action{FetchAction: fetch.ActionInsert, Params: p("ConfigSection", "Objective", "InsertXML", "<insert><file><type>drecontent</type><content>x</content></file></insert>")}, Key: "InsertXML"},
		},
		BadKeys: []fetchtest.BadKey{
			{Key: "NoSuchSetting", Value: "1", Unknown: true},
			{Key: "AuthMethod", Value: "KERBEROS"},
			{Key: "RootFolders", Value: "Home"},
			{Key: "Versions", Value: "LATEST"},
		},
		Long:    fetchtest.Action{FetchAction: fetch.ActionSynchronize, Params: p("ConfigSection", "Slow")},
		Started: func(*fetch.Job) bool { return held.Load() > 0 },
		Counted: fetchtest.Action{FetchAction: fetch.ActionSynchronize, Params: p("ConfigSection", "Objective")},
		Counts: func(t *testing.T, job *fetch.Job) {
			require.Equal(t, uint64(5), job.Counts("OBJECTIVE").Added.Load(), "fA0, Docs and 3 documents")
		},
		Identifiers: func(t *testing.T, r fetch.Repository, _ []*messages.Element) []string {
			tasks, err := r.Validate(fetch.ActionIdentifiers, p("ConfigSection", "Objective"))
			require.NoError(t, err)
			res, err := r.Run(context.Background(), fetch.NewJob("ids", fetch.ActionIdentifiers, p("ConfigSection", "Objective"), tasks))
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
