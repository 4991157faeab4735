package webexfetch

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/webexfetch/webextest"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/fetch/fetchtest"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/oauth"
	"github.com/connectorhq/connector/secret"
)

// TestConformance runs the fetch contract's conformance suite on the Webex
// connector: against the validated stand-in, and, for the cancellation
// bound, against a server that accepts connections and never answers
// (its token endpoint included).
func TestConformance(t *testing.T) {
	srv := webextest.New(webextest.Options{})
	defer srv.Close()
	v, err := webextest.NewValidator(srv.URL)
	require.NoError(t, err)
	srv.SetValidator(v)
	alice := srv.AddPerson("alice@example.com", "Alice Archer")
	bob := srv.AddPerson("bob@example.com", "Bob Baker")
	srv.SetMe(alice, false)
	room := srv.AddRoom("Conformance", "group", alice, bob)
	for i := range 3 {
		srv.Post(room, bob, fmt.Sprintf("message %d", i))
	}
	srv.Post(room, bob, "a file", srv.AddFile(&webextest.File{Name: "a.txt", ContentType: "text/plain", Data: []byte("file text")}))

	hold, held := resttest.Hold(t)
	dir := t.TempDir()
	key, err := secret.EnsureKeyFile(filepath.Join(dir, "aes.ky"))
	require.NoError(t, err)
	for _, task := range []string{"webex", "slow"} {
		tok := &oauth2.Token{RefreshToken: srv.IssueRefreshToken()}
		require.NoError(t, oauth.TokenFile{Path: filepath.Join(dir, "data", "oauth", task+".token"), Key: key}.Save(tok, "client-id", nil))
	}
	collectTo := filepath.Join(dir, "collect")
	text := fmt.Sprintf(`[Connector]
Type=WEBEX
[Server]
DataDirectory=%[1]s/data
[Security]
AESKeyFile=%[1]s/aes.ky
CollectFolders=%[2]s
[FetchTasks]
0=Webex
[Webex]
WebexApiUrl=%[3]s
OAuthTokenUrl=%[3]s/access_token
OAuthClientID=client-id
OAuthClientSecret=client-secret
OAuthScopes=spark:kms spark:rooms_read spark:messages_read spark:memberships_read spark:people_read spark:messages_write
[Slow]
WebexApiUrl=http://%[4]s/v1
OAuthTokenUrl=http://%[4]s/v1/access_token
OAuthClientID=client-id
OAuthClientSecret=client-secret
`, dir, collectTo, srv.URL, hold)
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
			{Action: fetchtest.Action{FetchAction: fetch.ActionInsert, Params: p("ConfigSection", "Webex")}, Key: "InsertXML"},
			{Action: fetchtest.Action{FetchAction: fetch.ActionInsert, Params: p("ConfigSection", "Slow", "InsertXML", "<insert/>")}, Key: "FetchAction"},
		},
		BadKeys: []fetchtest.BadKey{
			{Key: "NoSuchSetting", Value: "1", Unknown: true},
			{Key: "PageSize", Value: "0"},
			{Key: "RoomTypes", Value: "public"},
			{Key: "OAuthRedirectUrl", Value: "https://example.com/"},
		},
		Long:    fetchtest.Action{FetchAction: fetch.ActionSynchronize, Params: p("ConfigSection", "Slow")},
		Started: func(*fetch.Job) bool { return held.Load() > 0 },
		Counted: fetchtest.Action{FetchAction: fetch.ActionSynchronize, Params: p("ConfigSection", "Webex")},
		Counts: func(t *testing.T, job *fetch.Job) {
			c := job.Counts("WEBEX")
			require.Equal(t, uint64(6), c.Added.Load(), "the room, 4 messages, 1 file")
		},
		Identifiers: func(t *testing.T, r fetch.Repository, _ []*messages.Element) []string {
			tasks, err := r.Validate(fetch.ActionIdentifiers, p("ConfigSection", "Webex"))
			require.NoError(t, err)
			res, err := r.Run(context.Background(), fetch.NewJob("ids", fetch.ActionIdentifiers, p("ConfigSection", "Webex"), tasks))
			require.NoError(t, err)
			var ids []string
			for _, el := range res[0].Children {
				ids = append(ids, el.Text)
			}
			return ids
		},
		CollectParams: p("Destination", collectTo),
	})
	require.Empty(t, srv.Violations())
}
