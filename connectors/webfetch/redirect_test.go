package webfetch

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// A page whose script sends the browser elsewhere (location.replace,
// location.href =, a meta refresh: the language redirect of a site's
// home page, a single-page application's entry page) is, for a person,
// the page it sends them to. The browser is kept on the rendered page
// (its navigation answered 204), and the page it was sent to was
// neither rendered nor crawled: the site's content behind the redirect
// was never indexed. The pages a rendered page navigates to are now
// links of that page, crawled by the task's rules.
func TestScriptRedirectTargetIsCrawled(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.html("/", `<!DOCTYPE html><html><head><title>Welcome</title></head><body>
<script>location.replace("/en/" + "home");</script></body></html>`)
	s.html("/en/home", `<!DOCTYPE html><html><head><title>Home</title>
<meta http-equiv="refresh" content="0; url=/en/news"></head><body><p>The English home page.</p></body></html>`)
	s.html("/en/news", `<!DOCTYPE html><html><head><title>News</title></head><body><p>What is new.</p>
<script>setTimeout(function(){ window.location.href = "https://example.invalid/elsewhere"; }, 0);</script></body></html>`)
	b := setup(t, taskConfig(s.URL+"/", "Depth=3", "StayOnSite=true"))
	job := b.sync(t)
	assert.Equal(t, []string{s.URL + "/", s.URL + "/en/home", s.URL + "/en/news"}, b.target.refs(), "failures: %v", job.Failures())
	if d := b.target.doc(s.URL + "/en/news"); assert.NotNil(t, d) {
		assert.Contains(t, d.Content, "What is new.")
	}
	assert.Zero(t, countsOf(job, "MYTASK").Errors)
}
