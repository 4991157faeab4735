package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
)

// TestRunsOutOfFileDescriptors starts the real binary with its open file
// limit lowered to 256 (soft and hard, by prlimit from util-linux), opens
// many more idle connections than that, and checks that the server keeps
// answering on a connection it already has, stays up, and serves new
// connections once the idle ones close (issue 9, item 2: at the limit it
// logged a permanent accept error and exited).
//
// With the default [Server] MaxConnections the limit comes from the
// descriptors and the extra connections wait; with MaxConnections set far
// above what the descriptors allow, accepting fails with EMFILE, and the
// server backs off and recovers.
//
// The same holds for the service port, which any client may connect to
// (rev19e: its listener had no limit, so 400 idle connections to it ran
// the process out of descriptors, fasthttp took the EMFILE for a broken
// listener, and the whole server shut down).
func TestRunsOutOfFileDescriptors(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	prlimit, err := exec.LookPath("prlimit")
	require.NoError(t, err, "prlimit (util-linux) is needed")
	bin := buildBinary(t)
	for _, c := range []struct {
		name, extra, logs string
		service           bool // the idle connections go to the service port
	}{
		{"default limit", "", "connection limit reached", false},
		{"limit above the descriptors", "MaxConnections=5000\n", "out of file descriptors", false},
		{"service port, default limit", "[Service]\nServicePort=0\n", `setting="[Service] MaxConnections"`, true},
		{"service port, limit above the descriptors", "[Service]\nServicePort=0\nMaxConnections=5000\n", "lower [Service] MaxConnections", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "connector.cfg")
			require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
[Server]
DataDirectory=%s
%s[Actions]
MaximumThreads=1
[Ingestion]
IngestDirectory=%s
[FetchTasks]
0=T
[T]
Url=http://127.0.0.1:1/
`, filepath.Join(dir, "data"), c.extra, filepath.Join(dir, "out"))), 0o600))
			srv := startLimited(t, prlimit, bin, cfg)
			addr := strings.TrimPrefix(srv.base, "http://")
			probe := "/action=GetVersion"
			if c.service {
				m := serviceRE.FindStringSubmatch(srv.log())
				require.NotNil(t, m, "the start line names the service port:\n%s", srv.log())
				addr, probe = m[2], "/action=GetStatus"
			}

			kept := dialACI(t, strings.TrimPrefix(srv.base, "http://"))
			defer kept.Close()
			kept.get(t, "/action=GetVersion")

			const idle = 400 // more than the 256 descriptors the server has
			var conns []net.Conn
			for i := 0; i < idle; i++ {
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				require.NoError(t, err, "connection %d (the server exited: %v)\n%s", i, srv.hasExited(), srv.log())
				conns = append(conns, c)
			}
			// Wait until the server has met the limit (it says so), or has
			// exited.
			testwait.For(t, 20*time.Second, func() bool { return srv.hasExited() || strings.Contains(srv.log(), c.logs) },
				"the server to log %q", c.logs)
			require.False(t, srv.hasExited(), "the server exited:\n%s", srv.log())
			// The connection it has is still served, and it is still up.
			kept.get(t, "/action=GetVersion")
			require.False(t, srv.hasExited(), "the server exited:\n%s", srv.log())
			require.NotContains(t, srv.log(), "Permanent error")

			for _, c := range conns {
				require.NoError(t, c.Close())
			}
			// New connections are served again.
			testwait.For(t, 30*time.Second, func() bool {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					return false
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", probe); err != nil {
					return false
				}
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			}, "a new connection to be served")
			kept.get(t, "/action=GetVersion")
			require.NotContains(t, srv.log(), "Permanent error")
		})
	}
}

type limited struct {
	cmd    *exec.Cmd
	base   string
	mu     sync.Mutex
	logs   strings.Builder
	exited chan struct{} // closed when the process has exited
}

func (l *limited) hasExited() bool {
	select {
	case <-l.exited:
		return true
	default:
		return false
	}
}

func (l *limited) log() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.logs.String()
}

// startLimited runs the binary under prlimit --nofile=256:256 (prlimit
// execs it: the PID is the server's) and waits for its start line.
func startLimited(t *testing.T, prlimit, bin, cfg string) *limited {
	t.Helper()
	cmd := exec.Command(prlimit, "--nofile=256:256", bin, "-config", cfg, "-port", "0")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	l := &limited{cmd: cmd, exited: make(chan struct{})}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-l.exited
	})
	addr := make(chan string, 1)
	go func() {
		defer func() {
			_ = cmd.Wait()
			close(l.exited)
		}()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			l.mu.Lock()
			l.logs.WriteString(sc.Text() + "\n")
			l.mu.Unlock()
			if m := startedRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case a := <-addr:
		l.base = "http://" + a
		require.Contains(t, l.log(), "open_file_limit=256")
		return l
	case <-time.After(30 * time.Second):
		t.Fatalf("the connector did not start:\n%s", l.log())
	}
	return nil
}

// aciConn is one keep-alive connection.
type aciConn struct {
	net.Conn
	r *bufio.Reader
}

func dialACI(t *testing.T, addr string) *aciConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	require.NoError(t, err)
	return &aciConn{Conn: c, r: bufio.NewReader(c)}
}

// get sends a request on the connection and requires an answer within 10 s.
func (c *aciConn) get(t *testing.T, path string) {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path)
	require.NoError(t, err)
	resp, err := http.ReadResponse(c.r, nil)
	require.NoError(t, err, "the server answers on a connection it already has")
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var b strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
	require.Contains(t, b.String(), "<response>SUCCESS</response>")
}
