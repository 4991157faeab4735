package browser

import (
	"testing"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/stretchr/testify/require"
)

// Once a render has decided whether its tab may be reused, its
// credentials are given to no further challenge: a request that a script
// of a settled page makes after that decision was answered with them,
// so a tab judged clean (none given yet) held them in its HTTP auth cache
// when the next render, possibly another task's, got it.
func TestNoCredentialsAfterTheTabsReuseIsDecided(t *testing.T) {
	t.Parallel()
	st := &renderState{}
	st.setAuth(&BasicAuth{Username: "crawler", Password: "pa55", Origins: []string{"http://site.test"}})
	challenge := func(id string) *fetch.EventAuthRequired {
		return &fetch.EventAuthRequired{RequestID: fetch.RequestID(id), Request: &network.Request{URL: "http://site.test/data"},
			AuthChallenge: &fetch.AuthChallenge{Source: fetch.AuthChallengeSourceServer, Scheme: "Basic"}}
	}
	user, pass, ok := st.credentials(challenge("1"))
	require.True(t, ok)
	require.Equal(t, "crawler pa55", user+" "+pass)

	other := &renderState{}
	other.setAuth(&BasicAuth{Username: "crawler", Password: "pa55", Origins: []string{"http://site.test"}})
	require.False(t, other.endCredentials(), "none given: the tab may be reused")
	_, _, ok = other.credentials(challenge("2"))
	require.False(t, ok, "a challenge after the decision is cancelled")

	require.True(t, st.endCredentials(), "given: the tab is not reused")
	_, _, ok = st.credentials(challenge("3"))
	require.False(t, ok)
}
