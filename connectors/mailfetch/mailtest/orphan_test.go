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
	if os.Getenv("MAILTEST_ROLE") == "owner" {
		d, err := StartDovecotProcess(DovecotOptions{Users: map[string]string{"alice": "pw"}})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("started", d.cmd.Process.Pid, d.Dir)
		time.Sleep(time.Hour)
		return
	}
	cmd, started := testchild.Start(t, "TestDovecotDiesWithItsOwner", "started ", "MAILTEST_ROLE=owner")
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
		t.Fatalf("dovecot %d is not running", pid)
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
			t.Fatalf("dovecot's processes %v still run 15 s after the process that started it was killed", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
