package main

import (
	"fmt"
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

// TestSIGHUPReopensTheLogFile: SIGHUP, which logrotate's postrotate sends,
// makes the server write its log to a new file at [Logging] LogFile once
// the old one was moved away, and does not end it. Go's default for the
// signal ended the process at once, without a log line or a clean stop.
func TestSIGHUPReopensTheLogFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	logFile := filepath.Join(dir, "connector.log")
	cfg := filepath.Join(dir, "connector.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("[Server]\nDataDirectory=%s\n[Logging]\nLogFile=%s\n",
		filepath.Join(dir, "data"), logFile)), 0o600))
	cmd := exec.Command(bin, "-config", cfg, "-port", "0")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill() // by PID: the process this test started
			_ = cmd.Wait()
		}
	})
	read := func(p string) string {
		b, _ := os.ReadFile(p)
		return string(b)
	}
	testwait.For(t, 30*time.Second, func() bool { return strings.Contains(read(logFile), `msg="connector started"`) },
		"the start line in the log file")
	rotated := logFile + ".1"
	require.NoError(t, os.Rename(logFile, rotated)) // logrotate's move
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	testwait.For(t, 10*time.Second, func() bool { return strings.Contains(read(logFile), `msg="SIGHUP received: log file reopened"`) },
		"the new log file to say it was reopened")
	require.NotContains(t, read(rotated), "log file reopened", "the moved file is no longer written")

	base := "http://" + between(read(rotated), "address=", " ")
	require.Contains(t, aciGet(t, base+"/action=GetStatus"), "SUCCESS", "the server still serves")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "a clean shutdown after the SIGHUP")
	require.Contains(t, read(logFile), "connector stopped", "the stop is logged in the new file")
}
