package gmailapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
	"github.com/connectorhq/connector/internal/panics"
)

// Fetch reads messages on goroutines of its own, outside the worker's
// recovery: a panic there (in the reading of the API's answers) ended the
// process. Here messages.get answers null, which the API's client returns
// as a nil message without an error. Fetch returns an error naming the
// panic instead, which ends the task (and the action, as Error).
func TestFetchPanicIsItsError(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/profile"):
			fmt.Fprint(w, `{"emailAddress":"a@example.com","historyId":"7"}`)
		case strings.HasSuffix(r.URL.Path, "/labels"):
			fmt.Fprint(w, `{"labels":[{"id":"INBOX","name":"INBOX"}]}`)
		case strings.Contains(r.URL.Path, "/messages/"):
			fmt.Fprint(w, `null`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer api.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a safety net, not a wait
	defer cancel()
	b, err := Open(ctx, Config{Endpoint: api.URL + "/", Tokens: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"})})
	require.NoError(t, err)
	err = b.Fetch(ctx, mailbox.Collection{}, []string{"m1", "m2"}, func(*mailbox.Message) error { return nil })
	require.ErrorIs(t, err, panics.ErrPanic)
	require.ErrorContains(t, err, "gmail: reading a message: panic: runtime error: invalid memory address or nil pointer dereference")
}
