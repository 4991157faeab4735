package mailfetch

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
)

// A service account's token endpoint answering 307 or 308 does not get
// the signed assertion (a credential for the account's user) re-posted
// to another origin.
func TestServiceAccountGrantIsNotRedirectedAway(t *testing.T) {
	sink, got := resttest.BodySink(t, `{"access_token":"stolen","token_type":"Bearer","expires_in":300}`)
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		endpoint := httptest.NewServer(http.RedirectHandler(sink.URL+"/token", code))
		keyFile := mailtest.StartOAuthServer(t).ServiceAccountKey(t, "indexer@project.iam.gserviceaccount.com")
		var key map[string]string
		data, err := os.ReadFile(keyFile)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(data, &key))
		key["token_uri"] = endpoint.URL + "/token"
		data, _ = json.Marshal(key)
		require.NoError(t, os.WriteFile(keyFile, data, 0o600))

		ts, err := (&Repository{}).tokens(context.Background(), &settings{Task: "G", KeyFile: keyFile, Username: "alice@example.com"}, &http.Client{})
		require.NoError(t, err)
		_, err = ts.Token()
		endpoint.Close()
		require.ErrorContains(t, err, "token endpoint's origin", "%d", code)
	}
	require.Empty(t, got(), "assertions re-posted to another origin")
}
