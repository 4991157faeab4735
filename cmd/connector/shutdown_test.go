package main

import (
	"bufio"
	"fmt"
	"io"
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
	cfg := slowTaskConfig(t, `// 9223372036 s: the longest whole number of seconds a Duration holds.
ShutdownTimeout=9223372036
`)

	srv := startBinary(t, bin, cfg)
	tok := between(aciGet(t, srv.base+"/action=Fetch&FetchAction=Synchronize&ConfigSection=Slow"), "<token>", "</token>")
	require.NotEmpty(t, tok)
	testwait.For(t, 20*time.Second, func() bool { return actionStatus(t, srv.base, tok) == "Processing" }, "the action to start")
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, srv.cmd.Wait(), "a clean shutdown exits with status 0")

	srv = startBinary(t, bin, cfg)
	require.Equal(t, "Stopped", actionStatus(t, srv.base, tok), "the running action ended as Stopped at the shutdown")
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, srv.cmd.Wait())
}

// TestSignalsDuringStartUp: Ctrl-C while the server is still starting is
// answered at once, and another one forces the exit, as the message says.
// Both used to wait, unread, until start-up returned, however long that
// took (a store to recover, a cluster to join). Here start-up waits for
// ever: its log file is a FIFO whose reader (this test) has stopped
// reading, with the pipe full.
func TestSignalsDuringStartUp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	t.Parallel()
	srv := startHeld(t)
	cmd, stderr := srv.cmd, &srv.stderr

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	testwait.For(t, 10*time.Second, func() bool {
		return strings.Contains(stderr.String(), "interrupt received, shutting down (again to force)")
	},
		"the first Ctrl-C to be answered during start-up")
	// Ctrl-C again, as a user does until it exits: one within a second
	// of the first is taken for the same one delivered twice
	// (TestASignalDeliveredTwiceIsOneRequest), the next forces the exit.
	deadline := time.After(10 * time.Second)
	for {
		require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
		select {
		case <-srv.exited:
			var ee *exec.ExitError
			require.ErrorAs(t, srv.err, &ee)
			require.Equal(t, 1, ee.ExitCode())
			require.Contains(t, stderr.String(), "connector: forced exit")
			return
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("Ctrl-C again during start-up did not end the process; standard error: %q", stderr.String())
		}
	}
}

// logFileConfig writes, in dir, the configuration of a server whose data
// folder is in dir and whose log is logFile, and returns its path.
func logFileConfig(t *testing.T, dir, logFile string) string {
	t.Helper()
	cfg := filepath.Join(dir, "connector.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("[Server]\nDataDirectory=%s\n[Logging]\nLogFile=%s\n",
		filepath.Join(dir, "data"), logFile)), 0o600))
	return cfg
}

// held is a run of the binary whose start-up is held: its log file is a
// FIFO whose reader has stopped reading, with the pipe full (fillFIFO).
type held struct {
	cmd    *exec.Cmd
	reader *os.File // the FIFO's reader: reading it lets start-up go on
	stderr syncLines
	exited chan struct{} // closed once the process has exited, with err
	err    error         // cmd.Wait's
}

// startHeld runs the binary with its start-up held, and returns once it
// has its log file open: the process catches the signals before it opens
// its log file, then waits at its first log line (a signal before the
// open would end it). The process is killed at the end of the test if it
// is still running.
func startHeld(t *testing.T) *held {
	t.Helper()
	bin := buildBinary(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "log")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	h := &held{reader: fillFIFO(t, fifo), exited: make(chan struct{})}
	h.cmd = exec.Command(bin, "-config", logFileConfig(t, dir, fifo), "-port", "0")
	pipe, err := h.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, h.cmd.Start())
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			h.stderr.add(sc.Text())
		}
		h.err = h.cmd.Wait() // the one Wait, after the output is read
		close(h.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-h.exited:
		default:
			_ = h.cmd.Process.Kill() // by PID: the process this test started
			<-h.exited
		}
		if t.Failed() {
			t.Logf("standard error:\n%s", h.stderr.String())
		}
	})
	testwait.For(t, 30*time.Second, func() bool { return hasOpen(h.cmd.Process.Pid, h.reader) }, "the server to open its log file")
	return h
}

// startLogging runs the binary with its log in logFile (and its data
// beside it), and waits for its start line there. The process is killed
// at the end of the test if it is still running.
func startLogging(t *testing.T, logFile string) *exec.Cmd {
	t.Helper()
	return startLoggingWith(t, logFileConfig(t, filepath.Dir(logFile), logFile), logFile)
}

// startLoggingWith is startLogging with the configuration file cfg, whose
// [Logging] LogFile is logFile.
func startLoggingWith(t *testing.T, cfg, logFile string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(buildBinary(t), "-config", cfg, "-port", "0")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill() // by PID: the process this test started
			_ = cmd.Wait()
		}
	})
	testwait.For(t, 30*time.Second, func() bool { return strings.Contains(fileText(logFile), `msg="connector started"`) },
		"the start line in the log file")
	return cmd
}

// fileText is the content of file p, "" if it cannot be read.
func fileText(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// fillFIFO opens the FIFO at path for reading (and writing, so the open
// does not wait), fills its buffer, and returns the open file, which it
// closes at the end of the test: the FIFO has a reader that reads
// nothing, so a write to it waits for ever.
func fillFIFO(t *testing.T, path string) *os.File {
	t.Helper()
	fd, err := syscall.Open(path, syscall.O_RDWR|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	require.NoError(t, err)
	chunk := make([]byte, 4096)
	for {
		if _, err := syscall.Write(fd, chunk); err != nil {
			require.ErrorIs(t, err, syscall.EAGAIN, "the FIFO is full")
			break
		}
	}
	f := os.NewFile(uintptr(fd), path)
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// hasOpen reports whether process pid has the file f has open (the same
// file: Linux's /proc/PID/fd).
func hasOpen(pid int, f *os.File) bool {
	want, err := f.Stat()
	if err != nil {
		return false
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if fi, err := os.Stat(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && os.SameFile(fi, want) {
			return true
		}
	}
	return false
}

// TestSIGHUPReopensTheLogFile: SIGHUP, which logrotate's postrotate sends,
// makes the server write its log to a new file at [Logging] LogFile once
// the old one was moved away, and does not end it. Go's default for the
// signal ended the process at once, without a log line or a clean stop.
func TestSIGHUPReopensTheLogFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	t.Parallel()
	logFile := filepath.Join(t.TempDir(), "connector.log")
	cmd := startLogging(t, logFile)
	rotated := logFile + ".1"
	require.NoError(t, os.Rename(logFile, rotated)) // logrotate's move
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	testwait.For(t, 10*time.Second, func() bool { return strings.Contains(fileText(logFile), `msg="SIGHUP received: log file reopened"`) },
		"the new log file to say it was reopened")
	require.NotContains(t, fileText(rotated), "log file reopened", "the moved file is no longer written")

	base := "http://" + between(fileText(rotated), "address=", " ")
	require.Contains(t, aciGet(t, base+"/action=GetStatus"), "SUCCESS", "the server still serves")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "a clean shutdown after the SIGHUP")
	require.Contains(t, fileText(logFile), "connector stopped", "the stop is logged in the new file")
}

// TestASignalDeliveredTwiceIsOneRequest: the same stop request delivered
// twice at once (timeout(1) sends its SIGTERM to the process, then to its
// process group; a wrapper script forwards the Ctrl-C the terminal sent
// to the whole group) is one request: the server shuts down cleanly,
// exit status 0. The second copy forced the exit (status 1, running
// actions re-run at the next start as after a crash): "timeout 600
// connector" never stopped cleanly. Start-up is held here (a full FIFO as
// the log file) so that the shutdown cannot be over before the copy
// comes; it is then let go.
func TestASignalDeliveredTwiceIsOneRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	t.Parallel()
	srv := startHeld(t)
	cmd, stderr := srv.cmd, &srv.stderr

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	testwait.For(t, 10*time.Second, func() bool { return strings.Contains(stderr.String(), "terminated received, shutting down") },
		"the SIGTERM to be answered")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM)) // the copy, at once
	testwait.For(t, 10*time.Second, func() bool {
		select {
		case <-srv.exited:
			return true
		default:
		}
		return strings.Contains(stderr.String(), "taken for the same request")
	}, "the copy to be answered")
	select {
	case <-srv.exited:
		t.Fatalf("the copy of the SIGTERM ended the server (%v)", srv.err)
	default:
	}

	// The log reader reads again: start-up goes on to its next step,
	// where it stops as asked, and the server exits cleanly.
	go func() { _, _ = io.Copy(io.Discard, srv.reader) }() // ends when the test closes reader
	select {
	case <-srv.exited:
		require.NoError(t, srv.err, "a clean shutdown")
	case <-time.After(60 * time.Second):
		t.Fatal("the server did not stop")
	}
}
