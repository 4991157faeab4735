package mailfetch

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/connectors/mailfetch/imapbox"
	"github.com/connectorhq/connector/connectors/mailfetch/mimedoc"
	"github.com/connectorhq/connector/oauth"
	"github.com/connectorhq/connector/secret"
)

// Transports.
const (
	TransportIMAP     = "IMAP"
	TransportGmailAPI = "GMAILAPI"
)

// Delete modes.
const (
	DeleteExpunge = "EXPUNGE" // IMAP: flag \Deleted and expunge
	DeleteTrash   = "TRASH"   // Gmail API: move to the trash
	DeleteForever = "DELETE"  // Gmail API: delete for good
)

// Defaults of the task settings.
const (
	DefaultImapServer       = "imap.gmail.com"
	DefaultGmailAPIURL      = "https://gmail.googleapis.com/"
	DefaultScope            = "https://mail.google.com/"
	DefaultMaxMessageBytes  = 16 << 20
	DefaultFetchBatchSize   = imapbox.DefaultFetchBatch
	DefaultServerTimeout    = 60 * time.Second
	DefaultExtractTimeout   = 30 * time.Second
	DefaultExtractTextBytes = 16 << 20
)

// settings are one task's settings, from the configuration file: a task
// section, then [FetchTasks], then [Default]. Requests cannot change them
// (a request names tasks; it does not point them at other servers or
// accounts).
type settings struct {
	Task string // upper case

	Transport   string
	Server      string // host
	Port        int
	Security    imapbox.Security
	CheckCert   bool
	CACert      string
	Username    string
	Password    string // decrypted
	Auth        imapbox.Auth
	ClientID    string
	Secret      string // OAuthClientSecret, decrypted
	AuthURL     string
	TokenURL    string
	Scopes      []string
	RedirectURL string
	TokenFile   string
	KeyFile     string // ServiceAccountKeyFile
	GmailAPIURL string
	Timeout     time.Duration

	Folders          []string
	FolderMustHave   *regexp.Regexp
	FolderCantHave   *regexp.Regexp
	IncludeSpamTrash bool

	MaxMessageBytes   int64
	MIME              mimedoc.Limits
	IngestAttachments bool
	ExtractText       bool
	ExtractTimeout    time.Duration
	ExtractTextBytes  int
	FetchBatchSize    int
	MaxUserMessages   int
	DeleteMode        string
	InsertFolder      string
}

// OAuth returns the task's OAuth client, as `connector oauth` uses it.
func (s *settings) OAuth() oauth.Config {
	params := map[string]string{}
	if strings.Contains(s.AuthURL, "accounts.google.com") {
		params = oauth.GoogleAuthParams
	}
	return oauth.Config{ClientID: s.ClientID, ClientSecret: s.Secret, AuthURL: s.AuthURL, TokenURL: s.TokenURL,
		Scopes: s.Scopes, RedirectURL: s.RedirectURL, AuthParams: params}
}

// intKey is restsync.Int for the int settings.
func intKey(lo, hi int, want string, dst func(*settings) *int) func(*settings, string) error {
	return func(s *settings, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < lo || n > hi {
			return errors.New("must be " + want)
		}
		*dst(s) = n
		return nil
	}
}

// urlKey is an http or https URL without user information, kept as given
// (restsync.URL drops a trailing slash; the Gmail API's base keeps it).
func urlKey(dst func(*settings) *string) func(*settings, string) error {
	return func(s *settings, v string) error {
		u, err := url.Parse(strings.TrimSpace(v))
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return errors.New("must be an http or https URL")
		}
		if u.User != nil {
			return errors.New("must not carry a user name or password")
		}
		*dst(s) = strings.TrimSpace(v)
		return nil
	}
}

func oneLine(v string) error {
	if strings.ContainsAny(v, "\r\n\x00") {
		return errors.New("must be one line")
	}
	return nil
}

// keys are the task settings, in the order they are resolved.
var keys = &restsync.Keys[settings]{
	Connector: "Google Mail",
	Doc:       "docs/connectors/google-mail.md",
	Defaults:  defaults,
	List: []*restsync.Key[settings]{
		{Name: "Transport", Apply: func(s *settings, v string) (err error) {
			s.Transport, err = restsync.OneOf(v, TransportIMAP, TransportGmailAPI)
			return err
		}},
		{Name: "ImapServer", Apply: func(s *settings, v string) error {
			v = strings.TrimSpace(v)
			if v == "" || strings.ContainsAny(v, "/ :@") && !strings.HasPrefix(v, "[") {
				return errors.New("must be a host name or address (the port is ImapPort)")
			}
			s.Server = strings.Trim(v, "[]")
			return nil
		}},
		{Name: "ImapPort", Apply: intKey(1, 65535, "a port number, 1 to 65535", func(s *settings) *int { return &s.Port })},
		{Name: "ImapSecurity", Apply: func(s *settings, v string) error {
			x, err := restsync.OneOf(v, string(imapbox.SecurityTLS), string(imapbox.SecurityStartTLS), string(imapbox.SecurityNone))
			s.Security = imapbox.Security(x)
			return err
		}},
		{Name: "SSLCheckCertificate", Apply: restsync.Bool(func(s *settings) *bool { return &s.CheckCert })},
		{Name: "SSLCACertificate", Apply: func(s *settings, v string) error { s.CACert = strings.TrimSpace(v); return nil }},
		{Name: "Username", Apply: func(s *settings, v string) error {
			s.Username = strings.TrimSpace(v)
			return oneLine(v)
		}},
		{Name: "Password", Secret: true, Apply: func(s *settings, v string) error {
			s.Password = v
			return oneLine(v)
		}},
		{Name: "AuthMethod", Apply: func(s *settings, v string) error {
			x, err := restsync.OneOf(v, string(imapbox.AuthPassword), string(imapbox.AuthPlain), string(imapbox.AuthLogin), string(imapbox.AuthXOAuth2), string(imapbox.AuthOAuthBearer))
			s.Auth = imapbox.Auth(x)
			return err
		}},
		{Name: "OAuthClientID", Apply: func(s *settings, v string) error { s.ClientID = strings.TrimSpace(v); return oneLine(v) }},
		{Name: "OAuthClientSecret", Secret: true, Apply: func(s *settings, v string) error { s.Secret = v; return oneLine(v) }},
		{Name: "OAuthAuthorizeUrl", Apply: urlKey(func(s *settings) *string { return &s.AuthURL })},
		{Name: "OAuthTokenUrl", Apply: urlKey(func(s *settings) *string { return &s.TokenURL })},
		{Name: "OAuthScopes", Apply: restsync.Scopes(func(s *settings) *[]string { return &s.Scopes })},
		{Name: "OAuthRedirectUrl", Apply: restsync.RedirectURL(func(s *settings) *string { return &s.RedirectURL })},
		{Name: "OAuthTokenFile", Apply: func(s *settings, v string) error { s.TokenFile = strings.TrimSpace(v); return nil }},
		{Name: "ServiceAccountKeyFile", Apply: func(s *settings, v string) error { s.KeyFile = strings.TrimSpace(v); return nil }},
		{Name: "GmailApiUrl", Apply: urlKey(func(s *settings) *string { return &s.GmailAPIURL })},
		{Name: "ServerTimeoutSeconds", Apply: func(s *settings, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 || n > 86400 {
				return errors.New("must be a whole number of seconds, 1 to 86400")
			}
			s.Timeout = time.Duration(n) * time.Second
			return nil
		}},
		{Name: "Folders", Apply: func(s *settings, v string) error { s.Folders = restsync.CSV(v); return nil }},
		{Name: "FolderMustHaveRegex", Apply: func(s *settings, v string) (err error) { s.FolderMustHave, err = restsync.Regex(v); return err }},
		{Name: "FolderCantHaveRegex", Apply: func(s *settings, v string) (err error) { s.FolderCantHave, err = restsync.Regex(v); return err }},
		{Name: "IncludeSpamTrash", Apply: restsync.Bool(func(s *settings) *bool { return &s.IncludeSpamTrash })},
		{Name: "MaxMessageBytes", Apply: func(s *settings, v string) error {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n < 1024 || n > 1<<31 {
				return errors.New("must be a whole number of bytes, 1024 to 2147483648")
			}
			s.MaxMessageBytes = n
			return nil
		}},
		{Name: "MaxMimeDepth", Apply: intKey(1, 1000, "a whole number of levels, 1 to 1000", func(s *settings) *int { return &s.MIME.MaxDepth })},
		{Name: "MaxMimeParts", Apply: intKey(1, 1000000, "a whole number of parts, 1 to 1000000", func(s *settings) *int { return &s.MIME.MaxParts })},
		{Name: "IngestAttachments", Apply: restsync.Bool(func(s *settings) *bool { return &s.IngestAttachments })},
		{Name: "ExtractText", Apply: restsync.Bool(func(s *settings) *bool { return &s.ExtractText })},
		{Name: "ExtractTimeout", Apply: restsync.Duration(func(s *settings) *time.Duration { return &s.ExtractTimeout })},
		{Name: "ExtractMaxTextBytes", Apply: intKey(1, math.MaxInt32, "a positive whole number of bytes", func(s *settings) *int { return &s.ExtractTextBytes })},
		{Name: "FetchBatchSize", Apply: intKey(1, 10000, "a whole number of messages, 1 to 10000", func(s *settings) *int { return &s.FetchBatchSize })},
		{Name: "MaxUserMessages", Apply: intKey(0, math.MaxInt32, "0 (no limit) or a whole number of messages", func(s *settings) *int { return &s.MaxUserMessages })},
		{Name: "DeleteMode", Apply: func(s *settings, v string) (err error) {
			s.DeleteMode, err = restsync.OneOf(v, DeleteExpunge, DeleteTrash, DeleteForever)
			return err
		}},
		{Name: "InsertFolder", Apply: func(s *settings, v string) error {
			s.InsertFolder = strings.TrimSpace(v)
			if s.InsertFolder == "" {
				return errors.New("must name a folder (or, with the Gmail API, a label)")
			}
			return oneLine(v)
		}},
	},
}

// KeyNames are the task settings, as documented.
func KeyNames() []string { return keys.Names() }

// TaskKeys validates one task setting as it appears in a task section,
// [FetchTasks] or [Default] (config.Load calls it). An unknown key wraps
// config.ErrUnknownKey; a bad value says what is expected.
func TaskKeys(key, value string) error { return keys.TaskKeys(key, value) }

func defaults(task string) *settings {
	return &settings{
		Task:              strings.ToUpper(task),
		Transport:         TransportIMAP,
		Server:            DefaultImapServer,
		Security:          imapbox.SecurityTLS,
		CheckCert:         true,
		AuthURL:           oauth.GoogleAuthURL,
		TokenURL:          oauth.GoogleTokenURL,
		Scopes:            []string{DefaultScope},
		RedirectURL:       "http://127.0.0.1/",
		GmailAPIURL:       DefaultGmailAPIURL,
		Timeout:           DefaultServerTimeout,
		MaxMessageBytes:   DefaultMaxMessageBytes,
		IngestAttachments: true,
		ExtractText:       true,
		ExtractTimeout:    DefaultExtractTimeout,
		ExtractTextBytes:  DefaultExtractTextBytes,
		FetchBatchSize:    DefaultFetchBatchSize,
		InsertFolder:      "INBOX",
	}
}

// resolve computes a task's settings from the configuration: each key from
// the task's section, else [FetchTasks], else [Default]. Secret settings
// given in IDOL's encrypted form are decrypted with key (called only when
// one is). Errors are *config.Error values naming the file, line and key.
func resolve(cfg *config.Config, task string, key func() (*secret.Key, error)) (*settings, error) {
	r, err := keys.Resolve(cfg, task, key)
	if err != nil {
		return nil, err
	}
	s, whole := r.S, r.Error
	if s.Username == "" {
		return nil, whole("Username", errors.New("the task needs the mail account: set Username (the address, or the user the service account acts for)"))
	}
	if !r.Set("ImapPort") {
		s.Port = 993
		if s.Security != imapbox.SecurityTLS {
			s.Port = 143
		}
	}
	if s.TokenFile == "" {
		tf, err := oauth.DefaultTokenFile(cfg.Server.DataDirectory, task)
		if err != nil && s.ClientID != "" {
			return nil, whole("OAuthTokenFile", err)
		}
		s.TokenFile = tf // unused without OAuthClientID
	}
	if s.Auth == "" {
		s.Auth = imapbox.AuthPassword
		if s.ClientID != "" || s.KeyFile != "" {
			s.Auth = imapbox.AuthXOAuth2
		}
	}
	switch s.Transport {
	case TransportIMAP:
		switch {
		case (s.Auth == imapbox.AuthXOAuth2 || s.Auth == imapbox.AuthOAuthBearer) && s.ClientID == "" && s.KeyFile == "":
			return nil, whole("OAuthClientID", fmt.Errorf("AuthMethod=%s needs OAuthClientID (with a token file from `connector oauth`) or ServiceAccountKeyFile", s.Auth))
		case s.Auth != imapbox.AuthXOAuth2 && s.Auth != imapbox.AuthOAuthBearer && s.Password == "":
			return nil, whole("Password", fmt.Errorf("AuthMethod=%s needs Password", s.Auth))
		}
		if s.DeleteMode == "" {
			s.DeleteMode = DeleteExpunge
		}
		if s.DeleteMode != DeleteExpunge {
			return nil, whole("DeleteMode", errors.New("with Transport=IMAP, DeleteMode is EXPUNGE (flag \\Deleted and expunge; Gmail moves the message to its trash)"))
		}
	case TransportGmailAPI:
		if s.ClientID == "" && s.KeyFile == "" {
			return nil, whole("OAuthClientID", errors.New("Transport=GMAILAPI needs OAuthClientID (with a token file from `connector oauth`) or ServiceAccountKeyFile"))
		}
		if r.Set("AuthMethod") && s.Auth != imapbox.AuthXOAuth2 {
			return nil, whole("AuthMethod", errors.New("AuthMethod is for Transport=IMAP; the Gmail API always uses OAuth 2.0"))
		}
		if s.DeleteMode == "" {
			s.DeleteMode = DeleteTrash
		}
		if s.DeleteMode == DeleteExpunge {
			return nil, whole("DeleteMode", errors.New("with Transport=GMAILAPI, DeleteMode is TRASH or DELETE"))
		}
	}
	return s, nil
}

// OAuthClient returns the task's OAuth 2.0 client and the token file its
// refresh token is kept in (`connector oauth` writes it).
func (s *settings) OAuthClient() (oauth.Config, string) { return s.OAuth(), s.TokenFile }
