package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/fetch"
)

// jsonKeys returns the top-level keys of one JSON object, in order,
// duplicates kept (encoding/json would silently keep the last).
func jsonKeys(t *testing.T, line string) []string {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(line))
	tok, err := d.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok, line)
	var keys []string
	for d.More() {
		k, err := d.Token()
		require.NoError(t, err, line)
		keys = append(keys, k.(string))
		var skip json.RawMessage
		require.NoError(t, d.Decode(&skip), line)
	}
	return keys
}

// A component's logger derived from another one's names one component.
func TestLogKeysAreUnique(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, _, err := newLogger(config.Logging{Level: "debug", Format: "json"}, &buf)
	require.NoError(t, err)
	httpfetch := log.With("component", "httpfetch", "task", "T")
	crawl := httpfetch.With("component", "crawl")
	crawl.Info("page", "url", "http://x/")
	crawl.Info("again", "task", "OTHER") // a record's own value wins
	httpfetch.WithGroup("g").With("component", "inner").Info("grouped")
	log.Info("plain", "component", "store")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 4)
	require.Equal(t, []string{"time", "level", "msg", "task", "component", "url"}, jsonKeys(t, lines[0]))
	require.Contains(t, lines[0], `"component":"crawl"`)
	require.Equal(t, []string{"time", "level", "msg", "component", "task"}, jsonKeys(t, lines[1]))
	require.Contains(t, lines[1], `"task":"OTHER"`)
	require.Equal(t, []string{"time", "level", "msg", "component", "task", "g"}, jsonKeys(t, lines[2]))
	require.Contains(t, lines[2], `"component":"httpfetch"`)
	require.Contains(t, lines[2], `"g":{"component":"inner"}`)
	require.Equal(t, []string{"time", "level", "msg", "component"}, jsonKeys(t, lines[3]))

	// The text format likewise.
	buf.Reset()
	log, _, err = newLogger(config.Logging{Level: "info", Format: "text"}, &buf)
	require.NoError(t, err)
	log.With("component", "httpfetch").With("component", "crawl").Info("page")
	require.Equal(t, 1, strings.Count(buf.String(), "component="), buf.String())
}

// A port in use stops start-up before the log file is created (nothing
// is created on disk); a start that fails once the log file is open says
// why in it, not only on standard error.
func TestFailedStartAndTheLogFile(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	logDir := filepath.Join(t.TempDir(), "log")
	logFile := filepath.Join(logDir, "connector.log")
	cfg := testConfig(t, "[Logging]\nLogFile="+logFile+"\n")
	repo := func(Deps) (fetch.Repository, error) { return newTestRepo(), nil }
	_, err = Start(cfg, Options{Port: busy.Addr().(*net.TCPAddr).Port, LogOutput: io.Discard, Repository: repo})
	require.ErrorContains(t, err, "([Server] Host and -port ")
	require.NoDirExists(t, logDir, "a port in use creates no log file")

	bad := errors.New("repository says no")
	_, err = Start(cfg, Options{Port: -1, LogOutput: io.Discard, Repository: func(Deps) (fetch.Repository, error) { return nil, bad }})
	require.ErrorIs(t, err, bad)
	b, err := os.ReadFile(logFile)
	require.NoError(t, err)
	require.Contains(t, string(b), `level=ERROR msg="start-up failed" err="repository says no"`)
}
