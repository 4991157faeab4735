package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// neverSettles is a site whose pages keep the network busy for ever, so
// that the Web connector's renders of them are in progress (their tabs
// open) for as long as the test wants.
func neverSettles(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ping" {
			return
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/p/"))
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<html><body>page %d <a href="/p/%d">next</a> <a href="/p/%d">other</a>
<script>setInterval(function(){ fetch("/ping?" + Math.random()); }, 50);</script></body></html>`, n, n+1, n+2)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// browserGroup returns the process group of the browser whose
// --user-data-dir is under dir (0: none runs), and the number of
// processes in that group and, of them, renderers.
func browserGroup(dir string) (pgid, procs, renderers int) {
	entries, _ := os.ReadDir("/proc")
	type proc struct {
		pgid int
		cmd  string
	}
	var all []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(cmd) == 0 {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Field 5 (pgrp) after the ")" that closes the command name.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 3 {
			continue
		}
		g, _ := strconv.Atoi(f[2])
		c := string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '}))
		all = append(all, proc{g, c})
		if pgid == 0 && g == pid && strings.Contains(c, "--user-data-dir="+dir) {
			pgid = g
		}
	}
	if pgid == 0 {
		// The leader may be gone while helpers linger: find them by the
		// folder too.
		for _, p := range all {
			if strings.Contains(p.cmd, dir) {
				procs++
			}
		}
		return 0, procs, 0
	}
	for _, p := range all {
		if p.pgid == pgid {
			procs++
			if strings.Contains(p.cmd, "--type=renderer") {
				renderers++
			}
		}
	}
	return pgid, procs, renderers
}

func webConfig(t *testing.T, site string) (cfgPath, browserDir string) {
	t.Helper()
	data := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "connector.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte(`[Connector]
Type=WEB
BrowserTabs=2
[Server]
DataDirectory=`+data+`
[Ingestion]
EnableIngestion=false
[FetchTasks]
Number=1
0=MyTask
[MyTask]
Url=`+site+`/p/0
Depth=-1
RenderDeadline=5m
`), 0o600))
	return cfg, filepath.Join(data, "browser")
}

func aciGet(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// submitRendering submits a Synchronize and waits until the browser has
// renderers at work; it returns the action's token.
func submitRendering(t *testing.T, base, browserDir string) string {
	t.Helper()
	tok := between(aciGet(t, base+"/action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask"), "<token>", "</token>")
	require.NotEmpty(t, tok)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, _, r := browserGroup(browserDir); r > 0 {
			return tok
		}
		require.True(t, time.Now().Before(deadline), "the browser never started rendering")
		time.Sleep(20 * time.Millisecond)
	}
}

func waitNoBrowser(t *testing.T, browserDir, after string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		g, n, _ := browserGroup(browserDir)
		if g == 0 && n == 0 {
			return
		}
		require.True(t, time.Now().Before(deadline), "browser processes left %s: group %d, %d processes", after, g, n)
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWebConnectorLeavesNoBrowser runs the real binary with [Connector]
// Type=WEB: GetVersion reports WEBCONNECTOR; Stop of a rendering action
// closes its tabs (no renderer left); a clean shutdown and a SIGKILL of
// the server each leave no browser process at all.
func TestWebConnectorLeavesNoBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary with a browser")
	}
	t.Parallel()
	bin := buildBinary(t)
	site := neverSettles(t)

	t.Run("stop and clean shutdown", func(t *testing.T) {
		cfg, dir := webConfig(t, site.URL)
		r := startBinary(t, bin, cfg)
		require.Contains(t, aciGet(t, r.base+"/action=GetVersion"), "WEBCONNECTOR")
		require.Contains(t, aciGet(t, r.base+"/action=GetStatus"), `fetchaction="synchronize"`, "GetStatus lists the descriptor's fetch actions")
		tok := submitRendering(t, r.base, dir)
		stopped := aciGet(t, r.base+"/action=QueueInfo&QueueName=fetch&QueueAction=Stop&Token="+url.QueryEscape(tok))
		require.Contains(t, stopped, "<status>Stopped</status>", stopped)
		// No other action renders: every tab of the stopped one is closed,
		// and an idle browser runs no renderer at all.
		deadline := time.Now().Add(30 * time.Second)
		for {
			g, _, renderers := browserGroup(dir)
			require.NotZero(t, g, "the browser stays, idle, after Stop")
			if renderers == 0 {
				break
			}
			if !time.Now().Before(deadline) {
				t.Fatalf("the stopped action's renderers are still there: %d, 30 s after Stop", renderers)
			}
			time.Sleep(20 * time.Millisecond) // polling interval
		}
		// A new action renders again, then a clean shutdown.
		submitRendering(t, r.base, dir)
		require.NoError(t, r.cmd.Process.Signal(syscall.SIGTERM))
		done := make(chan error, 1)
		go func() { done <- r.cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatal("the server did not stop on SIGTERM")
		}
		waitNoBrowser(t, dir, "after a clean shutdown")
	})

	t.Run("SIGKILL", func(t *testing.T) {
		cfg, dir := webConfig(t, site.URL)
		r := startBinary(t, bin, cfg)
		submitRendering(t, r.base, dir)
		g, n, _ := browserGroup(dir)
		require.NotZero(t, g)
		require.Greater(t, n, 1, "the browser and its helpers")
		require.NoError(t, r.cmd.Process.Signal(syscall.SIGKILL))
		_ = r.cmd.Wait()
		waitNoBrowser(t, dir, "after the server was killed with SIGKILL")
	})
}
