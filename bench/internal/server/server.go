// Package server starts the processes the HTTP benchmarks load: the real
// connector binary (bin/connector) with a generated configuration, and
// the bare ceiling server (cmd/ceiling). Every process listens on
// 127.0.0.1, is started by this package and stopped by its PID, and is
// killed if the program that started it dies first.
package server

import (
	"bufio"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/connectorhq/connector/transport/aci"
)

// Proc is one started server process.
type Proc struct {
	cmd     *exec.Cmd
	URL     string // http://127.0.0.1:PORT
	Dir     string // data folder (connector only)
	done    chan struct{}
	waitErr error
	stderr  *tail
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM and waits up to limit for the process to end, then
// kills it.
func (p *Proc) Stop(limit time.Duration) error {
	if p.Exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(limit):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("server: pid %d did not stop within %v after SIGTERM; killed", p.Pid(), limit)
	}
}

// Kill sends SIGKILL (kill -9) and waits for the process to end.
func (p *Proc) Kill() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Stderr returns the last lines the process wrote to standard error.
func (p *Proc) Stderr() string { return p.stderr.String() }

// tail keeps the last 64 KiB written to it.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 64<<10 {
		t.b = append(t.b[:0], t.b[len(t.b)-32<<10:]...)
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.b) }

// startCmd starts cmd. The process gets SIGKILL when the program that
// started it dies (Pdeathsig), as internal/clustertest's nodes do: a
// benchmark program killed, or ended by a SIGINT or SIGTERM it does not
// catch, runs none of its deferred Stops, and its servers would run on,
// orphaned, on their ports and data folders.
func startCmd(cmd *exec.Cmd, errOut io.Writer) (*Proc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &Proc{cmd: cmd, done: make(chan struct{}), stderr: &tail{}}
	if errOut != nil {
		cmd.Stderr = io.MultiWriter(p.stderr, errOut)
	} else {
		cmd.Stderr = p.stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("server: start %s: %w", cmd.Path, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// StartCeiling starts the ceiling binary and waits for its address.
func StartCeiling(bin string) (*Proc, error) {
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	p, err := startCmd(cmd, nil)
	if err != nil {
		return nil, err
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l, ok := <-line:
		addr, found := strings.CutPrefix(l, "listening ")
		if !ok || !found {
			p.Kill()
			return nil, fmt.Errorf("server: ceiling printed %q, want \"listening ADDR\": %s", l, p.Stderr())
		}
		p.URL = "http://" + addr
		return p, nil
	case <-time.After(10 * time.Second):
		p.Kill()
		return nil, errors.New("server: the ceiling did not print its address within 10 s")
	}
}

// Connector describes one connector process.
type Connector struct {
	Bin      string // path of bin/connector
	Dir      string // data folder; the configuration file is written there too
	InMemory bool   // [Actions] UseInMemoryDatastore
	Threads  int    // MaximumThreads (default 4)
	// QueueSize is MaximumQueueSize (default 5,000,000 so that the
	// throughput runs never fill the queue).
	QueueSize int
	// Finished is MaximumFinishedActions (default 10000, the product's).
	Finished int
	// SlowURL is the start URL of task SLOW, a site that never answers:
	// a Synchronize of it runs until stopped. EMPTY is a task that is
	// never crawled, so Identifiers of it is the cheapest action the
	// connector completes.
	SlowURL string
	// CrawlURL, when set, is the start URL of task CRAWL (a Synchronize of
	// it crawls that site: the soak's datastore churn).
	CrawlURL string
	// SlowTasks adds tasks SLOW1…SLOWn, each as SLOW: Synchronize holds
	// its task exclusively, so n of them can run at once only on n tasks.
	SlowTasks int
	LogLevel  string    // default warn: per-action INFO lines are not what is measured
	Port      int       // 0: a free port picked now
	Stderr    io.Writer // where the connector's log also goes (nil: kept in memory only)
}

// Config returns the configuration file text for c (port included).
func (c Connector) Config(port int) string {
	def := func(v, d int) int {
		if v == 0 {
			return d
		}
		return v
	}
	level := c.LogLevel
	if level == "" {
		level = "warn"
	}
	slow := c.SlowURL
	if slow == "" {
		slow = "http://127.0.0.1:9/"
	}
	tasks, crawl := "Number=2\n0=EMPTY\n1=SLOW", ""
	if c.CrawlURL != "" {
		tasks = "Number=3\n0=EMPTY\n1=SLOW\n2=CRAWL"
		crawl = "\n[CRAWL]\nUrl=" + c.CrawlURL + "\nFollowRobotProtocol=false\n"
	}
	var slowTasks strings.Builder
	for i := 1; i <= c.SlowTasks; i++ {
		fmt.Fprintf(&slowTasks, "\n[SLOW%d]\nUrl=%s\nFollowRobotProtocol=false\nRequestTimeout=1h\n", i, slow)
	}
	if c.SlowTasks > 0 {
		// The [FetchTasks] list is not needed for a task named in
		// TaskSections, only for the scheduler.
		crawl += slowTasks.String()
	}
	return fmt.Sprintf(`// generated by the bench module (internal/server)
[Server]
Host=127.0.0.1
Port=%d
DataDirectory=%s
ShutdownTimeout=10s

[Actions]
MaximumThreads=%d
MaximumQueueSize=%d
MaximumFinishedActions=%d
UseInMemoryDatastore=%t
StopTimeout=5s

[Logging]
LogLevel=%s

[Ingestion]
EnableIngestion=false

[FetchTasks]
%s

[EMPTY]
Url=%s
FollowRobotProtocol=false

[SLOW]
Url=%s
FollowRobotProtocol=false
RequestTimeout=1h
%s`, port, c.Dir, def(c.Threads, 4), def(c.QueueSize, 5_000_000), def(c.Finished, 10000), c.InMemory, level, tasks, slow, slow, crawl)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("server: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// StartConnector writes the configuration, starts the connector and
// waits until it answers GetVersion (up to limit).
func StartConnector(c Connector, limit time.Duration) (*Proc, error) {
	if err := os.MkdirAll(c.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	port := c.Port
	if port == 0 {
		var err error
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	cfgPath := filepath.Join(c.Dir, "bench.cfg")
	if err := os.WriteFile(cfgPath, []byte(c.Config(port)), 0o600); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	p, err := Exec(c, cfgPath, port)
	if err != nil {
		return nil, err
	}
	if _, err := p.WaitReady(limit, "action=GetVersion"); err != nil {
		p.Kill()
		return nil, err
	}
	return p, nil
}

// Exec starts the connector on an existing configuration file without
// waiting for it.
func Exec(c Connector, cfgPath string, port int) (*Proc, error) {
	cmd := exec.Command(c.Bin, "-config", cfgPath)
	p, err := startCmd(cmd, c.Stderr)
	if err != nil {
		return nil, err
	}
	p.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	p.Dir = c.Dir
	return p, nil
}

// WaitReady polls query until it gets a SUCCESS reply and returns how
// long that took from now.
func (p *Proc) WaitReady(limit time.Duration, query string) (time.Duration, error) {
	start := time.Now()
	for {
		body, err := p.Get(query)
		if err == nil && strings.Contains(string(body), "<response>SUCCESS</response>") {
			return time.Since(start), nil
		}
		if p.Exited() {
			return 0, fmt.Errorf("server: %s exited: %v: %s", p.cmd.Path, p.waitErr, p.Stderr())
		}
		if time.Since(start) > limit {
			return 0, fmt.Errorf("server: %s not ready within %v (last error %v): %s", p.URL, limit, err, p.Stderr())
		}
		time.Sleep(time.Millisecond)
	}
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}

// Get sends GET /<query> and returns the body of a 200 reply.
func (p *Proc) Get(query string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/"+query, nil)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("server: GET /%s: HTTP %d", query, res.StatusCode)
	}
	return b, nil
}

// Control sends a QueueInfo request that must succeed (Pause, Resume).
func (p *Proc) Control(queueAction string) error {
	b, err := p.Get("action=QueueInfo&QueueName=fetch&QueueAction=" + queueAction)
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), "<response>SUCCESS</response>") {
		return fmt.Errorf("server: QueueAction=%s: %s", queueAction, b)
	}
	return nil
}

// SlowSite is a local web site whose every page never answers: a request
// waits until its client goes away or the site is closed. A Synchronize
// crawling it runs until it is stopped.
type SlowSite struct {
	URL string
	srv *http.Server
}

// StartSlowSite serves a SlowSite on 127.0.0.1.
func StartSlowSite() (*SlowSite, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &SlowSite{URL: "http://" + ln.Addr().String() + "/"}
	s.srv = &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}),
	}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the site and drops its connections.
func (s *SlowSite) Close() { _ = s.srv.Close() }

// QueueCounts are the counters of QueueInfo QueueStatus.
type QueueCounts struct {
	Pending, Running, Completed int64
}

// QueueStatus asks the connector for its fetch queue's counters. (The
// codec's client-side decoder, aci.DecodeReply, reads a reply's status and
// token, not a queue's counters: this one reply is read with encoding/xml.)
func (p *Proc) QueueStatus() (QueueCounts, error) {
	b, err := p.Get("action=QueueInfo&QueueName=fetch&QueueAction=QueueStatus")
	if err != nil {
		return QueueCounts{}, err
	}
	var r struct {
		Response string `xml:"response"`
		Queue    struct {
			Pending   int64 `xml:"pending"`
			Running   int64 `xml:"running"`
			Completed int64 `xml:"completed"`
		} `xml:"responsedata>queue"`
	}
	if err := xml.Unmarshal(b, &r); err != nil {
		return QueueCounts{}, fmt.Errorf("server: QueueStatus reply: %w", err)
	}
	if r.Response != "SUCCESS" {
		return QueueCounts{}, fmt.Errorf("server: QueueStatus: %s", b)
	}
	return QueueCounts{r.Queue.Pending, r.Queue.Running, r.Queue.Completed}, nil
}

// Submit sends one Fetch and returns its token.
func (p *Proc) Submit(params string) (string, error) {
	b, err := p.Get("action=Fetch&" + params)
	if err != nil {
		return "", err
	}
	var r aci.Decoded
	if err := aci.DecodeReply(b, &r); err != nil {
		return "", fmt.Errorf("server: Fetch reply: %w", err)
	}
	if !r.Success() || r.Token == "" {
		return "", fmt.Errorf("server: Fetch %s: %s", params, b)
	}
	return r.Token, nil
}

// Status returns the status text of the action with token.
func (p *Proc) Status(token string) (string, error) {
	b, err := p.Get("action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token=" + url.QueryEscape(token))
	if err != nil {
		return "", err
	}
	var r aci.Decoded
	if err := aci.DecodeReply(b, &r); err != nil {
		return "", fmt.Errorf("server: GetStatus reply: %w", err)
	}
	if !r.Success() {
		return "", fmt.Errorf("server: GetStatus: %s", b)
	}
	if r.State == aci.StateOther {
		return r.StateRaw, nil
	}
	return r.State.String(), nil
}
