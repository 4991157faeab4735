package webfetch

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/crawl/browser"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testlog"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/secret"
)

const password = "Pa55-w0rd-never-shown"

// loginSite is a site behind a form login: the login page is built by a
// script; the session cookie it sets is needed for every page and for
// the data the pages' scripts fetch.
func loginSite(t testing.TB) *site {
	s := newSite(t)
	s.html("/login", `<html><body><div id="f"></div><script>
document.getElementById("f").innerHTML = '<form method="post" action="/session"><input name="username"><input type="password" name="pw"><button id="go" type="submit">Log in</button></form>';
</script></body></html>`)
	s.handle("/session", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.FormValue("username") != "crawler" || r.FormValue("pw") != password {
			http.Redirect(w, r, "/login?failed=1", http.StatusSeeOther)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: "valid-session", Path: "/", HttpOnly: true})
		http.Redirect(w, r, "/home", http.StatusSeeOther)
	})
	authed := func(r *http.Request) bool {
		c, err := r.Cookie("sid")
		return err == nil && c.Value == "valid-session"
	}
	private := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !authed(r) {
				http.Redirect(w, r, "/login", http.StatusFound)
				return
			}
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte(body))
		}
	}
	page := func(title, next string) string {
		return `<html><body><div id="logout">logged in</div><div id="app"></div><script>
fetch("/secret.json").then(function(r){return r.json()}).then(function(d){
  document.title = "` + title + `";
  var a = document.createElement("a"); a.href = "` + next + `"; a.textContent = "next"; document.body.appendChild(a);
  document.getElementById("app").textContent = d.text;
});
</script></body></html>`
	}
	s.handle("/home", private(page("Home", "/private/one")))
	s.handle("/private/one", private(page("One", "/private/two")))
	s.handle("/private/two", private(page("Two", "/home")))
	s.handle("/secret.json", func(w http.ResponseWriter, r *http.Request) {
		if !authed(r) {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte(`{"text":"members-only text"}`))
	})
	return s
}

// TestFormLogin: a task with a form login crawls the pages behind it, its
// pages' scripts fetching with the session too; a wrong password ends
// the action as Error naming the task; the password is in no log line,
// error, reply or redacted parameter list.
func TestFormLogin(t *testing.T) {
	t.Parallel()
	s := loginSite(t)
	var logs testlog.Buffer
	loginKeys := []string{"LoginUrl=" + s.URL + "/login", "LoginUsername=crawler", "LoginSubmit=#go", "LoginSuccessSelector=#logout"}
	good := taskConfig(s.URL+"/home", append(loginKeys, "LoginPassword="+password)...)
	bad := "[Wrong]\nUrl=" + s.URL + "/home\n" + strings.Join(append(loginKeys, "LoginPassword=not-"+password, "RenderDeadline=10s"), "\n") + "\n"
	b := setup(t, good+bad, setupOpts{logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})

	job := b.sync(t, "ConfigSection", "MyTask")
	assert.Equal(t, cnt{Seen: 3, Added: 3}, countsOf(job, "MYTASK"))
	for _, p := range []string{"/home", "/private/one", "/private/two"} {
		d := b.target.doc(s.URL + p)
		require.NotNil(t, d, p)
		assert.Contains(t, d.Content, "members-only text", "the page's own fetch carried the session")
	}

	_, _, err := b.run(t, fetch.ActionSynchronize, params("ConfigSection", "Wrong"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "task WRONG")
	assert.Contains(t, err.Error(), "login")
	assert.Contains(t, err.Error(), "#logout", "it says which check failed")
	assert.Zero(t, len(b.target.refs())-3, "nothing more delivered")

	// A request cannot set a login setting, and its value is not quoted.
	_, verr := b.repo.Validate(fetch.ActionSynchronize, params("ConfigSection", "MyTask", "LoginPassword", "guess-"+password))
	var pe *messages.ParamError
	require.ErrorAs(t, verr, &pe)
	assert.NotContains(t, verr.Error(), password)
	red := b.repo.Redact(params("LoginPassword", password, "[MyTask]LoginPassword", password))
	for _, p := range red {
		assert.Equal(t, secret.Redacted, p.GetValue())
	}
	assert.NotContains(t, logs.String(), password)
	assert.NotContains(t, err.Error(), password)
	assert.Contains(t, logs.String(), "logged in")
}

// TestClipping: with CSSCLIPPING the document's content is what the
// selectors keep, and incremental synchronisation compares that: a
// change outside the clipped part leaves the page unchanged, a change
// inside updates it. Links come from the whole page. READABILITY keeps
// the article.
func TestClipping(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	var mu sync.Mutex
	sidebar, story := "sidebar 1", "the story, first version"
	s.json("/data.json", func() string {
		mu.Lock()
		defer mu.Unlock()
		return `{"sidebar":"` + sidebar + `","story":"` + story + `"}`
	})
	s.html("/", `<html><head><title>Clip</title></head><body><nav><a href="/other">Other</a></nav><main></main><script>
fetch("/data.json").then(function(r){return r.json()}).then(function(d){
  document.querySelector("main").innerHTML = '<article><h1>Story</h1><p>' + d.story + '</p><div class="ad">BUY NOW</div></article><aside>' + d.sidebar + '</aside>';
});
</script></body></html>`)
	s.html("/other", `<html><body><main><article><p>other page</p></article></main></body></html>`)
	b := setup(t, taskConfig(s.URL+"/", "ClippingMode=CSSCLIPPING", "ClipPageUsingCssSelect=article", "ClipPageUsingCssUnselect=.ad"))
	job := b.sync(t)
	assert.Equal(t, cnt{Seen: 2, Added: 2}, countsOf(job, "MYTASK"), "the link in <nav> was followed")
	d := b.target.doc(s.URL + "/")
	assert.Contains(t, d.Content, "the story, first version")
	assert.NotContains(t, d.Content, "BUY NOW")
	assert.NotContains(t, d.Content, "sidebar")
	assert.Equal(t, "CSSCLIPPING", field(d, FieldClippingMode))

	mu.Lock()
	sidebar = "sidebar 2"
	mu.Unlock()
	job = b.sync(t)
	assert.Equal(t, cnt{Seen: 2, Unchanged: 2}, countsOf(job, "MYTASK"), "a change outside the clipped content")

	mu.Lock()
	story = "the story, second version"
	mu.Unlock()
	job = b.sync(t)
	assert.Equal(t, cnt{Seen: 2, Updated: 1, Unchanged: 1}, countsOf(job, "MYTASK"))
	assert.Contains(t, b.target.doc(s.URL+"/").Content, "second version")

	// READABILITY, on a page whose article is long enough to be found.
	long := strings.Repeat("A long paragraph of the article, written by the script so that only a browser sees it, with enough words to count as content. ", 6)
	r := newSite(t)
	r.html("/", `<html><head><title>Read</title></head><body><div id="root"></div><script>
document.getElementById("root").innerHTML = '<nav><a href="/a">Home</a> <a href="/b">Menu</a></nav><article><h1>Title</h1><p>`+long+`</p><p>`+long+`</p></article><footer>Copyright footer</footer>';
</script></body></html>`)
	rb := setup(t, taskConfig(r.URL+"/", "Depth=0", "ClippingMode=READABILITY"))
	rb.sync(t)
	rd := rb.target.doc(r.URL + "/")
	require.NotNil(t, rd)
	assert.Contains(t, rd.Content, "A long paragraph of the article")
	assert.NotContains(t, rd.Content, "Copyright footer")
	assert.Equal(t, "READABILITY", field(rd, FieldClippingMode))
}

// TestClippingThatMatchesNothingIsSaidSo: with CSSCLIPPING a page on
// which ClipPageUsingCssSelect matches no element (a selector misspelt, a
// site redesigned, a page without the article the selector names) was
// delivered with empty content without a word: the index filled with
// empty documents and nothing told the administrator why. The page is
// still delivered (its title, its links followed), and a warning names
// it and the selector; a page it matches says nothing.
func TestClippingThatMatchesNothingIsSaidSo(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.html("/", `<html><head><title>Index</title></head><body><main><p>no article here</p><a href="/story">story</a></main></body></html>`)
	s.html("/story", `<html><head><title>Story</title></head><body><article><p>the story</p></article></body></html>`)
	var logs testlog.Buffer
	b := setup(t, taskConfig(s.URL+"/", "ClippingMode=CSSCLIPPING", "ClipPageUsingCssSelect=article"),
		setupOpts{logger: slog.New(slog.NewTextHandler(&logs, nil))})
	job := b.sync(t)
	assert.Equal(t, cnt{Seen: 2, Added: 2}, countsOf(job, "MYTASK"), "both delivered, the link followed")
	d := b.target.doc(s.URL + "/")
	require.NotNil(t, d)
	assert.Empty(t, strings.TrimSpace(d.Content))
	assert.Contains(t, b.target.doc(s.URL+"/story").Content, "the story")
	var warned []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "ClipPageUsingCssSelect") {
			warned = append(warned, l)
		}
	}
	require.Len(t, warned, 1, "one warning, of the page it matches nothing on: %s", logs.String())
	assert.Contains(t, warned[0], "url="+s.URL+"/ ")
	assert.Contains(t, warned[0], "select=article")
}

// TestWaiting: RenderWaitSelector reads a page as soon as the selector
// matches (text written late is there); a page that never settles is
// read at RenderDeadline, marked RENDER_SETTLED=false, and the crawl goes
// on to the other pages.
func TestWaiting(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.html("/", `<html><body><p>start</p><a href="/busy">busy</a><a href="/quiet">quiet</a><script>
setTimeout(function(){ var d = document.createElement("div"); d.id = "ready"; d.textContent = "late text"; document.body.appendChild(d); }, 700);
</script></body></html>`)
	// /busy keeps the network busy for ever: a request every 100 ms.
	s.html("/busy", `<html><body><p>busy page</p><script>setInterval(function(){ fetch("/ping?" + Math.random()); }, 100);</script></body></html>`)
	s.handle("/ping", func(w http.ResponseWriter, r *http.Request) { time.Sleep(150 * time.Millisecond) })
	s.html("/quiet", `<html><body><p>quiet page</p></body></html>`)

	b := setup(t, taskConfig(s.URL+"/", "RenderDeadline=3s", "[Wait]", "Url="+s.URL+"/", "Depth=0", "RenderWaitSelector=#ready"))
	job := b.sync(t, "ConfigSection", "MyTask")
	assert.Equal(t, cnt{Seen: 3, Added: 3}, countsOf(job, "MYTASK"))
	busy := b.target.doc(s.URL + "/busy")
	require.NotNil(t, busy)
	assert.Equal(t, "false", field(busy, FieldRenderSettled))
	assert.Equal(t, "deadline", field(busy, FieldRenderSettledBy))
	assert.Contains(t, busy.Content, "busy page")
	assert.Equal(t, "true", field(b.target.doc(s.URL+"/quiet"), FieldRenderSettled))

	b.sync(t, "ConfigSection", "Wait")
	d := b.target.doc(s.URL + "/")
	assert.Contains(t, d.Content, "late text")
	assert.Equal(t, "selector", field(d, FieldRenderSettledBy))
}

// TestStopClosesTabs: Stop of an action whose pages never settle ends it
// at once (well within the conformance bound) and closes its tabs; the
// browser then has no tab open.
func TestStopClosesTabs(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	var links strings.Builder
	for _, p := range []string{"a", "b", "c", "d"} {
		links.WriteString(`<a href="/` + p + `">` + p + `</a>`)
		s.html("/"+p, `<html><body>never settles<script>setInterval(function(){ fetch("/ping?" + Math.random()); }, 50);</script></body></html>`)
	}
	s.handle("/ping", func(w http.ResponseWriter, r *http.Request) {})
	s.html("/", `<html><body>`+links.String()+`</body></html>`)
	b := setup(t, taskConfig(s.URL+"/", "RenderDeadline=5m", "RenderQuietWindow=10s"))
	p := params()
	tasks, err := b.repo.Validate(fetch.ActionSynchronize, p)
	require.NoError(t, err)
	job := fetch.NewJob("token", fetch.ActionSynchronize, p, tasks)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := b.repo.Run(ctx, job); done <- err }()
	waitFor(t, time.Minute, func() bool { return b.repo.Pool().Stats().Busy == 2 }, "both tabs rendering")
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Stop")
	}
	t.Logf("Run returned %s after the cancel", time.Since(start))
	waitFor(t, 10*time.Second, func() bool { st := b.repo.Pool().Stats(); return st.Busy == 0 && st.TabsOpen == 0 },
		"the stopped action's tabs closed")
}

// TestBrowserKilledMidCrawl: the browser killed (SIGKILL) during a crawl
// is restarted, the page rendered again, and the action goes on to its
// end with every page.
func TestBrowserKilledMidCrawl(t *testing.T) {
	t.Parallel()
	s := newScriptSite(t, 9)
	release := make(chan struct{})
	var once sync.Once
	// Page 4's data answers only once the browser was killed.
	s.handle("/data/4.json", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		case <-time.After(time.Minute):
		}
		s.data(w, r)
	})
	// One tab: page 4 is the only render the kill interrupts.
	b := setup(t, taskConfig(s.URL+"/", "Depth=-1"), setupOpts{browser: &browser.Config{Tabs: 1, TempDir: t.TempDir()}})
	done := make(chan *fetch.Job, 1)
	go func() { done <- b.sync(t) }()
	waitFor(t, time.Minute, func() bool { return s.hitsOf("/data/4.json") > 0 }, "page 4 rendering")
	pid := b.repo.Pool().Stats().PID
	require.NotZero(t, pid)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	once.Do(func() { close(release) })
	job := <-done
	assert.Equal(t, cnt{Seen: 9, Added: 9}, countsOf(job, "MYTASK"), "failures: %v", job.Failures())
	st := b.repo.Pool().Stats()
	assert.GreaterOrEqual(t, st.Restarts, 1)
	assert.GreaterOrEqual(t, st.Retried, uint64(1))
	assert.Contains(t, b.target.doc(s.URL+"/page/4").Content, "sentence number 4")
}

// TestBrowserHungBetweenRuns: a browser that stopped answering (SIGSTOP
// here, a wedged browser in life) left the next Synchronize waiting for
// ever at its first page: it never ended, and nothing was delivered. The
// browser is now stopped and a new one renders the pages.
func TestBrowserHungBetweenRuns(t *testing.T) {
	t.Parallel()
	s := newScriptSite(t, 5)
	b := setup(t, taskConfig(s.URL+"/", "Depth=-1"), setupOpts{browser: &browser.Config{Tabs: 1, TempDir: t.TempDir(), AnswerTimeout: 20 * time.Second}})
	job := b.sync(t)
	require.Equal(t, cnt{Seen: 5, Added: 5}, countsOf(job, "MYTASK"))
	pid := b.repo.Pool().Stats().PID
	require.NotZero(t, pid)
	require.NoError(t, syscall.Kill(-pid, syscall.SIGSTOP))
	t.Cleanup(func() { _ = syscall.Kill(-pid, syscall.SIGCONT) })

	job = b.sync(t)
	assert.Equal(t, cnt{Seen: 5, Unchanged: 5}, countsOf(job, "MYTASK"), "failures: %v", job.Failures())
	st := b.repo.Pool().Stats()
	assert.Equal(t, 1, st.Restarts)
	assert.NotEqual(t, pid, st.PID)
}

// TestBrowserCannotStart: a browser that cannot start ends the action as
// Error with the browser's own message, naming the task.
func TestBrowserCannotStart(t *testing.T) {
	t.Parallel()
	s := newScriptSite(t, 3)
	bin := filepath.Join(t.TempDir(), "broken-browser")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\necho 'FATAL: cannot open the display :99 (a test browser)' >&2\nexit 3\n"), 0o755))
	b := setup(t, taskConfig(s.URL+"/"), setupOpts{browser: &browser.Config{Exec: bin, Tabs: 1, TempDir: t.TempDir()}})
	_, _, err := b.run(t, fetch.ActionSynchronize, params())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "task MYTASK")
	assert.Contains(t, err.Error(), "cannot open the display :99 (a test browser)")
	var se *browser.StartError
	assert.True(t, errors.As(err, &se))
	assert.Empty(t, b.target.refs())
}

// A selector setting the browser refuses (RenderWaitSelector, the
// clipping's) fails the render of every page alike. Each page failed,
// was delivered as served with RENDER_ERROR and the crawl went on: the
// action ended as Success with the whole site indexed unrendered (a
// script-built site as its empty shells), one error per page, and the
// next run fetched it all again. The action now ends at the first page
// as Error naming the setting, with nothing delivered.
func TestBadSelectorSettingEndsTheAction(t *testing.T) {
	t.Parallel()
	s := newScriptSite(t, 3)
	for _, c := range []struct{ setting, says string }{
		{"RenderWaitSelector=main[", `WaitSelector "main[" is not a valid CSS selector`},
		{"ClippingMode=CSSCLIPPING\nClipPageUsingCssSelect=article[", `ClipPageUsingCssSelect: invalid CSS selector "article["`},
	} {
		b := setup(t, taskConfig(s.URL+"/", c.setting))
		job, _, err := b.run(t, fetch.ActionSynchronize, params())
		require.Error(t, err, c.setting)
		assert.Contains(t, err.Error(), "task MYTASK", c.setting)
		assert.Contains(t, err.Error(), c.says, c.setting)
		assert.ErrorIs(t, err, browser.ErrBadSelector, c.setting)
		assert.Empty(t, b.target.refs(), "%s: no page delivered unrendered", c.setting)
		assert.Zero(t, countsOf(job, "MYTASK").Errors, c.setting)
	}
}
