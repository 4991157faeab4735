package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
)

var serviceRE = regexp.MustCompile(`msg="connector started" address=(\S+) .* service_address=(\S+)`)

// TestServiceStopIsAGracefulShutdown: Stop on the service port shuts the
// real binary down exactly as SIGTERM does: it exits 0, the running action
// ends as Stopped, and the queued actions are still there, queued, at the
// next start.
func TestServiceStopIsAGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	site := slowSite(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "connector.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
[Server]
DataDirectory=%s
[Service]
ServicePort=0
[Actions]
MaximumThreads=1
[Ingestion]
IngestDirectory=%s
[FetchTasks]
0=Slow
[Slow]
Url=%s/p/0
Depth=-1
`, filepath.Join(dir, "data"), filepath.Join(dir, "out"), site.URL)), 0o600))

	start := func() (cmd *exec.Cmd, base, service string) {
		cmd = exec.Command(bin, "-config", cfg, "-port", "0")
		stderr, err := cmd.StderrPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
		})
		addrs := make(chan [2]string, 1)
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				if m := serviceRE.FindStringSubmatch(sc.Text()); m != nil {
					addrs <- [2]string{m[1], m[2]}
				}
			}
		}()
		select {
		case a := <-addrs:
			return cmd, "http://" + a[0], "http://" + a[1]
		case <-time.After(30 * time.Second):
			t.Fatal("the connector did not start")
		}
		return
	}
	get := func(u string) string {
		resp, err := http.Get(u)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	status := func(base, tok string) string {
		return between(get(base+"/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(tok)), "<status>", "</status>")
	}

	cmd, base, service := start()
	running := between(get(base+"/action=Fetch&FetchAction=Synchronize&ConfigSection=Slow"), "<token>", "</token>")
	require.NotEmpty(t, running)
	testwait.For(t, 20*time.Second, func() bool { return status(base, running) == "Processing" }, "the first action to start")
	var queued []string
	for range 3 {
		tok := between(get(base+"/action=Fetch&FetchAction=Synchronize&ConfigSection=Slow"), "<token>", "</token>")
		require.NotEmpty(t, tok)
		require.Equal(t, "Queued", status(base, tok))
		queued = append(queued, tok)
	}

	require.Contains(t, get(service+"/action=Stop"), "<status>stopping</status>")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		require.NoError(t, err, "a Stop exits with status 0, like SIGTERM")
	case <-time.After(30 * time.Second):
		t.Fatal("the connector did not exit after Stop")
	}

	cmd, base, _ = start()
	require.Equal(t, "Stopped", status(base, running))
	for _, tok := range queued {
		require.Contains(t, []string{"Queued", "Processing"}, status(base, tok), "a queued action persists across Stop")
	}
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	require.NoError(t, cmd.Wait())
}
