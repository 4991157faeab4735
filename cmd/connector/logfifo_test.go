package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
)

// TestLogFileFIFOWithoutReaderIsRefused: a [Logging] LogFile that is a
// named pipe (FIFO) no process reads stops start-up at once with an error
// naming the file, line and key. Its open waited for a reader for ever:
// the server hung before it served, with nothing in any log.
func TestLogFileFIFOWithoutReaderIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "log")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	cfg := logFileConfig(t, dir, fifo)
	cmd := exec.Command(bin, "-config", cfg, "-port", "0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "start-up fails: %v", err)
		require.Equal(t, 1, ee.ExitCode())
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill() // by PID: the process this test started
		<-exited
		t.Fatalf("start-up waited on a log file FIFO nobody reads; standard error: %q", stderr.String())
	}
	require.Contains(t, stderr.String(), cfg+":4: [Logging] LogFile")
	require.Contains(t, stderr.String(), "no process reads it")
}

// TestSIGHUPToALogFileNowAFIFO: when [Logging] LogFile's path names a
// FIFO nobody reads at a SIGHUP, the reopen fails at once, says so in the
// log file it was in, and the next SIGHUP is handled. The reopen waited
// for a reader for ever, and every later SIGHUP with it.
func TestSIGHUPToALogFileNowAFIFO(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	t.Parallel()
	logFile := filepath.Join(t.TempDir(), "connector.log")
	cmd := startLogging(t, logFile)
	rotated := logFile + ".1"
	require.NoError(t, os.Rename(logFile, rotated))
	require.NoError(t, syscall.Mkfifo(logFile, 0o600))
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	testwait.For(t, 10*time.Second, func() bool {
		return strings.Contains(fileText(rotated), "the log file could not be opened again")
	}, "the moved file to say the FIFO could not be opened")

	require.NoError(t, os.Remove(logFile))
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	testwait.For(t, 10*time.Second, func() bool { return strings.Contains(fileText(logFile), `msg="SIGHUP received: log file reopened"`) },
		"the next SIGHUP to open the new log file")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "a clean shutdown")
}
