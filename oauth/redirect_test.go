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
