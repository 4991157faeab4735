package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testTaskKeys accepts Url and Depth, like a tiny repository would.
func testTaskKeys(key, value string) error {
	switch strings.ToLower(key) {
	case "url":
		return nil
	case "depth":
		if _, err := intIn(value, -1, 1000); err != nil {
			return err
		}
		return nil
	}
	return ErrUnknownKey
}

func TestEmbeddedDefaultLoads(t *testing.T) {
	t.Parallel()
	// Task keys are the repository's business (checked with the real ones
	// in cmd/connector); here any task key is accepted.
	c, err := Load("", func(string, string) error { return nil })
	require.NoError(t, err)
	require.Equal(t, DefaultName, c.Path)
	require.Equal(t, []string{"MyTask"}, c.FetchTasks)
	require.Equal(t, "127.0.0.1", c.Server.Host, "a fresh install must not listen on the network")
	require.Equal(t, 7000, c.Server.Port)
	require.Equal(t, 4, c.Actions.MaximumThreads)
	require.Equal(t, filepath.Join("data", "ingest"), c.Ingestion.Directory)
}

func TestParseFull(t *testing.T) {
	t.Parallel()
	c, err := Parse("x.cfg", []byte(`
// IDOL comment
; ini comment
[server]
PORT = 9100
host=0.0.0.0
ReadTimeout=1.5s
ShutdownTimeout=2

[Actions]
MaximumThreads=8
MaximumQueueSize=10
FinishedActionMaxAge=2d
UseInMemoryDatastore=Y
ProcessingOnRestart=error

[FetchTasks]
Number=2
0=Alpha
1=Beta
Depth=3

[Default]
Url="http://example.com/a \"b\""

[Alpha]
Depth=1

[Logging]
LogLevel=DEBUG
`), testTaskKeys)
	require.NoError(t, err)
	require.Equal(t, 9100, c.Server.Port)
	require.Equal(t, "0.0.0.0", c.Server.Host)
	require.Equal(t, 1500*time.Millisecond, c.Server.ReadTimeout)
	require.Equal(t, 2*time.Second, c.Server.ShutdownTimeout)
	require.Equal(t, 8, c.Actions.MaximumThreads)
	require.Equal(t, 48*time.Hour, c.Actions.FinishedActionMaxAge)
	require.True(t, c.Actions.UseInMemoryDatastore)
	require.Equal(t, "Error", c.Actions.ProcessingOnRestart)
	require.Equal(t, "debug", c.Logging.Level)
	require.Equal(t, []string{"Alpha", "Beta"}, c.FetchTasks)
	// precedence: task section > [FetchTasks] > [Default]
	v, _ := c.TaskValue("alpha", "depth")
	require.Equal(t, "1", v)
	v, _ = c.TaskValue("Beta", "Depth")
	require.Equal(t, "3", v)
	v, _ = c.TaskValue("Beta", "URL")
	require.Equal(t, `http://example.com/a "b"`, v)
	require.True(t, c.HasTask("BETA"))
	require.False(t, c.HasTask("Gamma"))
	require.Equal(t, []string{"Alpha"}, c.TaskSections(), "[Default] is not a task; Beta has no section of its own")
}

func TestParseErrorsNameFileSectionKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, cfg, want string
		unknown         bool
	}{
		{"unknown key", "[Server]\nPotr=1\n", "config c.cfg: [Server] Potr: unknown key", true},
		{"bad port", "[Server]\nPort=http\n", `config c.cfg: [Server] Port: "http" is not a whole number`, false},
		{"port out of range", "[Server]\nPort=70000\n", "[Server] Port: 70000 is out of range", false},
		{"bad bool", "[Actions]\nUseInMemoryDatastore=maybe\n", `[Actions] UseInMemoryDatastore: "maybe" is not a Boolean`, false},
		{"zero threads", "[Actions]\nMaximumThreads=0\n", "[Actions] MaximumThreads: 0 is out of range", false},
		{"bad duration", "[Actions]\nFinishedActionMaxAge=soon\n", "[Actions] FinishedActionMaxAge: \"soon\" is not a duration", false},
		{"duplicate key", "[Server]\nPort=1\nport=2\n", "[Server] port: key given more than once", false},
		{"duplicate section", "[Server]\nPort=1\n[SERVER]\nHost=x\n", "[SERVER]: section appears twice", false},
		{"duplicate by spaces", "[MyTask]\nUrl=a\n[MyTask ]\nDepth=1\n", "[MyTask]: section appears twice", false},
		{"task key unknown", "[MyTask]\nUrll=http://x\n", "[MyTask] Urll: unknown key", true},
		{"task value bad", "[MyTask]\nDepth=deep\n", `[MyTask] Depth: "deep" is not a whole number`, false},
		{"fetchtasks gap", "[FetchTasks]\nNumber=2\n0=A\n", "[FetchTasks] 1: Number=2 but task 1 is not listed", false},
		{"fetchtasks beyond", "[FetchTasks]\nNumber=1\n0=A\n3=B\n", "[FetchTasks] 3: task index 3 is not below Number=1", false},
		{"reserved task name", "[FetchTasks]\n0=Server\n", "reserved section name", false},
		{"bad level", "[Logging]\nLogLevel=loud\n", "[Logging] LogLevel: \"loud\" is not one of debug, info, warn, error", false},
		{"cfs without host", "[Ingestion]\nIngesterType=CFS\n", "[Ingestion] IngestHost: IngesterType=CFS needs IngestHost and IngestPort", false},
		{"key outside section", "Port=1\n[Server]\n", "config c.cfg: Port: setting outside any [Section]", false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("c.cfg", []byte(tc.cfg), testTaskKeys)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			var ce *Error
			require.True(t, errors.As(err, &ce))
			require.Equal(t, "c.cfg", ce.File)
			require.Equal(t, tc.unknown, errors.Is(err, ErrUnknownKey))
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "nope.cfg"), testTaskKeys)
	require.Error(t, err)
	require.Contains(t, err.Error(), "nope.cfg")
	require.True(t, errors.Is(err, os.ErrNotExist))
}

func TestFetchTasksWithoutNumber(t *testing.T) {
	t.Parallel()
	c, err := Parse("c.cfg", []byte("[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://x/\n"), testTaskKeys)
	require.NoError(t, err)
	require.Equal(t, []string{"MyTask"}, c.FetchTasks)
}

func TestBoolAndDuration(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"TRUE", "true", "On", "y", "YES", "1"} {
		b, err := Bool(v)
		require.NoError(t, err)
		require.True(t, b, v)
	}
	for _, v := range []string{"FALSE", "off", "N", "no", "0"} {
		b, err := Bool(v)
		require.NoError(t, err)
		require.False(t, b, v)
	}
	for in, want := range map[string]time.Duration{"30": 30 * time.Second, "0.5": 500 * time.Millisecond, "10m": 10 * time.Minute, "7d": 7 * 24 * time.Hour, "1h30m": 90 * time.Minute} {
		d, err := Duration(in)
		require.NoError(t, err, in)
		require.Equal(t, want, d, in)
	}
	for _, bad := range []string{"", "-1", "-5s", "x", "3 days"} {
		_, err := Duration(bad)
		require.Error(t, err, fmt.Sprintf("%q", bad))
	}
}
