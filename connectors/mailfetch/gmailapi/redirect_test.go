package gmailapi

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// An API answer that redirects to another origin (another host, or the
// same host at another port) does not get the access token sent there:
// oauth2.Transport puts the token on every request it carries, redirects
// included.
func TestRedirectDoesNotCarryTheToken(t *testing.T) {
	var mu sync.Mutex
	var got []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"emailAddress":"a@example.com","labels":[]}`))
	}))
	defer other.Close()
	port := other.Listener.Addr().(*net.TCPAddr).Port
	for _, target := range []string{other.URL, fmt.Sprintf("http://localhost:%d", port)} {
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target+r.URL.RequestURI(), http.StatusFound)
		}))
		_, err := Open(context.Background(), Config{Endpoint: api.URL + "/",
			Tokens: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok-secret"})})
		api.Close()
		mu.Lock()
		for _, h := range got {
			require.NotContains(t, h, "tok-secret", "the access token went to %s", target)
		}
		mu.Unlock()
		require.Error(t, err, target)
		require.NotContains(t, err.Error(), "tok-secret")
	}
}
