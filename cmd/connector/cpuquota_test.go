package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
)

// TestCPUQuotaBelowOneCoreMeansOneP: the real binary, moved into a cgroup
// v1 cpu group capped at 0.05 core after it started (as bench/clusterbench
// does with cluster nodes), sets GOMAXPROCS to 1 within a couple of
// seconds, and back to Go's default once it is moved out again. Needs root
// and the cgroup v1 cpu controller at /sys/fs/cgroup/cpu (this project's
// test machines: cgroup v2 there has no cpu controller); skipped with a
// message without them. internal/cpuquota's tests cover reading v2.
func TestCPUQuotaBelowOneCoreMeansOneP(t *testing.T) {
	const root = "/sys/fs/cgroup/cpu"
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a cgroup")
	}
	if _, err := os.Stat(filepath.Join(root, "cpu.cfs_quota_us")); err != nil {
		t.Skipf("no cgroup v1 cpu controller at %s: %v", root, err)
	}
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		t.Skip("GOMAXPROCS is set in the environment: the server does not follow the quota then")
	}
	group := filepath.Join(root, fmt.Sprintf("connector-test-%d", os.Getpid()))
	require.NoError(t, os.Mkdir(group, 0o755))
	t.Cleanup(func() { _ = os.Remove(group) })
	require.NoError(t, os.WriteFile(filepath.Join(group, "cpu.cfs_quota_us"), []byte("5000"), 0o644))

	dir := t.TempDir()
	cfg := filepath.Join(dir, "connector.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
[Server]
DataDirectory=%s
[Logging]
LogLevel=info
[Ingestion]
IngestDirectory=%s
[FetchTasks]
0=T
[T]
Url=http://127.0.0.1:1/
`, filepath.Join(dir, "data"), filepath.Join(dir, "out"))), 0o600))
	cmd := exec.Command(buildBinary(t), "-config", cfg, "-port", "0")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var mu sync.Mutex
	var logs strings.Builder
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	logHas := func(s string) bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logs.String(), s)
	}
	testwait.For(t, 60*time.Second, func() bool { return logHas(`msg="connector started"`) }, "the connector's start line")
	require.False(t, logHas("GOMAXPROCS"), "GOMAXPROCS changed without a quota")

	pid := []byte(strconv.Itoa(cmd.Process.Pid))
	require.NoError(t, os.WriteFile(filepath.Join(group, "cgroup.procs"), pid, 0o644))
	t.Cleanup(func() { _ = os.WriteFile(filepath.Join(root, "cgroup.procs"), pid, 0o644) })
	testwait.For(t, 30*time.Second, func() bool { return logHas(`CPU quota below one core: GOMAXPROCS 1" quota_cores=0.05`) },
		"the server to follow its 0.05-core quota")

	require.NoError(t, os.WriteFile(filepath.Join(root, "cgroup.procs"), pid, 0o644))
	testwait.For(t, 30*time.Second, func() bool { return logHas(`GOMAXPROCS back to the runtime's default`) },
		"the server to go back to Go's default out of the quota")
}
