package browser

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const helperEnv = "BROWSER_KILL_HELPER"

// runKillHelper is the test binary run as a child by
// TestNoOrphansAfterSIGKILL: it starts a browser, renders a page, prints
// "READY <browser pid> <marker> <user-data-dir>" and waits to be killed.
func runKillHelper() int {
	p, err := New(Config{
		TempDir:     os.Getenv(helperEnv),
		Tabs:        2,
		IdleTimeout: -1,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	// The main document comes from the bytes: nothing listens there.
	if _, err := p.Render(context.Background(), "http://127.0.0.1:9/", []byte("<p>hello</p>"), "text/html", RenderOptions{}); err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	p.mu.Lock()
	g := p.gen
	p.mu.Unlock()
	fmt.Printf("READY %d %s %s\n", g.pid, g.marker, g.dir)
	select {}
}

// countProcs counts the processes of one browser: by the marker in their
// environment, and by process group.
func countProcs(marker string, pgid int) int {
	return len(browserProcesses(pgid, marker))
}

// waitZero polls until the browser has no process left.
func waitZero(t *testing.T, marker string, pgid int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		n := countProcs(marker, pgid)
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d browser processes still alive %s after their owner went", n, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNoOrphansAfterSIGKILL(t *testing.T) {
	if _, err := FindExec(""); err != nil {
		t.Fatalf("this test needs headless Chromium: %v", err)
	}
	tmp := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+tmp)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	f := strings.Fields(line)
	require.Len(t, f, 4, "helper said %q", line)
	require.Equal(t, "READY", f[0], "helper said %q", line)
	pid, _ := strconv.Atoi(f[1])
	marker, dir := f[2], f[3]
	n := countProcs(marker, pid)
	require.GreaterOrEqual(t, n, 3, "a browser, its zygotes, a renderer...")
	require.DirExists(t, dir)

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	killed = true
	_ = cmd.Wait()
	// The parent-death signal kills the browser; its children follow when
	// their pipe to it closes.
	waitZero(t, marker, pid, 30*time.Second)

	// The dead owner's user-data-dir is removed by the next start in the
	// same temporary folder.
	p := newPool(t, Config{TempDir: tmp})
	render(t, p, "http://127.0.0.1:9/", "<p>x</p>", RenderOptions{})
	assert.NoDirExists(t, dir)
}

func TestCloseKillsEveryProcessAndRemovesTheProfile(t *testing.T) {
	tmp := t.TempDir()
	p := newPool(t, Config{TempDir: tmp})
	render(t, p, "http://127.0.0.1:9/", "<p>x</p>", RenderOptions{})
	p.mu.Lock()
	g := p.gen
	p.mu.Unlock()
	require.NotNil(t, g)
	require.GreaterOrEqual(t, len(p.Processes()), 3)
	require.DirExists(t, g.dir)
	require.NoError(t, p.Close())
	assert.Equal(t, 0, countProcs(g.marker, g.pid), "Close returns after the processes are gone")
	assert.NoDirExists(t, g.dir)
	ents, _ := os.ReadDir(tmp)
	assert.Empty(t, ents)
	_, err := p.Render(context.Background(), "http://127.0.0.1:9/", []byte("x"), "", RenderOptions{})
	require.ErrorIs(t, err, ErrClosed)
	require.NoError(t, p.Close(), "Close is idempotent")
}

func TestIdleTimeoutStopsTheBrowserAndUseRestartsIt(t *testing.T) {
	p := newPool(t, Config{IdleTimeout: 200 * time.Millisecond})
	render(t, p, "http://127.0.0.1:9/", "<p>x</p>", RenderOptions{})
	p.mu.Lock()
	g := p.gen
	p.mu.Unlock()
	require.NotNil(t, g)
	require.Eventually(t, func() bool {
		_, err := os.Stat(g.dir)
		return p.Stats().PID == 0 && countProcs(g.marker, g.pid) == 0 && os.IsNotExist(err)
	}, 30*time.Second, 20*time.Millisecond, "the idle browser stops and its profile goes")
	pg := render(t, p, "http://127.0.0.1:9/", "<p>again</p>", RenderOptions{})
	assert.Contains(t, pg.Text, "again")
	st := p.Stats()
	assert.Equal(t, 2, st.Starts)
	assert.Equal(t, 0, st.Restarts, "an idle stop is not a crash")
}

// stopPage never settles: a request that never ends.
func hangingSite(t *testing.T) (*site, *atomic.Int32) {
	s := newSite(t)
	var n atomic.Int32
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s.mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	return s, &n
}

const hangingPage = `<html><body><p>waiting</p><script>fetch("/hang")</script></body></html>`

func TestCancelClosesTheTabAtOnce(t *testing.T) {
	p := newPool(t, Config{Tabs: 1})
	s, n := hangingSite(t)
	// A first render starts the browser, so that the count below is the
	// tab's alone.
	render(t, p, s.URL+"/warm", "<p>warm</p>", RenderOptions{})
	p.mu.Lock()
	g := p.gen
	p.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.Render(ctx, s.URL+"/p", []byte(hangingPage), "text/html", RenderOptions{Deadline: time.Hour})
		done <- err
	}()
	require.Eventually(t, func() bool { return n.Load() == 1 }, time.Minute, 10*time.Millisecond)
	during := renderers(p)
	require.Positive(t, during)
	cancel()
	err := <-done
	require.ErrorIs(t, err, context.Canceled)
	// The tab is closed (not returned to the pool) and the browser lists
	// no page for it.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 0, p.Stats().TabsOpen)
		targets, err := chromedp.Targets(g.ctx)
		assert.NoError(c, err)
		pages := 0
		for _, tg := range targets {
			if tg.Type == "page" && tg.URL != "about:blank" {
				pages++
			}
		}
		assert.Equal(c, 0, pages)
		assert.Less(c, renderers(p), during, "the tab's renderer process is gone")
	}, 30*time.Second, 20*time.Millisecond)
	// The pool is fine afterwards.
	pg := render(t, p, s.URL+"/ok", "<p>fine</p>", RenderOptions{})
	assert.Contains(t, pg.Text, "fine")
}

func TestBrowserCrashRestartsAndRetriesOnce(t *testing.T) {
	p := newPool(t, Config{})
	wait := renderWhileHanging(t, p)
	p.mu.Lock()
	g := p.gen
	p.mu.Unlock()
	require.NoError(t, syscall.Kill(-g.pid, syscall.SIGKILL), "kill the browser's whole process group")
	pg, rerr := wait()
	require.NoError(t, rerr)
	assert.Equal(t, 2, pg.Attempts)
	assert.Contains(t, pg.Text, "waiting")
	st := p.Stats()
	assert.Equal(t, 1, st.Restarts)
	assert.Equal(t, uint64(1), st.Retried)
	assert.NotEqual(t, g.pid, st.PID)
	waitZero(t, g.marker, g.pid, 30*time.Second)
	assert.NoDirExists(t, g.dir, "the dead browser's profile is removed")
}

// rendererPIDs lists the browser's renderer processes.
func rendererPIDs(p *Pool) []int {
	var pids []int
	for _, pid := range p.Processes() {
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if strings.Contains(string(cmdline), "--type=renderer") {
			pids = append(pids, pid)
		}
	}
	return pids
}

func renderers(p *Pool) int { return len(rendererPIDs(p)) }

// renderWhileHanging starts a render of a page that never settles (3 s
// deadline) and returns once its page has made its hanging request; wait
// returns the render's result.
func renderWhileHanging(t *testing.T, p *Pool) (wait func() (*Page, error)) {
	s, n := hangingSite(t)
	done := make(chan struct{})
	var pg *Page
	var err error
	go func() {
		defer close(done)
		pg, err = p.Render(context.Background(), s.URL+"/p", []byte(hangingPage), "text/html", RenderOptions{Deadline: 3 * time.Second})
	}()
	require.Eventually(t, func() bool { return n.Load() >= 1 }, time.Minute, 10*time.Millisecond)
	return func() (*Page, error) { <-done; return pg, err }
}

func TestRendererCrashRetriesInANewTab(t *testing.T) {
	p := newPool(t, Config{})
	wait := renderWhileHanging(t, p)
	killed := 0
	for _, pid := range rendererPIDs(p) {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	require.Positive(t, killed)
	pg, rerr := wait()
	require.NoError(t, rerr)
	assert.Equal(t, 2, pg.Attempts)
	assert.Equal(t, 0, p.Stats().Restarts, "the browser itself survived")
}

func TestBrowserThatCannotStartReportsItsOwnMessage(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "broken-browser")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\necho 'starting...'\necho 'FATAL: cannot open the display :42 (test)' >&2\nexit 3\n"), 0o755))
	p := newPool(t, Config{Exec: fake})
	_, err := p.Render(context.Background(), "http://127.0.0.1:9/", []byte("x"), "", RenderOptions{})
	var se *StartError
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Stderr, "FATAL: cannot open the display :42 (test)")
	assert.Contains(t, err.Error(), "FATAL: cannot open the display :42 (test)")
	assert.Equal(t, 0, p.Stats().Starts)
	// No user-data-dir is left behind.
	ents, _ := os.ReadDir(p.cfg.TempDir)
	assert.Empty(t, ents)
}
