package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
)

// TestBackupAndRestoreAsOperationsSays follows docs/operations.md, "Backups
// and restore", with the real binary: a clean stop, a copy of the whole data
// folder (cp -a), the folder lost, the copy put back, a start. The queue comes
// back as it was (paused, its queued action under the same token), and the
// action, which carries a password the request gave (sealed with the data
// folder's aes.ky), runs with it: the key came back with the store.
func TestBackupAndRestoreAsOperationsSays(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	const password = "backed-up-s3cret"
	var authorized atomic.Int32
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "crawler" || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="site"`)
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		authorized.Add(1)
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><head><title>the page</title></head><body>behind Basic authentication</body></html>")
	}))
	defer site.Close()
	bin := buildBinary(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "connector.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
[Server]
DataDirectory=%s
[FetchTasks]
0=MyTask
[MyTask]
Url=%s/
BasicAuthUsername=crawler
`, data, site.URL)), 0o600))

	srv := startBinary(t, bin, cfg)
	require.Contains(t, aciGet(t, srv.base+"/action=QueueInfo&QueueName=fetch&QueueAction=Pause"), "SUCCESS")
	tok := between(aciGet(t, srv.base+"/action=Fetch&FetchAction=Synchronize&TaskSections=MyTask&%5BMyTask%5DBasicAuthPassword="+url.QueryEscape(password)), "<token>", "</token>")
	require.NotEmpty(t, tok)
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, srv.cmd.Wait(), "a clean stop")

	// The backup, as the page says: the whole folder, the server stopped.
	backup := filepath.Join(dir, "backup")
	out, err := exec.Command("cp", "-a", data, backup).CombinedOutput()
	require.NoError(t, err, "%s", out)
	names := func(d string) string {
		es, err := os.ReadDir(d)
		require.NoError(t, err)
		var n []string
		for _, e := range es {
			n = append(n, e.Name())
		}
		return strings.Join(n, " ")
	}
	require.Contains(t, names(backup), "aes.ky", "the key file is in the data folder, and so in the backup")
	require.NotContains(t, names(backup), ".wal.", "a clean stop leaves no journal segment")

	// The folder is lost; the restore puts the copy back.
	require.NoError(t, os.RemoveAll(data))
	out, err = exec.Command("cp", "-a", backup, data).CombinedOutput()
	require.NoError(t, err, "%s", out)

	srv = startBinary(t, bin, cfg)
	qs := aciGet(t, srv.base+"/action=QueueInfo&QueueName=fetch&QueueAction=QueueStatus")
	require.Contains(t, qs, "<paused>true</paused>", "the queue came back paused: %s", qs)
	require.Equal(t, "Queued", actionStatus(t, srv.base, tok))
	require.Zero(t, authorized.Load(), "nothing ran before the restore")
	require.Contains(t, aciGet(t, srv.base+"/action=QueueInfo&QueueName=fetch&QueueAction=Resume"), "SUCCESS")
	testwait.For(t, 30*time.Second, func() bool {
		s := actionStatus(t, srv.base, tok)
		return s != "Queued" && s != "Processing"
	}, "the restored action ends")
	st := aciGet(t, srv.base+"/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(tok))
	require.Contains(t, st, "<status>Finished</status>", st)
	require.Contains(t, st, `added="1"`, "the page behind the password was delivered: %s", st)
	require.Positive(t, authorized.Load(), "the restored action sent the password the request gave")
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, srv.cmd.Wait())
}
