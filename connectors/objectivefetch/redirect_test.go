package objectivefetch

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/oauth"
)

// A token endpoint answering 307 or 308 does not get the password and
// client secret re-posted to another origin (Go resends the body of such
// a redirect).
func TestKeycloakGrantIsNotRedirectedAway(t *testing.T) {
	sink, got := resttest.BodySink(t, `{"access_token":"stolen","expires_in":300}`)
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		endpoint := httptest.NewServer(http.RedirectHandler(sink.URL+"/token", code))
		k := &keycloak{ctx: context.Background(), hc: &http.Client{}, s: &settings{
			Username: "u", Password: "pw-secret", ClientID: "c", ClientSecret: "cs-secret", TokenURL: endpoint.URL + "/token"}}
		_, err := k.Token()
		endpoint.Close()
		require.ErrorContains(t, err, "token endpoint's origin", "%d", code)
		// An answer, not a failure on the way: not tried again.
		var ee *oauth.EndpointError
		require.False(t, errors.As(err, &ee), "%d: a refused redirect is not retried", code)
	}
	require.Empty(t, got(), "grants re-posted to another origin")
}
