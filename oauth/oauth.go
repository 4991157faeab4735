// Package oauth obtains and keeps the OAuth 2.0 tokens of connectors that
// read a service as a user (Google Mail today, Webex next): a one-time,
// interactive authorization-code flow on a loopback redirect (Authorize,
// behind `connector oauth`), a token file that holds the refresh token
// encrypted and readable by its owner only (TokenFile), and the token
// source that refreshes access tokens from it unattended at run time.
//
// # The one-time authorization
//
// Authorize listens on the loopback address of Config.RedirectURL (port 0
// or none: any free port, as RFC 8252 section 7.3 allows and Google's
// "desktop app" clients accept), shows the consent URL (with PKCE, RFC
// 7636, and a random state), waits for the browser's redirect, checks the
// state, and exchanges the code for tokens. Only a refresh token is worth
// keeping: TokenFile.Save writes it.
//
// # The token file
//
// JSON, mode 0600 in a folder created 0700, written to a temporary file and
// renamed into place. The refresh token is stored in IDOL's
// encrypted-password form (package secret) with the server's AES key, so a
// copy of the file alone does not give the token away. Load refuses a file
// that others may read. Nothing in this package logs or returns a token in
// an error.
//
// # In a cluster
//
// The nodes of a cluster each have a token file, but a provider that
// rotates refresh tokens (Webex) refuses the copy another node's refresh
// has spent: with a store several processes share (TokenFile.Store), the
// token in use is kept there, encrypted alike, and refreshed in the
// store's turn (TokenSource).
package oauth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/internal/netguard"
	"github.com/connectorhq/connector/internal/readfile"
	"github.com/connectorhq/connector/internal/syncdir"
	"github.com/connectorhq/connector/secret"
	"github.com/connectorhq/connector/store"
)

// Config is an OAuth 2.0 client of one provider.
type Config struct {
	ClientID     string
	ClientSecret string
	AuthURL      string // the provider's authorization endpoint
	TokenURL     string // the provider's token endpoint
	Scopes       []string
	// RedirectURL is the loopback redirect: http://127.0.0.1[:port][/path]
	// (or localhost, or [::1]). Without a port (or with port 0) Authorize
	// listens on any free port. Default http://127.0.0.1/.
	RedirectURL string
	// AuthParams are added to the consent URL (Google:
	// access_type=offline and prompt=consent, so that a refresh token is
	// issued every time).
	AuthParams map[string]string
	// HTTPClient sends the token requests (through TokenClient); nil:
	// http.DefaultClient.
	HTTPClient *http.Client
}

// Google's OAuth 2.0 endpoints and the parameters that make it issue a
// refresh token.
const (
	GoogleAuthURL  = "https://accounts.google.com/o/oauth2/auth"
	GoogleTokenURL = "https://oauth2.googleapis.com/token"
)

// GoogleAuthParams ask Google for a refresh token on every consent.
var GoogleAuthParams = map[string]string{"access_type": "offline", "prompt": "consent"}

func (c Config) oauth2(redirect string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: c.AuthURL, TokenURL: c.TokenURL},
		RedirectURL:  redirect,
		Scopes:       c.Scopes,
	}
}

func (c Config) context(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, TokenClient(c.HTTPClient, c.TokenURL))
}

// TokenClient returns hc (nil: http.DefaultClient) for requests to the
// token endpoint tokenURL: a copy that follows no redirect away from the
// endpoint's origin (scheme, host and port). A token request carries the
// client secret and a refresh token, password or signed assertion in its
// body, and Go re-posts the body to the target of a 307 or 308.
func TokenClient(hc *http.Client, tokenURL string) *http.Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	c := *hc
	next := hc.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		from, err := url.Parse(tokenURL)
		// One origin: scheme, host and port, the scheme's default port
		// written out or not (netguard.Origin).
		if err != nil || netguard.Origin(req.URL) != netguard.Origin(from) {
			return fmt.Errorf("redirected away from the token endpoint's origin, to %s: %w", req.URL.Redacted(), errRedirectRefused)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	next2 := hc.Transport
	if next2 == nil {
		next2 = http.DefaultTransport
	}
	c.Transport = ScrubRefusals(next2)
	return &c
}

// ScrubRefusals returns a transport that sends requests through next
// (nil: http.DefaultTransport) and scrubs the body of a refusal (a status
// of 400 or more) of the secrets its request carried (secret.Scrub): its
// Authorization header's credentials and the secret fields of a form body
// (client_secret, refresh_token, password, code, assertion and the like).
// A token endpoint or an API (or a proxy in front of it) may quote the
// request in its error, and that error is shown as the service's message
// in the action's error, the log and the store. A success is left alone:
// it carries the tokens themselves. TokenClient's transport is one; the
// Gmail API's client has one under the transport that adds the token.
func ScrubRefusals(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return scrubRefusals{next: next}
}

type scrubRefusals struct{ next http.RoundTripper }

// secretFields are the form fields of a token request that hold secrets.
var secretFields = []string{"client_secret", "refresh_token", "password", "code", "code_verifier",
	"assertion", "client_assertion", "subject_token", "actor_token"}

func (s scrubRefusals) RoundTrip(req *http.Request) (*http.Response, error) {
	secrets := secret.AuthorizationSecrets(req.Header.Get("Authorization"))
	if req.GetBody != nil && strings.HasPrefix(req.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if b, err := req.GetBody(); err == nil {
			data, _ := io.ReadAll(io.LimitReader(b, 1<<20))
			_ = b.Close()
			if form, err := url.ParseQuery(string(data)); err == nil {
				for _, f := range secretFields {
					secrets = append(secrets, form[f]...)
				}
			}
		}
	}
	resp, err := s.next.RoundTrip(req)
	if err != nil || resp.StatusCode < 400 || len(secrets) == 0 {
		return resp, err
	}
	data, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	scrubbed := secret.Scrub(string(data), secrets...)
	resp.Body = io.NopCloser(strings.NewReader(scrubbed))
	resp.ContentLength = int64(len(scrubbed))
	resp.Header.Del("Content-Length")
	if rerr != nil && scrubbed == "" {
		return nil, rerr
	}
	return resp, nil
}

// Check validates what Authorize and TokenSource need.
func (c Config) Check() error {
	switch {
	case strings.TrimSpace(c.ClientID) == "":
		return errors.New("oauth: no client ID")
	case c.TokenURL == "":
		return errors.New("oauth: no token endpoint")
	}
	if _, err := url.Parse(c.TokenURL); err != nil {
		return fmt.Errorf("oauth: token endpoint: %v", err)
	}
	return nil
}

// LoopbackRedirect parses a loopback redirect URL and returns the address
// to listen on and the path of the redirect. Only http:// URLs on
// 127.0.0.1, [::1] or localhost are accepted: the redirect carries the
// authorization code, and must not leave the machine.
func LoopbackRedirect(raw string) (listen, path string, err error) {
	if raw == "" {
		raw = "http://127.0.0.1/"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("oauth: redirect URL %q: %v", raw, err)
	}
	host := u.Hostname()
	if u.Scheme != "http" || (host != "127.0.0.1" && host != "::1" && host != "localhost") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("oauth: redirect URL %q must be http:// on 127.0.0.1, [::1] or localhost, without query (a loopback redirect)", raw)
	}
	port := u.Port()
	if port == "" {
		port = "0"
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	path = u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return net.JoinHostPort(host, port), path, nil
}

// Authorize runs the authorization-code flow: show is called once with the
// consent URL for a person to open in a browser; Authorize returns when the
// browser comes back to the loopback redirect (or ctx ends). The returned
// token normally carries a refresh token; ErrNoRefreshToken says when it
// does not.
func Authorize(ctx context.Context, c Config, show func(consentURL string)) (*oauth2.Token, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	if c.AuthURL == "" {
		return nil, errors.New("oauth: no authorization endpoint")
	}
	listen, path, err := LoopbackRedirect(c.RedirectURL)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("oauth: listen for the redirect on %s: %w", listen, err)
	}
	defer ln.Close()
	host := "127.0.0.1"
	if u, err := url.Parse(c.RedirectURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	redirect := "http://" + net.JoinHostPort(host, fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)) + path
	oc := c.oauth2(redirect)
	state := randomHex(16)
	verifier := oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	for k, v := range c.AuthParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	type result struct {
		code string
		err  error
	}
	got := make(chan result, 1)
	var once sync.Once
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		var res result
		switch {
		case q.Get("state") != state:
			// Not our browser's redirect (or a forged one): ignore it and
			// keep waiting.
			http.Error(w, "unexpected state", http.StatusBadRequest)
			return
		case q.Get("error") != "":
			res.err = fmt.Errorf("oauth: the provider refused the authorization: %s %s", q.Get("error"), q.Get("error_description"))
		case q.Get("code") == "":
			res.err = errors.New("oauth: the redirect carries no code")
		default:
			res.code = q.Get("code")
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if res.err != nil {
			fmt.Fprintf(w, "<!doctype html><title>Authorization failed</title><p>%s</p>", html.EscapeString(res.err.Error()))
		} else {
			fmt.Fprint(w, "<!doctype html><title>Authorized</title><p>The connector is authorized. You can close this page.</p>")
		}
		once.Do(func() { got <- res })
	})}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	show(oc.AuthCodeURL(state, opts...))
	var res result
	select {
	case res = <-got:
	case <-ctx.Done():
		return nil, fmt.Errorf("oauth: no redirect came back: %w", context.Cause(ctx))
	}
	if res.err != nil {
		return nil, res.err
	}
	tok, err := oc.Exchange(c.context(ctx), res.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, fmt.Errorf("oauth: exchange the code: %s", Describe(err))
	}
	if tok.RefreshToken == "" {
		return tok, ErrNoRefreshToken
	}
	return tok, nil
}

// ErrNoRefreshToken: the provider granted access without a refresh token
// (Google does so when the user had already consented and prompt=consent
// was not asked; revoke the connector's access and authorize again).
var ErrNoRefreshToken = errors.New("oauth: the provider issued no refresh token")

// Describe is what an error from the token endpoint says, without the
// request or any token: the provider's error code and description (an
// expired or revoked refresh token is "invalid_grant: Token has been
// expired or revoked.").
func Describe(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		msg := re.ErrorCode
		if re.ErrorDescription != "" {
			msg += ": " + re.ErrorDescription
		}
		if msg == "" && re.Response != nil {
			msg = re.Response.Status
		}
		return "the token endpoint answered " + msg
	}
	return err.Error()
}

// EndpointError is a token endpoint's answer that is not a token: its
// HTTP status and Retry-After header, by which a caller tells a refusal
// (400 invalid_grant, 401 invalid_client) from a rate limit or a failure
// on the way (429, 5xx) that is worth waiting out, and a message that says
// what the endpoint answered without the request or any token. Status 0:
// no answer came (the connection was refused, reset or timed out), which
// is a failure on the way too.
type EndpointError struct {
	Status     int
	RetryAfter string
	Message    string
}

// errRedirectRefused: TokenClient refused a redirect away from the token
// endpoint's origin (an answer, not a failure on the way).
var errRedirectRefused = errors.New("refused")

// Unanswered returns the EndpointError of a token request that got no
// answer (err is the HTTP client's *url.Error: the connection refused,
// reset or timed out), or nil when err is not one: a failure on the way,
// worth trying again as a 502 is. A redirect TokenClient refused is an
// answer.
func Unanswered(err error, msg string) *EndpointError {
	var ue *url.Error
	if !errors.As(err, &ue) || errors.Is(err, errRedirectRefused) {
		return nil
	}
	return &EndpointError{Message: msg}
}

func (e *EndpointError) Error() string { return e.Message }

// Unavailable reports whether err is a token endpoint's rate limit or
// failure on the way (an *EndpointError of status 429, 5xx, or 0: no
// answer), worth waiting out: not a refusal of the authorization.
func Unavailable(err error) bool {
	var ee *EndpointError
	return errors.As(err, &ee) && (ee.Status == 0 || ee.Status == http.StatusTooManyRequests || ee.Status >= 500)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// DefaultTokenFile is the token file of a task whose OAuthTokenFile names
// none: dataDir/oauth/<task, lower-cased>.token. A task name that would
// put it outside dataDir/oauth (`../x`, `a/../../x`, an absolute path) is
// an error: the server never touches a file outside its folders.
func DefaultTokenFile(dataDir, task string) (string, error) {
	name := strings.ToLower(task) + ".token"
	if !filepath.IsLocal(name) {
		return "", fmt.Errorf("the task's name %q would put its default token file outside DataDirectory/oauth: set OAuthTokenFile", task)
	}
	return filepath.Join(dataDir, "oauth", name), nil
}

// TokenFile is a refresh token kept on disk for a connector.
type TokenFile struct {
	Path string
	// Key encrypts the refresh token in the file (the server's [Security]
	// AESKeyFile key). Required.
	Key *secret.Key
	// Store, when it is shared by several processes (store.Turns: the
	// PostgreSQL store of a cluster), keeps the refresh token in use for
	// every node, under Name: see TokenSource. Other stores (nil, one
	// process's) are not used.
	Store store.Store
	// Name names the token in a shared Store: the same on every node for
	// the same grant, whatever the file's path there (webexfetch names a
	// task's default token file after the task, a configured one after
	// its path); default Path.
	Name string
}

// fileFormat is the token file's JSON.
type fileFormat struct {
	// RefreshToken is in IDOL's encrypted-password form.
	RefreshToken string    `json:"refresh_token"`
	ClientID     string    `json:"client_id,omitempty"`
	Scopes       []string  `json:"scopes,omitempty"`
	Saved        time.Time `json:"saved"`
}

// Save writes tok's refresh token (encrypted), with the client ID and
// scopes it was granted for: whole, under a temporary name synced and
// renamed into place, and the folder synced after the rename, so that
// after a crash or a power loss the file holds either the token before
// or the new one, and once Save returns, the new one.
func (f TokenFile) Save(tok *oauth2.Token, clientID string, scopes []string) error {
	if tok == nil || tok.RefreshToken == "" {
		return ErrNoRefreshToken
	}
	if f.Key == nil {
		return errors.New("oauth: token file: no key to encrypt the token with")
	}
	enc, err := f.Key.Encrypt(tok.RefreshToken)
	if err != nil {
		return fmt.Errorf("oauth: token file %s: %w", f.Path, err)
	}
	data, err := json.MarshalIndent(fileFormat{RefreshToken: enc, ClientID: clientID, Scopes: scopes, Saved: time.Now().UTC()}, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("oauth: token file %s: %w", f.Path, err)
	}
	tmp, err := os.CreateTemp(dir, ".token-*")
	if err != nil {
		return fmt.Errorf("oauth: token file %s: %w", f.Path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("oauth: token file %s: %w", f.Path, err)
	}
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.Path)
	}
	if err == nil {
		// Else a power loss may undo the rename: the file would hold
		// the token before a rotation, which the provider has spent.
		err = syncTokenDir(dir)
	}
	if err != nil {
		return fmt.Errorf("oauth: token file %s: %w", f.Path, err)
	}
	return nil
}

// syncTokenDir syncs a token file's folder after the rename that put the
// file in place (a test's seam).
var syncTokenDir = syncdir.Sync

// ErrTokenFile wraps every problem with a token file.
var ErrTokenFile = errors.New("oauth: token file")

// Load reads the refresh token. A missing file says to run
// `connector oauth`; a file others can read is refused.
func (f TokenFile) Load() (*oauth2.Token, error) {
	tok, _, err := f.load()
	return tok, err
}

// load is Load, with the time the file was saved.
func (f TokenFile) load() (*oauth2.Token, time.Time, error) {
	var none time.Time
	st, err := os.Stat(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, none, fmt.Errorf("%w %s does not exist: run `connector oauth -config <file> -task <task>` once to authorize the connector", ErrTokenFile, f.Path)
	}
	if err != nil {
		return nil, none, fmt.Errorf("%w %s: %v", ErrTokenFile, f.Path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, none, fmt.Errorf("%w %s is readable by other users (mode %04o): it holds a refresh token; chmod 600 it", ErrTokenFile, f.Path, st.Mode().Perm())
	}
	data, err := readfile.Regular(f.Path, 1<<20) // a FIFO or a device is refused, not read for ever
	if err != nil {
		return nil, none, fmt.Errorf("%w %s: %v", ErrTokenFile, f.Path, err)
	}
	var ff fileFormat
	if err := json.Unmarshal(data, &ff); err != nil || ff.RefreshToken == "" {
		return nil, none, fmt.Errorf("%w %s: not a token file written by `connector oauth`", ErrTokenFile, f.Path)
	}
	if !secret.IsEncrypted(ff.RefreshToken) {
		return nil, none, fmt.Errorf("%w %s: the refresh token is not encrypted", ErrTokenFile, f.Path)
	}
	rt, err := f.Key.Decrypt(ff.RefreshToken)
	if err != nil {
		return nil, none, fmt.Errorf("%w %s: %w", ErrTokenFile, f.Path, err)
	}
	return &oauth2.Token{RefreshToken: rt}, ff.Saved, nil
}

// TokenSource returns access tokens refreshed with the file's refresh
// token, reusing each until shortly before it expires. When the provider
// issues a new refresh token (rotation), the file is rewritten. A refusal
// by the provider (revoked or expired grant) is an error saying so with the
// provider's message.
//
// Every refresh starts from the file's refresh token when another writer
// has replaced it since this source read or wrote it: another source of
// the same file that rotated it (another action of the task, the source a
// renewal makes beside the one in use), or `connector oauth` run again
// after a refusal. The sources of one file in this process take turns at
// refreshing, so that none sends a token another has just spent (a
// provider that rotates refresh tokens refuses a spent one, and some
// revoke the whole grant when one comes back).
//
// With a Store shared by several processes (the nodes of a cluster), the
// refresh token in use is kept in the store, not in each node's file:
// each node has a file of its own, and a node that sent its copy of a
// token the provider rotates would have spent every other node's copy
// (their next refresh refused with invalid_grant, and a provider that
// revokes the grant when a spent token comes back loses it for all). The
// store's record (a datastore of its own, SharedDatastore(Name)) holds
// the token encrypted with Key, as the file does, and the time the token
// file it started from was saved; each refresh reads
// and writes it in the store's turn (store.Turn) of that name, so that
// the nodes refresh one at a time from the last token issued. A token
// file saved later than that (`connector oauth` run again, on any node)
// replaces the store's token at that node's next refresh; a node without
// a token file uses the store's. The file is not rewritten on rotation
// then. A rotated token is written even by a node the cluster has declared
// dead meanwhile (store.Unfenced): the token it sent is spent.
func (f TokenFile) TokenSource(ctx context.Context, c Config) (oauth2.TokenSource, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	src := &savingSource{ctx: c.context(ctx), conf: c.oauth2(""), file: f, clientID: c.ClientID, scopes: c.Scopes}
	if f.shared() {
		return oauth2.ReuseTokenSource(nil, src), nil
	}
	tok, err := f.Load()
	if err != nil {
		return nil, err
	}
	src.refresh, src.stored = tok.RefreshToken, tok.RefreshToken
	return oauth2.ReuseTokenSource(nil, src), nil
}

// shared reports whether the token is kept in a store several processes
// share.
func (f TokenFile) shared() bool {
	_, ok := f.Store.(store.Turns)
	return ok
}

// sharedRecord is a token file's refresh token in a shared store.
type sharedRecord struct {
	// RefreshToken is in IDOL's encrypted-password form.
	RefreshToken string `json:"refresh_token"`
	// From is when the token file the token started from was saved.
	From  time.Time `json:"from"`
	Saved time.Time `json:"saved"`
}

// SharedDatastore is the name of the datastore of a shared store that
// keeps the refresh token called name (TokenFile.Name; in lower case:
// the tasks' datastores are named in upper case).
func SharedDatastore(name string) string { return "oauth-token:" + name }

// sharedName is the name of the token in a shared store.
func (f TokenFile) sharedName() string {
	if f.Name != "" {
		return f.Name
	}
	return f.Path
}

var sharedKey = []byte("token")

// fileTurns holds a mutex for each token file's path: the refreshes of
// the sources of one file take turns.
var fileTurns sync.Map

func fileTurn(path string) *sync.Mutex {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	mu, _ := fileTurns.LoadOrStore(path, new(sync.Mutex))
	return mu.(*sync.Mutex)
}

// savingSource refreshes access tokens, saves a rotated refresh token and
// describes refusals. oauth2.ReuseTokenSource calls its Token one at a
// time.
type savingSource struct {
	ctx  context.Context
	conf *oauth2.Config
	file TokenFile
	// refresh is the refresh token to send; stored is the one the file
	// held when this source last read or wrote it (they differ when a
	// rotated token could not be saved: refresh, the only good one, is
	// kept and saving it tried again).
	refresh, stored string
	// In a shared store: pending is a rotated token that could not be
	// written to the store, which held spent then (the token sent).
	pending, spent string
	clientID       string
	scopes         []string
}

func (s *savingSource) Token() (*oauth2.Token, error) {
	turn := fileTurn(s.file.Path)
	turn.Lock()
	defer turn.Unlock()
	if s.file.shared() {
		var tok *oauth2.Token
		err := store.Turn(s.file.Store, SharedDatastore(s.file.sharedName()), func() error {
			var err error
			tok, err = s.sharedToken()
			return err
		})
		return tok, err
	}
	if cur, err := s.file.Load(); err == nil && cur.RefreshToken != s.stored {
		s.refresh, s.stored = cur.RefreshToken, cur.RefreshToken
	}
	tok, err := s.refreshWith(s.refresh)
	if err != nil {
		return nil, err
	}
	if tok.RefreshToken != "" && tok.RefreshToken != s.stored {
		// The token sent may be spent: the new one is kept in memory
		// even when it cannot be saved.
		s.refresh = tok.RefreshToken
		if err := s.file.Save(tok, s.clientID, s.scopes); err != nil {
			return nil, err
		}
		s.stored = tok.RefreshToken
	}
	return tok, nil
}

// sharedToken refreshes from the shared store's token (or the file's, when
// it was saved later), in the store's turn, and writes a rotated one back.
func (s *savingSource) sharedToken() (*oauth2.Token, error) {
	where := fmt.Sprintf("oauth: the refresh token %s in the cluster's store", s.file.sharedName())
	ds, err := s.file.Store.Datastore(SharedDatastore(s.file.sharedName()))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	b, err := ds.Get(sharedKey)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	var rec sharedRecord
	cur := ""
	var recErr error // the record cannot be read: a token file saved later replaces it
	if b != nil {
		if err := json.Unmarshal(b, &rec); err != nil || !secret.IsEncrypted(rec.RefreshToken) {
			rec, recErr = sharedRecord{}, fmt.Errorf("%s: not a record of a refresh token", where)
		} else if cur, err = s.file.Key.Decrypt(rec.RefreshToken); err != nil {
			// Encrypted with another key: [Security] AESKeyFile changed.
			recErr = fmt.Errorf("%s: %w", where, err)
		}
	}
	send, from := cur, rec.From
	if s.pending != "" && s.spent == cur && recErr == nil {
		send = s.pending // rotated here, and not written
	}
	file, saved, ferr := s.file.load()
	if ferr == nil && (b == nil || saved.After(rec.From)) {
		// The first use, or a new authorization.
		send, from = file.RefreshToken, saved
	} else if recErr != nil {
		return nil, fmt.Errorf("%w (authorize again with `connector oauth` on one node: its token file replaces the record)", recErr)
	}
	if send == "" {
		return nil, ferr
	}
	tok, err := s.refreshWith(send)
	if err != nil {
		return nil, err
	}
	next := send
	if tok.RefreshToken != "" {
		next = tok.RefreshToken
	}
	if b != nil && next == cur && from.Equal(rec.From) {
		s.pending = ""
		return tok, nil
	}
	enc, err := s.file.Key.Encrypt(next)
	if err == nil {
		var v []byte
		v, err = json.Marshal(sharedRecord{RefreshToken: enc, From: from, Saved: time.Now().UTC()})
		if err == nil {
			put := func(w store.Writer) error { return w.Put(sharedKey, v) }
			if u, ok := ds.(store.Unfenced); ok {
				// Written even by a node declared dead while it
				// refreshed (a zombie: paused past its lease): the
				// token it sent is spent, and this turn keeps any
				// other node from refreshing meanwhile.
				err = u.UpdateUnfenced(put)
			} else {
				err = ds.Update(put)
			}
		}
	}
	if err != nil {
		// The token sent may be spent: the new one is kept in memory,
		// and written by the next refresh.
		s.pending, s.spent = next, cur
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	s.pending = ""
	return tok, nil
}

// refreshWith sends a refresh token to the token endpoint.
func (s *savingSource) refreshWith(rt string) (*oauth2.Token, error) {
	tok, err := s.conf.TokenSource(s.ctx, &oauth2.Token{RefreshToken: rt}).Token()
	if err != nil {
		return nil, Failure(err, fmt.Sprintf("oauth: refresh the access token (token file %s): %s", s.file.Path, Describe(err)))
	}
	return tok, nil
}

// Failure is the error of a token request that failed with err (from
// golang.org/x/oauth2), saying msg (which must not quote a token): an
// *EndpointError with the endpoint's status and Retry-After when it
// answered, or of status 0 when it did not (Unanswered), so that a rate
// limit or a failure on the way can be waited out; else a plain error.
func Failure(err error, msg string) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return &EndpointError{Status: re.Response.StatusCode, RetryAfter: re.Response.Header.Get("Retry-After"), Message: msg}
	}
	if ee := Unanswered(err, msg); ee != nil {
		return ee
	}
	return errors.New(msg)
}
