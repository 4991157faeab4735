package gmailapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
)

// An API answer that redirects to another origin (another host, or the
// same host at another port) does not get the access token sent there:
// oauth2.Transport puts the token on every request it carries, redirects
// included.
func TestRedirectDoesNotCarryTheToken(t *testing.T) {
	other, got := resttest.AuthorizationSink(t, `{"emailAddress":"a@example.com","labels":[]}`)
	port := other.Listener.Addr().(*net.TCPAddr).Port
	for _, target := range []string{other.URL, fmt.Sprintf("http://localhost:%d", port)} {
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target+r.URL.RequestURI(), http.StatusFound)
		}))
		_, err := Open(context.Background(), Config{Endpoint: api.URL + "/",
			Tokens: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok-secret"})})
		api.Close()
		for _, h := range got() {
			require.NotContains(t, h, "tok-secret", "the access token went to %s", target)
		}
		require.Error(t, err, target)
		require.NotContains(t, err.Error(), "tok-secret")
	}
}

// An API error that quotes the Authorization header it refused (a proxy
// in front of the API, a debugging gateway) was kept as the API's message
// in the action's error: the access token went to GetStatus, the log and
// the store. The answer is scrubbed of the request's credentials where it
// is read.
func TestAPIErrorQuotingTheTokenIsScrubbed(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": 401,
			"message": "refused " + r.Header.Get("Authorization"), "status": "UNAUTHENTICATED"}})
	}))
	defer api.Close()
	_, err := Open(context.Background(), Config{Endpoint: api.URL + "/",
		Tokens: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok-secret"})})
	require.Error(t, err)
	require.ErrorContains(t, err, "refused Bearer [REDACTED]")
	require.NotContains(t, err.Error(), "tok-secret")
}

// roundTrip is an http.RoundTripper of a function.
type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// An API endpoint written with its scheme's default port
// (https://gmail.example:443/) that redirects on its own origin
// (https://gmail.example/...) is followed: it is one origin. The host
// strings were compared, and such a redirect was refused as one away from
// the API's origin: the mailbox could not be opened.
func TestRedirectOnTheOriginWithTheDefaultPortWrittenOut(t *testing.T) {
	var hosts []string
	rt := roundTrip(func(r *http.Request) (*http.Response, error) {
		hosts = append(hosts, r.URL.Host)
		h := http.Header{}
		if !strings.HasPrefix(r.URL.Path, "/moved/") {
			h.Set("Location", "https://gmail.example/moved"+r.URL.RequestURI())
			return &http.Response{StatusCode: http.StatusFound, Header: h, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
		}
		h.Set("Content-Type", "application/json")
		return &http.Response{StatusCode: http.StatusOK, Header: h, Body: io.NopCloser(strings.NewReader(`{"emailAddress":"a@example.com","labels":[]}`)), Request: r}, nil
	})
	_, err := Open(context.Background(), Config{Endpoint: "https://gmail.example:443/", HTTPClient: &http.Client{Transport: rt},
		Tokens: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok"})})
	require.NoError(t, err)
	require.Contains(t, hosts, "gmail.example", "the redirect was followed")
}
