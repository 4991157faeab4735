package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/connectors"
	"github.com/connectorhq/connector/connectors/objectivefetch/objectivetest"
	"github.com/connectorhq/connector/connectors/webexfetch/webextest"
	"github.com/connectorhq/connector/internal/testlog"
	"github.com/connectorhq/connector/oauth"
	"github.com/connectorhq/connector/secret"
	"github.com/connectorhq/connector/server"
)

// runREST starts a server on cfgText (a REST or Google Mail connector),
// synchronizes task over ACI, and returns what the replies, the log and
// the IDX files show.
func runREST(t *testing.T, cfgText, product, task string, wantAdded int) (shown, logs, idx string) {
	t.Helper()
	cfg, conn, err := connectors.Builtin.Parse("rest.cfg", []byte(cfgText))
	require.NoError(t, err)
	require.Equal(t, product, conn.Product)
	var lb testlog.Buffer
	srv, err := server.Start(cfg, server.Options{Port: 0, LogOutput: &lb})
	require.NoError(t, err)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
	}()
	base := "http://" + srv.Addr().String()
	get := func(path string) string {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	var sb strings.Builder
	v := get("/action=GetVersion")
	sb.WriteString(v)
	require.Contains(t, v, product)
	reply := get("/action=Fetch&FetchAction=Synchronize&ConfigSection=" + task)
	tok := between(reply, "<token>", "</token>")
	require.NotEmpty(t, tok, reply)
	status := ""
	require.Eventually(t, func() bool {
		status = get("/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token=" + url.QueryEscape(tok))
		return strings.Contains(status, "<status>Finished</status>")
	}, 60*time.Second, 20*time.Millisecond)
	sb.WriteString(status)
	require.Contains(t, status, fmt.Sprintf(`added="%d"`, wantAdded), status)
	sb.WriteString(get("/action=QueueInfo&QueueName=fetch&QueueAction=GetActionParameters&Token=" + url.QueryEscape(tok)))
	sb.WriteString(get("/action=TaskList"))
	sb.WriteString(get("/action=GetRequestLog"))
	var ib strings.Builder
	files, _ := filepath.Glob(filepath.Join(cfg.Ingestion.Directory, "*.idx"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		ib.Write(b)
	}
	return sb.String(), lb.String(), ib.String()
}

// A Webex connector server ([Connector] Type=WEBEX) end to end over ACI,
// against the stand-in: the spaces and messages reach the IDX files, and
// neither the client secret nor a token shows anywhere.
func TestWebexServerEndToEnd(t *testing.T) {
	const clientSecret = "webex-s3cret-9"
	ws := webextest.New(webextest.Options{ClientID: "client-id", ClientSecret: clientSecret})
	defer ws.Close()
	alice := ws.AddPerson("alice@example.com", "Alice")
	ws.SetMe(alice, false)
	room := ws.AddRoom("Réunion", "group", alice)
	for i := range 3 {
		ws.Post(room, alice, fmt.Sprintf("ordre du jour %d", i))
	}
	dir := t.TempDir()
	key, err := secret.EnsureKeyFile(filepath.Join(dir, "data", "aes.ky"))
	require.NoError(t, err)
	rt := ws.IssueRefreshToken()
	require.NoError(t, oauth.TokenFile{Path: filepath.Join(dir, "data", "oauth", "webex.token"), Key: key}.Save(&oauth2.Token{RefreshToken: rt}, "client-id", nil))
	enc, err := key.Encrypt(clientSecret)
	require.NoError(t, err)
	shown, logs, idx := runREST(t, fmt.Sprintf(`[Connector]
Type=WEBEX
[Server]
DataDirectory=%[1]s/data
[Logging]
LogLevel=debug
[Ingestion]
IngestDirectory=%[1]s/out
[FetchTasks]
0=Webex
[Webex]
WebexApiUrl=%[2]s
OAuthTokenUrl=%[2]s/access_token
OAuthClientID=client-id
OAuthClientSecret=%[3]s
`, dir, ws.URL, enc), "WEBEXCONNECTOR", "Webex", 4)
	require.Contains(t, idx, "Réunion: ordre du jour 2")
	require.Equal(t, 4, strings.Count(idx, "#DREENDDOC"))
	for what, text := range map[string]string{"replies": shown, "logs": logs, "documents": idx} {
		require.NotContains(t, text, clientSecret, "the client secret shows in the %s", what)
		require.NotContains(t, text, rt, "the refresh token shows in the %s", what)
		require.NotContains(t, text, "at-", "an access token shows in the %s", what)
	}
}

// An Objective connector server ([Connector] Type=OBJECTIVE) end to end
// over ACI, against the stand-in, with basic authentication: the password
// shows nowhere.
func TestObjectiveServerEndToEnd(t *testing.T) {
	const password = "obj-s3cret-7"
	obj := objectivetest.New(objectivetest.Options{Users: map[string]string{"indexer": password}})
	defer obj.Close()
	f := obj.AddFolder(objectivetest.RootID, "Procès-verbaux")
	for i := range 3 {
		obj.AddDocument(f, objectivetest.Doc{Name: fmt.Sprintf("pv-%d.txt", i), Data: []byte("séance du conseil")})
	}
	dir := t.TempDir()
	shown, logs, idx := runREST(t, fmt.Sprintf(`[Connector]
Type=OBJECTIVE
[Server]
DataDirectory=%[1]s/data
[Logging]
LogLevel=debug
[Ingestion]
IngestDirectory=%[1]s/out
[FetchTasks]
0=Objective
[Objective]
ServerUrl=%[2]s
Username=indexer
Password=%[3]s
`, dir, obj.URL, password), "OBJECTIVERESTCONNECTOR", "Objective", 5)
	require.Contains(t, idx, "/Objective Global Folder/Procès-verbaux/pv-2.txt")
	require.Contains(t, idx, "séance du conseil")
	for what, text := range map[string]string{"replies": shown, "logs": logs, "documents": idx} {
		require.NotContains(t, text, password, "the password shows in the %s", what)
	}
}
