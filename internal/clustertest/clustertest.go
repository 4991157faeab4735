// Package clustertest starts a whole connector cluster on loopback: a
// three-member etcd (etcdtest), PostgreSQL (pgtest) and N nodes, each the
// real connector binary with a configuration of its own, every process
// stopped by PID. `make cluster` (cmd/clusterdemo), the cluster crash and
// fault tests and the cluster benchmarks use it; the connector never does.
package clustertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/connectorhq/connector/internal/etcdtest"
	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/internal/testport"
)

// Options configure Start.
type Options struct {
	// Binary is the connector binary (bin/connector).
	Binary string
	// Nodes to start; default 3.
	Nodes int
	// Dir holds everything (etcd, PostgreSQL, each node's data and log);
	// default a new temporary folder, removed by Stop.
	Dir string
	// Name of the cluster; default "connector".
	Name string
	// LeaseTTL of the membership; default 3s.
	LeaseTTL time.Duration
	// Config is added to every node's configuration (sections other than
	// [Server] and [Cluster]: [Actions], [FetchTasks], tasks, ...).
	Config string
	// Output receives every process's log as it is written, each line
	// prefixed with its name (default: only the log files in Dir).
	Output io.Writer
	// Env is added to the nodes' environment.
	Env []string
}

// Cluster is a running cluster.
type Cluster struct {
	Dir   string
	Etcd  *etcdtest.Cluster
	PG    *pgtest.Server
	Nodes []*Node
	o     Options
	tmp   bool
	store string
}

// Node is one connector process.
type Node struct {
	Name string
	Port int    // ACI port
	Dir  string // its data folder
	Log  string // its log file
	cfg  string
	c    *Cluster

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	exit    error
	logFrom int64 // the log's size when the last start began
}

// Start starts etcd, PostgreSQL and the nodes, and waits until every node
// answers.
func Start(o Options) (_ *Cluster, err error) {
	if o.Nodes <= 0 {
		o.Nodes = 3
	}
	if o.Name == "" {
		o.Name = "connector"
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 3 * time.Second
	}
	if _, err := os.Stat(o.Binary); err != nil {
		return nil, fmt.Errorf("clustertest: the connector binary: %w (make build)", err)
	}
	if o.Binary, err = filepath.Abs(o.Binary); err != nil {
		return nil, fmt.Errorf("clustertest: %w", err)
	}
	c := &Cluster{Dir: o.Dir, o: o}
	if c.Dir == "" {
		if c.Dir, err = os.MkdirTemp("", "connector-cluster-"); err != nil {
			return nil, fmt.Errorf("clustertest: %w", err)
		}
		c.tmp = true
	}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	if c.Etcd, err = etcdtest.Start(etcdtest.Options{Dir: filepath.Join(c.Dir, "etcd"), Output: prefixed(o.Output, "etcd")}); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(c.Dir, "postgresql"), 0o755); err != nil {
		return nil, fmt.Errorf("clustertest: %w", err)
	}
	if c.PG, err = pgtest.Start(pgtest.Options{Dir: filepath.Join(c.Dir, "postgresql"), Output: prefixed(o.Output, "postgresql")}); err != nil {
		return nil, err
	}
	if _, err = c.PG.CreateDatabase("connector"); err != nil {
		return nil, err
	}
	c.store = fmt.Sprintf("postgres://%s@%s/connector?sslmode=disable", pgtest.User, c.PG.Addr())
	for i := 0; i < o.Nodes; i++ {
		if _, err := c.AddNode(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// StoreURL is the shared store's connection URL.
func (c *Cluster) StoreURL() string { return c.store }

// AddNode starts one more node.
func (c *Cluster) AddNode() (*Node, error) {
	i := len(c.Nodes) + 1
	n := &Node{Name: fmt.Sprintf("node%d", i), c: c}
	n.Dir = filepath.Join(c.Dir, n.Name)
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("clustertest: %w", err)
	}
	n.Log = filepath.Join(n.Dir, "connector.log")
	n.cfg = filepath.Join(n.Dir, "connector.cfg")
	c.Nodes = append(c.Nodes, n)
	if err := testport.Retry(func() error {
		port, err := pickPort()
		if err != nil {
			return err
		}
		n.Port = port
		if err := n.writeConfig(); err != nil {
			return err
		}
		return n.Start()
	}); err != nil {
		return nil, err
	}
	return n, nil
}

// pickPort is testport.Pick; a test replaces it.
var pickPort = testport.Pick

// writeConfig writes the node's configuration file.
func (n *Node) writeConfig() error {
	c := n.c
	cfg := fmt.Sprintf(`[Server]
Host=127.0.0.1
Port=%d
DataDirectory=%s

[Security]
AESKeyFile=%s

[Cluster]
Enabled=true
Name=%s
Etcd=%s
Store=%s
RemoteHost=127.0.0.1
LeaseTTL=%ds

%s
`, n.Port, n.Dir, filepath.Join(c.Dir, "aes.ky"), c.o.Name, strings.Join(c.Etcd.Endpoints(), ","), c.store, int(c.o.LeaseTTL/time.Second), c.o.Config)
	if err := os.WriteFile(n.cfg, []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("clustertest: %w", err)
	}
	return nil
}

// URL is the node's ACI address: http://127.0.0.1:port.
func (n *Node) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", n.Port) }

// Start starts the node's process (again) and waits until it answers.
func (n *Node) Start() error {
	logf, err := os.OpenFile(n.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("clustertest: %w", err)
	}
	var from int64 // what this start writes to the log begins here
	if st, err := logf.Stat(); err == nil {
		from = st.Size()
	}
	var out io.Writer = logf
	if p := prefixed(n.c.o.Output, n.Name); p != nil {
		out = io.MultiWriter(logf, p)
	}
	cmd := exec.Command(n.c.o.Binary, "-config", n.cfg)
	cmd.Dir = n.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), n.c.o.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("clustertest: start %s: %w", n.Name, err)
	}
	done := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.done, n.exit, n.logFrom = cmd, done, nil, from
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		n.mu.Lock()
		n.exit = err
		n.mu.Unlock()
		close(done)
	}()
	return n.WaitReady(60 * time.Second)
}

// WaitReady waits until the node answers GetVersion.
func (n *Node) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		n.mu.Lock()
		done := n.done
		n.mu.Unlock()
		select {
		case <-done:
			if testport.Taken(n.startLog()) {
				return fmt.Errorf("clustertest: %s exited at start: %w; its log: %s", n.Name, testport.ErrTaken, tail(n.Log))
			}
			return fmt.Errorf("clustertest: %s exited at start (%v); its log: %s", n.Name, n.ExitErr(), tail(n.Log))
		default:
		}
		resp, err := client.Get(n.URL() + "/action=GetVersion")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("clustertest: %s did not answer within %s; its log: %s", n.Name, timeout, tail(n.Log))
}

// startLog is what the node's last start wrote to its log.
func (n *Node) startLog() []byte {
	n.mu.Lock()
	from := n.logFrom
	n.mu.Unlock()
	b, _ := os.ReadFile(n.Log)
	return b[min(from, int64(len(b))):]
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// PID is the node's process id (0 when it is not running).
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.done == nil {
		return 0
	}
	select {
	case <-n.done:
		return 0
	default:
		return n.cmd.Process.Pid
	}
}

// Running reports whether the node's process runs.
func (n *Node) Running() bool { return n.PID() != 0 }

// ExitErr is how the process last ended.
func (n *Node) ExitErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.exit
}

// Signal sends sig to the node's process.
func (n *Node) Signal(sig syscall.Signal) error {
	pid := n.PID()
	if pid == 0 {
		return fmt.Errorf("clustertest: %s is not running", n.Name)
	}
	return syscall.Kill(pid, sig)
}

// Kill stops the node with SIGKILL and waits for it to be gone.
func (n *Node) Kill() error {
	if err := n.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	return n.wait(30 * time.Second)
}

// Stop stops the node cleanly (SIGTERM) and waits for it to exit.
func (n *Node) Stop(timeout time.Duration) error {
	if !n.Running() {
		return nil
	}
	if err := n.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if err := n.wait(timeout); err != nil {
		_ = n.Signal(syscall.SIGKILL)
		_ = n.wait(30 * time.Second)
		return err
	}
	return nil
}

func (n *Node) wait(timeout time.Duration) error {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("clustertest: %s did not exit within %s", n.Name, timeout)
	}
}

// Stop stops every node (SIGTERM, then SIGKILL), PostgreSQL and etcd, and
// removes a temporary Dir.
func (c *Cluster) Stop() error {
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = n.Signal(syscall.SIGCONT) // a paused node could not stop
			if err := n.Stop(30 * time.Second); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if c.PG != nil {
		if err := c.PG.Shutdown(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Etcd != nil {
		if err := c.Etcd.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.tmp {
		if err := os.RemoveAll(c.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// WaitMembers waits until every running node is in the cluster (asks
// etcd for the member keys).
func (c *Cluster) WaitMembers(n int, timeout time.Duration) error {
	cli, err := c.Etcd.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := cli.Get(ctx, "/connector/"+c.o.Name+"/", clientv3.WithPrefix())
		cancel()
		if err == nil && int(resp.Count) == n {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("clustertest: not %d members within %s", n, timeout)
}

// prefixed writes each line to w with "name | " before it (nil w: nil).
func prefixed(w io.Writer, name string) io.Writer {
	if w == nil {
		return nil
	}
	return &linePrefixer{w: w, prefix: []byte(name + " | ")}
}

type linePrefixer struct {
	mu     sync.Mutex
	w      io.Writer
	prefix []byte
	mid    bool
}

func (p *linePrefixer) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []byte
	for _, c := range b {
		if !p.mid {
			out = append(out, p.prefix...)
			p.mid = true
		}
		out = append(out, c)
		if c == '\n' {
			p.mid = false
		}
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// MemberID is the node's current member id, from its log (each start
// joins as a new member).
func (n *Node) MemberID() string {
	b, _ := os.ReadFile(n.Log)
	s := string(b)
	i := strings.LastIndex(s, `msg="joined the cluster"`)
	if i < 0 {
		return ""
	}
	s = s[i:]
	j := strings.Index(s, " member=")
	if j < 0 {
		return ""
	}
	s = s[j+len(" member="):]
	if k := strings.IndexAny(s, " \n"); k >= 0 {
		s = s[:k]
	}
	return s
}

// Joins counts the times the node joined the cluster (its starts, and
// its rejoins after being dropped).
func (n *Node) Joins() int {
	b, _ := os.ReadFile(n.Log)
	return strings.Count(string(b), `msg="joined the cluster"`)
}

// LogContains reports whether the node's log holds s.
func (n *Node) LogContains(s string) bool {
	b, _ := os.ReadFile(n.Log)
	return strings.Contains(string(b), s)
}
