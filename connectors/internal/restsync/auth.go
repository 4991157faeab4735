package restsync

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/internal/netguard"
	"github.com/connectorhq/connector/internal/readfile"
)

// TokenAuth sends OAuth 2.0 bearer tokens. New makes a token source (one
// that refreshes on its first Token call); when the service refuses a
// token, Renew drops the source, so that the next request gets a token
// from a new one: a token that expires early or is revoked mid-run costs
// one refresh, not the run.
type TokenAuth struct {
	New func(ctx context.Context) (oauth2.TokenSource, error)

	mu   sync.Mutex
	src  oauth2.TokenSource
	last string // the access token last handed out
	// renewing is held through a renewal, so that requests refused at
	// the same time (several in flight with the same token) wait for the
	// first one's new token instead of each renewing it.
	renewing sync.Mutex
}

func (a *TokenAuth) source(ctx context.Context) (oauth2.TokenSource, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.src == nil {
		s, err := a.New(ctx)
		if err != nil {
			return nil, err
		}
		a.src = s
	}
	return a.src, nil
}

// token asks src for a token, returning when ctx ends even if the token
// endpoint does not answer (a source's refreshes are bound to the context
// it was made with, which outlives one action; the abandoned refresh ends
// with the HTTP client's timeouts, and its token is kept for the next
// request). A panic of src (in the reading of the endpoint's answer),
// which on its goroutine would end the process, is raised again on the
// caller's, whose recovery makes it the action's Error (as Walk does with
// a page's).
func token(ctx context.Context, src oauth2.TokenSource) (*oauth2.Token, error) {
	type result struct {
		tok      *oauth2.Token
		err      error
		panicked any
	}
	ch := make(chan result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				ch <- result{panicked: r}
			}
		}()
		t, err := src.Token()
		ch <- result{tok: t, err: err}
	}()
	select {
	case r := <-ch:
		if r.panicked != nil {
			panic(r.panicked)
		}
		return r.tok, r.err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// Authorize implements Auth.
func (a *TokenAuth) Authorize(ctx context.Context, req *http.Request) error {
	src, err := a.source(ctx)
	if err != nil {
		return err
	}
	tok, err := token(ctx, src)
	if err != nil {
		return err
	}
	if tok.AccessToken == "" {
		return errors.New("the token endpoint issued no access token")
	}
	// Only a token of the current source is the last one handed out: a
	// request that took its token from a source a renewal has since
	// dropped would otherwise make that old token "last" again, and its
	// refusal would renew a second time.
	a.mu.Lock()
	if a.src == src {
		a.last = tok.AccessToken
	}
	a.mu.Unlock()
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	return nil
}

// Renew implements Auth: it obtains a fresh token at once, so that a
// refusal by the token endpoint is reported with the 401.
func (a *TokenAuth) Renew(ctx context.Context, refused *http.Request) error {
	sent := strings.TrimPrefix(refused.Header.Get("Authorization"), "Bearer ")
	a.renewing.Lock()
	defer a.renewing.Unlock()
	a.mu.Lock()
	if sent != a.last && a.src != nil {
		a.mu.Unlock()
		return nil // another request renewed it already
	}
	a.src = nil
	a.mu.Unlock()
	src, err := a.source(ctx)
	if err != nil {
		return err
	}
	tok, err := token(ctx, src)
	if err != nil {
		return err
	}
	a.mu.Lock()
	if a.src == src {
		a.last = tok.AccessToken
	}
	a.mu.Unlock()
	if tok.AccessToken == sent {
		return errors.New("the token endpoint issued the refused token again")
	}
	return nil
}

// BasicAuth sends a user name and password (HTTP basic authentication).
// There is nothing to renew: a refusal ends the request.
type BasicAuth struct {
	User, Password string
}

// Authorize implements Auth.
func (a BasicAuth) Authorize(_ context.Context, req *http.Request) error {
	req.SetBasicAuth(a.User, a.Password)
	return nil
}

// Renew implements Auth.
func (a BasicAuth) Renew(context.Context, *http.Request) error {
	return errors.New("the user name and password are refused")
}

// TLS are the certificate settings of a task.
type TLS struct {
	// CheckCertificate verifies the service's certificate
	// (SSLCheckCertificate; false is the administrator's choice).
	CheckCertificate bool
	// CAFile is a PEM file of certificate authorities to trust instead of
	// the system's (SSLCACertificate), "" for the system's.
	CAFile string
}

// HTTPClient returns the HTTP client of a task: every connection it makes
// goes through [Security] DeniedAddresses (guard), with the task's
// certificate settings; timeout bounds connecting, the wait for each
// response's headers, and any silence of the service while a body is read
// (a service that stops sending mid-body fails the read instead of
// stalling the action).
func HTTPClient(guard *netguard.Guard, t TLS, timeout time.Duration) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: !t.CheckCertificate} //nolint:gosec // SSLCheckCertificate=false is the administrator's choice
	if t.CAFile != "" {
		pem, err := readfile.Regular(t.CAFile, 16<<20) // a FIFO or a device is refused, not read for ever
		if err != nil {
			return nil, fmt.Errorf("SSLCACertificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("SSLCACertificate: %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	d := guard.Dialer(timeout, 30*time.Second)
	dial := guard.DialContext(d)
	tr := &http.Transport{
		// No proxy: the deny list is enforced where connections are dialled.
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &idleConn{Conn: c, timeout: timeout}, nil
		},
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: tr}, nil
}

// idleConn fails a read that waits longer than timeout for data.
type idleConn struct {
	net.Conn
	timeout time.Duration
}

func (c *idleConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}
