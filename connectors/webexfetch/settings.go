package webexfetch

import (
	"errors"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/oauth"
	"github.com/connectorhq/connector/secret"
)

// Webex's endpoints.
const (
	DefaultAPIURL       = "https://webexapis.com/v1"
	DefaultAuthorizeURL = "https://webexapis.com/v1/authorize"
	DefaultTokenURL     = "https://webexapis.com/v1/access_token"
	// DefaultRedirectURL is the redirect of IDOL's OAuth tool for Webex.
	DefaultRedirectURL = "http://localhost:7878/"
)

// Scopes. IDOL's Webex connector asks for spark:kms, spark:rooms_read,
// spark:messages_read, spark-compliance:messages_read and
// spark-compliance:rooms_read; the room members (the documents' security)
// need the memberships scopes too, the author names the people scope, and
// a compliance officer's events feed its own.
var (
	UserScopes       = []string{"spark:kms", "spark:rooms_read", "spark:messages_read", "spark:memberships_read", "spark:people_read"}
	ComplianceScopes = []string{"spark-compliance:rooms_read", "spark-compliance:messages_read", "spark-compliance:memberships_read", "spark-compliance:events_read"}
	// WriteScope lets Insert post messages.
	WriteScope = "spark:messages_write"
)

// Defaults of the settings.
const (
	DefaultPageSize         = 100
	DefaultMaxFileBytes     = 64 << 20
	DefaultTimeout          = 60 * time.Second
	DefaultEventsLookback   = 90 * 24 * time.Hour
	DefaultEventsOverlap    = 15 * time.Minute
	DefaultMembersInterval  = 24 * time.Hour
	DefaultExtractTimeout   = 30 * time.Second
	DefaultExtractTextBytes = 16 << 20
	DefaultMaxAttempts      = 4
	DefaultMaxRetryAfter    = 10 * time.Minute
	// DefaultConcurrency is how many rooms a Synchronize reads at once.
	DefaultConcurrency = 4
	// DefaultListOverlap: a room's listing goes this far below the newest
	// message the last run saw, so that a message that shows up a little
	// after messages created after it (or in the same millisecond) is
	// still found; the records make the messages already delivered cost
	// nothing but their place on the page.
	DefaultListOverlap = 2 * time.Second
)

// settings are one task's resolved settings.
type settings struct {
	Task string // upper case

	APIURL       string
	ClientID     string
	ClientSecret string // decrypted
	AuthorizeURL string
	TokenURL     string
	Scopes       []string
	RedirectURL  string
	TokenFile    string

	Compliance     bool
	EventsLookback time.Duration
	EventsOverlap  time.Duration

	Rooms         []string
	RoomTypes     []string
	TitleMustHave *regexp.Regexp
	TitleCantHave *regexp.Regexp

	PageSize         int64
	ListOverlap      time.Duration
	MembersInterval  time.Duration
	FullListInterval time.Duration
	Concurrency      int64

	IndexFiles       bool
	Unscannable      bool // IndexUnscannableFiles
	MaxFileBytes     int64
	ExtractText      bool
	ExtractTimeout   time.Duration
	ExtractTextBytes int64

	MappedSecurity bool

	Timeout       time.Duration
	MaxAttempts   int64
	MaxRetryAfter time.Duration
	CheckCert     bool
	CACert        string

	InsertRoom string
}

// canWrite says whether the task's scopes let Insert post messages.
func (s *settings) canWrite() bool { return slices.Contains(s.Scopes, WriteScope) }

// OAuth returns the task's OAuth 2.0 client, as `connector oauth` and the
// token source use it.
func (s *settings) OAuth() oauth.Config {
	return oauth.Config{ClientID: s.ClientID, ClientSecret: s.ClientSecret, AuthURL: s.AuthorizeURL, TokenURL: s.TokenURL,
		Scopes: s.Scopes, RedirectURL: s.RedirectURL}
}

// OAuthClient returns the task's OAuth 2.0 client and the token file its
// refresh token is kept in (`connector oauth` writes it).
func (s *settings) OAuthClient() (oauth.Config, string) { return s.OAuth(), s.TokenFile }

func defaults(task string) *settings {
	return &settings{
		Task:             strings.ToUpper(task),
		APIURL:           DefaultAPIURL,
		AuthorizeURL:     DefaultAuthorizeURL,
		TokenURL:         DefaultTokenURL,
		RedirectURL:      DefaultRedirectURL,
		EventsLookback:   DefaultEventsLookback,
		EventsOverlap:    DefaultEventsOverlap,
		RoomTypes:        []string{"direct", "group"},
		PageSize:         DefaultPageSize,
		ListOverlap:      DefaultListOverlap,
		MembersInterval:  DefaultMembersInterval,
		Concurrency:      DefaultConcurrency,
		IndexFiles:       true,
		MaxFileBytes:     DefaultMaxFileBytes,
		ExtractText:      true,
		ExtractTimeout:   DefaultExtractTimeout,
		ExtractTextBytes: DefaultExtractTextBytes,
		MappedSecurity:   true,
		Timeout:          DefaultTimeout,
		MaxAttempts:      DefaultMaxAttempts,
		MaxRetryAfter:    DefaultMaxRetryAfter,
		CheckCert:        true,
	}
}

type key = restsync.Key[settings]

// keys are the task settings (docs/connectors/webex.md).
var keys = &restsync.Keys[settings]{
	Connector: "Webex",
	Doc:       "docs/connectors/webex.md",
	Defaults:  defaults,
	List: []*key{
		{Name: "WebexApiUrl", Apply: restsync.URL(func(s *settings) *string { return &s.APIURL })},
		{Name: "OAuthClientID", Apply: restsync.Text(func(s *settings) *string { return &s.ClientID })},
		{Name: "OAuthClientSecret", Secret: true, Apply: restsync.Text(func(s *settings) *string { return &s.ClientSecret })},
		{Name: "OAuthAuthorizeUrl", Apply: restsync.URL(func(s *settings) *string { return &s.AuthorizeURL })},
		{Name: "OAuthTokenUrl", Apply: restsync.URL(func(s *settings) *string { return &s.TokenURL })},
		{Name: "OAuthScopes", Apply: restsync.Scopes(func(s *settings) *[]string { return &s.Scopes })},
		{Name: "OAuthRedirectUrl", Apply: restsync.RedirectURL(func(s *settings) *string { return &s.RedirectURL })},
		{Name: "OAuthTokenFile", Apply: func(s *settings, v string) error { s.TokenFile = strings.TrimSpace(v); return nil }},
		{Name: "ComplianceOfficer", Apply: restsync.Bool(func(s *settings) *bool { return &s.Compliance })},
		{Name: "EventsLookback", Apply: restsync.Duration(func(s *settings) *time.Duration { return &s.EventsLookback })},
		{Name: "EventsOverlap", Apply: restsync.DurationOrZero(func(s *settings) *time.Duration { return &s.EventsOverlap })},
		{Name: "Rooms", Apply: func(s *settings, v string) error { s.Rooms = restsync.CSV(v); return nil }},
		{Name: "RoomTypes", Apply: func(s *settings, v string) error {
			s.RoomTypes = nil
			for _, t := range restsync.CSV(v) {
				x, err := restsync.OneOf(t, "direct", "group")
				if err != nil {
					return err
				}
				s.RoomTypes = append(s.RoomTypes, x)
			}
			if len(s.RoomTypes) == 0 {
				return errors.New("must list direct, group or both")
			}
			return nil
		}},
		{Name: "RoomTitleMustHaveRegex", Apply: func(s *settings, v string) (err error) { s.TitleMustHave, err = restsync.Regex(v); return err }},
		{Name: "RoomTitleCantHaveRegex", Apply: func(s *settings, v string) (err error) { s.TitleCantHave, err = restsync.Regex(v); return err }},
		{Name: "PageSize", Apply: restsync.Int(1, 1000, "a whole number of items, 1 to 1000", func(s *settings) *int64 { return &s.PageSize })},
		{Name: "ListOverlap", Apply: restsync.DurationOrZero(func(s *settings) *time.Duration { return &s.ListOverlap })},
		{Name: "MembersRefreshInterval", Apply: restsync.DurationOrZero(func(s *settings) *time.Duration { return &s.MembersInterval })},
		{Name: "FullListInterval", Apply: restsync.DurationOrZero(func(s *settings) *time.Duration { return &s.FullListInterval })},
		{Name: "Concurrency", Apply: restsync.Int(1, 32, "a whole number of rooms, 1 to 32", func(s *settings) *int64 { return &s.Concurrency })},
		{Name: "IndexFiles", Apply: restsync.Bool(func(s *settings) *bool { return &s.IndexFiles })},
		{Name: "IndexUnscannableFiles", Apply: restsync.Bool(func(s *settings) *bool { return &s.Unscannable })},
		{Name: "MaxFileBytes", Apply: restsync.Int(1, 1<<40, "a whole number of bytes, 1 or more", func(s *settings) *int64 { return &s.MaxFileBytes })},
		{Name: "ExtractText", Apply: restsync.Bool(func(s *settings) *bool { return &s.ExtractText })},
		{Name: "ExtractTimeout", Apply: restsync.Duration(func(s *settings) *time.Duration { return &s.ExtractTimeout })},
		{Name: "ExtractMaxTextBytes", Apply: restsync.Int(1, math.MaxInt32, "a positive whole number of bytes", func(s *settings) *int64 { return &s.ExtractTextBytes })},
		{Name: "MappedSecurity", Apply: restsync.Bool(func(s *settings) *bool { return &s.MappedSecurity })},
		{Name: "ServerTimeoutSeconds", Apply: func(s *settings, v string) error {
			var n int64
			if err := restsync.Int(1, 86400, "a whole number of seconds, 1 to 86400", func(*settings) *int64 { return &n })(s, v); err != nil {
				return err
			}
			s.Timeout = time.Duration(n) * time.Second
			return nil
		}},
		{Name: "MaxAttempts", Apply: restsync.Int(1, 100, "a whole number of attempts, 1 to 100", func(s *settings) *int64 { return &s.MaxAttempts })},
		{Name: "MaxRetryAfter", Apply: restsync.Duration(func(s *settings) *time.Duration { return &s.MaxRetryAfter })},
		{Name: "SSLCheckCertificate", Apply: restsync.Bool(func(s *settings) *bool { return &s.CheckCert })},
		{Name: "SSLCACertificate", Apply: func(s *settings, v string) error { s.CACert = strings.TrimSpace(v); return nil }},
		{Name: "InsertRoomId", Apply: restsync.Text(func(s *settings) *string { return &s.InsertRoom })},
	},
}

// TaskKeys validates one task setting (config.TaskKeysFunc).
func TaskKeys(key, value string) error { return keys.TaskKeys(key, value) }

// KeyNames are the task settings, as documented.
func KeyNames() []string { return keys.Names() }

// resolve computes a task's settings.
func resolve(cfg *config.Config, task string, key func() (*secret.Key, error)) (*settings, error) {
	r, err := keys.Resolve(cfg, task, key)
	if err != nil {
		return nil, err
	}
	s := r.S
	if s.ClientID == "" {
		return nil, r.Error("OAuthClientID", errors.New("the task needs the client ID of a Webex integration (then run `connector oauth` once)"))
	}
	if !r.Set("OAuthScopes") {
		s.Scopes = slices.Clone(UserScopes)
		if s.Compliance {
			s.Scopes = append(s.Scopes, ComplianceScopes...)
		}
	}
	if s.TokenFile == "" {
		tf, err := oauth.DefaultTokenFile(cfg.Server.DataDirectory, task)
		if err != nil {
			return nil, r.Error("OAuthTokenFile", err)
		}
		s.TokenFile = tf
	}
	return s, nil
}

// defaultTokenFile is the token file of task when OAuthTokenFile does not
// name one: DataDirectory/oauth/<task>.token ("" for a task whose name
// puts it outside that folder: resolve refuses that task).
func defaultTokenFile(cfg *config.Config, task string) string {
	tf, _ := oauth.DefaultTokenFile(cfg.Server.DataDirectory, task)
	return tf
}
