package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectorhq/connector/bench/internal/procstat"
)

// running reports whether pid runs (not a zombie left unreaped).
func running(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	return err == nil && !strings.Contains(string(b), ") Z ")
}

// httpbench interrupted (Ctrl-C, or SIGTERM from a script's timeout) stops
// the servers it started and removes its temporary folder before it exits
// with an error: it used to die at once, leaving its folder in /tmp (the
// connector's data and store: hundreds of MB after a soak) and, before
// internal/server's Pdeathsig, its servers running.
func TestInterruptedRunCleansUp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds httpbench and the ceiling")
	}
	bin := t.TempDir()
	for _, p := range []string{"httpbench", "ceiling"} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, p), "../"+p).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", p, err, out)
		}
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		tmp := t.TempDir()
		cmd := exec.Command(filepath.Join(bin, "httpbench"), "-mode", "load", "-target", "ceiling",
			"-ceiling", filepath.Join(bin, "ceiling"), "-dur", "1m")
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Once its ceiling runs (and its temporary folder exists), it is
		// in the middle of a 1-minute load.
		var ceiling []int
		deadline := time.Now().Add(30 * time.Second)
		for len(ceiling) == 0 {
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("no ceiling started: %s", stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
			for _, pid := range procstat.Children(cmd.Process.Pid) {
				if running(pid) {
					ceiling = append(ceiling, pid)
				}
			}
		}
		// No pause: the interrupt is honoured from the ceiling's start on,
		// whatever phase the run is in.
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("%v: httpbench still runs 30 s later", sig)
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("%v: httpbench ended with %v, want exit status 1 (an interrupted run is no result)", sig, err)
		}
		if stdout.Len() > 0 {
			t.Errorf("%v: an interrupted run printed a result: %s", sig, stdout.String())
		}
		if !strings.Contains(stderr.String(), "interrupted") {
			t.Errorf("%v: stderr does not say it was interrupted: %s", sig, stderr.String())
		}
		left, _ := os.ReadDir(tmp)
		var names []string
		for _, e := range left {
			names = append(names, e.Name())
		}
		if len(names) > 0 {
			t.Errorf("%v: left in TMPDIR: %v", sig, names)
		}
		for _, pid := range ceiling {
			if running(pid) {
				t.Errorf("%v: its ceiling (pid %d) still runs", sig, pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}
