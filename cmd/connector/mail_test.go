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

	"github.com/connectorhq/connector/connectors"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
	"github.com/connectorhq/connector/internal/testlog"
	"github.com/connectorhq/connector/server"
)

// A Google Mail connector server ([Connector] Type=GOOGLEMAIL) end to end:
// GetVersion names the product, a Synchronize submitted over ACI indexes a
// Dovecot mailbox into IDX files, and the password shows nowhere.
func TestGoogleMailServerEndToEnd(t *testing.T) {
	const password = "s3cret-mail-pw"
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{"alice": password}})
	for i := range 4 {
		d.MustDeliver(t, "alice", "INBOX", mailtest.Message{From: "bob@example.com", To: "alice@example.com",
			Subject: fmt.Sprintf("Réunion %d", i), Text: "ordre du jour"}.Raw(), "")
	}
	dir := t.TempDir()
	host, port, _ := strings.Cut(d.Addr, ":")
	cfg, conn, err := connectors.Builtin.Parse("mail.cfg", []byte(fmt.Sprintf(`[Connector]
Type=GOOGLEMAIL
[Server]
DataDirectory=%s
[Logging]
LogLevel=debug
[Ingestion]
IngestDirectory=%s
[FetchTasks]
0=Mail
[Mail]
ImapServer=%s
ImapPort=%s
ImapSecurity=NONE
Username=alice
Password=%s
`, filepath.Join(dir, "data"), filepath.Join(dir, "out"), host, port, password)))
	require.NoError(t, err)
	require.Equal(t, "GOOGLEMAILCONNECTOR", conn.Product)
	var logs testlog.Buffer
	srv, err := server.Start(cfg, server.Options{Port: 0, LogOutput: &logs})
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
	var shown strings.Builder
	v := get("/action=GetVersion")
	shown.WriteString(v)
	require.Contains(t, v, "GOOGLEMAILCONNECTOR")
	reply := get("/action=Fetch&FetchAction=Synchronize&ConfigSection=Mail")
	tok := between(reply, "<token>", "</token>")
	require.NotEmpty(t, tok, reply)
	status := ""
	require.Eventually(t, func() bool {
		status = get("/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token=" + url.QueryEscape(tok))
		return strings.Contains(status, "<status>Finished</status>")
	}, 60*time.Second, 20*time.Millisecond)
	shown.WriteString(status)
	require.Contains(t, status, `added="4"`, status)
	shown.WriteString(get("/action=QueueInfo&QueueName=fetch&QueueAction=GetActionParameters&Token=" + url.QueryEscape(tok)))
	shown.WriteString(get("/action=TaskList"))
	shown.WriteString(get("/action=GetRequestLog"))
	var idx strings.Builder
	files, _ := filepath.Glob(filepath.Join(dir, "out", "*.idx"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		idx.Write(b)
	}
	require.Contains(t, idx.String(), "Réunion 3")
	require.Equal(t, 4, strings.Count(idx.String(), "#DREENDDOC"))
	for what, text := range map[string]string{"replies": shown.String(), "logs": logs.String(), "documents": idx.String()} {
		require.NotContains(t, text, password, "the password shows in the %s", what)
	}
}
