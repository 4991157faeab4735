package main

import (
	"bufio"
	"os/exec"
	"regexp"
	"strings"
	"sync"
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
	cfg := slowTaskConfig(t, "[Service]\nServicePort=0\n")

	var logs syncLines // the servers' standard error, shown when the test fails
	start := func() (exited chan error, base, service string) {
		cmd := exec.Command(bin, "-config", cfg, "-port", "0")
		stderr, err := cmd.StderrPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		addrs := make(chan [2]string, 1)
		exited = make(chan error, 1)
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				logs.add(sc.Text())
				if m := serviceRE.FindStringSubmatch(sc.Text()); m != nil {
					addrs <- [2]string{m[1], m[2]}
				}
			}
			exited <- cmd.Wait() // the one Wait, after the output is read
		}()
		t.Cleanup(func() {
			select {
			case err := <-exited:
				exited <- err
			default:
				_ = cmd.Process.Kill() // by PID: the process this test started
				<-exited
			}
		})
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("server output:\n%s", logs.String())
			}
		})
		select {
		case a := <-addrs:
			return exited, "http://" + a[0], "http://" + a[1]
		case <-time.After(60 * time.Second):
			t.Fatal("the connector did not start")
		}
		return
	}
	get := func(u string) string { return aciGet(t, u) }
	status := func(base, tok string) string { return actionStatus(t, base, tok) }

	exited, base, service := start()
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
	select {
	case err := <-exited:
		require.NoError(t, err, "a Stop exits with status 0, like SIGTERM")
		exited <- err
	case <-time.After(60 * time.Second):
		t.Fatal("the connector did not exit after Stop")
	}

	exited, base, _ = start()
	require.Equal(t, "Stopped", status(base, running))
	for _, tok := range queued {
		require.Contains(t, []string{"Queued", "Processing"}, status(base, tok), "a queued action persists across Stop")
	}
	require.Contains(t, get(service2(t, logs.String())+"/action=Stop"), "<status>stopping</status>")
	select {
	case err := <-exited:
		require.NoError(t, err)
		exited <- err
	case <-time.After(60 * time.Second):
		t.Fatal("the connector did not exit after the second Stop")
	}
}

// service2 is the service address of the last start line in logs.
func service2(t *testing.T, logs string) string {
	t.Helper()
	m := serviceRE.FindAllStringSubmatch(logs, -1)
	require.NotEmpty(t, m)
	return "http://" + m[len(m)-1][2]
}

// syncLines collects lines from several goroutines.
type syncLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *syncLines) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

func (l *syncLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
