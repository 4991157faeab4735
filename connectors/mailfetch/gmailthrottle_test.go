package mailfetch

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/mailfetch/gmailtest"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
)

// gmailRigThrottled is a Gmail rig whose API answers the first n
// requests for messages/<id> (reads of the message) with status code (a
// 429, or the 403 Google gives for a user's rate limit) and Retry-After
// retry ("" for none), then passes them through.
func gmailRigThrottled(t *testing.T, id *atomic.Value, n int64, code int, retry string) (*rig, *gmailtest.Server, func() int64) {
	var answered atomic.Int64
	g, api, _ := gmailRigVia(t, false, "", func(apiURL string) string {
		u, err := url.Parse(apiURL)
		require.NoError(t, err)
		proxy := httputil.NewSingleHostReverseProxy(u)
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			want, _ := id.Load().(string)
			if want != "" && strings.HasSuffix(r.URL.Path, "/messages/"+want) && answered.Load() < n {
				answered.Add(1)
				if retry != "" {
					w.Header().Set("Retry-After", retry)
				}
				reason := "rateLimitExceeded"
				if code == http.StatusForbidden {
					reason = "userRateLimitExceeded"
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(code)
				_, _ = fmt.Fprintf(w, `{"error":{"code":%d,"message":"User-rate limit exceeded.","errors":[{"reason":%q,"message":"User-rate limit exceeded."}]}}`, code, reason)
				return
			}
			proxy.ServeHTTP(w, r)
		}))
		t.Cleanup(front.Close)
		return front.URL + strings.TrimPrefix(apiURL, u.Scheme+"://"+u.Host)
	})
	return g, api, answered.Load
}

// Google answers a client over its per-user rate limit with 429 (or 403
// userRateLimitExceeded), asking it to slow down, and its guide asks for
// the request to be sent again after a wait; the REST connectors do so
// (restsync.Client). The Gmail transport ended the task as Error at the
// first one, so a large mailbox's first Synchronize failed again and
// again (each run indexing what it read until the next throttling), and
// a 403 was reported as "authentication failed".
func TestGmailRateLimitIsWaitedOut(t *testing.T) {
	for _, c := range []struct {
		name  string
		code  int
		retry string
	}{{"429 with Retry-After", http.StatusTooManyRequests, "0"}, {"403 userRateLimitExceeded", http.StatusForbidden, ""}} {
		t.Run(c.name, func(t *testing.T) {
			var id atomic.Value
			g, api, answered := gmailRigThrottled(t, &id, 2, c.code, c.retry)
			m := api.Deliver(mailtest.Message{From: "bob@example.com", Subject: "throttled", Text: "1"}.Raw(), "INBOX")
			api.Deliver(mailtest.Message{From: "bob@example.com", Subject: "other", Text: "2"}.Raw(), "INBOX")
			id.Store(m)
			_, job, err := g.run("Synchronize")
			require.NoError(t, err)
			require.Equal(t, int64(2), answered(), "throttled twice")
			require.Len(t, g.target.Find("SUBJECT", "throttled"), 1)
			require.Zero(t, countsOf(job, "GMAIL").Errors)
		})
	}
}

// A wait longer than the connector waits for (Google's daily quota: hours)
// still ends the task as Error, at once, saying so; not as an
// authentication failure.
func TestGmailRateLimitTooLongEndsTheTask(t *testing.T) {
	var id atomic.Value
	g, api, _ := gmailRigThrottled(t, &id, 1000, http.StatusTooManyRequests, "86400")
	id.Store(api.Deliver(mailtest.Message{From: "bob@example.com", Subject: "throttled", Text: "1"}.Raw(), "INBOX"))
	_, _, err := g.run("Synchronize")
	require.ErrorContains(t, err, "429")
	require.NotContains(t, err.Error(), "authentication")
}
