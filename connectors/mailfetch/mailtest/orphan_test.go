package mailtest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

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
// starts a server with start; then kills the owner with SIGKILL and waits
// for the server's process group to be gone.
func diesWithItsOwner(t *testing.T, test string, start func() (pid int, dir string, err error)) {
	if os.Getenv("MAILTEST_ROLE") == test {
		testchild.Owner(start)
	}
	testchild.KilledOwner(t, test, "MAILTEST_ROLE="+test, syscall.SIGKILL, func(pid int) bool { return len(group(pid)) > 0 })
}
