// Package testchild runs a test of the running test binary again, as a
// child process, for tests whose subject must be a process of its own: the
// owner of a server that is then killed, to see the server die with it.
package testchild

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Start runs the test named test of this test binary again, with env
// added to its environment, and returns the child and what follows prefix
// on the first line it prints that starts with prefix. A line starting with
// "error " first, or the child's end, fails the test. The child is killed
// and reaped when the test ends (if it has not ended before).
func Start(t testing.TB, test, prefix string, env ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			return cmd, rest
		}
		if strings.HasPrefix(sc.Text(), "error ") {
			t.Fatalf("%s (child): %s", test, sc.Text())
		}
	}
	t.Fatalf("%s (child) ended without printing %q: %v", test, prefix, sc.Err())
	return nil, ""
}

// Owner is the child's side of KilledOwner: it starts the process (start
// returns its PID, and a folder it uses, or ""), says so, and waits to be
// killed. It never returns.
func Owner(start func() (pid int, dir string, err error)) {
	pid, dir, err := start()
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("started", pid, dir)
	time.Sleep(time.Hour)
	os.Exit(0)
}

// KilledOwner checks that a process dies with its owner: it runs test
// again as a child with env added (the owner, which calls Owner), sends the
// owner sig once the process it started runs, and fails the test unless
// that process has stopped running 15 s later. alive reports whether the
// process runs (Running, or a check of its whole process group). When the
// test ends, the process and its group are killed if they still run, and
// its folder is removed.
func KilledOwner(t *testing.T, test, env string, sig syscall.Signal, alive func(pid int) bool) {
	t.Helper()
	cmd, started := Start(t, test, "started ", env)
	p, dir, _ := strings.Cut(started, " ")
	pid, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			_ = syscall.Kill(-pid, syscall.SIGKILL) // its group, when it leads one
		}
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
	})
	if !alive(pid) {
		t.Fatalf("process %d is not running", pid)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs 15 s after its owner got %v", pid, sig)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Running reports whether process pid runs: a zombie (killed, and not yet
// reaped by a PID 1 that does not reap) does not.
func Running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// PlayServer, called first in a TestMain, makes the test binary play a
// server when the environment variable env is value: it prints "listening
// 127.0.0.1:9" (the line the bench programs wait for from the servers they
// start) and waits to be killed.
func PlayServer(env, value string) {
	if os.Getenv(env) == value {
		fmt.Println("listening 127.0.0.1:9")
		time.Sleep(time.Hour)
		os.Exit(0)
	}
}
