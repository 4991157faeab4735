package gmailapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/internal/testwait"
)

// Stop while a rate limit is waited out ends the wait at once: the
// request's context ends it, not the 5 minutes Google asked for.
func TestStopEndsARateLimitWait(t *testing.T) {
	asked := make(chan struct{})
	var once sync.Once
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(asked) })
		w.Header().Set("Retry-After", "300")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"error":{"code":429,"message":"slow down","errors":[{"reason":"rateLimitExceeded"}]}}`))
	}))
	defer api.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Open(ctx, Config{Endpoint: api.URL + "/", Tokens: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok"})})
		done <- err
	}()
	testwait.Recv(t, asked, 20*time.Second, "the first request")
	cancel()
	err := testwait.Recv(t, done, 20*time.Second, "Open to end once stopped")
	require.ErrorIs(t, err, context.Canceled)
}
