package httpfetch

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// TestSynchronizeListsItsFailures: a Synchronize lists, in GetStatus, which
// URLs failed and why (a broken link, a server error, a redirect to a page
// that fails, a delivery the target refused); pages skipped by policy are
// not failures.
func TestSynchronizeListsItsFailures(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":           htmlPage("Home", "/ok", "/broken", "/boom", "/moved", "/robots-no", "/file.bin"),
		"/ok":         htmlPage("ok"),
		"/boom":       {status: 503, body: "down"},
		"/moved":      {status: 302, loc: "/gone-too"},
		"/file.bin":   {ctype: "application/octet-stream", body: "bin"},
		"/robots.txt": {ctype: "text/plain", body: "User-agent: *\nDisallow: /robots-no\n"},
	})
	b := setup(t, siteConfig(s))
	q := startQueue(t, b.repo)
	tok := submitSync(t, q, b.repo, nil)
	st := waitState(t, q, tok, messages.State_STATE_FINISHED)
	require.EqualValues(t, 3, docCount(st).Errors)
	require.EqualValues(t, 3, st.FailuresTotal)
	byURL := map[string]*messages.Failure{}
	for _, f := range st.Failures {
		require.Equal(t, "MYTASK", f.Task)
		require.EqualValues(t, 1, f.Count)
		byURL[f.Url] = f
	}
	require.Len(t, byURL, 3)
	require.Equal(t, "unexpected HTTP status: HTTP 404", byURL[s.URL+"/broken"].Reason)
	require.Equal(t, "unexpected HTTP status: HTTP 503", byURL[s.URL+"/boom"].Reason)
	require.Equal(t, "unexpected HTTP status: HTTP 404 (at "+s.URL+"/gone-too, where it redirected)", byURL[s.URL+"/moved"].Reason)

	// A delivery the target refuses lists each page it carried.
	b.target.fail.Store(true)
	s.mu.Lock()
	s.pages["/ok"] = htmlPage("ok, changed")
	s.mu.Unlock()
	tok = submitSync(t, q, b.repo, nil)
	st = waitState(t, q, tok, messages.State_STATE_FINISHED)
	var delivery *messages.Failure
	for _, f := range st.Failures {
		if f.Url == s.URL+"/ok" {
			delivery = f
		}
	}
	require.NotNil(t, delivery, "%v", st.Failures)
	require.Contains(t, delivery.Reason, "delivery to the ingestion target failed (it is sent again next run): ")
	require.Contains(t, delivery.Reason, errTargetDown.Error())
	require.Positive(t, docCount(st).IngestFailed)
}
