package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors"
	"github.com/connectorhq/connector/connectors/httpfetch"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/internal/version"
)

func TestEmbeddedDefaultIsValid(t *testing.T) {
	t.Parallel()
	cfg, conn, err := connectors.Load("")
	require.NoError(t, err)
	require.Equal(t, httpfetch.Type, conn.Type)
	require.Equal(t, "127.0.0.1", cfg.Server.Host)
	require.Equal(t, []string{"MyTask"}, cfg.FetchTasks)
}

func TestRunRefusesBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		// Every file points the data folder into dir, to show that a refused
		// configuration creates nothing.
		require.NoError(t, os.WriteFile(p, []byte("[Server]\nPort=0\nDataDirectory="+data+"\n"+text), 0o600))
		return p
	}
	bad := write("bad.cfg", "[Actions]\nMaximumThreads=lots\n")
	unknown := write("unknown.cfg", "[FetchTasks]\n0=T\n[T]\nUrl=http://127.0.0.1:1/\nDepht=2\n")
	servr := write("servr.cfg", "[Servr]\nPort=7001\n")
	noURL := write("nourl.cfg", "[FetchTasks]\n0=T\n\n[T]\nDepth=2\n")
	comment := write("comment.cfg", "[Actions]\nMaximumThreads=4      // actions running at once\n")
	denied := write("denied.cfg", "[Security]\nDeniedAddresses=10.0.0.0/99\n")
	// A log file in the data folder: a bad Host stops start-up before the
	// log file is created.
	// A log file under a regular file: it cannot be created.
	notDir := write("notdir.cfg", "[Logging]\nLogFile="+filepath.Join(dir, "bad.cfg", "connector.log")+"\n")
	host := write("host.cfg", "Host=127.0.0.1:7000\n[Logging]\nLogFile="+filepath.Join(data, "log", "connector.log")+"\n")
	// An output folder under a regular file: it cannot be created.
	ingestDir := write("ingest.cfg", "[Ingestion]\nIngesterType=IDX\nIngestDirectory="+filepath.Join(dir, "bad.cfg", "out")+"\n")
	for _, tc := range []struct {
		desc string
		args []string
		code int
		want string
	}{
		{"bad value names file, line, section and key", []string{"-config", bad}, 1,
			"connector: config " + bad + `:5: [Actions] MaximumThreads: "lots" is not a whole number (expected 1 to 4096)`},
		{"unknown task key", []string{"-config", unknown}, 1,
			"connector: config " + unknown + ":8: [T] Depht: unknown key: Depht is not a fetch task setting (did you mean Depth?)"},
		{"misspelled section", []string{"-config", servr}, 1,
			"connector: config " + servr + ":4: [Servr]: unknown section (did you mean [Server]?)"},
		{"task without a start URL", []string{"-config", noURL}, 1,
			"connector: config " + noURL + ":7: [T] Url: the task has no start URL"},
		{"trailing comment", []string{"-config", comment}, 1,
			"connector: config " + comment + `:5: [Actions] MaximumThreads: "4      // actions running at once" ends in what looks like a comment (//)`},
		{"a value another package checks", []string{"-config", denied}, 1,
			"connector: config " + denied + ":5: [Security] DeniedAddresses: "},
		{"a host with a port", []string{"-config", host}, 1,
			"connector: config " + host + `:4: [Server] Host: "127.0.0.1:7000" holds a port`},
		{"a log file that cannot be created", []string{"-config", notDir}, 1,
			"connector: config " + notDir + ":5: [Logging] LogFile: mkdir " + filepath.Join(dir, "bad.cfg") + ": not a directory"},
		{"missing file", []string{"-config", filepath.Join(dir, "nope.cfg")}, 1, "nope.cfg"},
		{"bad port", []string{"-port", "70000"}, 2, "not a port number"},
		// With a refused configuration: a -port that was not checked would
		// let the configuration's error come first (status 1).
		{"negative port", []string{"-port", "-2", "-config", bad}, 2, "connector: -port -2 is not a port number"},
		{"port -1 given", []string{"-port=-1", "-config", bad}, 2, "connector: -port -1 is not a port number"},
		{"bad flag", []string{"-frobnicate"}, 2, "flag provided but not defined"},
		{"stray argument", []string{"serve"}, 2, `unexpected argument "serve"`},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		require.Equal(t, tc.code, code, "%s: %s", tc.desc, stderr.String())
		require.Contains(t, stderr.String(), tc.want, tc.desc)
		require.NoDirExists(t, data, "%s: a refused configuration creates nothing", tc.desc)
	}
	// A data folder under a regular file, and a port in use, are the
	// file's errors too: at their key's line.
	under := filepath.Join(dir, "datadir.cfg")
	require.NoError(t, os.WriteFile(under, []byte("[Server]\nPort=0\nDataDirectory="+filepath.Join(dir, "bad.cfg", "data")+"\n"), 0o600))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	inUse := filepath.Join(dir, "inuse.cfg")
	require.NoError(t, os.WriteFile(inUse, []byte(fmt.Sprintf("[Server]\nHost=127.0.0.1\nPort=%d\nDataDirectory=%s\n",
		busy.Addr().(*net.TCPAddr).Port, data)), 0o600))
	for cfg, want := range map[string]string{
		under: "connector: config " + under + ":3: [Server] DataDirectory: store: ",
		inUse: "connector: config " + inUse + ":3: [Server] Port: listen on " + busy.Addr().String() + ": ",
	} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 1, run([]string{"-config", cfg}, &stdout, &stderr))
		require.Contains(t, stderr.String(), want)
	}
	require.NoDirExists(t, data, "a port in use creates nothing")
	// A folder that cannot be created is found by trying (the store's
	// is made by then): the error is at the key's line, naming it.
	var stdout, stderr bytes.Buffer
	require.Equal(t, 1, run([]string{"-config", ingestDir}, &stdout, &stderr))
	require.Contains(t, stderr.String(), "connector: config "+ingestDir+":6: [Ingestion] IngestDirectory: \""+
		filepath.Join(dir, "bad.cfg", "out")+"\": cannot create it: mkdir "+filepath.Join(dir, "bad.cfg")+": not a directory")
}

// -h says what the program is, how to use it, and every flag.
func TestHelpSaysWhatTheProgramIs(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, run([]string{"-h"}, &stdout, &stderr))
	help := stderr.String()
	for _, want := range []string{
		"connector is an open-source ACI connector server", "IDOL-style connectors",
		"connector [-config FILE] [-port N]", "connector -version", "connector bench -h", "connector password -h",
		"embedded default configuration", "-config", "-port", "-version",
	} {
		require.Contains(t, help, want)
	}
}

// -version prints one line on standard output and starts nothing.
func TestVersionFlag(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, run([]string{"-version", "-config", filepath.Join(t.TempDir(), "absent.cfg")}, &stdout, &stderr))
	require.Empty(t, stderr.String())
	require.Equal(t, version.String()+"\n", stdout.String())
	require.Regexp(t, `^connector \S+ \(revision \S+, build \d+, go\S+ \w+/\w+\)\n$`, stdout.String())
}

// TestVersionFlagRefusesAnArgument: `connector -version x` is a usage
// error (status 2, as a stray argument without -version is), not a
// version printed with the argument ignored.
func TestVersionFlagRefusesAnArgument(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	require.Equal(t, 2, run([]string{"-version", "x"}, &stdout, &stderr))
	require.Empty(t, stdout.String())
	require.Contains(t, stderr.String(), `connector: unexpected argument "x"`)
}

// A -config that names a FIFO (os.ReadFile waited for a writer for ever,
// deaf to Ctrl-C), a device such as /dev/zero (read until memory ran out)
// or a huge file is refused at once with an error naming it.
func TestRunRefusesAConfigThatIsNoFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.cfg")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	huge := filepath.Join(dir, "huge.cfg")
	f, err := os.Create(huge)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(config.MaxFileBytes+1)) // sparse: no disk used
	require.NoError(t, f.Close())
	for path, want := range map[string]string{
		fifo:        "connector: config " + fifo + ": read " + fifo + ": not a regular file (a FIFO)",
		"/dev/zero": "connector: config /dev/zero: read /dev/zero: not a regular file (a device)",
		huge:        fmt.Sprintf("connector: config %s: read %s: more than %d bytes", huge, huge, config.MaxFileBytes),
	} {
		got := testwait.Return(t, 10*time.Second, func() string {
			var stdout, stderr bytes.Buffer
			code := run([]string{"-config", path}, &stdout, &stderr)
			return fmt.Sprint(code, " ", stderr.String())
		}, "the start-up with -config %s to end", path)
		require.Contains(t, got, "1 "+want, path)
	}
}
