package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
)

// TestCleanShutdownWithTheLongestShutdownTimeout: a SIGTERM stops the
// running action (it ends as Stopped, written to disk, and is not re-run
// at the next start) even when [Server] ShutdownTimeout is the longest a
// Duration holds. The whole shutdown's budget was ShutdownTimeout+10s,
// which overflowed into the past: the queue then stopped without waiting
// for the action, and the next start re-ran it as after a crash.
func TestCleanShutdownWithTheLongestShutdownTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	site := chainSite(t, 0, 2, 20*time.Millisecond)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "connector.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
[Server]
DataDirectory=%s
// 9223372036 s: the longest whole number of seconds a Duration holds.
ShutdownTimeout=9223372036
[Actions]
MaximumThreads=1
[Ingestion]
IngestDirectory=%s
[FetchTasks]
0=Slow
[Slow]
Url=%s/p/0
Depth=-1
`, filepath.Join(dir, "data"), filepath.Join(dir, "out"), site.URL)), 0o600))
	get := func(u string) string {
		resp, err := http.Get(u)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	status := func(base, tok string) string {
		return between(get(base+"/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(tok)), "<status>", "</status>")
	}

	srv := startBinary(t, bin, cfg)
	tok := between(get(srv.base+"/action=Fetch&FetchAction=Synchronize&ConfigSection=Slow"), "<token>", "</token>")
	require.NotEmpty(t, tok)
	testwait.For(t, 20*time.Second, func() bool { return status(srv.base, tok) == "Processing" }, "the action to start")
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, srv.cmd.Wait(), "a clean shutdown exits with status 0")

	srv = startBinary(t, bin, cfg)
	require.Equal(t, "Stopped", status(srv.base, tok), "the running action ended as Stopped at the shutdown")
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, srv.cmd.Wait())
}
