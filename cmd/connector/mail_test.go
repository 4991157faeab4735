package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
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
	shown, logs, idx := runREST(t, fmt.Sprintf(`[Connector]
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
`, filepath.Join(dir, "data"), filepath.Join(dir, "out"), host, port, password), "GOOGLEMAILCONNECTOR", "Mail", 4)
	require.Contains(t, idx, "Réunion 3")
	require.Equal(t, 4, strings.Count(idx, "#DREENDDOC"))
	for what, text := range map[string]string{"replies": shown, "logs": logs, "documents": idx} {
		require.NotContains(t, text, password, "the password shows in the %s", what)
	}
}
