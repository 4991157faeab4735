// Package etcdtest starts a private etcd cluster from Debian's etcd-server
// (/usr/bin/etcd) on loopback ports it picks, with each member's data in a
// folder of its own, and stops every member by PID. Tests and benchmarks of
// cluster mode use it, and so does `make cluster`; the connector itself
// never does.
//
// A cluster needing etcd fails, never skips, when it is missing: `make test`
// installs it.
package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connectorhq/connector/internal/testport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Binary is Debian's etcd server.
const Binary = "/usr/bin/etcd"

// Options configure Start.
type Options struct {
	// Members in the cluster; default 3.
	Members int
	// Dir holds every member's data and log; default a new temporary
	// folder, removed by Stop.
	Dir string
	// Output receives the members' logs as they are written.
	Output io.Writer
}

// Cluster is a running etcd cluster.
type Cluster struct {
	Dir     string
	Members []*Member
	tmp     bool
	out     io.Writer
	initial string
}

// Member is one etcd member.
type Member struct {
	Name      string
	ClientURL string // http://127.0.0.1:port
	PeerURL   string
	dir       string
	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{}
	want      bool // started, and not killed or stopped since
}

// StartT starts a cluster for the test and stops it when the test ends.
func StartT(t testing.TB, o Options) *Cluster {
	t.Helper()
	c, err := Start(o)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.logTails(t)
		}
		if err := c.Stop(); err != nil {
			t.Errorf("etcdtest: %v", err)
		}
	})
	return c
}

// logTails writes the end of every member's log to the test's output, so
// that a failure says what etcd said.
func (c *Cluster) logTails(t testing.TB) {
	for _, m := range c.Members {
		b, err := os.ReadFile(filepath.Join(m.dir, "etcd.log"))
		if err != nil {
			t.Logf("etcdtest: %s: %v", m.Name, err)
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		t.Logf("etcdtest: %s (running %v), last lines of its log:\n%s", m.Name, m.Running(), strings.Join(lines, "\n"))
	}
}

// Start starts the members and waits until the cluster answers.
func Start(o Options) (*Cluster, error) {
	if _, err := os.Stat(Binary); err != nil {
		return nil, fmt.Errorf("etcdtest: etcd is not installed (Debian package etcd-server): %w", err)
	}
	if o.Members <= 0 {
		o.Members = 3
	}
	c := &Cluster{Dir: o.Dir, out: o.Output}
	if c.Dir == "" {
		d, err := os.MkdirTemp("", "etcdtest-")
		if err != nil {
			return nil, fmt.Errorf("etcdtest: %w", err)
		}
		c.Dir, c.tmp = d, true
	}
	// A member that cannot bind its ports exits; pick new ones and start
	// again (a few times), rather than run with fewer members than asked.
	attempt := 0
	err := testport.Retry(func() error {
		attempt++
		err := c.start(o.Members, attempt)
		if err != nil {
			c.kill()
		}
		return err
	})
	if err != nil {
		if c.tmp {
			os.RemoveAll(c.Dir)
		}
		return nil, err
	}
	return c, nil
}

// pickPorts is testport.PickN; a test replaces it.
var pickPorts = testport.PickN

// start picks ports and starts members in a folder of the attempt's own,
// then waits until every one of them answers and they have a leader.
func (c *Cluster) start(members, attempt int) error {
	ports, err := pickPorts(2 * members)
	if err != nil {
		return fmt.Errorf("etcdtest: %w", err)
	}
	c.Members = nil
	var initial []string
	for i := 0; i < members; i++ {
		m := &Member{
			Name:      fmt.Sprintf("etcd%d", i+1),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
		}
		m.dir = filepath.Join(c.Dir, m.Name)
		if attempt > 1 {
			m.dir = filepath.Join(c.Dir, fmt.Sprintf("attempt%d", attempt), m.Name)
		}
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	c.initial = strings.Join(initial, ",")
	for _, m := range c.Members {
		if err := c.startMember(m, "new"); err != nil {
			return err
		}
	}
	return c.WaitReady(60 * time.Second)
}

func (c *Cluster) startMember(m *Member, state string) error {
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return fmt.Errorf("etcdtest: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(m.dir, "etcd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("etcdtest: %w", err)
	}
	var out io.Writer = logf
	if c.out != nil {
		out = io.MultiWriter(logf, c.out)
	}
	cmd := exec.Command(Binary, "--name", m.Name, "--data-dir", filepath.Join(m.dir, "data"),
		"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
		"--initial-cluster", c.initial, "--initial-cluster-state", state,
		"--initial-cluster-token", filepath.Base(c.Dir),
		// A queue's churn of member keys is small, but keep the history
		// bounded as a real deployment would.
		"--auto-compaction-mode", "revision", "--auto-compaction-retention", "10000")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("etcdtest: start %s: %w", m.Name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	m.mu.Lock()
	m.cmd, m.done, m.want = cmd, done, true
	m.mu.Unlock()
	return nil
}

// Endpoints returns every member's client URL.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.Members))
	for i, m := range c.Members {
		out[i] = m.ClientURL
	}
	return out
}

// Client returns a client of the cluster (closed by the caller).
func (c *Cluster) Client() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
}

// WaitReady waits until every running member answers and the cluster has
// a leader.
func (c *Cluster) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if err := c.exited(); err != nil {
			return err
		}
		if _, err := c.leader(); err == nil {
			// (A member that exited meanwhile was skipped as not
			// running: not ready.)
			return c.exited()
		} else {
			last = err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("etcdtest: cluster not ready within %s: %w", timeout, last)
}

// exited reports a member that was started, not stopped or killed since,
// and has exited: a cluster short of a member must not pass for ready.
func (c *Cluster) exited() error {
	for _, m := range c.Members {
		m.mu.Lock()
		want, done := m.want, m.done
		m.mu.Unlock()
		if !want || done == nil {
			continue
		}
		select {
		case <-done:
		default:
			continue
		}
		b, _ := os.ReadFile(filepath.Join(m.dir, "etcd.log"))
		log := strings.TrimSpace(string(b))
		if i := strings.LastIndexByte(log, '\n'); i >= 0 {
			log = log[i+1:]
		}
		if testport.Taken(b) {
			return fmt.Errorf("etcdtest: %s exited: %w: %s", m.Name, testport.ErrTaken, log)
		}
		return fmt.Errorf("etcdtest: %s exited; the last line of its log: %s", m.Name, log)
	}
	return nil
}

// Leader returns the index of the current leader.
func (c *Cluster) Leader() (int, error) { return c.leader() }

func (c *Cluster) leader() (int, error) {
	cli, err := c.Client()
	if err != nil {
		return -1, err
	}
	defer cli.Close()
	ids := map[uint64]int{}
	var leader uint64
	for i, m := range c.Members {
		if !m.Running() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := cli.Status(ctx, m.ClientURL)
		cancel()
		if err != nil {
			return -1, fmt.Errorf("%s: %w", m.Name, err)
		}
		ids[st.Header.MemberId] = i
		if st.Leader == 0 {
			return -1, fmt.Errorf("%s has no leader", m.Name)
		}
		if leader != 0 && st.Leader != leader {
			return -1, errors.New("members disagree on the leader")
		}
		leader = st.Leader
	}
	i, ok := ids[leader]
	if !ok {
		return -1, errors.New("the leader is not a running member")
	}
	return i, nil
}

// Running reports whether the member's process runs.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// PID returns the member's process id (0 when stopped).
func (m *Member) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || !m.runningLocked() {
		return 0
	}
	return m.cmd.Process.Pid
}

func (m *Member) runningLocked() bool {
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// Kill stops member i with SIGKILL and waits for it to exit.
func (c *Cluster) Kill(i int) { c.Members[i].signal(syscall.SIGKILL) }

// Restart starts a killed member again with its data; it rejoins the
// cluster.
func (c *Cluster) Restart(i int) error {
	m := c.Members[i]
	if m.Running() {
		return fmt.Errorf("etcdtest: %s is running", m.Name)
	}
	return c.startMember(m, "existing")
}

func (m *Member) signal(sig syscall.Signal) {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.want = false
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return // reaped: its process id may be another process's by now
	default:
	}
	_ = syscall.Kill(cmd.Process.Pid, sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// Stop stops every member (SIGTERM, by PID) and removes a temporary Dir.
func (c *Cluster) Stop() error {
	for _, m := range c.Members {
		m.signal(syscall.SIGTERM)
	}
	if c.tmp {
		return os.RemoveAll(c.Dir)
	}
	return nil
}

// kill stops every member at once, after a failed start.
func (c *Cluster) kill() {
	for _, m := range c.Members {
		m.signal(syscall.SIGKILL)
	}
}
