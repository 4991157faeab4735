package httpfetch

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testlog"
)

// TestLoggedURLsHideCredentials: the logs name pages by URL, and a link's
// credentials must not show there (docs/security.md): the password of its
// user information is redacted and its query (a token) cut to "?…", in the
// crawl's debug lines and the connector's own.
func TestLoggedURLsHideCredentials(t *testing.T) {
	t.Parallel()
	var buf testlog.Buffer
	s := newSite(t, map[string]*page{"/x": htmlPage("X")})
	withCreds := strings.Replace(s.URL, "://", "://alice:hunter2@", 1)
	s.set("/", htmlPage("Home", withCreds+"/x?access_token=tok3n", withCreds+"/missing?access_token=tok3n"))
	b := setup(t, siteConfig(s), setupOpts{logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	b.run(t, fetch.ActionSynchronize, nil)
	l := buf.String()
	require.Contains(t, l, "page fetched")
	require.Contains(t, l, "fetch failed")
	require.Contains(t, l, "alice:[REDACTED]@127.0.0.1")
	require.NotContains(t, l, "hunter2")
	require.NotContains(t, l, "tok3n")
}
