package crawl

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/netguard"
)

// TestBasicAuthOnlyToItsOrigins: the credentials go with every request to
// the configured origin (pages and robots.txt) and never to another one,
// whether reached by a link or by a redirect.
func TestBasicAuthOnlyToItsOrigins(t *testing.T) {
	t.Parallel()
	other := newSite(t, pages{"/o": linksPage("o"), "/r": linksPage("r")})
	home := newSite(t, withRedirect("/go", other.URL+"/r", pages{
		"/":           linksPage("home", "/a", other.URL+"/o", "/go"),
		"/a":          linksPage("a"),
		"/robots.txt": "User-agent: *\nAllow: /\n",
	}))
	r := run(t, Config{StartURLs: []string{home.URL + "/"}, Depth: 2, FollowRobots: true,
		BasicAuth: &BasicAuth{Username: "crawler", Password: "s3cret", Origins: []string{home.URL}}})
	require.NoError(t, r.err)
	require.Contains(t, keys(r), other.URL+"/o")
	for _, rq := range home.requests() {
		require.Equal(t, "Basic Y3Jhd2xlcjpzM2NyZXQ=", rq.Header.Get("Authorization"), rq.Path)
	}
	require.NotEmpty(t, other.requests())
	for _, rq := range other.requests() {
		require.Empty(t, rq.Header.Get("Authorization"), rq.Path)
	}
}

// TestDenyRefusesAtDial: a link, a redirect and a start URL pointing at a
// denied address all fail without a connection to it.
func TestDenyRefusesAtDial(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	require.NoError(t, err)
	var hits atomic.Int32
	metadata := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte("iam credentials"))
	}))
	metadata.Listener = ln
	metadata.Start()
	t.Cleanup(metadata.Close)
	home := newSite(t, withRedirect("/go", metadata.URL+"/redirected", pages{
		"/": linksPage("home", metadata.URL+"/latest/meta-data/", "/go"),
	}))
	g, err := netguard.Parse([]string{"127.0.0.2/32"})
	require.NoError(t, err)
	r := run(t, Config{StartURLs: []string{home.URL + "/", metadata.URL + "/start"}, Depth: 1, Deny: g})
	require.NoError(t, r.err)
	require.Zero(t, hits.Load(), "no request reached the denied address")
	require.Len(t, r.errs, 3, "%v", r.errs)
	for u, err := range r.errs {
		require.ErrorIs(t, err, netguard.ErrDenied, u)
	}
}

// withRedirect serves p, and a 302 to target at path.
func withRedirect(path, target string, p pages) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == path {
			http.Redirect(w, r, target, http.StatusFound)
			return
		}
		p.ServeHTTP(w, r)
	})
}
