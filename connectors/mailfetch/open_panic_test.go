package mailfetch

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/panics"
)

// The task's mailbox is opened (connection, log in, the Gmail API's
// labels) on a goroutine of its own, while the datastore is read, outside
// the worker's recovery: a panic there ended the process. Here the API
// lists a label as null, which the API's client returns as a nil label.
// The Synchronize ends with an error naming the panic instead, so the
// action ends as Error.
func TestOpenPanicIsTheSynchronizesError(t *testing.T) {
	g, _, _ := gmailRigVia(t, false, "", func(apiURL string) string {
		u, err := url.Parse(apiURL)
		require.NoError(t, err)
		proxy := httputil.NewSingleHostReverseProxy(u)
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/labels") {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"labels":[null]}`))
				return
			}
			proxy.ServeHTTP(w, r)
		}))
		t.Cleanup(front.Close)
		return front.URL + strings.TrimPrefix(apiURL, u.Scheme+"://"+u.Host)
	})
	_, _, err := g.run("Synchronize")
	require.ErrorIs(t, err, panics.ErrPanic)
	require.ErrorContains(t, err, "mailfetch: opening the mailbox: panic: runtime error: invalid memory address or nil pointer dereference")
}
