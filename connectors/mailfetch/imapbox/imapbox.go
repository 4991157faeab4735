// Package imapbox is the IMAP transport of the Google Mail connector: a
// mailbox.Mailbox on an IMAP server (Gmail's, or any other), through
// github.com/emersion/go-imap/v2.
//
// # Connection and authentication
//
// TLS (implicit, port 993), STARTTLS or none; certificates are checked
// unless told otherwise, against the system roots or a CA file. A password
// is sent with AUTHENTICATE PLAIN when the server offers it, else with
// LOGIN (AuthPassword), or with the one asked for (AuthPlain, AuthLogin). An
// OAuth 2.0 access token (from any oauth2.TokenSource: a refresh token
// file, a service account) is sent with SASL XOAUTH2 (Google's) or
// OAUTHBEARER (RFC 7628). A refusal wraps mailbox.ErrAuth and carries the
// server's words (for XOAUTH2, Google's JSON error); so does a token the
// token endpoint refused, but not its rate limit or failure on the way
// (oauth.Unavailable), which is no refusal of the authorization. The capabilities
// after the log in are those the server sent with the tagged OK of LOGIN
// or AUTHENTICATE when it did (capsTap), else CAPABILITY asks for them.
//
// # Synchronization
//
// A folder's cursor is its UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ (CONDSTORE)
// and message count. When the server has CONDSTORE and LIST-STATUS and all
// four are as recorded, the folder is unchanged and Plan sends nothing more
// (one LIST for every folder). Otherwise it selects the folder, lists its
// UIDs (UID SEARCH ALL), asks for the flags of the known messages that
// changed since the recorded HIGHESTMODSEQ (UID FETCH ... (CHANGEDSINCE);
// all of them without CONDSTORE), and compares: new UIDs and changed flags
// are fetched, missing UIDs are deleted. Message keys carry the
// UIDVALIDITY, so a new UIDVALIDITY makes every recorded message "gone" and
// every message "new": the folder is read again. No message body is
// fetched by Plan.
//
// Fetch reads, per batch of keys, the flags and sizes first, then the
// bodies in groups of at most 32 MiB, each body cut at MaxMessageBytes
// (BODY.PEEK[]<0.N>): a message larger than that is read truncated and
// never held whole.
//
// # Gmail
//
// When the server advertises X-GM-EXT-1, the folder list defaults to the
// \All folder ([Gmail]/All Mail: every message once), a message's
// reference is Gmail's (its X-GM-MSGID, the same id the Gmail API gives)
// and its labels (X-GM-LABELS) and thread (X-GM-THRID) become metadata and
// part of its version. go-imap v2 has no API for these fetch items, so they
// are read on a second connection of this package's own (gm.go), which
// sends only UID FETCH (UID X-GM-MSGID X-GM-THRID X-GM-LABELS).
package imapbox

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
	"github.com/connectorhq/connector/internal/readfile"
	"github.com/connectorhq/connector/oauth"
	"github.com/connectorhq/connector/secret"
)

// Security is how the connection is protected.
type Security string

// Security values.
const (
	SecurityTLS      Security = "TLS"      // implicit TLS (imaps, port 993)
	SecurityStartTLS Security = "STARTTLS" // STARTTLS on the plain port (143)
	SecurityNone     Security = "NONE"     // no protection (tests, a local server)
)

// Auth is how the connector logs in.
type Auth string

// Auth values.
const (
	AuthPassword    Auth = "PASSWORD"    // AUTHENTICATE PLAIN when offered, else LOGIN
	AuthPlain       Auth = "PLAIN"       // AUTHENTICATE PLAIN
	AuthLogin       Auth = "LOGIN"       // the LOGIN command
	AuthXOAuth2     Auth = "XOAUTH2"     // Google's SASL XOAUTH2 with an access token
	AuthOAuthBearer Auth = "OAUTHBEARER" // SASL OAUTHBEARER (RFC 7628) with an access token
)

// Config configures a connection.
type Config struct {
	Addr     string // host:port
	Security Security
	// TLS: the server name is the host of Addr unless set; RootCAs nil
	// means the system roots.
	TLSConfig *tls.Config
	Auth      Auth
	Username  string
	Password  string             // AuthPassword, AuthPlain, AuthLogin
	Tokens    oauth2.TokenSource // AuthXOAuth2, AuthOAuthBearer

	// Folders to index; empty: every selectable folder except the junk
	// and trash folders (unless IncludeSpamTrash), or on Gmail the \All
	// folder alone.
	Folders          []string
	FolderMustHave   *regexp.Regexp
	FolderCantHave   *regexp.Regexp
	IncludeSpamTrash bool

	// MaxMessageBytes cuts every message read (default 16 MiB).
	MaxMessageBytes int64
	// FetchBatch is the most messages per UID FETCH (default
	// DefaultFetchBatch, 1000; fewer when their UID set would pass
	// maxSetBytes).
	FetchBatch int
	// Timeout bounds connecting, TLS and logging in (default 60 s). The
	// access token of XOAUTH2 and OAUTHBEARER is had before connecting,
	// out of it: waiting for the token endpoint (its rate limits waited
	// out) is not spent connected and logged out, where Timeout and the
	// server's pre-login timeout would close the connection.
	Timeout time.Duration
	// Dial makes the TCP connection (nil: a net.Dialer); the connector
	// passes one that enforces [Security] DeniedAddresses.
	Dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultMaxMessageBytes = 16 << 20
	// DefaultFetchBatch is the most messages one UID FETCH asks for. One
	// command is outstanding at a time, and the server waits, idle, from
	// a command's end until the next one comes (after the connector read
	// the whole batch): 10 such waits per 10 000 messages instead of 100,
	// and within a batch the server sends ahead of the connector as far as
	// the connection's buffers allow.
	DefaultFetchBatch = 1000
	DefaultTimeout    = 60 * time.Second
	// fetchGroupBytes and fetchGroupMessages bound a group of messages
	// handed to Fetch's caller (plus one message over fetchGroupBytes): at
	// most two groups of bodies are held at once, whatever FetchBatch is.
	fetchGroupBytes    = 32 << 20
	fetchGroupMessages = 100
	// maxSetBytes bounds the UID set of one command as sent (a sparse set
	// of large UIDs is about 11 bytes a message): RFC 7162 asks clients to
	// keep command lines to about 8192 octets, which servers may enforce.
	maxSetBytes = 4096
)

// LoadCA returns a pool with the certificates of a PEM file.
func LoadCA(path string) (*x509.CertPool, error) {
	data, err := readfile.Regular(path, 16<<20) // a FIFO or a device is refused, not read for ever
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// Box is a connected IMAP mailbox. It is used by one goroutine at a time.
type Box struct {
	cfg      Config
	log      *slog.Logger
	c        *imapclient.Client
	caps     imap.CapSet
	host     string
	port     string
	gmail    bool // X-GM-EXT-1
	gm       *gmConn
	tap      *capsTap                    // nil on STARTTLS
	status   map[string]*imap.StatusData // from LIST-STATUS, by folder
	selected *imap.SelectData
	selName  string
	stats    struct{ commands, bodies, bytes atomic.Int64 }
	closeMu  sync.Mutex
	closed   bool
}

var _ mailbox.Mailbox = (*Box)(nil)

// Dial connects and logs in.
func Dial(ctx context.Context, cfg Config) (*Box, error) {
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.FetchBatch <= 0 {
		cfg.FetchBatch = DefaultFetchBatch
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("imap: server address %q: %w", cfg.Addr, err)
	}
	b := &Box{cfg: cfg, log: cfg.Logger, host: host, port: port}
	tok, err := b.accessToken()
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	c, err := b.connect(dctx)
	if err != nil {
		return nil, err
	}
	b.c = c
	// A hung server during log in: closing the connection ends the wait.
	stop := context.AfterFunc(dctx, func() { _ = c.Close() })
	err = b.login(dctx, c, tok)
	stop()
	if err == nil && dctx.Err() != nil {
		err = dctx.Err()
	}
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	// Capabilities change with log in (X-GM-EXT-1 is only announced
	// then): those the server sent with its OK are the new ones, else ask
	// again.
	if b.tap != nil && b.tap.result() {
		b.caps = c.Caps()
	}
	if b.caps == nil {
		b.stats.commands.Add(1)
		if b.caps, err = c.Capability().Wait(); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("imap: CAPABILITY: %w", err)
		}
	}
	b.gmail = b.caps.Has("X-GM-EXT-1")
	b.log.Debug("imap: logged in", "server", cfg.Addr, "condstore", b.caps.Has(imap.CapCondStore), "gmail", b.gmail)
	return b, nil
}

// connect dials and negotiates TLS, and waits for the greeting.
func (b *Box) connect(ctx context.Context) (*imapclient.Client, error) {
	dial := b.cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	raw, err := dial(ctx, "tcp", b.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("imap: connect to %s: %w", b.cfg.Addr, err)
	}
	conn := newBufferedConn(raw)
	tc := b.tlsConfig()
	opts := &imapclient.Options{TLSConfig: tc, WordDecoder: wordDecoder}
	var c *imapclient.Client
	switch b.cfg.Security {
	case SecurityNone:
		b.tap = &capsTap{Conn: conn}
		c = imapclient.New(b.tap, opts)
	case SecurityStartTLS:
		_ = conn.SetDeadline(deadline(ctx))
		c, err = imapclient.NewStartTLS(conn, opts)
		if err != nil {
			return nil, fmt.Errorf("imap: STARTTLS with %s: %w", b.cfg.Addr, err)
		}
		_ = conn.SetDeadline(time.Time{})
	default:
		t := tls.Client(conn, tc)
		if err := t.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("imap: TLS with %s: %w", b.cfg.Addr, err)
		}
		b.tap = &capsTap{Conn: t}
		c = imapclient.New(b.tap, opts)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	if err := c.WaitGreeting(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("imap: greeting of %s: %w", b.cfg.Addr, err)
	}
	return c, nil
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func (b *Box) tlsConfig() *tls.Config {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if b.cfg.TLSConfig != nil {
		tc = b.cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = b.host
	}
	if tc.NextProtos == nil {
		tc.NextProtos = []string{"imap"}
	}
	return tc
}

// oauthAuth is the configured authentication when it sends an OAuth
// access token (XOAUTH2 or OAUTHBEARER), else "".
func (b *Box) oauthAuth() Auth {
	switch auth := b.cfg.Auth; {
	case auth == AuthXOAuth2 || auth == AuthOAuthBearer:
		return auth
	case auth == "" && b.cfg.Tokens != nil:
		return AuthXOAuth2
	}
	return ""
}

// accessToken is the access token the log in sends, nil when it sends
// none. It is had before connecting (Config.Timeout).
func (b *Box) accessToken() (*oauth2.Token, error) {
	auth := b.oauthAuth()
	if auth == "" {
		return nil, nil
	}
	if b.cfg.Tokens == nil {
		return nil, fmt.Errorf("%w: %s needs an OAuth token source", mailbox.ErrAuth, auth)
	}
	tok, err := b.cfg.Tokens.Token()
	if err != nil {
		return nil, tokenError(auth, err)
	}
	return tok, nil
}

// login authenticates as configured; tok is accessToken's.
func (b *Box) login(ctx context.Context, c *imapclient.Client, tok *oauth2.Token) error {
	b.stats.commands.Add(1)
	caps := c.Caps()
	auth := b.cfg.Auth
	if o := b.oauthAuth(); o != "" {
		auth = o
	}
	if auth == AuthPassword || auth == "" {
		auth = AuthLogin
		if caps.Has(imap.AuthCap(sasl.Plain)) {
			auth = AuthPlain
		}
	}
	// The tap watches for the reply to the command sent next.
	arm := func() {
		if b.tap != nil {
			b.tap.arm()
		}
	}
	// What was sent to log in, which a server's refusal may quote.
	sent := &credentials{password: b.cfg.Password}
	refused := func(err error, detail string) error {
		msg := err.Error()
		if detail != "" {
			msg += " (" + detail + ")"
		}
		return fmt.Errorf("%w: %s as %s refused: %s", mailbox.ErrAuth, auth, b.cfg.Username, sent.scrub(msg))
	}
	switch auth {
	case AuthLogin:
		if caps.Has(imap.CapLoginDisabled) {
			return fmt.Errorf("%w: the server refuses LOGIN on this connection (LOGINDISABLED): use TLS or STARTTLS", mailbox.ErrAuth)
		}
		arm()
		if err := c.Login(b.cfg.Username, b.cfg.Password).Wait(); err != nil {
			return refused(err, "")
		}
	case AuthPlain:
		arm()
		if err := c.Authenticate(sent.recording(sasl.NewPlainClient("", b.cfg.Username, b.cfg.Password))); err != nil {
			return refused(err, "")
		}
	case AuthXOAuth2, AuthOAuthBearer:
		sent.token = tok.AccessToken
		arm()
		if auth == AuthXOAuth2 {
			x := &xoauth2{user: b.cfg.Username, token: tok.AccessToken}
			if err := c.Authenticate(sent.recording(x)); err != nil {
				return refused(err, x.serverError)
			}
		} else {
			p, _ := strconv.Atoi(b.port)
			ob := &oauthBearer{inner: sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: b.cfg.Username, Token: tok.AccessToken, Host: b.host, Port: p})}
			if err := c.Authenticate(sent.recording(ob)); err != nil {
				return refused(err, ob.serverError)
			}
		}
	default:
		return fmt.Errorf("imap: unknown authentication %q", auth)
	}
	return ctx.Err()
}

// tokenError is the error of a log in that could not have an access
// token: ErrAuth when the token endpoint refused it, not when it is rate
// limited or failing for now (oauth.Unavailable), which is no refusal of
// the authorization.
func tokenError(auth Auth, err error) error {
	if oauth.Unavailable(err) {
		return fmt.Errorf("imap: %s: no access token for now: %w", auth, err)
	}
	return fmt.Errorf("%w: %v", mailbox.ErrAuth, err)
}

// credentials are what a log in sent: a server's refusal that quotes the
// command it refused (some servers and proxies echo it) is scrubbed of
// them before it becomes the task's error (GetStatus, the log, the
// store).
type credentials struct {
	password, token string
	responses       [][]byte // SASL responses sent (base64 on the wire)
}

// recording returns c, noting the responses it gives.
func (cr *credentials) recording(c sasl.Client) sasl.Client { return &recordingSASL{inner: c, cr: cr} }

// scrub takes the credentials out of a server's text: as sent, quoted as
// LOGIN sends them, and in base64 (secret.Scrub).
func (cr *credentials) scrub(text string) string {
	secrets := []string{cr.password, astring(cr.password), cr.token}
	for _, r := range cr.responses {
		secrets = append(secrets, string(r))
	}
	return secret.Scrub(text, secrets...)
}

type recordingSASL struct {
	inner sasl.Client
	cr    *credentials
}

func (r *recordingSASL) Start() (string, []byte, error) {
	mech, ir, err := r.inner.Start()
	if len(ir) > 0 {
		r.cr.responses = append(r.cr.responses, ir)
	}
	return mech, ir, err
}

func (r *recordingSASL) Next(challenge []byte) ([]byte, error) {
	resp, err := r.inner.Next(challenge)
	if len(resp) > 1 {
		r.cr.responses = append(r.cr.responses, resp)
	}
	return resp, err
}

// xoauth2 is Google's SASL XOAUTH2 mechanism
// (https://developers.google.com/gmail/imap/xoauth2-protocol), which
// go-sasl does not have: the initial response carries the user and the
// bearer token; on failure the server sends a JSON error as a challenge,
// which is answered with an empty response.
type xoauth2 struct {
	user, token string
	serverError string
}

func (x *xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

func (x *xoauth2) Next(challenge []byte) ([]byte, error) {
	x.serverError = string(challenge)
	return []byte{}, nil
}

// oauthBearer keeps the server's error challenge of OAUTHBEARER.
type oauthBearer struct {
	inner       sasl.Client
	serverError string
}

func (o *oauthBearer) Start() (string, []byte, error) { return o.inner.Start() }

func (o *oauthBearer) Next(challenge []byte) ([]byte, error) {
	o.serverError = string(challenge)
	// RFC 7628 3.2.3: the client answers an error with a single 0x01.
	return []byte{0x01}, nil
}

// Gmail reports whether the server speaks Gmail's X-GM-EXT-1.
func (b *Box) Gmail() bool { return b.gmail }

// Caps returns the server's capabilities.
func (b *Box) Caps() imap.CapSet { return b.caps }

// Stats implements mailbox.Mailbox.
func (b *Box) Stats() mailbox.Stats {
	s := mailbox.Stats{Commands: b.stats.commands.Load(), BodiesFetched: b.stats.bodies.Load(), BytesFetched: b.stats.bytes.Load()}
	if b.gm != nil {
		s.Commands += b.gm.commands.Load()
	}
	return s
}

// Close implements mailbox.Mailbox: LOGOUT, then close.
func (b *Box) Close() error {
	b.closeMu.Lock()
	defer b.closeMu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.gm != nil {
		b.gm.close()
	}
	done := make(chan struct{})
	go func() {
		_ = b.c.Logout().Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	return b.c.Close()
}

// abandon closes the connection after a fetch failed in the middle of a
// response: draining the command (FetchCommand.Close) would read the
// connection while go-imap's reader goroutine does, and the connection is
// of no use any more anyway.
func (b *Box) abandon() {
	_ = b.c.Close()
	b.selected, b.selName = nil, ""
}

// run runs a command-issuing function so that ctx ending closes the
// connection (go-imap's commands take no context): the function then
// returns an error, and the context's is returned instead.
func (b *Box) run(ctx context.Context, f func() error) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	stop := context.AfterFunc(ctx, func() {
		_ = b.c.Close()
		if b.gm != nil {
			b.gm.close()
		}
	})
	err := f()
	if !stop() || ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if err != nil && errors.Is(err, io.ErrUnexpectedEOF) || isClosed(err) {
		return fmt.Errorf("imap: %s: connection lost: %w", b.cfg.Addr, err)
	}
	return err
}

func isClosed(err error) bool {
	if err == nil {
		return false
	}
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "use of closed network connection")
}

// readBufferSize is the read buffer of a connection to the server.
const readBufferSize = 64 << 10

// bufferedConn reads its connection through a buffer of readBufferSize.
// go-imap reads through a bufio.Reader of 4 KiB, one read system call per
// 4 KiB of FETCH responses (and a park and wake-up of its reading
// goroutine whenever the socket is empty at that moment); through this
// buffer one system call takes whatever the server has sent, up to 64 KiB.
// Every read goes through the buffer, in order (STARTTLS's handshake and
// the TLS records after it included), so nothing is read twice or skipped;
// deadlines and Close are the connection's.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func newBufferedConn(c net.Conn) *bufferedConn {
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, readBufferSize)}
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
