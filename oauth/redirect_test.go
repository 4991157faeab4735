package oauth

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// A token endpoint that answers 307 or 308 does not get the refresh token
// and client secret re-posted to another origin (Go resends the body of
// such a redirect); a redirect on its own origin is followed.
func TestTokenRequestIsNotRedirectedAway(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"stolen","token_type":"Bearer","expires_in":3600}`)
	}))
	defer sink.Close()
	f := TokenFile{Path: filepath.Join(t.TempDir(), "t"), Key: testKey(t)}
	require.NoError(t, f.Save(&oauth2.Token{RefreshToken: "rt-secret"}, "c", nil))
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/moved" {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"access_token":"at","token_type":"Bearer","expires_in":3600}`)
				return
			}
			target := sink.URL + "/token"
			if r.URL.Path == "/here" {
				target = "/moved"
			}
			http.Redirect(w, r, target, code)
		}))
		src, err := f.TokenSource(context.Background(), Config{ClientID: "c", ClientSecret: "cs-secret", TokenURL: endpoint.URL + "/token"})
		require.NoError(t, err)
		_, err = src.Token()
		require.ErrorContains(t, err, "token endpoint's origin", "%d", code)

		src, err = f.TokenSource(context.Background(), Config{ClientID: "c", ClientSecret: "cs-secret", TokenURL: endpoint.URL + "/here"})
		require.NoError(t, err)
		tok, err := src.Token()
		require.NoError(t, err, "a redirect on the endpoint's origin")
		require.Equal(t, "at", tok.AccessToken)
		endpoint.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, bodies, "token requests re-posted to another origin")
}

// A token endpoint written with its scheme's default port
// (https://login.example.com:443/token) that redirects on its own origin
// (https://login.example.com/moved) is followed: it is one origin. The
// host strings were compared, and such a redirect was refused as one away
// from the endpoint's origin, failing every token request; so was the
// other way round.
func TestTokenRedirectWithTheDefaultPortWrittenOut(t *testing.T) {
	for _, tc := range []struct{ endpoint, target string }{
		{"https://login.example.com:443/token", "https://login.example.com/moved"},
		{"https://login.example.com/token", "https://LOGIN.example.com:443/moved"},
		{"http://login.example.com:80/token", "http://login.example.com/moved"},
	} {
		req, err := http.NewRequest(http.MethodPost, tc.target, nil)
		require.NoError(t, err)
		require.NoError(t, TokenClient(nil, tc.endpoint).CheckRedirect(req, nil), "%s to %s", tc.endpoint, tc.target)
	}
	for _, tc := range []struct{ endpoint, target string }{
		{"https://login.example.com:443/token", "http://login.example.com:443/moved"},
		{"https://login.example.com/token", "https://login.example.com:8443/moved"},
		{"http://login.example.com/token", "http://login.example.com:443/moved"},
		{"https://login.example.com/token", "https://login.example.com.evil/moved"},
	} {
		req, err := http.NewRequest(http.MethodPost, tc.target, nil)
		require.NoError(t, err)
		require.ErrorContains(t, TokenClient(nil, tc.endpoint).CheckRedirect(req, nil), "token endpoint's origin", "%s to %s", tc.endpoint, tc.target)
	}
}
