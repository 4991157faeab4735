package mailtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectorhq/connector/internal/testchild"
)

// group returns the processes of process group pgid that are running (a
// zombie, killed and not yet reaped, is not).
func group(pgid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var pids []int
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:]) // state, ppid, pgrp, ...
		if len(f) < 3 || f[0] == "Z" || f[2] != strconv.Itoa(pgid) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		pids = append(pids, pid)
	}
	return pids
}

// A Dovecot started for a benchmark (StartDovecotProcess: mailbench) or a
// test dies with the process that started it, however that one ends: a
// mailbench killed (SIGKILL, or Ctrl-C, which it does not catch) or a test
// binary ended by -timeout never calls Stop, and its Dovecot ran on,
// orphaned, on its ports and its folder under /tmp, until someone found
// it by hand.
func TestDovecotDiesWithItsOwner(t *testing.T) {
	diesWithItsOwner(t, "TestDovecotDiesWithItsOwner", func() (int, string, error) {
		d, err := StartDovecotProcess(DovecotOptions{Users: map[string]string{"alice": "pw"}})
		if err != nil {
			return 0, "", err
		}
		return d.cmd.Process.Pid, d.Dir, nil
	})
}

// So does hoodiecrow-imap (Node.js), for the same reasons.
func TestHoodiecrowDiesWithItsOwner(t *testing.T) {
	diesWithItsOwner(t, "TestHoodiecrowDiesWithItsOwner", func() (int, string, error) {
		h, err := startHoodiecrow(HoodiecrowOptions{User: "alice", Password: "pw"})
		if err != nil {
			return 0, "", err
		}
		return h.cmd.Process.Pid, h.dir, nil
	})
}

// diesWithItsOwner runs test again as a child process (its owner), which
// starts a server with start and prints its PID and folder; then kills the
// owner with SIGKILL and waits for the server's process group to be gone.
func diesWithItsOwner(t *testing.T, test string, start func() (pid int, dir string, err error)) {
	if os.Getenv("MAILTEST_ROLE") == test {
		pid, dir, err := start()
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("started", pid, dir)
		time.Sleep(time.Hour)
		return
	}
	cmd, started := testchild.Start(t, test, "started ", "MAILTEST_ROLE="+test)
	p, dir, _ := strings.Cut(started, " ")
	pid, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-pid, syscall.SIGKILL) // its group, if the test failed
		_ = os.RemoveAll(dir)
	})
	if len(group(pid)) == 0 {
		t.Fatalf("server %d is not running", pid)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for {
		left := group(pid)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server's processes %v still run 15 s after the process that started it was killed", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
