package main

import (
	"bufio"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestClosedStandardErrorDoesNotEndTheServer: with no [Logging] LogFile
// the log goes to standard error; when whoever read it has gone (the
// server run as "connector | head -1" or "connector 2>&1 | head", a
// supervisor that closed its end of the pipe), the server goes on serving
// and stops cleanly on SIGTERM. Go's default for a write to a closed pipe
// on descriptor 1 or 2 is to end the process with SIGPIPE: the server died,
// without a word anywhere, at its next log line.
func TestClosedStandardErrorDoesNotEndTheServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "connector.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte("[Server]\nDataDirectory="+filepath.Join(dir, "data")+"\n"), 0o600))
	r, w, err := os.Pipe()
	require.NoError(t, err)
	cmd := exec.Command(bin, "-config", cfg, "-port", "0")
	cmd.Stderr = w
	require.NoError(t, cmd.Start())
	require.NoError(t, w.Close()) // the child's copy is the only writer
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill() // by PID: the process this test started
			_ = cmd.Wait()
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if m := startedRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
				return // stops reading: r is closed below
			}
		}
		close(addr)
	}()
	var base string
	select {
	case a, ok := <-addr:
		require.True(t, ok, "the connector did not start")
		base = "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("the connector did not start")
	}
	require.NoError(t, r.Close()) // the reader goes away: the pipe is broken

	// SIGHUP without a log file logs a line (there is nothing to reopen),
	// which meets the broken pipe; so do the SIGTERM's message and the
	// shutdown's log lines.
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	resp, err := http.Get(base + "/action=GetStatus")
	require.NoError(t, err, "the server still serves after its log lines met the closed pipe")
	_ = resp.Body.Close()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("the server did not stop cleanly on SIGTERM: %v", ee.ProcessState)
	}
	require.NoError(t, err)
}

// TestBrokenPipeDropsTheWritesAfterEPIPE: the first write that finds the
// pipe closed, and every later one, succeed without writing; other errors
// are returned.
func TestBrokenPipeDropsTheWritesAfterEPIPE(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer w.Close()
	b := &brokenPipe{w: w}
	n, err := b.Write([]byte("read\n"))
	require.NoError(t, err)
	require.Equal(t, 5, n)
	require.NoError(t, r.Close())
	for range 2 {
		n, err = b.Write([]byte("lost\n"))
		require.NoError(t, err)
		require.Equal(t, 5, n)
	}
	require.True(t, b.broken.Load(), "the pipe is known to be broken")

	closed := &brokenPipe{w: w}
	require.NoError(t, w.Close())
	_, err = closed.Write([]byte("x"))
	require.ErrorIs(t, err, os.ErrClosed, "an error other than EPIPE is returned")
}
