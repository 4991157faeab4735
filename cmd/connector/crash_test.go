package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCrashKeepsEveryAcknowledgedAction starts the real binary, submits
// from several goroutines at once, kills the process with SIGKILL at a
// random moment, restarts it on the same data, and checks that every token
// that got a reply is there, in a consistent state. Each round reuses the
// data of the previous ones. CONNECTOR_CRASH_ROUNDS sets the number of
// rounds: 2 here, 25 in make bench (bench/crash.sh).
func TestCrashKeepsEveryAcknowledgedAction(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	rounds := 2
	if v, err := strconv.Atoi(os.Getenv("CONNECTOR_CRASH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	bin := buildBinary(t)
	site := chainSite(t, 0, 2, 20*time.Millisecond)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "connector.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
[Server]
DataDirectory=%s
[Actions]
MaximumThreads=2
[Ingestion]
IngestDirectory=%s
[FetchTasks]
Number=3
0=Slow1
1=Slow2
2=Slow3
[Default]
Url=%s/p/0
Depth=-1
`, filepath.Join(dir, "data"), filepath.Join(dir, "out"), site.URL)), 0o600))

	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	acked := map[string]bool{}
	for round := 0; round < rounds; round++ {
		srv := startBinary(t, bin, cfg)
		// Every action acknowledged before is still there.
		for tok := range acked {
			checkToken(t, srv.base, tok)
		}
		killAt := time.Duration(50+rng.IntN(400)) * time.Millisecond
		got := storm(t, srv, killAt)
		t.Logf("round %d: killed after %v with %d acknowledged submissions", round, killAt, len(got))
		for _, tok := range got {
			acked[tok] = true
		}
	}
	srv := startBinary(t, bin, cfg)
	for tok := range acked {
		checkToken(t, srv.base, tok)
	}
	require.NotEmpty(t, acked)
	// A clean stop ends with exit status 0.
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, srv.cmd.Wait())
}

// storm submits from 8 goroutines until the process is killed, d after
// its first acknowledged submission. (Counted from the start, a kill at
// 51 ms and one at 255 ms on a loaded machine came before any reply, and
// the test had nothing to check.)
func storm(t *testing.T, srv *running, d time.Duration) []string {
	var mu sync.Mutex
	var acked []string
	first := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				task := fmt.Sprintf("Slow%d", 1+(g+i)%3)
				resp, err := client.Get(fmt.Sprintf("%s/action=Fetch&FetchAction=Synchronize&TaskSections=%s&Priority=%d", srv.base, task, i%4))
				if err != nil {
					return // the process is gone
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					return
				}
				if tok := between(string(body), "<token>", "</token>"); tok != "" {
					mu.Lock()
					acked = append(acked, tok)
					if len(acked) == 1 {
						close(first)
					}
					mu.Unlock()
				} else if !strings.Contains(string(body), "ERRORQUEUEFULL") {
					t.Errorf("submission refused: %s", body)
				}
			}
		}(g)
	}
	select {
	case <-first:
	case <-time.After(2 * time.Minute):
		t.Error("no submission acknowledged in 2 minutes")
	}
	time.Sleep(d) // the random moment of the crash is the point of the test
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGKILL))
	_ = srv.cmd.Wait()
	cancel()
	wg.Wait()
	client.CloseIdleConnections()
	return acked
}

func checkToken(t *testing.T, base, tok string) {
	t.Helper()
	resp, err := http.Get(base + "/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token=" + url.QueryEscape(tok))
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	s := string(body)
	require.Contains(t, s, "<response>SUCCESS</response>", "acknowledged token lost: %s\n%s", tok, s)
	require.Contains(t, s, "<token>"+tok+"</token>")
	status := between(s, "<status>", "</status>")
	require.Contains(t, []string{"Queued", "Processing", "Paused", "Finished", "Stopped", "Error"}, status, s)
	if status == "Error" {
		require.NotContains(t, s, "panic", s)
	}
}

// actionStatus is the status of the action of tok on the server at base.
func actionStatus(t *testing.T, base, tok string) string {
	t.Helper()
	return between(aciGet(t, base+"/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(tok)), "<status>", "</status>")
}

var buildOnce struct {
	sync.Once
	path string
	err  error
}

// TestMain removes the binary buildBinary built, and its folder, once the
// tests have run.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildOnce.path != "" {
		_ = os.RemoveAll(filepath.Dir(buildOnce.path))
	}
	os.Exit(code)
}

// buildBinary builds the connector once per test binary, into a temporary
// folder TestMain removes.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "connector-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "connector")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, ".").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildOnce.err)
	return buildOnce.path
}

// The binary the tests build (55 MB) goes in a temporary folder that is
// removed when the test binary ends: it was never removed, so every go
// test of this package that started the real binary (make test, and make
// bench's crash steps) left one in /tmp (102 of them, 5.6 GB, on the
// shared machine on 2026-12-07). The test runs itself as a child that
// builds the binary in a TMPDIR of its own, which must be empty once the
// child has ended.
func TestBuiltBinaryIsRemovedWhenTheTestsEnd(t *testing.T) {
	if os.Getenv("CONNECTOR_TEST_BUILD_CHILD") == "1" {
		fmt.Println("built", buildBinary(t))
		return
	}
	if testing.Short() {
		t.Skip("builds the binary in a child test process")
	}
	tmp := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBuiltBinaryIsRemovedWhenTheTestsEnd$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "CONNECTOR_TEST_BUILD_CHILD=1", "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "built "+tmp, "the child built the binary under its TMPDIR")
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	require.Empty(t, names, "left in TMPDIR after the tests ended")
}

type running struct {
	cmd  *exec.Cmd
	base string
}

var startedRE = regexp.MustCompile(`msg="connector started" address=(\S+)`)

// startBinary runs the binary on -port 0 and waits for its start line.
func startBinary(t *testing.T, bin, cfg string) *running {
	t.Helper()
	cmd := exec.Command(bin, "-config", cfg, "-port", "0")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
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
		return &running{cmd: cmd, base: "http://" + a}
	case <-time.After(30 * time.Second):
		t.Fatal("the connector did not start")
	}
	return nil
}

// chainSite is a site whose page /p/n takes delay to serve and links to
// the next links pages. With pages 0 it is endless, so Synchronize actions
// are still running when a crash comes; else it ends at /p/pages-1, so a
// Synchronize runs long enough to be killed in the middle, and ends.
func chainSite(t *testing.T, pages, links int, delay time.Duration) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/p/"))
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<html><head><title>page %d</title></head><body>`, n)
		for k := n + 1; k <= n+links; k++ {
			if pages == 0 || k < pages {
				fmt.Fprintf(w, `<a href="/p/%d">p%d</a> `, k, k)
			}
		}
		fmt.Fprint(w, `</body></html>`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	if j := strings.Index(s, b); j >= 0 {
		return s[:j]
	}
	return ""
}

// slowTaskConfig writes, in a new temporary folder, the configuration of a
// server whose one task, Slow, crawls a chain of slow pages until stopped
// (one thread, IDX output), with extra put after [Server]'s DataDirectory
// line (settings of [Server], or whole sections); it returns its path.
func slowTaskConfig(t *testing.T, extra string) string {
	t.Helper()
	site := chainSite(t, 0, 2, 20*time.Millisecond)
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
0=Slow
[Slow]
Url=%s/p/0
Depth=-1
`, filepath.Join(dir, "data"), extra, filepath.Join(dir, "out"), site.URL)), 0o600))
	return cfg
}
