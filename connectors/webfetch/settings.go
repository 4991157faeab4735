package webfetch

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/httpfetch"
	"github.com/connectorhq/connector/crawl/browser"
	"github.com/connectorhq/connector/internal/wording"
	"github.com/connectorhq/connector/secret"
)

// Defaults of the Web connector's own task settings.
const (
	DefaultRenderDeadline    = browser.DefaultDeadline
	DefaultRenderQuietWindow = browser.DefaultQuietWindow
	DefaultLoginUserField    = `input[name="username"], input[name="user"], input[name="login"], input[name="email"], input[type="email"]`
	DefaultLoginPassField    = `input[type="password"]`
)

// settings are a task's Web connector settings (httpfetch's Ext).
type settings struct {
	renderMatch  *regexp.Regexp // RenderUrlRegex; nil: every HTML page
	always       bool           // RenderAlways
	waitSelector string
	deadline     time.Duration
	quiet        time.Duration
	allowTypes   []browser.ResourceType // nil: the browser's default
	clip         browser.Clipping
	login        loginSettings
}

type loginSettings struct {
	url                  string
	userField, user      string
	passField, password  string
	submit               string
	successSel           string
	successURL           *regexp.Regexp
	set                  bool // any login key was given
	userSet, passwordSet bool
}

func newSettings() any {
	return &settings{
		deadline: DefaultRenderDeadline,
		quiet:    DefaultRenderQuietWindow,
		login:    loginSettings{userField: DefaultLoginUserField, passField: DefaultLoginPassField},
	}
}

func ws(x any) *settings { return x.(*settings) }

// extension is the Web connector's part of the task settings.
var extension = &httpfetch.Extension{
	NewSettings: newSettings,
	Check:       check,
	Doc:         "docs/connectors/web.md",
	Keys: []httpfetch.Key{
		{Name: "RenderUrlRegex", Apply: func(x any, v string) (err error) {
			ws(x).renderMatch, err = httpfetch.CompileRegex(v)
			return err
		}},
		{Name: "RenderAlways", Apply: func(x any, v string) (err error) { ws(x).always, err = config.Bool(v); return err }},
		{Name: "RenderWaitSelector", Apply: func(x any, v string) error {
			v = strings.TrimSpace(v)
			if strings.ContainsAny(v, "\r\n") {
				return errors.New("must be one CSS selector on one line")
			}
			ws(x).waitSelector = v
			return nil
		}},
		{Name: "RenderDeadline", Apply: func(x any, v string) error {
			d, err := positive(v)
			ws(x).deadline = d
			return err
		}, CheckRequest: func(sec config.Security, x any) error {
			if ws(x).deadline > sec.MaxOverrideRequestTimeout {
				return fmt.Errorf("a request may set at most [Security] MaxOverrideRequestTimeout (%s)", sec.MaxOverrideRequestTimeout.Round(time.Second))
			}
			return nil
		}},
		{Name: "RenderQuietWindow", Apply: func(x any, v string) error {
			d, err := positive(v)
			ws(x).quiet = d
			return err
		}},
		{Name: "RenderResourceTypes", Apply: func(x any, v string) error {
			types, err := resourceTypes(v)
			ws(x).allowTypes = types
			return err
		}},
		{Name: "ClippingMode", Apply: func(x any, v string) (err error) {
			ws(x).clip.Mode, err = browser.ParseClipMode(v)
			return err
		}},
		{Name: "ClipPageUsingCssSelect", Apply: func(x any, v string) error {
			ws(x).clip.Select = splitSelectors(v)
			return nil
		}},
		{Name: "ClipPageUsingCssUnselect", Apply: func(x any, v string) error {
			ws(x).clip.Unselect = splitSelectors(v)
			return nil
		}},
		{Name: "LoginUrl", FileOnly: true, Apply: func(x any, v string) error {
			l := &ws(x).login
			l.url, l.set = strings.TrimSpace(v), l.set || strings.TrimSpace(v) != ""
			if l.url == "" {
				return nil
			}
			if secret.HasURLPassword(v) {
				return errors.New("must not carry a password (user:password@); set LoginUsername and LoginPassword")
			}
			// As the login reads it (browser.Login): a scheme in any
			// case, and a host.
			if u, err := url.Parse(l.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return errors.New("must be an absolute http or https URL")
			}
			return nil
		}},
		{Name: "LoginUsernameField", FileOnly: true, Apply: func(x any, v string) error {
			return selector(&ws(x).login.userField, v)
		}},
		{Name: "LoginUsername", FileOnly: true, Apply: func(x any, v string) error {
			l := &ws(x).login
			l.user, l.userSet, l.set = v, v != "", l.set || v != ""
			return oneLine(v)
		}},
		{Name: "LoginPasswordField", FileOnly: true, Apply: func(x any, v string) error {
			return selector(&ws(x).login.passField, v)
		}},
		{Name: "LoginPassword", FileOnly: true, Secret: true, Apply: func(x any, v string) error {
			if err := secret.Check(v); err != nil {
				return err
			}
			l := &ws(x).login
			l.password, l.passwordSet, l.set = v, v != "", l.set || v != ""
			return oneLine(v)
		}},
		{Name: "LoginSubmit", FileOnly: true, Apply: func(x any, v string) error {
			ws(x).login.submit = strings.TrimSpace(v)
			return oneLine(v)
		}},
		{Name: "LoginSuccessSelector", FileOnly: true, Apply: func(x any, v string) error {
			ws(x).login.successSel = strings.TrimSpace(v)
			return oneLine(v)
		}},
		{Name: "LoginSuccessUrlRegex", FileOnly: true, Apply: func(x any, v string) (err error) {
			ws(x).login.successURL, err = httpfetch.CompileRegex(v)
			return err
		}},
	},
}

// renderShape is what of the settings makes a rendered page's content
// (httpfetch's TaskRun.Shape, kept in each page's record): the
// subresources loaded and the clipping. A page whose record says
// another is fetched in full, so that a 304 does not keep the content
// other settings made.
func (s *settings) renderShape() string {
	parts := []string{"rendered"}
	if s.allowTypes != nil {
		types := make([]string, len(s.allowTypes))
		for i, ty := range s.allowTypes {
			types[i] = string(ty)
		}
		slices.Sort(types)
		parts = append(parts, "types="+strings.Join(slices.Compact(types), "+"))
	}
	if s.clip.Mode != browser.ClipNone {
		parts = append(parts, "clip="+string(s.clip.Mode))
		if s.clip.Mode == browser.ClipCSS {
			parts = append(parts, "select="+strings.Join(s.clip.Select, "\x00"), "unselect="+strings.Join(s.clip.Unselect, "\x00"))
		}
	}
	return strings.Join(parts, ";")
}

// check validates settings that go together.
func check(x any) error {
	s := ws(x)
	if s.clip.Mode == browser.ClipCSS && len(s.clip.Select) == 0 && len(s.clip.Unselect) == 0 {
		return &httpfetch.SettingError{Key: "ClippingMode", Err: errors.New("CSSCLIPPING needs ClipPageUsingCssSelect or ClipPageUsingCssUnselect")}
	}
	if s.waitSelector == "" && s.quiet >= s.deadline {
		// No page could settle: every one would wait its whole
		// deadline and be delivered RENDER_SETTLED=false. The key named
		// is RenderQuietWindow when it is set away from its default,
		// else RenderDeadline.
		key := "RenderDeadline"
		if s.quiet != DefaultRenderQuietWindow {
			key = "RenderQuietWindow"
		}
		return &httpfetch.SettingError{Key: key, Err: fmt.Errorf("RenderQuietWindow (%s) must be shorter than RenderDeadline (%s): no page could settle before its deadline (with RenderWaitSelector the window is not used)", s.quiet, s.deadline)}
	}
	l := s.login
	if !l.set {
		return nil
	}
	switch {
	case l.url == "":
		return &httpfetch.SettingError{Key: "LoginUrl", Err: errors.New("a form login needs the login page's URL")}
	case !l.userSet && !l.passwordSet:
		return &httpfetch.SettingError{Key: "LoginUrl", Err: errors.New("a form login needs LoginUsername or LoginPassword")}
	case l.successSel == "" && l.successURL == nil:
		return &httpfetch.SettingError{Key: "LoginUrl", Err: errors.New("a form login needs a success check: LoginSuccessSelector (an element that appears once logged in) or LoginSuccessUrlRegex")}
	}
	return nil
}

func positive(v string) (time.Duration, error) {
	d, err := config.Duration(v)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, errors.New("must be positive")
	}
	return d, nil
}

func oneLine(v string) error {
	if strings.ContainsAny(v, "\r\n") {
		return errors.New("must be one line")
	}
	return nil
}

func selector(dst *string, v string) error {
	v = strings.TrimSpace(v)
	if v == "" {
		return errors.New("must be a CSS selector")
	}
	*dst = v
	return oneLine(v)
}

// splitSelectors reads IDOL's comma-separated list of CSS selectors. A
// comma inside brackets, parentheses or quotes belongs to the selector
// (a[href*="a,b"], :is(h1, h2)).
func splitSelectors(v string) []string {
	var out []string
	depth, quote, start := 0, rune(0), 0
	flush := func(end int) {
		if s := strings.TrimSpace(v[start:end]); s != "" {
			out = append(out, s)
		}
	}
	for i, r := range v {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == '(' || r == '[':
			depth++
		case (r == ')' || r == ']') && depth > 0:
			depth--
		case r == ',' && depth == 0:
			flush(i)
			start = i + 1
		}
	}
	flush(len(v))
	return out
}

// resourceNames are the subresource types RenderResourceTypes takes (the
// DevTools protocol's names, any case).
var resourceNames = []browser.ResourceType{
	browser.ResourceScript, browser.ResourceStylesheet, browser.ResourceXHR, browser.ResourceFetch,
	browser.ResourceImage, browser.ResourceFont, browser.ResourceMedia, browser.ResourceDocument,
	browser.ResourceEventSrc, browser.ResourceOther, browser.ResourceWebSocket, "Manifest", "TextTrack",
}

func resourceTypes(v string) ([]browser.ResourceType, error) {
	out := []browser.ResourceType{}
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		found := false
		for _, n := range resourceNames {
			if strings.EqualFold(p, string(n)) {
				out, found = append(out, n), true
				break
			}
		}
		if !found {
			names := make([]string, len(resourceNames))
			for i, n := range resourceNames {
				names[i] = string(n)
			}
			return nil, fmt.Errorf("%s is not a resource type: list some of %s (or leave it empty: none)", wording.Quote(p), strings.Join(names, ", "))
		}
	}
	return out, nil
}
