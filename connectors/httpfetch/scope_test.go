package httpfetch

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// View, Collect and Update fetch a page the datastore knows: with
// StayOnSite (the default) a redirect it answers with does not take the
// request off the site (another port of 127.0.0.1 here, as the
// connector's own ACI port would be), as the crawl's redirects do not.
func TestFetchNowRedirectStaysOnSite(t *testing.T) {
	t.Parallel()
	other := newSite(t, map[string]*page{"/action=QueueInfo&QueueAction=CancelQueued": htmlPage("other")})
	s := newSite(t, map[string]*page{"/": htmlPage("Home", "/a"), "/a": htmlPage("Page A")})
	b := setup(t, siteConfig(s), setupOpts{extra: "[Security]\nCollectFolders=" + t.TempDir()})
	b.sync(t)
	a := EncodeIdentifier("MyTask", s.URL+"/a")
	s.set("/a", &page{loc: other.URL + "/action=QueueInfo&QueueAction=CancelQueued"})
	_, err := b.repo.View(context.Background(), a, params("Identifier", a))
	require.Error(t, err)
	require.Empty(t, other.requests(), "View followed a redirect off the site")
}
