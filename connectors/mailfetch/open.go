package mailfetch

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/connectorhq/connector/connectors/mailfetch/gmailapi"
	"github.com/connectorhq/connector/connectors/mailfetch/imapbox"
	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
	"github.com/connectorhq/connector/internal/readfile"
	"github.com/connectorhq/connector/oauth"
)

// httpClient is the client of the token endpoint and the Gmail API: every
// connection it makes goes through [Security] DeniedAddresses.
func (r *Repository) httpClient(s *settings) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: !s.CheckCert} //nolint:gosec // SSLCheckCertificate=false is the administrator's choice
	if s.CACert != "" {
		pool, err := imapbox.LoadCA(s.CACert)
		if err != nil {
			return nil, fmt.Errorf("mailfetch: [%s] SSLCACertificate: %w", s.Task, err)
		}
		tc.RootCAs = pool
	}
	d := r.guard.Dialer(s.Timeout, 30*time.Second)
	tr := &http.Transport{
		DialContext:         r.guard.DialContext(d),
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: s.Timeout,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Minute}, nil
}

// tokens returns the task's OAuth 2.0 access tokens: from a service
// account key acting for Username (domain-wide delegation), or refreshed
// from the token file `connector oauth` wrote.
func (r *Repository) tokens(ctx context.Context, s *settings, hc *http.Client) (oauth2.TokenSource, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	if s.KeyFile != "" {
		data, err := readfile.Regular(s.KeyFile, 1<<20) // a FIFO or a device is refused, not read for ever
		if err != nil {
			return nil, fmt.Errorf("mailfetch: [%s] ServiceAccountKeyFile: %w", s.Task, err)
		}
		jc, err := google.JWTConfigFromJSON(data, s.Scopes...)
		if err != nil {
			return nil, fmt.Errorf("mailfetch: [%s] ServiceAccountKeyFile %s: %w", s.Task, s.KeyFile, err)
		}
		jc.Subject = s.Username
		ctx = context.WithValue(ctx, oauth2.HTTPClient, oauth.TokenClient(hc, jc.TokenURL))
		return &describing{inner: jc.TokenSource(ctx)}, nil
	}
	key, err := r.key.Get()
	if err != nil {
		return nil, fmt.Errorf("mailfetch: [%s] the token file is encrypted with [Security] AESKeyFile: %w", s.Task, err)
	}
	oc := s.OAuth()
	oc.HTTPClient = hc
	return oauth.TokenFile{Path: s.TokenFile, Key: key}.TokenSource(ctx, oc)
}

// describing says what a token endpoint answered, without the request.
type describing struct{ inner oauth2.TokenSource }

func (d *describing) Token() (*oauth2.Token, error) {
	t, err := d.inner.Token()
	if err != nil {
		// Its status: a rate limit or a failure on the way is waited out
		// (the Gmail API's transport).
		return nil, oauth.Failure(err, "oauth: service account token: "+oauth.Describe(err))
	}
	return t, nil
}

// open connects to the task's mailbox.
func (r *Repository) open(ctx context.Context, s *settings) (mailbox.Mailbox, error) {
	hc, err := r.httpClient(s)
	if err != nil {
		return nil, err
	}
	var ts oauth2.TokenSource
	if s.Transport == TransportGmailAPI || s.Auth == imapbox.AuthXOAuth2 || s.Auth == imapbox.AuthOAuthBearer {
		if ts, err = r.tokens(ctx, s, hc); err != nil {
			return nil, fmt.Errorf("%w: %v", mailbox.ErrAuth, err)
		}
		if s.Transport != TransportGmailAPI {
			// The token endpoint's rate limits and failures on the way
			// are waited out, as the Gmail API's transport does its own.
			ts = gmailapi.WaitingTokens(ctx, ts, r.log)
		}
	}
	if s.Transport == TransportGmailAPI {
		return gmailapi.Open(ctx, gmailapi.Config{
			Endpoint: s.GmailAPIURL, User: s.Username, Tokens: ts, HTTPClient: hc,
			Labels: s.Folders, LabelMustHave: s.FolderMustHave, LabelCantHave: s.FolderCantHave,
			IncludeSpamTrash: s.IncludeSpamTrash, MaxMessageBytes: s.MaxMessageBytes,
			DeleteForever: s.DeleteMode == DeleteForever, Logger: r.log,
		})
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: !s.CheckCert} //nolint:gosec // the administrator's choice
	if s.CACert != "" {
		pool, err := imapbox.LoadCA(s.CACert)
		if err != nil {
			return nil, fmt.Errorf("mailfetch: [%s] SSLCACertificate: %w", s.Task, err)
		}
		tc.RootCAs = pool
	}
	d := r.guard.Dialer(s.Timeout, 30*time.Second)
	return imapbox.Dial(ctx, imapbox.Config{
		Addr: net.JoinHostPort(s.Server, strconv.Itoa(s.Port)), Security: s.Security, TLSConfig: tc,
		Auth: s.Auth, Username: s.Username, Password: s.Password, Tokens: ts,
		Folders: s.Folders, FolderMustHave: s.FolderMustHave, FolderCantHave: s.FolderCantHave,
		IncludeSpamTrash: s.IncludeSpamTrash, MaxMessageBytes: s.MaxMessageBytes, FetchBatch: s.FetchBatchSize,
		Timeout: s.Timeout, Dial: r.guard.DialContext(d), Logger: r.log,
	})
}
