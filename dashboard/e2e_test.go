package dashboard_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/httpfetch"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/server"
)

// The dashboard, end to end: the real server (with the HTTP connector)
// and Debian's headless Chromium, driven by chromedp.

const chromium = "/usr/bin/chromium-headless-shell"

var updateScreenshot = flag.Bool("update", false, "rewrite docs/dashboard.png from the end-to-end test")

// xssTask is a task section whose name is markup: the page must show it as
// text.
const xssTask = `<img src=x onerror="document.title='pwned'">`

// longTask is a task section whose name, 24 letters, looks like the start
// of a token.
const longTask = "NightlyIntranetCrawlTask"

// slowSite never ends: each page takes a moment and links to the next.
func slowSite(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/p/"))
		select {
		case <-time.After(50 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<html><body><a href="/p/%d">next</a></body></html>`, n+1)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func startServer(t *testing.T, extra string) *server.Server {
	t.Helper()
	return startServerActions(t, "", extra)
}

// startServerActions starts the server with more keys (actions, lines)
// in its [Actions] section.
func startServerActions(t *testing.T, actions, extra string) *server.Server {
	t.Helper()
	dir := t.TempDir()
	site := slowSite(t)
	text := fmt.Sprintf(`
[Server]
Port=0
DataDirectory=%s
[Actions]
MaximumThreads=1
%s
[Ingestion]
EnableIngestion=false
[FetchTasks]
0=MyTask
1=%s
2=%s
[MyTask]
Url=%s/p/0
Depth=-1
[%s]
Url=%s/p/0
Depth=-1
[%s]
Url=%s/p/0
Depth=-1
%s`, dir, actions, xssTask, longTask, site.URL, xssTask, site.URL, longTask, site.URL, extra)
	cfg, err := config.Parse("test.cfg", []byte(text), httpfetch.TaskKeys)
	require.NoError(t, err)
	require.NoError(t, httpfetch.Check(cfg))
	s, err := server.Start(cfg, server.Options{Port: -1, LogOutput: io.Discard, Repository: func(d server.Deps) (fetch.Repository, error) {
		return httpfetch.New(httpfetch.Options{Config: d.Config, Store: d.Store, Target: d.Target, Logger: d.Logger})
	}})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, s.Shutdown(ctx))
		http.DefaultClient.CloseIdleConnections()
	})
	return s
}

func aci(t *testing.T, base, q string) string {
	t.Helper()
	resp, err := http.Get(base + "/" + q)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
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

func statusOf(t *testing.T, base, tok string) string {
	return between(aci(t, base, "action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(tok)), "<status>", "</status>")
}

var browserMu sync.Mutex // one browser at a time: the machine has two cores

// browser starts headless Chromium; the test fails (never skips) when it
// is missing.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s is missing: make test installs chromium-headless-shell (%v)", chromium, err)
	}
	browserMu.Lock()
	t.Cleanup(browserMu.Unlock)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium), chromedp.Flag("headless", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true), chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-extensions", true),
		chromedp.Flag("window-size", "1400,900"), chromedp.UserDataDir(t.TempDir()),
	}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.Flag("no-sandbox", true))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc() // waits for the browser process to exit
	})
	return ctx
}

func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	require.NoError(t, err)
	return v
}

func polls(t *testing.T, ctx context.Context) int {
	n, _ := strconv.Atoi(run(t, ctx, chromedp.Evaluate[string](`document.body.dataset.polls || "0"`)))
	return n
}

// waitPolls waits until the page has refreshed n more times than at from.
func waitPolls(t *testing.T, ctx context.Context, from, n int) {
	t.Helper()
	run(t, ctx, chromedp.Poll[bool](fmt.Sprintf(`Number(document.body.dataset.polls || 0) >= %d`, from+n), chromedp.WithPollingTimeout(30*time.Second)))
}

// click clicks the element sel selects once it is there, in one step (the
// table is rebuilt at every refresh, so a node found in one step may be
// gone in the next).
func click(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	run(t, ctx, chromedp.PollFunction[bool](`(sel) => { const e = document.querySelector(sel); if (!e) return false; e.click(); return true; }`,
		chromedp.WithPollingArgs(sel), chromedp.WithPollingTimeout(30*time.Second)))
}

func rowSel(tok string) string { return `tr[data-token="` + tok + `"]` }

// TestDashboardEndToEnd: an admin's page shows a submitted action within
// two refreshes, its buttons stop, cancel, pause, resume, reprioritise and
// duplicate actions, a task name made of markup shows as text, and the
// page is saved as docs/dashboard.png with -update.
func TestDashboardEndToEnd(t *testing.T) {
	s := startServer(t, "")
	base := "http://" + s.Addr().String()
	ctx := browser(t)
	run(t, ctx, chromedp.Navigate(base+"/action=Admin"))
	waitPolls(t, ctx, 0, 1)
	require.Equal(t, "admin", run(t, ctx, chromedp.Evaluate[string](`document.getElementById("mode").textContent`)))

	// A submitted action appears within two refreshes.
	require.Contains(t, aci(t, base, "action=QueueInfo&QueueName=fetch&QueueAction=Pause"), "SUCCESS")
	tok := between(aci(t, base, "action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask"), "<token>", "</token>")
	require.NotEmpty(t, tok)
	from := polls(t, ctx)
	waitPolls(t, ctx, from, 2)
	require.True(t, run(t, ctx, chromedp.Evaluate[bool](`!!document.querySelector('`+rowSel(tok)+`')`)), "the action is not shown after two refreshes")
	require.Equal(t, "Queued", run(t, ctx, chromedp.TextContent(chromedp.CSS(rowSel(tok)+" td.status"))))

	// The task whose name is markup, queued too, shows as text.
	xss := between(aci(t, base, "action=Fetch&FetchAction=Synchronize&ConfigSection="+url.QueryEscape(xssTask)), "<token>", "</token>")
	require.NotEmpty(t, xss)
	run(t, ctx, chromedp.Poll[bool](`!!document.querySelector('`+rowSel(xss)+`')`, chromedp.WithPollingTimeout(30*time.Second)))
	require.Equal(t, strings.ToUpper(xssTask), run(t, ctx, chromedp.TextContent(chromedp.CSS(rowSel(xss)+" td.task"))))
	require.Zero(t, run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("table img").length`)), "no element was made from the task name")
	require.NotEqual(t, "pwned", run(t, ctx, chromedp.Evaluate[string](`document.title`)))

	// ChangePriority and Duplicate from the page.
	run(t, ctx, chromedp.Evaluate[bool](`(() => { const i = document.querySelector('`+rowSel(xss)+` input.prio'); i.value = "-3"; return true; })()`))
	click(t, ctx, rowSel(xss)+" button.act-priority")
	testwait.For(t, 20*time.Second, func() bool {
		return between(aci(t, base, "action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(xss)), "<priority>", "</priority>") == "-3"
	}, "the priority to change")
	// The page shows its own reply before the next click: a reply that
	// reaches it late would otherwise replace the Duplicate's message
	// (seen once under load).
	run(t, ctx, chromedp.Poll[bool](`document.getElementById("message").textContent === "Priority changed"`, chromedp.WithPollingTimeout(20*time.Second)))
	click(t, ctx, rowSel(xss)+" button.act-duplicate")
	run(t, ctx, chromedp.Poll[bool](`document.getElementById("message").textContent.startsWith("Duplicated: new token ")`, chromedp.WithPollingTimeout(20*time.Second)))
	dup := strings.TrimPrefix(run(t, ctx, chromedp.TextContent(chromedp.ID("message"))), "Duplicated: new token ")
	require.Equal(t, "Queued", statusOf(t, base, dup))

	// Cancel from the page.
	run(t, ctx, chromedp.Poll[bool](`!!document.querySelector('`+rowSel(dup)+` button.act-cancel')`, chromedp.WithPollingTimeout(30*time.Second)))
	click(t, ctx, rowSel(dup)+" button.act-cancel")
	testwait.For(t, 20*time.Second, func() bool { return statusOf(t, base, dup) == "Cancelled" }, "the Cancel from the page")

	// Resume the queue from the page; the first action runs.
	click(t, ctx, "button.queue-resume")
	testwait.For(t, 20*time.Second, func() bool { return statusOf(t, base, tok) == "Processing" }, "the action to run")
	run(t, ctx, chromedp.Poll[bool](`(document.querySelector('`+rowSel(tok)+` td.status') || {}).textContent === "Processing"`, chromedp.WithPollingTimeout(30*time.Second)))

	// Pause and Resume the running action from the page.
	click(t, ctx, rowSel(tok)+" button.act-pause")
	testwait.For(t, 20*time.Second, func() bool { return statusOf(t, base, tok) == "Paused" }, "the Pause from the page")
	run(t, ctx, chromedp.Poll[bool](`!!document.querySelector('`+rowSel(tok)+` button.act-resume')`, chromedp.WithPollingTimeout(30*time.Second)))
	click(t, ctx, rowSel(tok)+" button.act-resume")
	testwait.For(t, 20*time.Second, func() bool { return statusOf(t, base, tok) == "Processing" }, "the Resume from the page")

	// The screenshot: the running action with its progress, the queued one.
	run(t, ctx, chromedp.Poll[bool](`(document.querySelector('`+rowSel(tok)+` td.status') || {}).textContent === "Processing"`, chromedp.WithPollingTimeout(30*time.Second)))
	png := run(t, ctx, chromedp.FullScreenshot(100))
	require.NoError(t, os.WriteFile(filepath.Join(t.TempDir(), "dashboard.png"), png, 0o600))
	if *updateScreenshot {
		require.NoError(t, os.WriteFile(filepath.Join("..", "docs", "dashboard.png"), png, 0o644))
	}

	// Stop from the page.
	run(t, ctx, chromedp.Poll[bool](`!!document.querySelector('`+rowSel(tok)+` button.act-stop')`, chromedp.WithPollingTimeout(30*time.Second)))
	click(t, ctx, rowSel(tok)+" button.act-stop")
	testwait.For(t, 20*time.Second, func() bool { return statusOf(t, base, tok) == "Stopped" }, "the Stop from the page")
	run(t, ctx, chromedp.Poll[bool](`(document.querySelector('`+rowSel(tok)+` td.status') || {}).textContent === "Stopped"`, chromedp.WithPollingTimeout(30*time.Second)))

	// Search by token shows that action alone; the Stopped tab lists it.
	run(t, ctx, chromedp.Evaluate[bool](`(() => { const s = document.getElementById("search"); s.value = "`+tok+`"; s.dispatchEvent(new Event("input")); return true; })()`))
	run(t, ctx, chromedp.Poll[bool](`document.querySelectorAll("#actions tbody tr").length === 1 && !!document.querySelector('`+rowSel(tok)+`')`, chromedp.WithPollingTimeout(30*time.Second)))
	run(t, ctx, chromedp.Evaluate[bool](`(() => { const s = document.getElementById("search"); s.value = ""; s.dispatchEvent(new Event("input")); return true; })()`))
	click(t, ctx, `button.tab[data-state="Stopped"]`)
	run(t, ctx, chromedp.Poll[bool](`[...document.querySelectorAll("#actions tbody tr")].every(r => r.dataset.status === "Stopped") && !!document.querySelector('`+rowSel(tok)+`')`, chromedp.WithPollingTimeout(30*time.Second)))
}

// TestDashboardReadOnly: a client without the Admin role sees the queue and
// no buttons.
func TestDashboardReadOnly(t *testing.T) {
	s := startServer(t, "[AuthorizationRoles]\n0=Readers\n[Readers]\nStandardRoles=Query,ServiceStatus\nClients=localhost\n")
	base := "http://" + s.Addr().String()
	// An action to show: queued in process, since no client may over ACI.
	_, err := s.Queue().Pause(context.Background())
	require.NoError(t, err)
	_, err = s.Queue().Submit(context.Background(), &messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE", Tasks: []string{"MYTASK"},
		Params: messages.Params{{Name: "ConfigSection", Value: "MyTask"}}})
	require.NoError(t, err)
	ctx := browser(t)
	run(t, ctx, chromedp.Navigate(base+"/action=Admin"))
	waitPolls(t, ctx, 0, 2)
	require.Contains(t, run(t, ctx, chromedp.Evaluate[string](`document.getElementById("mode").textContent`)), "read-only")
	require.Equal(t, 1, run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("#actions tbody tr[data-status=Queued]").length`)), "the queue is shown")
	require.Zero(t, run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("button.queue-pause, button.queue-resume, td.actions-col button, button.bulk-cancel").length`)), "no buttons")
	require.Contains(t, aci(t, base, "action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask"), "ERRORPERMISSIONDENIED")
}

// TestCrossSiteBrowserRefused: pages on other local origins make the
// browser send queue controls to the ACI port (an image, a no-cors fetch,
// a form POST); each reaches the server and is refused, and the queue
// stays as it was.
func TestCrossSiteBrowserRefused(t *testing.T) {
	s := startServer(t, "")
	aciURL := "http://127.0.0.1:" + strconv.Itoa(s.Addr().(*net.TCPAddr).Port)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><html><body>
<img src="%[1]s/action=QueueInfo&amp;QueueName=fetch&amp;QueueAction=Pause">
<form id="f" method="POST" enctype="text/plain" action="%[1]s/action=QueueInfo&amp;QueueName=fetch&amp;QueueAction=Pause"><input name="x" value="y"></form>
<iframe name="sink"></iframe>
<script>
fetch("%[1]s/action=QueueInfo&QueueName=fetch&QueueAction=Pause", {mode: "no-cors"}).finally(() => {
  const f = document.getElementById("f"); f.target = "sink"; f.submit(); document.title = "sent";
});
</script></body></html>`, aciURL)
	}))
	defer evil.Close()
	_, evilPort, _ := net.SplitHostPort(strings.TrimPrefix(evil.URL, "http://"))
	ctx := browser(t)
	for _, origin := range []string{"http://localhost:" + evilPort, "http://127.0.0.1:" + evilPort} { // cross-site, then same-site
		run(t, ctx, chromedp.Navigate(origin+"/"))
		run(t, ctx, chromedp.Poll[bool](`document.title === "sent"`, chromedp.WithPollingTimeout(30*time.Second)))
	}
	var refused int
	testwait.For(t, 30*time.Second, func() bool {
		log := aci(t, aciURL, "action=GetRequestLog")
		refused = strings.Count(log, "QueueAction=Pause")
		return refused >= 6 // three ways, from two origins
	}, "the browser's requests to reach the server")
	log := aci(t, aciURL, "action=GetRequestLog")
	qs := aci(t, aciURL, "action=QueueInfo&QueueName=fetch&QueueAction=QueueStatus")
	require.Contains(t, qs, "<paused>false</paused>", "no cross-site request paused the queue")
	// Each was refused, by its Sec-Fetch-Site.
	for _, e := range strings.Split(log, "<logentry>")[1:] {
		if strings.Contains(e, "QueueAction=Pause") {
			require.Contains(t, e, "<autn:status>denied</autn:status>", e)
		}
	}
}

// rows counts the actions the page lists.
const rows = `document.querySelectorAll("#actions tbody tr[data-token]").length`

// queuedMany starts a server (actions: more keys of its [Actions]
// section) with a paused queue holding n queued actions of MyTask, and
// opens its page.
func queuedMany(t *testing.T, actions string, n int) (ctx context.Context, base string) {
	t.Helper()
	s := startServerActions(t, actions, "")
	base = "http://" + s.Addr().String()
	require.Contains(t, aci(t, base, "action=QueueInfo&QueueName=fetch&QueueAction=Pause"), "SUCCESS")
	for range n {
		require.Contains(t, aci(t, base, "action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask"), "<token>")
	}
	ctx = browser(t)
	run(t, ctx, chromedp.Navigate(base+"/action=Admin"))
	return ctx, base
}

// TestDashboardPagingAndBulkCancel: pages of the chosen size with Previous
// and Next, and the bulk cancel of every queued action (QueueAction=
// CancelQueued), after the page's confirmation.
func TestDashboardPagingAndBulkCancel(t *testing.T) {
	ctx, base := queuedMany(t, "", 12)
	waitPolls(t, ctx, 0, 1)
	run(t, ctx, chromedp.Evaluate[bool](`(() => { const p = document.getElementById("per-page"); p.value = "10"; p.dispatchEvent(new Event("change")); return true; })()`))
	run(t, ctx, chromedp.Poll[bool](rows+` === 10`, chromedp.WithPollingTimeout(30*time.Second)))
	click(t, ctx, "#next:not([disabled])")
	run(t, ctx, chromedp.Poll[bool](rows+` === 2 && document.getElementById("next").disabled`, chromedp.WithPollingTimeout(30*time.Second)))
	click(t, ctx, "#prev:not([disabled])")
	run(t, ctx, chromedp.Poll[bool](rows+` === 10`, chromedp.WithPollingTimeout(30*time.Second)))

	// The page asks before cancelling them all; the test answers yes.
	run(t, ctx, chromedp.Evaluate[bool](`(() => { window.confirm = () => true; return true; })()`))
	click(t, ctx, "button.bulk-cancel")
	run(t, ctx, chromedp.Poll[bool](`document.getElementById("message").textContent === "Queued actions cancelled: 12 cancelled"`, chromedp.WithPollingTimeout(30*time.Second)))
	qs := aci(t, base, "action=QueueInfo&QueueName=fetch&QueueAction=QueueStatus")
	require.Contains(t, qs, "<queued>0</queued>")
	require.Contains(t, qs, "<cancelled>12</cancelled>")
}

// TestServicePageOpensTheDashboard: the service port's page links to the
// dashboard on the ACI port, and following the link opens it. The ACI
// port refused it: a link from another port of the same host is a
// same-site navigation (Sec-Fetch-Site: same-site), refused as any other
// request from another site, so the link led to ERRORREQUESTREFUSED.
func TestServicePageOpensTheDashboard(t *testing.T) {
	s := startServer(t, "[Service]\nServicePort=0\n")
	svc := "http://" + s.ServiceAddr().String()
	ctx := browser(t)
	run(t, ctx, chromedp.Navigate(svc+"/"))
	click(t, ctx, "#dashboard")
	// The page goes away under the evaluation: an error is a try again.
	var page string
	testwait.For(t, 30*time.Second, func() bool {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.readyState === "complete" && location.href.endsWith("/action=Admin") ? `+
			`document.contentType + " " + (document.getElementById("actions") ? "the dashboard" : document.documentElement.innerText) : ""`))
		page = v
		return err == nil && v != ""
	}, "the dashboard link to be followed")
	require.Equal(t, "text/html the dashboard", page)
	waitPolls(t, ctx, 0, 1)
}

// queuedTwo starts a server with a paused queue holding two queued
// actions, and opens its page once both show their buttons.
func queuedTwo(t *testing.T) (ctx context.Context, base, a, b string) {
	t.Helper()
	s := startServer(t, "")
	base = "http://" + s.Addr().String()
	require.Contains(t, aci(t, base, "action=QueueInfo&QueueName=fetch&QueueAction=Pause"), "SUCCESS")
	a = between(aci(t, base, "action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask"), "<token>", "</token>")
	b = between(aci(t, base, "action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask"), "<token>", "</token>")
	require.NotEmpty(t, a)
	require.NotEmpty(t, b)
	ctx = browser(t)
	run(t, ctx, chromedp.Navigate(base+"/action=Admin"))
	run(t, ctx, chromedp.Poll[bool](`!!document.querySelector('`+rowSel(a)+` input.prio') && !!document.querySelector('`+rowSel(b)+` button.act-stop')`,
		chromedp.WithPollingTimeout(30*time.Second)))
	return ctx, base, a, b
}

// TestDashboardKeepsATypedPriority: a priority being typed stays through
// the page's refreshes, and is the one Set priority sends. Each refresh
// rebuilt the table, so the field went back to the action's priority
// every 2 seconds, under the user's cursor, and a click on Set priority
// after a refresh set the old priority again while saying "Priority
// changed".
func TestDashboardKeepsATypedPriority(t *testing.T) {
	ctx, base, a, _ := queuedTwo(t)
	run(t, ctx, chromedp.Evaluate[bool](`(() => { const i = document.querySelector('`+rowSel(a)+` input.prio'); i.focus(); i.value = "7"; `+
		`i.dispatchEvent(new Event("input", {bubbles: true})); return true; })()`))
	waitPolls(t, ctx, polls(t, ctx), 2)
	require.Equal(t, "7", run(t, ctx, chromedp.Evaluate[string](`document.querySelector('`+rowSel(a)+` input.prio').value`)), "the priority typed")
	// It stays when the field loses the focus, and is what the button sends.
	run(t, ctx, chromedp.Evaluate[bool](`(() => { document.activeElement.blur(); return true; })()`))
	waitPolls(t, ctx, polls(t, ctx), 2)
	require.Equal(t, "7", run(t, ctx, chromedp.Evaluate[string](`document.querySelector('`+rowSel(a)+` input.prio').value`)), "the priority typed, after the focus left")
	click(t, ctx, rowSel(a)+" button.act-priority")
	testwait.For(t, 20*time.Second, func() bool {
		return between(aci(t, base, "action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(a)), "<priority>", "</priority>") == "7"
	}, "the priority typed to be set")
	run(t, ctx, chromedp.Poll[bool](`document.getElementById("message").textContent === "Priority changed"`, chromedp.WithPollingTimeout(20*time.Second)))
}

// TestDashboardMessages: a control's reply that arrives after the reply of
// a later click does not replace its message (the page said "Cancelled"
// while the last thing done was a Stop), and a refresh's error goes once
// the server answers again (it stayed until the next click, long after
// the server was back).
func TestDashboardMessages(t *testing.T) {
	ctx, base, a, b := queuedTwo(t)
	// The reply to a Cancel is held back until after a Stop's has been shown.
	run(t, ctx, chromedp.Evaluate[bool](`(() => {
		const orig = window.fetch;
		let release;
		window.releaseHeld = new Promise((r) => { release = r; });
		window.release = () => release();
		window.fetch = (u, o) => String(u).includes("QueueAction=Cancel&") ? window.releaseHeld.then(() => orig(u, o)) : orig(u, o);
		return true; })()`))
	click(t, ctx, rowSel(a)+" button.act-cancel")
	click(t, ctx, rowSel(b)+" button.act-stop")
	run(t, ctx, chromedp.Poll[bool](`document.getElementById("message").textContent === "Stopped"`, chromedp.WithPollingTimeout(20*time.Second)))
	run(t, ctx, chromedp.Evaluate[bool](`(() => { window.release(); return true; })()`))
	testwait.For(t, 20*time.Second, func() bool { return statusOf(t, base, a) == "Cancelled" }, "the held Cancel to be done")
	waitPolls(t, ctx, polls(t, ctx), 2)
	require.Equal(t, "Stopped", run(t, ctx, chromedp.TextContent(chromedp.ID("message"))), "the later click's message stays")

	// A refresh fails (the server unreachable for a moment), then works again.
	run(t, ctx, chromedp.Evaluate[bool](`(() => {
		const orig = window.fetch;
		window.failing = true;
		window.fetch = (u, o) => window.failing && String(u).includes("QueueAction=QueueStatus") ? Promise.reject(new Error("server unreachable")) : orig(u, o);
		return true; })()`))
	run(t, ctx, chromedp.Poll[bool](`document.getElementById("message").textContent.includes("server unreachable")`, chromedp.WithPollingTimeout(20*time.Second)))
	run(t, ctx, chromedp.Evaluate[bool](`(() => { window.failing = false; return true; })()`))
	run(t, ctx, chromedp.Poll[bool](`document.getElementById("message").textContent === ""`, chromedp.WithPollingTimeout(20*time.Second)))
}

// TestDashboardSearchKeepsNext: a search by text filters the page shown,
// and Next still leads to the next page when the page the server gave was
// full: the action searched for may be there. Next went by the rows left
// after the filter, so a page with no match (or fewer matches than the
// page size) ended the paging, and an action on a later page could not
// be found.
func TestDashboardSearchKeepsNext(t *testing.T) {
	s := startServer(t, "")
	base := "http://" + s.Addr().String()
	require.Contains(t, aci(t, base, "action=QueueInfo&QueueName=fetch&QueueAction=Pause"), "SUCCESS")
	old := between(aci(t, base, "action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask"), "<token>", "</token>")
	require.NotEmpty(t, old)
	for range 11 { // newer: the first page, newest first, holds none of MyTask's
		require.Contains(t, aci(t, base, "action=Fetch&FetchAction=Synchronize&ConfigSection="+url.QueryEscape(xssTask)), "<token>")
	}
	ctx := browser(t)
	run(t, ctx, chromedp.Navigate(base+"/action=Admin"))
	waitPolls(t, ctx, 0, 1)
	run(t, ctx, chromedp.Evaluate[bool](`(() => { const p = document.getElementById("per-page"); p.value = "10"; p.dispatchEvent(new Event("change")); `+
		`const s = document.getElementById("search"); s.value = "mytask"; s.dispatchEvent(new Event("input")); return true; })()`))
	waitPolls(t, ctx, polls(t, ctx), 2)
	require.Zero(t, run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("#actions tbody tr[data-token]").length`)), "no match on the first page")
	require.False(t, run(t, ctx, chromedp.Evaluate[bool](`document.getElementById("next").disabled`)), "Next leads on: the first page was full")
	click(t, ctx, "#next:not([disabled])")
	run(t, ctx, chromedp.Poll[bool](`!!document.querySelector('`+rowSel(old)+`')`, chromedp.WithPollingTimeout(30*time.Second)))
	require.True(t, run(t, ctx, chromedp.Evaluate[bool](`document.getElementById("next").disabled`)), "the last page")
}

// TestDashboardSearchLongTaskName: a search for a task whose name is long
// (24 letters or more) filters the page by it, as for any other text. The
// page took any text of 24 or more base64 letters for a token, asked the
// server for the action of that token, and showed "unknown token" and no
// action at all.
func TestDashboardSearchLongTaskName(t *testing.T) {
	s := startServer(t, "")
	base := "http://" + s.Addr().String()
	require.Contains(t, aci(t, base, "action=QueueInfo&QueueName=fetch&QueueAction=Pause"), "SUCCESS")
	long := between(aci(t, base, "action=Fetch&FetchAction=Synchronize&ConfigSection="+longTask), "<token>", "</token>")
	other := between(aci(t, base, "action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask"), "<token>", "</token>")
	require.NotEmpty(t, long)
	require.NotEmpty(t, other)
	ctx := browser(t)
	run(t, ctx, chromedp.Navigate(base+"/action=Admin"))
	waitPolls(t, ctx, 0, 1)
	run(t, ctx, chromedp.Evaluate[bool](`(() => { const s = document.getElementById("search"); s.value = "`+longTask+`"; s.dispatchEvent(new Event("input")); return true; })()`))
	waitPolls(t, ctx, polls(t, ctx), 2)
	require.Empty(t, run(t, ctx, chromedp.TextContent(chromedp.ID("message"))), "no error")
	require.True(t, run(t, ctx, chromedp.Evaluate[bool](`!!document.querySelector('`+rowSel(long)+`')`)), "the long task's action is listed")
	require.False(t, run(t, ctx, chromedp.Evaluate[bool](`!!document.querySelector('`+rowSel(other)+`')`)), "MyTask's is filtered out")

	// A token still finds its action alone.
	run(t, ctx, chromedp.Evaluate[bool](`(() => { const s = document.getElementById("search"); s.value = "`+other+`"; s.dispatchEvent(new Event("input")); return true; })()`))
	run(t, ctx, chromedp.Poll[bool](`document.querySelectorAll("#actions tbody tr").length === 1 && !!document.querySelector('`+rowSel(other)+`')`, chromedp.WithPollingTimeout(30*time.Second)))
	require.Equal(t, "token", run(t, ctx, chromedp.TextContent(chromedp.ID("page-info"))))
}

// TestDashboardPagesUnderTheServersLimit: with [Actions] MaxListResults
// below the page size chosen, the page lists the actions in pages of the
// server's limit, with Next and Previous. GetStatus refused the page's
// MaxResults (ERRORPARAMINVALID naming the limit) at every refresh, so no
// action was listed until the user chose a smaller page, and none at all
// under a limit of 10, the smallest page offered.
func TestDashboardPagesUnderTheServersLimit(t *testing.T) {
	ctx, _ := queuedMany(t, "MaxListResults=5", 7)
	run(t, ctx, chromedp.Poll[bool](rows+` === 5`, chromedp.WithPollingTimeout(30*time.Second)))
	require.Empty(t, run(t, ctx, chromedp.TextContent(chromedp.ID("message"))), "no error")
	click(t, ctx, "#next:not([disabled])")
	run(t, ctx, chromedp.Poll[bool](rows+` === 2 && document.getElementById("next").disabled`, chromedp.WithPollingTimeout(30*time.Second)))
	require.Equal(t, "from 6", run(t, ctx, chromedp.TextContent(chromedp.ID("page-info")))[:6])
	click(t, ctx, "#prev:not([disabled])")
	run(t, ctx, chromedp.Poll[bool](rows+` === 5 && document.getElementById("prev").disabled`, chromedp.WithPollingTimeout(30*time.Second)))
	require.Empty(t, run(t, ctx, chromedp.TextContent(chromedp.ID("message"))), "no error")
}

// TestDashboardClickRefreshesDuringAPoll: a click's refresh is not lost
// when a refresh is under way: the row shows what the click did. The
// click's refresh was dropped while a poll was in flight, and that poll,
// read before the click, showed the old state until the next poll (2
// seconds; never, on a hidden tab).
func TestDashboardClickRefreshesDuringAPoll(t *testing.T) {
	ctx, base, a, _ := queuedTwo(t)
	// No timed refreshes (a hidden tab): only the ones the page asks for.
	// A listing's reply, read by the server at once, reaches the page
	// when the test says.
	run(t, ctx, chromedp.Evaluate[bool](`(() => {
		Object.defineProperty(document, "hidden", { get: () => true });
		const orig = window.fetch;
		let release;
		const held = new Promise((r) => { release = r; });
		window.release = () => { window.holdList = false; release(); };
		window.holdList = true;
		window.fetch = (u, o) => window.holdList && String(u).includes("QueueAction=GetStatus&") ?
			orig(u, o).then((r) => { window.listAnswered = true; return held.then(() => r); }) : orig(u, o);
		return true; })()`))
	run(t, ctx, chromedp.Poll[bool](`(document.getElementById("search").dispatchEvent(new Event("input")), window.listAnswered === true)`,
		chromedp.WithPollingTimeout(30*time.Second)))
	click(t, ctx, rowSel(a)+" button.act-cancel")
	run(t, ctx, chromedp.Poll[bool](`document.getElementById("message").textContent === "Cancelled"`, chromedp.WithPollingTimeout(20*time.Second)))
	require.Equal(t, "Cancelled", statusOf(t, base, a))
	run(t, ctx, chromedp.Evaluate[bool](`(() => { window.release(); return true; })()`))
	run(t, ctx, chromedp.Poll[bool](`(document.querySelector('`+rowSel(a)+` td.status') || {}).textContent === "Cancelled"`,
		chromedp.WithPollingTimeout(20*time.Second)))
}

// TestDashboardForgetsTheLimitAfterARestart: a page that learnt the
// server's limit on a listing goes back to the page size chosen once the
// server behind it restarts with a larger [Actions] MaxListResults. It
// kept pages of the old limit, and said they were the server's limit,
// until the page was reloaded. The restart is a proxy that goes from one
// server to another.
func TestDashboardForgetsTheLimitAfterARestart(t *testing.T) {
	queued := func(actions string, n int) string {
		s := startServerActions(t, actions, "")
		base := "http://" + s.Addr().String()
		require.Contains(t, aci(t, base, "action=QueueInfo&QueueName=fetch&QueueAction=Pause"), "SUCCESS")
		for range n {
			require.Contains(t, aci(t, base, "action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask"), "<token>")
		}
		return base
	}
	before := queued("MaxListResults=5", 7)
	var backend atomic.Pointer[url.URL]
	u, err := url.Parse(before)
	require.NoError(t, err)
	backend.Store(u)
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(backend.Load())
		r.Out.Host = r.In.Host
	}})
	t.Cleanup(proxy.Close)
	ctx := browser(t)
	run(t, ctx, chromedp.Navigate(proxy.URL+"/action=Admin"))
	run(t, ctx, chromedp.Poll[bool](rows+` === 5`, chromedp.WithPollingTimeout(30*time.Second)))
	require.Contains(t, run(t, ctx, chromedp.TextContent(chromedp.ID("page-info"))), "the server's limit")

	// The restarted server starts seconds after the first: the page
	// reads a start to a second either way (GetVersion's clock less its
	// uptime, both in whole seconds).
	testwait.For(t, 10*time.Second, func() bool {
		up, _ := strconv.Atoi(between(aci(t, before, "action=GetVersion"), "<autn:seconds>", "</autn:seconds>"))
		return up >= 4
	}, "the first server's uptime to reach 4 seconds")
	after, err := url.Parse(queued("", 12))
	require.NoError(t, err)
	backend.Store(after)
	run(t, ctx, chromedp.Poll[bool](rows+` === 12`, chromedp.WithPollingTimeout(30*time.Second)))
	require.Equal(t, "from 1", run(t, ctx, chromedp.TextContent(chromedp.ID("page-info"))))
	require.Empty(t, run(t, ctx, chromedp.TextContent(chromedp.ID("message"))), "no error")
}

// TestDashboardReadsTheRolesAgain: a page open while the server behind it
// restarts with other roles shows what the new roles allow: after a
// restart quicker than a refresh, within half a minute (the roles are read
// again every 15 refreshes); after one the page saw (a refresh failed), at
// the first refresh that works. The page read the roles once, when it was
// loaded: it kept saying "read-only (your roles do not include Admin)"
// and showed no buttons to a client the restarted server made an admin,
// and kept the buttons of one it no longer did, until it was reloaded; and
// a page loaded while the server was restarting stayed read-only for good.
func TestDashboardReadsTheRolesAgain(t *testing.T) {
	readOnly := startServer(t, "[AuthorizationRoles]\n0=Readers\n[Readers]\nStandardRoles=Query,ServiceStatus\nClients=localhost\n")
	admin := startServer(t, "")
	urlOf := func(s *server.Server) *url.URL {
		u, err := url.Parse("http://" + s.Addr().String())
		require.NoError(t, err)
		return u
	}
	var backend atomic.Pointer[url.URL]
	backend.Store(urlOf(readOnly))
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(backend.Load())
		r.Out.Host = r.In.Host
	}, ErrorLog: log.New(io.Discard, "", 0)})
	t.Cleanup(proxy.Close)
	mode := `document.getElementById("mode").textContent`
	ctx := browser(t)
	run(t, ctx, chromedp.Navigate(proxy.URL+"/action=Admin"))
	run(t, ctx, chromedp.Poll[bool](mode+`.startsWith("read-only (your roles")`, chromedp.WithPollingTimeout(30*time.Second)))

	// Restarted with the default roles, without a refresh seeing it.
	backend.Store(urlOf(admin))
	run(t, ctx, chromedp.Poll[bool](mode+` === "admin" && !!document.querySelector("button.queue-pause, button.queue-resume")`,
		chromedp.WithPollingTimeout(60*time.Second)))

	// Down for a moment (a refresh fails), then back with the first roles.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := &url.URL{Scheme: "http", Host: ln.Addr().String()}
	require.NoError(t, ln.Close())
	backend.Store(dead)
	run(t, ctx, chromedp.Poll[bool](`document.getElementById("message").className === "error"`, chromedp.WithPollingTimeout(30*time.Second)))
	backend.Store(urlOf(readOnly))
	from := polls(t, ctx)
	waitPolls(t, ctx, from, 1)
	require.Contains(t, run(t, ctx, chromedp.Evaluate[string](mode)), "read-only (your roles", "read again at the first refresh that works")
	require.Zero(t, run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("button.queue-pause, button.queue-resume").length`)), "no buttons")
}
