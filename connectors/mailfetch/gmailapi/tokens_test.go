package gmailapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
	"github.com/connectorhq/connector/oauth"
)

// failingTokens fails its first n refreshes with err, then grants.
type failingTokens struct {
	n     int32
	err   error
	calls atomic.Int32
}

func (f *failingTokens) Token() (*oauth2.Token, error) {
	if f.calls.Add(1) <= f.n {
		return nil, f.err
	}
	return &oauth2.Token{AccessToken: "tok", Expiry: time.Now().Add(time.Hour)}, nil
}

func profileAPI(t *testing.T) string {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"emailAddress":"alice@example.com","labels":[]}`))
	}))
	t.Cleanup(api.Close)
	return api.URL + "/"
}

// Google's token endpoint rate limits (429) and fails on the way (5xx, a
// dropped connection) as the API does. The Gmail transport waited out the
// API's 429s but ended the task at the token endpoint's first one, as
// "mailbox: authentication failed" - the administrator told to authorize
// again when Google only asked to slow down. A refresh answered so is now
// waited out and tried again as the API's own requests are; one that
// still fails ends the task with the endpoint's answer, not as an
// authentication failure; a refusal (invalid_grant) still is one.
func TestTokenEndpointThrottledIsWaitedOut(t *testing.T) {
	var waits []time.Duration
	sleepFor = func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	t.Cleanup(func() { sleepFor = nil })
	for _, c := range []struct {
		name string
		err  *oauth.EndpointError
	}{
		{"429", &oauth.EndpointError{Status: http.StatusTooManyRequests, RetryAfter: "7", Message: "oauth: refresh the access token (token file gmail.token): the token endpoint answered 429"}},
		{"503", &oauth.EndpointError{Status: http.StatusServiceUnavailable, Message: "oauth: refresh the access token (token file gmail.token): the token endpoint answered 503"}},
		{"no answer", &oauth.EndpointError{Message: "oauth: refresh the access token (token file gmail.token): Post \"https://oauth2.googleapis.com/token\": EOF"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			waits = nil
			src := &failingTokens{n: 2, err: c.err}
			_, err := Open(context.Background(), Config{Endpoint: profileAPI(t), Tokens: src})
			require.NoError(t, err)
			require.Len(t, waits, 2)
		})
	}
	t.Run("too long", func(t *testing.T) {
		src := &failingTokens{n: 1000, err: &oauth.EndpointError{Status: http.StatusTooManyRequests, RetryAfter: "86400", Message: "oauth: refresh the access token (token file gmail.token): the token endpoint answered 429 Too Many Requests"}}
		_, err := Open(context.Background(), Config{Endpoint: profileAPI(t), Tokens: src})
		require.ErrorContains(t, err, "429")
		require.NotErrorIs(t, err, mailbox.ErrAuth)
	})
	t.Run("refused", func(t *testing.T) {
		waits = nil
		src := &failingTokens{n: 1000, err: &oauth.EndpointError{Status: http.StatusBadRequest, Message: "oauth: refresh the access token (token file gmail.token): the token endpoint answered invalid_grant"}}
		_, err := Open(context.Background(), Config{Endpoint: profileAPI(t), Tokens: src})
		require.ErrorIs(t, err, mailbox.ErrAuth)
		require.Empty(t, waits)
	})
}
