package restsync

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
)

// A redirect that leaves the service's origin does not take its
// credentials along, even to the same host name on another port (or
// scheme), which Go's client treats as the same site: the token and the
// password go to the service's origin only.
func TestRedirectToAnotherOriginDropsCredentials(t *testing.T) {
	other, got := resttest.AuthorizationSink(t, `{}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, other.URL+"/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	hc, err := HTTPClient(nil, TLS{CheckCertificate: true}, 5*time.Second)
	require.NoError(t, err)
	for _, auth := range []Auth{BasicAuth{User: "u", Password: "hunter2"}, fixedToken("tok-secret")} {
		c, err := NewClient(srv.URL, hc, auth, Options{MaxAttempts: 1})
		require.NoError(t, err)
		_, err = c.GetJSON(context.Background(), "/x", &struct{}{})
		require.NoError(t, err)
	}
	require.Equal(t, []string{"", ""}, got(), "credentials sent to another origin")
}

type fixedToken string

func (f fixedToken) Authorize(_ context.Context, req *http.Request) error {
	req.Header.Set("Authorization", "Bearer "+string(f))
	return nil
}

func (fixedToken) Renew(context.Context, *http.Request) error { return fmt.Errorf("no renewal") }
