// Package restsync is what the connectors that read a REST service share
// (connectors/webexfetch, connectors/objectivefetch; the Google Mail
// connector uses its Batch too): an HTTP client that
// waits out rate limits (HTTP 429 with Retry-After), retries what failed
// on the way (a 5xx, a 423 Locked after its Retry-After, a dropped
// connection, a truncated body) a bounded number of times, the
// service's and its token endpoint's alike (an oauth.EndpointError),
// renews refused credentials once and otherwise
// ends with the service's own message; paging that refuses a page linking back to one
// already read or to another origin; bounded downloads that stream and
// never hold more than their limit; the records of the items a task has
// delivered, with the batches that deliver documents and record them
// together, in the background while the next items are read (batch.go);
// and Collect's confinement to [Security] CollectFolders.
//
// Nothing here logs or returns a credential: errors carry the method, the
// URL (its user information removed) and the service's message.
package restsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectorhq/connector/internal/netguard"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/oauth"
	"github.com/connectorhq/connector/secret"
)

// Auth puts credentials on requests.
type Auth interface {
	// Authorize sets req's credentials (an Authorization header).
	Authorize(ctx context.Context, req *http.Request) error
	// Renew is called when the service refused refused's credentials
	// (HTTP 401): it discards them, so that the next Authorize uses fresh
	// ones (an access token that expired early, or was revoked), unless
	// another request renewed them already. It returns an error when no
	// fresh credentials can be had (then the request ends with the 401).
	Renew(ctx context.Context, refused *http.Request) error
}

// Errors, matched with errors.Is.
var (
	// ErrUnauthorized: the service refused the credentials (HTTP 401),
	// even fresh ones.
	ErrUnauthorized = errors.New("the service refused the credentials")
	// ErrForbidden: HTTP 403.
	ErrForbidden = errors.New("the service forbids it")
	// ErrAuth: no credentials could be obtained (the token endpoint
	// refused, the token file is missing).
	ErrAuth = errors.New("no credentials")
	// ErrPageLoop: a page links to a page already read.
	ErrPageLoop = errors.New("the service's paging links back to a page already read")
	// ErrEmptyPages: the paging goes on with page after page without
	// items.
	ErrEmptyPages = errors.New("the service's paging goes on without items")
	// ErrOrigin: a link or file URL leads away from the service, where
	// its credentials must not be sent.
	ErrOrigin = errors.New("the link leads away from the service")
	// ErrBadResponse: the response is not what the service sends (not
	// JSON, truncated).
	ErrBadResponse = errors.New("the service's response is incomplete or malformed")
	// ErrTooLarge: a response or file is larger than its limit.
	ErrTooLarge = errors.New("larger than the limit")
	// ErrThrottled: the service kept answering 429 (or asked for a longer
	// wait than MaxRetryAfter).
	ErrThrottled = errors.New("the service keeps refusing requests for their rate")
)

// StatusError is an HTTP answer that is not a success.
type StatusError struct {
	Service string
	Method  string
	URL     string // user information removed
	Status  int
	// Message is what the service said (its error body's message), or
	// the status text.
	Message string
	// TrackingID is the service's id of the request (Webex's TrackingID
	// header), when it gives one.
	TrackingID string
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s: %s %s: HTTP %d", e.Service, e.Method, e.URL, e.Status)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.TrackingID != "" {
		s += " (tracking id " + e.TrackingID + ")"
	}
	return s
}

// Unwrap maps the status to the sentinel errors (404 and 410 to
// messages.ErrNotFound).
func (e *StatusError) Unwrap() error {
	switch e.Status {
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusNotFound, http.StatusGone:
		return messages.ErrNotFound
	case http.StatusTooManyRequests:
		return ErrThrottled
	}
	return nil
}

// Options configure a Client. Zero fields take the defaults.
type Options struct {
	// Service names the service in errors ("webex").
	Service string
	// MaxAttempts bounds the attempts of a request that fails on the way
	// (HTTP 500, 502, 503, 504, or 423, a dropped connection, a truncated
	// or malformed body); default 4. Only
	// idempotent requests (GET, HEAD, PUT, DELETE) are tried again after
	// such a failure.
	MaxAttempts int
	// Backoff is the wait before the first new attempt, doubled for each
	// next one, at most 30s; default 1s.
	Backoff time.Duration
	// MaxRetryAfter is the longest Retry-After honoured; a longer one ends
	// the request (ErrThrottled); default 10 minutes.
	MaxRetryAfter time.Duration
	// MaxThrottled bounds the 429 answers one request may get; default 30.
	MaxThrottled int
	// MaxJSONBytes bounds a JSON response; default 64 MiB.
	MaxJSONBytes int64
	// Message returns the service's message from an error body ("" when
	// it has none).
	Message func(body []byte) string
	// UserAgent is sent with every request.
	UserAgent string
	// Sleep waits (tests replace it); default: a timer that ctx cancels.
	Sleep  func(ctx context.Context, d time.Duration) error
	Logger *slog.Logger
}

// Client sends requests to one service. It is safe for concurrent use.
type Client struct {
	base *url.URL
	http *http.Client
	auth Auth
	opt  Options

	requests  atomic.Int64
	retries   atomic.Int64
	throttled atomic.Int64
}

// NewClient returns a client of the service at base (absolute URL; the
// origin credentials are sent to, and the only one: a redirect to another
// scheme, host or port is followed without them). auth may be nil.
func NewClient(base string, hc *http.Client, auth Auth, o Options) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("restsync: %q is not an http or https URL", secret.RedactURLs(base))
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	if o.Service == "" {
		o.Service = u.Host
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 4
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = 10 * time.Minute
	}
	if o.MaxThrottled <= 0 {
		o.MaxThrottled = 30
	}
	if o.MaxJSONBytes <= 0 {
		o.MaxJSONBytes = 64 << 20
	}
	if o.Sleep == nil {
		o.Sleep = Sleep
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{base: u, auth: auth, opt: o}
	// Go's client keeps Authorization on a redirect to the same host name
	// at another port or scheme: the credentials go to the service's
	// origin only, and a redirect elsewhere is followed without them.
	redirected := *hc
	next := hc.CheckRedirect
	redirected.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !c.SameOrigin(req.URL) {
			req.Header.Del("Authorization")
			req.Header.Del("Cookie")
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	c.http = &redirected
	return c, nil
}

// Sleep waits d, or until ctx ends (its cause then): Options.Sleep's
// default, and the Gmail transport's wait for a rate limit.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Stats are a client's counts so far.
type Stats struct {
	Requests  int64 // requests sent (every attempt)
	Retries   int64 // attempts after a failure on the way
	Throttled int64 // 429 answers waited out
}

// Stats returns the counts so far.
func (c *Client) Stats() Stats {
	return Stats{Requests: c.requests.Load(), Retries: c.retries.Load(), Throttled: c.throttled.Load()}
}

// Base returns the service's base URL.
func (c *Client) Base() *url.URL { u := *c.base; return &u }

// Resolve returns ref (absolute, or relative to the base URL, whose path
// it extends: "rooms" under https://webexapis.com/v1 is /v1/rooms) as an
// absolute URL.
func (c *Client) Resolve(ref string) (*url.URL, error) {
	u, err := url.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("%s: %q is not a URL", c.opt.Service, secret.RedactURLs(ref))
	}
	if u.IsAbs() {
		return u, nil
	}
	b := *c.base
	b.Path = strings.TrimSuffix(b.Path, "/") + "/" + strings.TrimPrefix(u.Path, "/")
	b.RawPath = ""
	b.RawQuery = u.RawQuery
	return &b, nil
}

// SameOrigin reports whether u is on the service's origin (scheme, host
// and port), where its credentials may be sent. The scheme's default
// port written out (https://webexapis.com:443) is the origin without it,
// as the request goes to the same place: a base URL written so had every
// next-page link and file URL of the service refused.
func (c *Client) SameOrigin(u *url.URL) bool {
	return netguard.Origin(u) == netguard.Origin(c.base)
}

// Request is one request to send.
type Request struct {
	Method string // default GET
	URL    string // absolute (on the service's origin), or relative to the base
	Header http.Header
	// Body returns a fresh body for each attempt (nil: none).
	Body func() (io.Reader, error)
	// ContentLength of Body, when known (-1 or 0 with a Body: unknown).
	ContentLength int64
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// Do sends r and returns a successful (2xx) response, whose body the
// caller closes. It waits out 429 answers (Retry-After, or the backoff),
// tries again after a failure on the way (idempotent requests; a 423
// Locked, which Webex answers for a file it is still scanning for
// malware, after its Retry-After), renews
// refused credentials once, and otherwise returns a *StatusError with the
// service's message, or the transport's error. A token endpoint's 429 or
// 5xx, or its failure to answer (Auth's error is an *oauth.EndpointError)
// is waited out or tried
// again the same way, counted with the request's own, before the request
// is sent (or sent again, after a 401).
func (c *Client) Do(ctx context.Context, r *Request) (*http.Response, error) {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	u, err := c.Resolve(r.URL)
	if err != nil {
		return nil, err
	}
	if !c.SameOrigin(u) {
		return nil, fmt.Errorf("%s: %s: %w", c.opt.Service, secret.RedactURLs(u.String()), ErrOrigin)
	}
	shown := secret.RedactURLs(u.String())
	failures, throttled, renewed := 0, 0, false
	backoff := c.opt.Backoff
	// retry waits before the next attempt after a failure on the way (the
	// backoff, or after when it is not 0), or returns why when there is to
	// be none. unsent: the request did not go out (its credentials could
	// not be had), so that even one that is not idempotent may be sent.
	retry := func(why error, unsent bool, after time.Duration) error {
		failures++
		if !idempotent(method) && !unsent || failures >= c.opt.MaxAttempts {
			return why
		}
		wait := after
		if wait <= 0 {
			wait = backoff
			backoff = min(backoff*2, 30*time.Second)
		}
		c.retries.Add(1)
		c.opt.Logger.Debug("request failed, trying again", "method", method, "url", shown, "attempt", failures+1, "wait", wait, "error", why)
		return c.opt.Sleep(ctx, wait)
	}
	// again handles an answer of status (with its Retry-After header)
	// that is worth waiting out: a rate limit (429, or 503 with a
	// Retry-After) is waited for as long as it says, a failure on the way
	// (500, 502, 503, 504) tried again (retry), and so is a resource
	// locked for a while (423: a file Webex is still scanning for
	// malware), after its Retry-After when it gives one. A Retry-After
	// date counts from at, the answer's time on the service's clock
	// (answeredAt). It returns whether it handled it, and the error that
	// ends the request if it is not to be sent again.
	again := func(status int, ra string, at time.Time, why error, unsent bool) (bool, error) {
		switch {
		case status == http.StatusLocked:
			wait, _ := RetryAfter(ra, at)
			if wait > c.opt.MaxRetryAfter {
				return true, why
			}
			return true, retry(why, unsent, wait)
		case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable && ra != "":
			wait, ok := RetryAfter(ra, at)
			if !ok {
				wait = backoff
				backoff = min(backoff*2, 30*time.Second)
			}
			throttled++
			if throttled > c.opt.MaxThrottled || wait > c.opt.MaxRetryAfter {
				return true, fmt.Errorf("%w: %w", ErrThrottled, why)
			}
			c.throttled.Add(1)
			c.opt.Logger.Debug("rate limited: waiting as the service asks", "method", method, "url", shown, "wait", wait)
			return true, c.opt.Sleep(ctx, wait)
		case status == http.StatusInternalServerError || status == http.StatusBadGateway ||
			status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout:
			return true, retry(why, unsent, 0)
		}
		return false, nil
	}
	// authFailed handles a failure to obtain credentials: the token
	// endpoint's rate limit or failure on the way (an answer of 5xx, or
	// none: a connection refused, reset or timed out) is waited out as the
	// service's own would be (the request was not sent); anything else
	// ends the request.
	authFailed := func(err error) error {
		var ee *oauth.EndpointError
		if errors.As(err, &ee) {
			if ee.Status == 0 {
				return retry(err, true, 0)
			}
			if ok, aerr := again(ee.Status, ee.RetryAfter, time.Now(), err, true); ok {
				return aerr
			}
		}
		return err
	}
	for {
		if err := context.Cause(ctx); err != nil {
			return nil, err
		}
		var body io.Reader
		if r.Body != nil {
			if body, err = r.Body(); err != nil {
				return nil, err
			}
		}
		req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
		if err != nil {
			return nil, fmt.Errorf("%s: %s %s: %w", c.opt.Service, method, shown, err)
		}
		if r.ContentLength > 0 {
			req.ContentLength = r.ContentLength
		}
		for k, vs := range r.Header {
			req.Header[k] = vs
		}
		if c.opt.UserAgent != "" {
			req.Header.Set("User-Agent", c.opt.UserAgent)
		}
		if c.auth != nil {
			if err := c.auth.Authorize(ctx, req); err != nil {
				if ctx.Err() != nil {
					return nil, context.Cause(ctx)
				}
				if err := authFailed(fmt.Errorf("%s: %w: %w", c.opt.Service, ErrAuth, err)); err != nil {
					return nil, err
				}
				continue
			}
		}
		c.requests.Add(1)
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			err = fmt.Errorf("%s: %s %s: %w", c.opt.Service, method, shown, unwrapURLError(err))
			if rerr := retry(err, false, 0); rerr != nil {
				return nil, rerr
			}
			continue
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return resp, nil
		}
		se := c.statusError(method, shown, req, resp)
		switch {
		case resp.StatusCode == http.StatusUnauthorized && c.auth != nil && !renewed:
			renewed = true
			if err := c.auth.Renew(ctx, req); err != nil {
				if ctx.Err() != nil {
					return nil, context.Cause(ctx)
				}
				// The renewal's source stays: a rate limit or failure of
				// the token endpoint is waited out, and the next attempt
				// takes its token.
				if err := authFailed(fmt.Errorf("%w (and no fresh credentials: %w)", se, err)); err != nil {
					return nil, err
				}
				continue
			}
			c.opt.Logger.Debug("credentials refused: renewed them", "method", method, "url", shown)
			continue
		}
		if ok, err := again(resp.StatusCode, resp.Header.Get("Retry-After"), answeredAt(resp.Header), se, false); ok {
			if err != nil {
				return nil, err
			}
			continue
		}
		return nil, se
	}
}

// unwrapURLError drops *url.Error's repetition of the method and URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// statusError reads what the service said (a bounded part of the body)
// and closes the body. The message is scrubbed of req's credentials: a
// service (or a gateway in front of it) may quote the Authorization
// header it refused, and the message goes into the action's error, the
// log and the store.
func (c *Client) statusError(method, shown string, req *http.Request, resp *http.Response) *StatusError {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := ""
	if c.opt.Message != nil {
		msg = c.opt.Message(body)
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	msg = oneLine(secret.Scrub(msg, secret.AuthorizationSecrets(req.Header.Get("Authorization"))...), 500)
	return &StatusError{Service: c.opt.Service, Method: method, URL: shown, Status: resp.StatusCode,
		Message: msg, TrackingID: oneLine(resp.Header.Get("TrackingID"), 200)}
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "")), " ")
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}

// answeredAt is the time of an answer on the service's own clock: its
// Date header, else now. A Retry-After date is a time on that clock, so
// that a service whose clock is behind ours would otherwise ask for a
// wait that looks past (none at all: the request sent again at once, up
// to MaxThrottled times, and then failed), and one ahead for a longer
// wait than it means.
func answeredAt(h http.Header) time.Time {
	if t, err := http.ParseTime(h.Get("Date")); err == nil {
		return t
	}
	return time.Now()
}

// RetryAfter reads a Retry-After header: seconds, or an HTTP date, taken
// as a time on now's clock (the Gmail transport waits out its 429s with
// it too).
func RetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > 1<<31 {
			n = 1 << 31
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

// GetJSON GETs u and decodes its JSON body into v, returning the
// response's header. A body that breaks off, is cut short or is not JSON
// is read again (up to MaxAttempts); one larger than MaxJSONBytes is an
// error.
func (c *Client) GetJSON(ctx context.Context, u string, v any) (http.Header, error) {
	return c.SendJSON(ctx, &Request{URL: u}, v)
}

// SendJSON sends r and decodes its JSON answer into v (nil: the answer is
// read and dropped). Failures of the body are handled as GetJSON's, for
// idempotent requests.
func (c *Client) SendJSON(ctx context.Context, r *Request, v any) (http.Header, error) {
	backoff := c.opt.Backoff
	for attempt := 1; ; attempt++ {
		resp, err := c.Do(ctx, r)
		if err != nil {
			return nil, err
		}
		buf := bodyBuffers.Get().(*bytes.Buffer)
		err = readInto(buf, resp.Body, c.opt.MaxJSONBytes)
		resp.Body.Close()
		if err == nil && v != nil {
			body := buf.Bytes()
			switch d, ok := v.(JSONDecoder); {
			case len(bytes.TrimSpace(body)) == 0:
				err = errors.New("empty body")
			case ok:
				err = d.DecodeJSON(body)
			default:
				err = json.Unmarshal(body, v)
			}
		}
		if buf.Cap() <= maxPooledBody {
			buf.Reset()
			bodyBuffers.Put(buf)
		}
		if err == nil {
			return resp.Header, nil
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		method := r.Method
		if method == "" {
			method = http.MethodGet
		}
		err = fmt.Errorf("%s: %s %s: %w: %w", c.opt.Service, method, secret.RedactURLs(resp.Request.URL.String()), ErrBadResponse, err)
		if errors.Is(err, ErrTooLarge) || !idempotent(method) || attempt >= c.opt.MaxAttempts {
			return nil, err
		}
		c.retries.Add(1)
		c.opt.Logger.Debug("bad response body, reading again", "error", err, "attempt", attempt+1)
		if serr := c.opt.Sleep(ctx, backoff); serr != nil {
			return nil, serr
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// JSONDecoder is a value that decodes a JSON answer itself (a list page
// read for every item, without encoding/json's reflection): SendJSON and
// GetJSON call DecodeJSON with the whole body, which it must not keep (the
// buffer is reused).
type JSONDecoder interface {
	DecodeJSON(body []byte) error
}

// bodyBuffers are the buffers JSON answers are read into (a page of a
// list is read for every few items: its buffer is reused rather than
// grown again each time); one larger than maxPooledBody is dropped.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBody = 4 << 20

// readInto reads r to its end into buf, failing with ErrTooLarge past max
// bytes.
func readInto(buf *bytes.Buffer, r io.Reader, max int64) error {
	if _, err := buf.ReadFrom(io.LimitReader(r, max+1)); err != nil {
		return err
	}
	if int64(buf.Len()) > max {
		return fmt.Errorf("%w: over %d bytes", ErrTooLarge, max)
	}
	return nil
}
