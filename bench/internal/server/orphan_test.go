package server

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectorhq/connector/internal/testchild"
)

// The test binary plays the servers this package starts: with
// SERVER_TEST_ROLE=ceiling it is a ceiling that says where it listens and
// then serves until killed.
func TestMain(m *testing.M) {
	if os.Getenv("SERVER_TEST_ROLE") == "ceiling" {
		fmt.Println("listening 127.0.0.1:9")
		time.Sleep(time.Hour)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// alive reports whether pid runs (a zombie, killed and not yet reaped by
// a PID 1 that does not reap, does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// A server a benchmark program started dies with the program: killed
// (SIGKILL, or SIGTERM and SIGINT, which the programs do not catch) it
// used to leave the connector or the ceiling it had started running,
// orphaned, on its port and data folder, with nothing left to stop it
// (httpbench -mode submitonly killed with SIGTERM: its connector ran on).
func TestServersDieWithTheProgram(t *testing.T) {
	if os.Getenv("SERVER_TEST_ROLE") == "program" {
		os.Setenv("SERVER_TEST_ROLE", "ceiling")
		p, err := StartCeiling(os.Args[0])
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("started", p.Pid())
		time.Sleep(time.Hour)
		return
	}
	cmd, started := testchild.Start(t, "TestServersDieWithTheProgram", "started ", "SERVER_TEST_ROLE=program")
	pid, err := strconv.Atoi(started)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if !alive(pid) {
		t.Fatalf("server %d is not running", pid)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("server %d still runs 10 s after the program that started it ended", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
