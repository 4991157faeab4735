package objectivefetch

import (
	"errors"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/internal/wording"
	"github.com/connectorhq/connector/secret"
)

// Authentication methods.
const (
	AuthBasic = "BASIC"
	AuthOAuth = "OAUTH"
)

// Versions to index.
const (
	VersionsCurrent   = "CURRENT"
	VersionsAll       = "ALL"
	VersionsCorporate = "CORPORATE"
)

// Defaults of the settings.
const (
	DefaultRealm            = "ecm"
	DefaultPageSize         = 200
	DefaultConcurrency      = 4
	DefaultMaxFileBytes     = 64 << 20
	DefaultTimeout          = 60 * time.Second
	DefaultExtractTimeout   = 30 * time.Second
	DefaultExtractTextBytes = 16 << 20
	DefaultMaxAttempts      = 4
	DefaultMaxRetryAfter    = 10 * time.Minute
	// DefaultFolderObjectType is IDOL's default FOLDER_OBJECT_TYPE for
	// the folders Insert creates.
	DefaultFolderObjectType = "dotdA12"
)

// settings are one task's resolved settings.
type settings struct {
	Task string // upper case

	ServerURL    string
	Auth         string
	Username     string
	Password     string // decrypted
	ClientID     string
	ClientSecret string // decrypted
	TokenURL     string

	RootFolders    []string // ids (fA…, qA…) or paths (/…)
	FolderCantHave *regexp.Regexp
	Versions       string
	IndexFolders   bool
	IndexFields    bool
	MappedSecurity bool

	PageSize         int64
	Concurrency      int64
	MaxFileBytes     int64
	ExtractText      bool
	ExtractTimeout   time.Duration
	ExtractTextBytes int64

	Timeout       time.Duration
	MaxAttempts   int64
	MaxRetryAfter time.Duration
	CheckCert     bool
	CACert        string

	FolderObjectType string
}

func defaults(task string) *settings {
	return &settings{
		Task:             strings.ToUpper(task),
		Auth:             AuthBasic,
		RootFolders:      []string{"fA0"},
		Versions:         VersionsCurrent,
		IndexFolders:     true,
		IndexFields:      true,
		MappedSecurity:   true,
		PageSize:         DefaultPageSize,
		Concurrency:      DefaultConcurrency,
		MaxFileBytes:     DefaultMaxFileBytes,
		ExtractText:      true,
		ExtractTimeout:   DefaultExtractTimeout,
		ExtractTextBytes: DefaultExtractTextBytes,
		Timeout:          DefaultTimeout,
		MaxAttempts:      DefaultMaxAttempts,
		MaxRetryAfter:    DefaultMaxRetryAfter,
		CheckCert:        true,
		FolderObjectType: DefaultFolderObjectType,
	}
}

type key = restsync.Key[settings]

// keys are the task settings (docs/connectors/objective.md).
var keys = &restsync.Keys[settings]{
	Connector: "Objective",
	Doc:       "docs/connectors/objective.md",
	Defaults:  defaults,
	List: []*key{
		{Name: "ServerUrl", Apply: restsync.URL(func(s *settings) *string { return &s.ServerURL })},
		{Name: "AuthMethod", Apply: func(s *settings, v string) (err error) {
			s.Auth, err = restsync.OneOf(v, AuthBasic, AuthOAuth)
			return err
		}},
		{Name: "Username", Apply: restsync.Text(func(s *settings) *string { return &s.Username })},
		{Name: "Password", Secret: true, Apply: restsync.Text(func(s *settings) *string { return &s.Password })},
		{Name: "OAuthClientID", Apply: restsync.Text(func(s *settings) *string { return &s.ClientID })},
		{Name: "OAuthClientSecret", Secret: true, Apply: restsync.Text(func(s *settings) *string { return &s.ClientSecret })},
		{Name: "OAuthTokenUrl", Apply: restsync.URL(func(s *settings) *string { return &s.TokenURL })},
		{Name: "RootFolders", Apply: func(s *settings, v string) error {
			s.RootFolders = restsync.CSV(v)
			if len(s.RootFolders) == 0 {
				return errors.New("must name at least one folder, by id (fA0) or path (/Objective Global Folder/...)")
			}
			for _, f := range s.RootFolders {
				if !strings.HasPrefix(f, "/") && !validID(f) {
					return errors.New(wording.Clip(f) + " is neither an object id (fA…, qA…) nor a path starting with /")
				}
				if !strings.HasPrefix(f, "/") && kindOf(f) == kindDocument {
					// It would be indexed as a container without content.
					return errors.New(f + " is not a folder's (fA…) or file's (qA…) id: a document is indexed from the folder or file it is in")
				}
			}
			return nil
		}},
		{Name: "FolderCantHaveRegex", Apply: func(s *settings, v string) (err error) { s.FolderCantHave, err = restsync.Regex(v); return err }},
		{Name: "Versions", Apply: func(s *settings, v string) (err error) {
			s.Versions, err = restsync.OneOf(v, VersionsCurrent, VersionsAll, VersionsCorporate)
			return err
		}},
		{Name: "IndexFolders", Apply: restsync.Bool(func(s *settings) *bool { return &s.IndexFolders })},
		{Name: "IndexCatalogueFields", Apply: restsync.Bool(func(s *settings) *bool { return &s.IndexFields })},
		{Name: "MappedSecurity", Apply: restsync.Bool(func(s *settings) *bool { return &s.MappedSecurity })},
		{Name: "PageSize", Apply: restsync.Int(1, 10000, "a whole number of items, 1 to 10000", func(s *settings) *int64 { return &s.PageSize })},
		{Name: "Concurrency", Apply: restsync.Int(1, 32, "a whole number of requests, 1 to 32", func(s *settings) *int64 { return &s.Concurrency })},
		{Name: "MaxFileBytes", Apply: restsync.Int(1, 1<<40, "a whole number of bytes, 1 or more", func(s *settings) *int64 { return &s.MaxFileBytes })},
		{Name: "ExtractText", Apply: restsync.Bool(func(s *settings) *bool { return &s.ExtractText })},
		{Name: "ExtractTimeout", Apply: restsync.Duration(func(s *settings) *time.Duration { return &s.ExtractTimeout })},
		{Name: "ExtractMaxTextBytes", Apply: restsync.Int(1, math.MaxInt32, "a positive whole number of bytes", func(s *settings) *int64 { return &s.ExtractTextBytes })},
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
		{Name: "FolderObjectType", Apply: func(s *settings, v string) error {
			v = strings.TrimSpace(v)
			if !validID("f"+v) && !strings.HasPrefix(v, "dotd") {
				return errors.New("must be an Objective object type id such as dotdA12")
			}
			s.FolderObjectType = v
			return nil
		}},
	},
}

// validID says whether v looks like an Objective object id: letters then
// digits (fA0, A101, qA12), possibly with a version suffix.
func validID(v string) bool {
	if v == "" || len(v) > 64 {
		return false
	}
	digits := false
	for i, c := range v {
		switch {
		case c >= '0' && c <= '9':
			digits = true
		case (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') && !digits:
		case c == '.' && digits && i < len(v)-1:
		default:
			return false
		}
	}
	return digits
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
	if s.ServerURL == "" {
		return nil, r.Error("ServerUrl", errors.New("the task needs the Objective server's URL (https://objective.example.com)"))
	}
	if s.Username == "" {
		return nil, r.Error("Username", errors.New("the task needs the Objective user to read as"))
	}
	switch s.Auth {
	case AuthBasic:
		if s.Password == "" {
			return nil, r.Error("Password", errors.New("AuthMethod=BASIC needs Password"))
		}
	case AuthOAuth:
		if s.ClientID == "" {
			return nil, r.Error("OAuthClientID", errors.New("AuthMethod=OAUTH needs OAuthClientID (and OAuthClientSecret to act for Username, or Password)"))
		}
		if s.ClientSecret == "" && s.Password == "" {
			return nil, r.Error("OAuthClientSecret", errors.New("AuthMethod=OAUTH needs OAuthClientSecret (to act for Username) or Password (the user's own)"))
		}
	}
	if s.TokenURL == "" {
		s.TokenURL = s.ServerURL + "/auth/realms/" + DefaultRealm + "/protocol/openid-connect/token"
	}
	return s, nil
}
