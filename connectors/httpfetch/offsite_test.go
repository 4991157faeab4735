package httpfetch

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// TestStartURLRedirectingOffSiteIsAFailure: a start URL that redirects off
// the task's sites (http://site/ to https://site/, the usual move, or
// another host) is not followed with StayOnSite, and the action says so:
// an error, listed with the reason. Before, the Synchronize finished with
// nothing seen and no error at all, so a task whose site had moved looked
// healthy while it indexed nothing.
func TestStartURLRedirectingOffSiteIsAFailure(t *testing.T) {
	t.Parallel()
	moved := newSite(t, map[string]*page{"/": htmlPage("Home", "/a"), "/a": htmlPage("A")})
	s := newSite(t, map[string]*page{
		"/":     {loc: moved.URL + "/", status: 301},
		"/on":   {loc: "/here", status: 301},
		"/here": htmlPage("Here", "/away"),
		"/away": {loc: moved.URL + "/a", status: 302}, // a link's redirect off the site: policy, as before
	})
	b := setup(t, "[FetchTasks]\n0=MyTask\n\n[MyTask]\nUrl="+s.URL+"/,"+s.URL+"/on\n")
	q := startQueue(t, b.repo)
	tok := submitSync(t, q, b.repo, nil)
	st := waitState(t, q, tok, messages.State_STATE_FINISHED)
	require.EqualValues(t, 1, docCount(st).Errors)
	require.Len(t, st.Failures, 1, "%v", st.Failures)
	f := st.Failures[0]
	require.Equal(t, s.URL+"/", f.Url)
	require.Contains(t, f.Reason, "StayOnSite")
	require.Contains(t, f.Reason, moved.URL+"/")
	require.Zero(t, moved.count("/"), "not followed")
	require.Zero(t, moved.count("/a"), "not followed")
}
