package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
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

// TestJSONLogLinesHaveUniqueKeys runs the real server with JSON logs at
// debug level through a Synchronize that crawls a site (the crawl logs
// through the HTTP connector's logger), and reads every line back: each is
// one JSON object whose keys are unique.
func TestJSONLogLinesHaveUniqueKeys(t *testing.T) {
	t.Parallel()
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<html><title>home</title><a href="/a">a</a><a href="/missing">gone</a></html>`)
	}))
	defer site.Close()
	dir := t.TempDir()
	cfg, err := config.Parse("logs.cfg", []byte(fmt.Sprintf(`
[Server]
DataDirectory=%s
[Logging]
LogLevel=debug
LogFormat=json
[Ingestion]
IngestDirectory=%s
[FetchTasks]
0=Site
[Site]
Url=%s/
`, filepath.Join(dir, "data"), filepath.Join(dir, "out"), site.URL)), httpfetch.TaskKeys)
	require.NoError(t, err)
	var logs bytes.Buffer // read once the server has stopped
	srv, err := server.Start(cfg, server.Options{Port: 0, LogOutput: &logs,
		Repository: func(d server.Deps) (fetch.Repository, error) {
			return httpfetch.New(httpfetch.Options{Config: d.Config, Store: d.Store, Target: d.Target, Logger: d.Logger})
		}})
	require.NoError(t, err)
	base := "http://" + srv.Addr().String()
	get := func(path string) string {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		var b bytes.Buffer
		_, err = b.ReadFrom(resp.Body)
		require.NoError(t, err)
		return b.String()
	}
	tok := between(get("/action=Fetch&FetchAction=Synchronize&ConfigSection=Site"), "<token>", "</token>")
	require.NotEmpty(t, tok)
	testwait.For(t, 30*time.Second, func() bool {
		return strings.Contains(get("/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(tok)), "<status>Finished</status>")
	}, "the Synchronize to finish")
	http.DefaultClient.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))

	components := map[string]bool{}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Greater(t, len(lines), 5)
	for _, line := range lines {
		d := json.NewDecoder(strings.NewReader(line))
		tok, err := d.Token()
		require.NoError(t, err, line)
		require.Equal(t, json.Delim('{'), tok, line)
		seen := map[string]bool{}
		for d.More() {
			k, err := d.Token()
			require.NoError(t, err, line)
			key := k.(string)
			require.False(t, seen[key], "key %q twice in %s", key, line)
			seen[key] = true
			var v json.RawMessage
			require.NoError(t, d.Decode(&v), line)
			if key == "component" {
				components[strings.Trim(string(v), `"`)] = true
			}
		}
	}
	require.True(t, components["crawl"], "the crawl logged: %v", components)
	require.True(t, components["httpfetch"], "the connector logged: %v", components)
}
