package gmailapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/oauth"
)

// Waiting out Google's rate limits: a request answered 429 (too many
// requests), or 403 with the reason rateLimitExceeded or
// userRateLimitExceeded (Google's answer to a user over its per-user
// quota), is sent again after the wait the answer asks for (Retry-After),
// else after a backoff of 1 s doubled each time up to 30 s, as Google's
// guide to the Gmail API's errors asks and as the REST connectors do
// (restsync.Client). A wait longer than maxRetryAfter (a daily quota
// spent: hours) or more than maxThrottled throttled answers to one request
// give the answer back: the task then ends as Error with it. Stop ends a
// wait at once.
const (
	maxRetryAfter = 10 * time.Minute
	maxThrottled  = 30
	firstBackoff  = time.Second
	maxBackoff    = 30 * time.Second
)

// maxTokenAttempts bounds the refreshes of an access token that fail on
// the way (the token endpoint's 5xx, or no answer), as the REST
// connectors' MaxAttempts does (default 4).
const maxTokenAttempts = 4

// authorizing puts the access token on every request, as oauth2.Transport
// does, and waits out the token endpoint's rate limits (429, or 503 with
// Retry-After) and tries again after its failures on the way (5xx, no
// answer: an oauth.EndpointError) as throttling does the API's: Google's
// token endpoint is rate limited as its APIs are. A refusal (invalid_grant)
// is returned at once.
type authorizing struct {
	src  oauth2.TokenSource
	base http.RoundTripper
	log  *slog.Logger
}

func (a authorizing) RoundTrip(r *http.Request) (*http.Response, error) {
	tok, err := a.token(r.Context())
	if err != nil {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, err
	}
	r2 := r.Clone(r.Context())
	tok.SetAuthHeader(r2)
	return a.base.RoundTrip(r2)
}

func (a authorizing) token(ctx context.Context) (*oauth2.Token, error) {
	return waitToken(ctx, a.src, a.log)
}

// WaitingTokens returns src, its refreshes waited out as the Gmail API
// transport waits them out (authorizing) until ctx ends: for the IMAP
// transport's XOAUTH2 and OAUTHBEARER, whose tokens come from the same
// rate-limited endpoint.
func WaitingTokens(ctx context.Context, src oauth2.TokenSource, log *slog.Logger) oauth2.TokenSource {
	return waitingTokens{ctx: ctx, src: src, log: log}
}

type waitingTokens struct {
	ctx context.Context
	src oauth2.TokenSource
	log *slog.Logger
}

func (w waitingTokens) Token() (*oauth2.Token, error) { return waitToken(w.ctx, w.src, w.log) }

// waitToken returns src's token, waiting out the token endpoint's rate
// limits (429, or 503 with Retry-After) and trying again after its
// failures on the way (5xx, no answer: an oauth.EndpointError), as
// throttling does the API's. A refusal (invalid_grant) is returned at
// once, and so is the last answer once waiting is not worth it.
func waitToken(ctx context.Context, src oauth2.TokenSource, log *slog.Logger) (*oauth2.Token, error) {
	backoff := firstBackoff
	throttled, failed := 0, 0
	for {
		tok, err := src.Token()
		var ee *oauth.EndpointError
		if err == nil || !errors.As(err, &ee) {
			return tok, err
		}
		var wait time.Duration
		switch {
		case ee.Status == http.StatusTooManyRequests || ee.Status == http.StatusServiceUnavailable && ee.RetryAfter != "":
			d, ok := restsync.RetryAfter(ee.RetryAfter, time.Now())
			if !ok {
				d = backoff
				backoff = min(2*backoff, maxBackoff)
			}
			if throttled++; throttled >= maxThrottled || d > maxRetryAfter {
				return nil, err
			}
			wait = d
		case ee.Status == 0 || ee.Status >= 500:
			if failed++; failed >= maxTokenAttempts {
				return nil, err
			}
			wait = backoff
			backoff = min(2*backoff, maxBackoff)
		default:
			return nil, err
		}
		if log != nil {
			log.Debug("oauth: the token endpoint failed or is rate limited: waiting", "wait", wait, "status", ee.Status)
		}
		if err := (throttling{}).wait(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// throttling is the transport that waits out rate limits.
type throttling struct {
	base http.RoundTripper
	log  *slog.Logger
	// sleep waits (tests may replace it); nil: a timer that the
	// request's context ends.
	sleep func(ctx context.Context, d time.Duration) error
}

func (t throttling) RoundTrip(r *http.Request) (*http.Response, error) {
	backoff := firstBackoff
	for n := 1; ; n++ {
		resp, err := t.base.RoundTrip(r)
		if err != nil || !throttled(resp) {
			return resp, err
		}
		wait, ok := restsync.RetryAfter(resp.Header.Get("Retry-After"), time.Now())
		if !ok {
			wait = backoff
			backoff = min(2*backoff, maxBackoff)
		}
		// A request whose body cannot be sent again is not.
		if n >= maxThrottled || wait > maxRetryAfter || r.Body != nil && r.GetBody == nil {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if t.log != nil {
			t.log.Debug("gmail: rate limited: waiting as the API asks", "method", r.Method, "path", r.URL.Path, "wait", wait, "status", resp.StatusCode)
		}
		if err := t.wait(r.Context(), wait); err != nil {
			return nil, err
		}
		if r.GetBody != nil {
			body, err := r.GetBody()
			if err != nil {
				return nil, err
			}
			r = r.Clone(r.Context())
			r.Body = body
		}
	}
}

func (t throttling) wait(ctx context.Context, d time.Duration) error {
	if t.sleep != nil {
		return t.sleep(ctx, d)
	}
	if sleepFor != nil {
		return sleepFor(ctx, d)
	}
	return restsync.Sleep(ctx, d)
}

// sleepFor, when set, replaces the waits of every transport (tests).
var sleepFor func(ctx context.Context, d time.Duration) error

// throttled reports whether resp asks the client to slow down: a 429, or
// a 403 whose reason is a rate limit (its body is read, and put back).
func throttled(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		return true
	case http.StatusForbidden:
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
		return err == nil && rateLimitReason(body)
	}
	return false
}

// rateLimitReason reports whether an API error body gives a rate limit as
// its reason.
func rateLimitReason(body []byte) bool {
	var e struct {
		Error struct {
			Errors []struct {
				Reason string `json:"reason"`
			} `json:"errors"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return false
	}
	for _, it := range e.Error.Errors {
		if isRateLimit(it.Reason) {
			return true
		}
	}
	return false
}

// isRateLimit reports whether an error reason of Google's is a rate
// limit.
func isRateLimit(reason string) bool {
	return reason == "rateLimitExceeded" || reason == "userRateLimitExceeded"
}
