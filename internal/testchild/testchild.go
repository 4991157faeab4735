// Package testchild runs a test of the running test binary again, as a
// child process, for tests whose subject must be a process of its own: the
// owner of a server that is then killed, to see the server die with it.
package testchild

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
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
