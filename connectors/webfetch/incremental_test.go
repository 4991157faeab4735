package webfetch

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/crawl/browser"
)

// withETag serves an HTML page with an ETag, answering 304 to a request
// that has it.
func withETag(etag, page string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, page)
	}
}

// TestRenderFailureIsRenderedNextRun: a page the browser failed to render
// (it died during the render and again during its retry) is delivered as
// served, with RENDER_ERROR. The next run, the site unchanged (its HTML
// would be answered 304), fetches it in full and delivers its rendering:
// the failure is not kept as the page's content.
func TestRenderFailureIsRenderedNextRun(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.handle("/", withETag(`"v1"`, `<!doctype html><html><head><title>Loading</title></head><body><div id="app">Loading</div>
<script>
fetch("/data.json").then(function (r) { return r.json(); }).then(function (d) {
  document.title = "Rendered";
  document.getElementById("app").textContent = d.words;
});
</script></body></html>`))
	// The first two requests for the data (the render and its retry)
	// wait until the browser is killed.
	var dataHits atomic.Int32
	s.handle("/data.json", func(w http.ResponseWriter, r *http.Request) {
		if dataHits.Add(1) <= 2 {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"words":"the words the script writes"}`)
	})
	b := setup(t, taskConfig(s.URL+"/", "Depth=0"), setupOpts{browser: &browser.Config{Tabs: 1, TempDir: t.TempDir()}})

	var wg sync.WaitGroup
	wg.Go(func() {
		killed := 0
		for n := int32(1); n <= 2; n++ {
			waitFor(t, time.Minute, func() bool { return dataHits.Load() >= n }, "the render asking for its data")
			pid := b.repo.Pool().Stats().PID
			require.NotZero(t, pid)
			require.NotEqual(t, killed, pid, "the retry runs in a new browser")
			require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
			killed = pid
		}
	})
	job := b.sync(t)
	wg.Wait()
	require.Equal(t, cnt{Seen: 1, Added: 1, Errors: 1}, countsOf(job, "MYTASK"), "failures: %v", job.Failures())
	d := b.target.doc(s.URL + "/")
	require.NotEmpty(t, field(d, FieldRenderError))
	require.NotContains(t, d.Content, "the words the script writes")

	// The browser works again; the site did not change.
	job = b.sync(t)
	require.Equal(t, cnt{Seen: 1, Updated: 1}, countsOf(job, "MYTASK"), "failures: %v", job.Failures())
	d = b.target.doc(s.URL + "/")
	require.Empty(t, field(d, FieldRenderError))
	require.Equal(t, "Rendered", field(d, "DRETITLE"))
	require.Contains(t, d.Content, "the words the script writes")

	// Rendered: the next run is a conditional request again, answered 304.
	job = b.sync(t)
	require.Equal(t, cnt{Seen: 1, Unchanged: 1}, countsOf(job, "MYTASK"))
	require.Equal(t, 3, s.hitsOf("/data.json"), "no render for a 304")
}

// TestClippingChangeReachesUnchangedPages: a page the site answers 304
// is unchanged only while the task renders and clips it as it did:
// after ClipPageUsingCssSelect changes, the next run fetches it in full
// and delivers its content as the new clipping cuts it; the run after
// that is a conditional request again.
func TestClippingChangeReachesUnchangedPages(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.handle("/", withETag(`"v1"`, `<html><body><main>main words</main><article>article words</article></body></html>`))
	b := setup(t, taskConfig(s.URL+"/", "Depth=0", "ClippingMode=CSSCLIPPING", "ClipPageUsingCssSelect=main"))
	job := b.sync(t, "ConfigSection", "MyTask")
	require.Equal(t, cnt{Seen: 1, Added: 1}, countsOf(job, "MYTASK"))
	require.Contains(t, b.target.doc(s.URL+"/").Content, "main words")
	job = b.sync(t, "ConfigSection", "MyTask")
	require.Equal(t, cnt{Seen: 1, Unchanged: 1}, countsOf(job, "MYTASK"), "the same clipping: a 304")

	job = b.sync(t, "ConfigSection", "MyTask", "ClipPageUsingCssSelect", "article")
	require.Equal(t, cnt{Seen: 1, Updated: 1}, countsOf(job, "MYTASK"), "failures: %v", job.Failures())
	d := b.target.doc(s.URL + "/")
	require.Contains(t, d.Content, "article words")
	require.NotContains(t, d.Content, "main words")
	job = b.sync(t, "ConfigSection", "MyTask", "ClipPageUsingCssSelect", "article")
	require.Equal(t, cnt{Seen: 1, Unchanged: 1}, countsOf(job, "MYTASK"), "clipped as last time: a 304 again")
}
