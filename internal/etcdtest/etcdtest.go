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
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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
}

// StartT starts a cluster for the test and stops it when the test ends.
func StartT(t testing.TB, o Options) *Cluster {
	t.Helper()
	c, err := Start(o)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("etcdtest: %v", err)
		}
	})
	return c
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
	var initial []string
	for i := 0; i < o.Members; i++ {
		cp, err := freePort()
		if err != nil {
			return nil, err
		}
		pp, err := freePort()
		if err != nil {
			return nil, err
		}
		m := &Member{
			Name:      fmt.Sprintf("etcd%d", i+1),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", cp),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", pp),
		}
		m.dir = filepath.Join(c.Dir, m.Name)
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	c.initial = strings.Join(initial, ",")
	for _, m := range c.Members {
		if err := c.startMember(m, "new"); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if err := c.WaitReady(60 * time.Second); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
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
	m.cmd, m.done = cmd, done
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
		if _, err := c.leader(); err == nil {
			return nil
		} else {
			last = err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("etcdtest: cluster not ready within %s: %w", timeout, last)
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
	m.mu.Unlock()
	if cmd == nil {
		return
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

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("etcdtest: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
