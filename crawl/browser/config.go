package browser

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/connectorhq/connector/internal/netguard"
)

// Defaults of Config and RenderOptions. Each is documented in the package
// comment.
const (
	DefaultIdleTimeout   = time.Minute
	DefaultStartTimeout  = 30 * time.Second
	DefaultAnswerTimeout = 30 * time.Second
	DefaultTabMaxPages   = 100
	DefaultDeadline      = 30 * time.Second
	DefaultQuietWindow   = 500 * time.Millisecond
	DefaultReadTimeout   = 10 * time.Second
	DefaultMaxLinks      = 5000
	DefaultMaxTextBytes  = 2 << 20
	DefaultMaxHTMLBytes  = 8 << 20
	DefaultMaxMeta       = 500
	DefaultLinkTextBytes = 1000
	DefaultWindowWidth   = 1280
	DefaultWindowHeight  = 800
	DefaultLoginDeadline = 30 * time.Second
)

// Config configures a Pool. The zero value is usable: every field has a
// default (see the package comment).
type Config struct {
	// Exec is the browser binary. Empty: the first of
	// /usr/lib/chromium/chromium-headless-shell, chromium-headless-shell,
	// /usr/lib/chromium/chromium, chromium, chromium-browser on $PATH. A
	// Debian wrapper script in /usr/bin is replaced by the binary it runs
	// (see ResolveExec), so that the parent-death signal reaches the
	// browser itself.
	Exec string
	// Tabs bounds the number of tabs open at once, which is also the number
	// of renders (and logins) that run at the same time; more wait.
	// Default: runtime.NumCPU().
	Tabs int
	// IdleTimeout closes the browser when no render has run for this long;
	// the next render starts it again. Default 1 minute; negative: never.
	IdleTimeout time.Duration
	// StartTimeout bounds the start of the browser (process start to the
	// first DevTools answer). Default 30 s.
	StartTimeout time.Duration
	// AnswerTimeout bounds what the browser itself (not a page) must
	// answer: opening a tab, preparing one for a render. A browser that
	// does not answer within it is hung (wedged, stopped) and is stopped
	// as a dead one is; the render is retried once in a new browser.
	// Default 30 s.
	AnswerTimeout time.Duration
	// TabMaxPages: a tab is closed and replaced after rendering this many
	// pages, which bounds what a renderer process can accumulate.
	// Default 100.
	TabMaxPages int
	// TempDir is where the browser's user-data-dir is created (a fresh
	// folder per browser start, removed when the browser stops). Default:
	// os.TempDir().
	TempDir string
	// WindowWidth and WindowHeight size every tab's window (the layout
	// viewport the page sees). Default 1280×800.
	WindowWidth, WindowHeight int
	// ExtraFlags are added to the browser's command line ("--name=value" or
	// "--name"), after the fixed ones.
	ExtraFlags []string
	// Logger receives the pool's log lines (start, stop, crash, restart).
	// Default: slog.Default().
	Logger *slog.Logger
	// Deny is the deny list the browser's own requests obey (subresources,
	// XHR, WebSockets, a login's pages): when it denies anything, the
	// browser sends every request through a local proxy that refuses
	// denied host names and, after name resolution, denied addresses
	// (see proxy.go); a subresource whose URL names a denied host or
	// address is also refused before it leaves the tab
	// (Page.Requests.Denied). WebRTC is then kept from sending UDP that
	// does not go through the proxy.
	Deny *netguard.Guard
}

func (c Config) withDefaults() Config {
	if c.Tabs <= 0 {
		c.Tabs = runtime.NumCPU()
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.AnswerTimeout <= 0 {
		c.AnswerTimeout = DefaultAnswerTimeout
	}
	if c.TabMaxPages <= 0 {
		c.TabMaxPages = DefaultTabMaxPages
	}
	if c.WindowWidth <= 0 {
		c.WindowWidth = DefaultWindowWidth
	}
	if c.WindowHeight <= 0 {
		c.WindowHeight = DefaultWindowHeight
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// ClipMode is IDOL's ClippingMode.
type ClipMode string

// The clipping modes. IDOL's SMARTPRINT is not implemented (it is IDOL's
// own algorithm); ParseClipMode rejects it with a clear error.
const (
	ClipNone        ClipMode = ""
	ClipCSS         ClipMode = "CSSCLIPPING"
	ClipReadability ClipMode = "READABILITY"
)

// ParseClipMode reads an IDOL ClippingMode value (case-insensitive). The
// empty string means no clipping.
func ParseClipMode(s string) (ClipMode, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "":
		return ClipNone, nil
	case string(ClipCSS):
		return ClipCSS, nil
	case string(ClipReadability):
		return ClipReadability, nil
	case "SMARTPRINT":
		return ClipNone, errors.New("ClippingMode SMARTPRINT is not supported (use READABILITY or CSSCLIPPING)")
	default:
		return ClipNone, fmt.Errorf("ClippingMode %q is not one of CSSCLIPPING, READABILITY", s)
	}
}

// Clipping selects the part of a page whose content counts (IDOL's
// ClippingMode, ClipPageUsingCssSelect, ClipPageUsingCssUnselect).
type Clipping struct {
	Mode ClipMode
	// Select (ClipPageUsingCssSelect): CSS selectors of the elements to
	// keep, with their descendants. Empty: the whole body.
	Select []string
	// Unselect (ClipPageUsingCssUnselect): CSS selectors of the elements
	// to remove, with their descendants, from what Select kept.
	Unselect []string
}

// ResourceType is a CDP resource type ("Script", "Stylesheet", "XHR",
// "Fetch", "Image", "Font", "Media", "Document" (sub-frames), "Other", ...).
type ResourceType string

// Resource types used by DefaultAllowTypes and the tests.
const (
	ResourceDocument   ResourceType = "Document"
	ResourceScript     ResourceType = "Script"
	ResourceStylesheet ResourceType = "Stylesheet"
	ResourceXHR        ResourceType = "XHR"
	ResourceFetch      ResourceType = "Fetch"
	ResourceImage      ResourceType = "Image"
	ResourceFont       ResourceType = "Font"
	ResourceMedia      ResourceType = "Media"
	ResourceEventSrc   ResourceType = "EventSource"
	ResourceOther      ResourceType = "Other"
	ResourceWebSocket  ResourceType = "WebSocket"
)

// BasicAuth is a user name and password for HTTP Basic authentication
// and the origins (scheme://host[:port]) they are given to
// (RenderOptions.BasicAuth).
type BasicAuth struct {
	Username, Password string
	Origins            []string
}

// DefaultAllowTypes are the subresources a render loads when
// Subresources.AllowTypes is nil: what scripts need to build the page
// (scripts, style sheets, XHR/fetch). Images, fonts, media and sub-frames
// are blocked: they do not change the DOM text and cost time.
var DefaultAllowTypes = []ResourceType{ResourceScript, ResourceStylesheet, ResourceXHR, ResourceFetch}

// Subresources says which requests of a rendered page the browser may send.
// The main document is never fetched by the browser (it is fulfilled with
// the bytes given to Render); a navigation of the main frame to another
// document is always blocked (the page stays the one being rendered);
// non-http(s) URLs and downloads are always blocked. WebSockets, which
// the DevTools request interception does not see, follow AllowTypes
// (ResourceWebSocket) only, not MustHave, CantHave or SameSiteOnly: the
// rendered document, the workers' scripts and the frames' documents that
// the render lets load are given a Content-Security-Policy without ws:
// and wss: (the frames, whose own policy Chromium takes from the
// network, a WebSocket that fails instead); the deny list's proxy sees
// their handshakes (Config.Deny).
type Subresources struct {
	// AllowTypes lists the allowed resource types; nil: DefaultAllowTypes;
	// an empty non-nil slice blocks every subresource.
	AllowTypes []ResourceType
	// MustHave, when set, must match a subresource URL for it to load.
	MustHave *regexp.Regexp
	// CantHave, when set, blocks every subresource URL it matches.
	CantHave *regexp.Regexp
	// SameSiteOnly blocks subresources whose host is not the page's host or
	// one of its subdomains / parent domains (registrable-domain-like
	// comparison on the host's last two labels).
	SameSiteOnly bool
}

// RenderOptions are the per-page settings of Render.
type RenderOptions struct {
	// Deadline bounds the wait for the page to settle. A page still busy
	// then is read as it is, with Page.Settled false. Default 30 s.
	Deadline time.Duration
	// QuietWindow: the page is settled once its load event has fired and no
	// request has been in flight for this long. Default 500 ms.
	QuietWindow time.Duration
	// WaitSelector, when set, replaces the quiet-network rule: the page is
	// settled as soon as an element matches this CSS selector.
	WaitSelector string
	// ReadTimeout bounds reading the DOM after the wait (it is not part of
	// Deadline). Default 10 s.
	ReadTimeout time.Duration
	// Subresources is the request policy (see Subresources).
	Subresources Subresources
	// Clip selects the content that Page.Clipped holds.
	Clip Clipping
	// Cookies are the cookies the page's own requests carry (the tab's
	// cookie jar is emptied before each render, then set to these). A
	// cookie without Domain is scoped to the page's host.
	Cookies []*http.Cookie
	// ReadCookies: Page.Cookies is the tab's cookie jar when the page
	// was read (Cookies, as the page's scripts and requests left them).
	ReadCookies bool
	// UserAgent overrides the browser's User-Agent for the page's requests
	// and navigator.userAgent. Empty: the browser's own.
	UserAgent string
	// BasicAuth answers the HTTP Basic challenges (401) of the page's own
	// requests to its Origins; a challenge from any other origin, from a
	// proxy, or of another scheme is cancelled (the request gets its 401),
	// and so is a second challenge of the same request (wrong
	// credentials). A tab that gave the credentials is not reused: its
	// browser context keeps them (Chromium's HTTP auth cache) and would
	// send them with another render's requests. nil: every challenge is
	// cancelled.
	BasicAuth *BasicAuth
	// Limits of what is read from the DOM. Zero: the defaults.
	MaxLinks     int // links kept (default 5000)
	MaxTextBytes int // visible text, and each clipped text (default 2 MiB)
	MaxHTMLBytes int // outerHTML, and each clipped HTML (default 8 MiB)
	MaxMeta      int // meta tags kept (default 500)
	// TabsEndWithContext: a tab this render leaves idle for the next render
	// is closed when the render's context ends (unless another render took
	// it first). A caller whose context spans a whole job (a crawl) sets it:
	// when the job is stopped or done, the tabs it used are closed, and with
	// no other render in progress the browser runs no renderer process.
	// Without it, an idle tab lives until it is reused, recycled
	// (Config.TabMaxPages) or the browser stops (Config.IdleTimeout).
	TabsEndWithContext bool
}

func (o RenderOptions) withDefaults() RenderOptions {
	if o.Deadline <= 0 {
		o.Deadline = DefaultDeadline
	}
	if o.QuietWindow <= 0 {
		o.QuietWindow = DefaultQuietWindow
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.MaxLinks <= 0 {
		o.MaxLinks = DefaultMaxLinks
	}
	if o.MaxTextBytes <= 0 {
		o.MaxTextBytes = DefaultMaxTextBytes
	}
	if o.MaxHTMLBytes <= 0 {
		o.MaxHTMLBytes = DefaultMaxHTMLBytes
	}
	if o.MaxMeta <= 0 {
		o.MaxMeta = DefaultMaxMeta
	}
	if o.Subresources.AllowTypes == nil {
		o.Subresources.AllowTypes = DefaultAllowTypes
	}
	return o
}

func (o RenderOptions) validate() error {
	switch o.Clip.Mode {
	case ClipNone, ClipCSS, ClipReadability:
	default:
		return fmt.Errorf("browser: unknown clipping mode %q", o.Clip.Mode)
	}
	if o.Clip.Mode == ClipCSS && len(nonEmpty(o.Clip.Select)) == 0 && len(nonEmpty(o.Clip.Unselect)) == 0 {
		return errors.New("browser: ClippingMode CSSCLIPPING needs ClipPageUsingCssSelect or ClipPageUsingCssUnselect")
	}
	return nil
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
