package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/httpfetch"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/server"
)

// TestScheduledRunsShowInQueueInfo assembles the real server with the real
// repository from a configuration that schedules a task, and checks that
// the scheduled Synchronize runs appear in QueueInfo and crawl the site.
func TestScheduledRunsShowInQueueInfo(t *testing.T) {
	t.Parallel()
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<html><title>home</title><a href="/a">a</a></html>`)
	}))
	defer site.Close()
	dir := t.TempDir()
	cfg, err := config.Parse("sched.cfg", []byte(fmt.Sprintf(`
[Server]
DataDirectory=%s
[Ingestion]
IngestDirectory=%s
[FetchTasks]
0=Nightly
[Nightly]
Url=%s/
ScheduleStartTime=now
ScheduleRepeatSecs=1
ScheduleCycles=2
`, filepath.Join(dir, "data"), filepath.Join(dir, "out"), site.URL)), httpfetch.TaskKeys)
	require.NoError(t, err)
	srv, err := server.Start(cfg, server.Options{Port: 0, LogOutput: io.Discard,
		Repository: func(d server.Deps) (fetch.Repository, error) {
			return httpfetch.New(httpfetch.Options{Config: d.Config, Store: d.Store, Target: d.Target, Logger: d.Logger})
		}})
	require.NoError(t, err)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
	}()
	base := "http://" + srv.Addr().String()
	var body string
	testwait.For(t, 15*time.Second, func() bool {
		resp, err := http.Get(base + "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&State=finished")
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		return strings.Count(body, "<status>Finished</status>") == 2
	}, "two scheduled runs")
	require.Equal(t, 2, strings.Count(body, "<fetchaction>SYNCHRONIZE</fetchaction>"))
	require.Contains(t, body, `task="NIGHTLY"`)
	require.Contains(t, body, `added="2"`, "the first run crawled the site")
	require.Contains(t, body, `unchanged="2"`, "the second found it unchanged")
	http.DefaultClient.CloseIdleConnections()
}
