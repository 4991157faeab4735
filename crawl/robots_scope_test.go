package crawl

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// With StayOnSite, a robots.txt that redirects to another site (here
// another port of 127.0.0.1, as the connector's own ACI port would be) is
// not followed there: the site cannot make the crawl send a request off
// the site, and its robots.txt counts as absent.
func TestRobotsRedirectStaysOnSite(t *testing.T) {
	t.Parallel()
	other := newSite(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("User-agent: *\nDisallow: /\n"))
	}))
	body := map[string]string{"/": linksPage("root", "/a"), "/a": linksPage("a")}
	s := robotsSite(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/action=QueueInfo&QueueAction=CancelQueued", http.StatusFound)
	}, body)
	r := run(t, Config{StartURLs: []string{s.URL}, Depth: 1, FollowRobots: true, StayOnSite: true})
	require.NoError(t, r.err)
	require.Empty(t, other.requests(), "the crawl left the site for a robots.txt redirect")
	require.Equal(t, []string{"/", "/a"}, r.paths(-1))

	// Without StayOnSite the redirect is followed, as RFC 9309 asks.
	r = run(t, Config{StartURLs: []string{s.URL}, Depth: 1, FollowRobots: true})
	require.NoError(t, r.err)
	require.Len(t, other.requests(), 1)
}

// With StayOnSite, a sitemap that robots.txt lists on another site is not
// fetched (FollowSitemaps): robots.txt cannot send the crawl off the site
// either, and the entry counts as out of the sitemaps' scope.
func TestRobotsSitemapStaysOnSite(t *testing.T) {
	t.Parallel()
	other := newSite(t, pages{})
	body := map[string]string{"/": linksPage("root")}
	s := robotsSite(t, robotsText("User-agent: *\nAllow: /\nSitemap: http://"+other.Listener.Addr().String()+"/action=QueueInfo&QueueAction=CancelQueued\n"), body)
	r := run(t, Config{StartURLs: []string{s.URL}, Depth: 0, FollowRobots: true, FollowSitemaps: true, StayOnSite: true})
	require.NoError(t, r.err)
	require.Empty(t, other.requests(), "the crawl left the site for a sitemap robots.txt lists")
	require.EqualValues(t, 1, r.stats.Skipped.SitemapScope)
}
