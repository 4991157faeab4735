package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/storage"
)

// LoginField is one form field to fill.
type LoginField struct {
	// Selector is a CSS selector of the field; when empty, Name is the
	// field's name attribute.
	Selector, Name string
	// Value is typed into the field (a trusted key-by-key text insertion).
	Value string
	// Secret marks a password: its value never appears in an error, a log
	// line or a result (errors name the field by Selector or Name).
	Secret bool
}

func (f LoginField) describe() string {
	if f.Selector != "" {
		return "field " + quote(f.Selector)
	}
	return "field named " + quote(f.Name)
}

func (f LoginField) selector() string {
	if f.Selector != "" {
		return f.Selector
	}
	b, _ := json.Marshal(f.Name)
	return "[name=" + string(b) + "]"
}

// Login describes a form login.
type Login struct {
	// URL is the login page; it is loaded by the browser itself (a login
	// page needs its own cookies and tokens).
	URL    string
	Fields []LoginField
	// Submit is a CSS selector of the element clicked to log in. Empty: the
	// form of the last field is submitted (form.requestSubmit()).
	Submit string
	// The success check, at least one: SuccessSelector must match an
	// element, and/or SuccessURL must match the page's URL (both, when both
	// are set).
	SuccessSelector string
	SuccessURL      *regexp.Regexp
	// Deadline bounds the login once it has a tab (load, typing, submit,
	// success check); the wait for a tab and for the browser to start is
	// bounded by the caller's context only, as for Render. Default 30 s.
	Deadline time.Duration
	// UserAgent: as RenderOptions.UserAgent.
	UserAgent string
	// BasicAuth: as RenderOptions.BasicAuth, for the login's pages (a
	// login page behind HTTP Basic authentication). The login's tab is
	// never reused, so its HTTP auth cache goes with it.
	BasicAuth *BasicAuth
}

// LoginError is a failed login. Step is "config", "load", "field",
// "submit" or "success"; Error() names the URL (without its query) and
// the field or selector that failed, never a field's value.
type LoginError struct {
	Step string
	Msg  string
	Err  error
}

func (e *LoginError) Error() string { return "browser: login: " + e.Msg }
func (e *LoginError) Unwrap() error { return e.Err }

// Login logs in with a form in a tab of its own and returns the session's
// cookies (every cookie of the tab's browser context, which starts empty),
// for the crawl's HTTP client and for RenderOptions.Cookies.
func (p *Pool) Login(ctx context.Context, l Login) ([]*http.Cookie, error) {
	secrets := []string{}
	for _, f := range l.Fields {
		if f.Secret && f.Value != "" {
			secrets = append(secrets, f.Value)
		}
	}
	cookies, err := p.login(ctx, l)
	if err != nil {
		return nil, scrub(err, secrets)
	}
	p.log.Info("browser: logged in", "url", redactURL(l.URL), "cookies", len(cookies))
	return cookies, nil
}

// scrub makes sure no secret appears in err's text (a belt to the braces
// of never putting one there).
func scrub(err error, secrets []string) error {
	msg := err.Error()
	clean := msg
	for _, s := range secrets {
		clean = strings.ReplaceAll(clean, s, "***")
	}
	if clean == msg {
		return err
	}
	var le *LoginError
	step := "login"
	if errors.As(err, &le) {
		step = le.Step
	}
	return &LoginError{Step: step, Msg: strings.TrimPrefix(clean, "browser: login: ")}
}

func (p *Pool) login(ctx context.Context, l Login) (_ []*http.Cookie, err error) {
	u, perr := url.Parse(l.URL)
	switch {
	case perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, &LoginError{Step: "config", Msg: "login URL is not an absolute http(s) URL"}
	case len(l.Fields) == 0:
		return nil, &LoginError{Step: "config", Msg: "no fields to fill"}
	case l.SuccessSelector == "" && l.SuccessURL == nil:
		return nil, &LoginError{Step: "config", Msg: "no success check (a selector that must appear, or a URL pattern)"}
	}
	for i, f := range l.Fields {
		if f.Selector == "" && f.Name == "" {
			return nil, &LoginError{Step: "config", Msg: fmt.Sprintf("field %d has neither a selector nor a name", i+1)}
		}
	}
	if l.Deadline <= 0 {
		l.Deadline = DefaultLoginDeadline
	}
	where := redactURL(l.URL)
	t, err := p.acquire(ctx)
	if err != nil {
		return nil, &LoginError{Step: "load", Msg: "no tab for the login: " + err.Error(), Err: err}
	}
	// The tab holds the session now: it is not reused.
	defer p.release(t, false, nil)
	ctx, cancel := context.WithTimeout(ctx, l.Deadline)
	defer cancel()
	st := newRenderState(l.URL)
	st.login = true
	st.setAuth(l.BasicAuth)
	t.state.Store(st)
	defer t.state.Store(nil)
	timeout := func(step, what string, err error) error {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return &LoginError{Step: step, Msg: fmt.Sprintf("%s on %s: not done within %s", what, where, l.Deadline), Err: err}
		}
		return &LoginError{Step: step, Msg: fmt.Sprintf("%s on %s: %v", what, where, t.cause(ctx, err)), Err: err}
	}

	if err := t.prepare(ctx, l.URL, nil, l.UserAgent, false); err != nil {
		return nil, timeout("load", "preparing the tab", err)
	}
	nav, err := cdp.Call(ctx, t.target, page.Navigate, page.NavigateParams{URL: l.URL})
	if err != nil {
		return nil, timeout("load", "loading the login page", err)
	}
	if nav.ErrorText != "" {
		return nil, &LoginError{Step: "load", Msg: fmt.Sprintf("loading the login page %s: %s", where, nav.ErrorText)}
	}

	// Wait for every field, then type into each.
	for _, f := range l.Fields {
		if err := t.pollTrue(ctx, st, existsExpr(f.selector())); err != nil {
			var ce *ClipError
			if errors.As(err, &ce) {
				return nil, &LoginError{Step: "field", Msg: fmt.Sprintf("%s: invalid CSS selector", f.describe())}
			}
			return nil, timeout("field", f.describe()+" not found", err)
		}
	}
	for _, f := range l.Fields {
		if err := t.typeInto(ctx, st, f); err != nil {
			return nil, timeout("field", "typing into "+f.describe(), err)
		}
	}

	// The success check, and what it looks for (for errors).
	check := func(c context.Context) (bool, error) {
		var r struct {
			URL   string `json:"url"`
			Found bool   `json:"found"`
		}
		s, _ := json.Marshal(l.SuccessSelector)
		if err := t.eval(c, st, `(function(s){return {url:String(location.href),found:s?document.querySelector(s)!==null:true}})(`+string(s)+`)`, &r); err != nil {
			return false, err
		}
		ok := r.Found
		if l.SuccessURL != nil && !l.SuccessURL.MatchString(r.URL) {
			ok = false
		}
		st.mu.Lock()
		st.lastURL = r.URL
		st.mu.Unlock()
		return ok, nil
	}
	var want []string
	if l.SuccessSelector != "" {
		want = append(want, "selector "+quote(l.SuccessSelector)+" present")
	}
	if l.SuccessURL != nil {
		want = append(want, "URL matching "+quote(l.SuccessURL.String()))
	}
	// A check the login page meets before the form is submitted cannot
	// tell a login from a failed one: it would hold at once, before the
	// site answered (a wrong password logged in, a right one without the
	// session's cookie yet).
	if ok, err := check(ctx); err == nil && ok {
		return nil, &LoginError{Step: "success", Msg: fmt.Sprintf("success check (%s) already met by the login page %s before submitting: it cannot tell a failed login; check for what only the logged-in page has", strings.Join(want, " and "), where)}
	}

	// Submit.
	sel, _ := json.Marshal(l.Submit)
	last, _ := json.Marshal(l.Fields[len(l.Fields)-1].selector())
	var submitted string
	expr := `(function(s,last){var el;if(s){el=document.querySelector(s);if(!el)return "missing";el.click();return "clicked"}` +
		`el=document.querySelector(last);var f=el&&el.form;if(!f)return "noform";if(f.requestSubmit)f.requestSubmit();else f.submit();return "submitted"})(` +
		string(sel) + `,` + string(last) + `)`
	if err := t.eval(ctx, st, expr, &submitted); err != nil {
		return nil, timeout("submit", "submitting", err)
	}
	switch submitted {
	case "missing":
		return nil, &LoginError{Step: "submit", Msg: fmt.Sprintf("submit element %s not found on %s", quote(l.Submit), where)}
	case "noform":
		return nil, &LoginError{Step: "submit", Msg: fmt.Sprintf("no submit element given and %s is not in a form on %s", l.Fields[len(l.Fields)-1].describe(), where)}
	}

	for {
		ok, err := check(ctx)
		if err == nil && ok {
			break
		}
		if err != nil {
			var je *JSError
			if errors.As(err, &je) {
				return nil, &LoginError{Step: "success", Msg: fmt.Sprintf("success selector %s is not valid CSS", quote(l.SuccessSelector))}
			}
			// A navigation in progress replaces the document: retry.
			st.mu.Lock()
			st.world = 0
			st.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			st.mu.Lock()
			at := st.lastURL
			st.mu.Unlock()
			msg := fmt.Sprintf("success check (%s) not met within %s after submitting on %s", strings.Join(want, " and "), l.Deadline, where)
			if at != "" {
				msg += "; the page is at " + redactURL(at)
			}
			if err := t.cause(context.Background(), ctx.Err()); errors.Is(err, ErrBrowserLost) || errors.Is(err, ErrTabCrashed) {
				msg += " (" + err.Error() + ")"
			}
			return nil, &LoginError{Step: "success", Msg: msg, Err: ctx.Err()}
		case <-time.After(100 * time.Millisecond):
		}
	}

	res, err := cdp.Call(ctx, t.gen.browser, storage.GetCookies, storage.GetCookiesParams{BrowserContextID: t.bctx})
	if err != nil {
		return nil, timeout("success", "reading the session cookies", err)
	}
	out := make([]*http.Cookie, 0, len(res.Cookies))
	for _, c := range res.Cookies {
		out = append(out, httpCookie(c))
	}
	return out, nil
}

func existsExpr(sel string) string {
	b, _ := json.Marshal(sel)
	return `(function(s){try{return document.querySelector(s)!==null}catch(e){return "invalid"}})(` + string(b) + `)`
}

// pollTrue evaluates expr every 50 ms until it returns true, "invalid"
// (a *ClipError: the selector is not CSS) or ctx ends. Evaluation errors
// during a navigation are retried.
func (t *tab) pollTrue(ctx context.Context, st *renderState, expr string) error {
	for {
		var v any
		err := t.eval(ctx, st, expr, &v)
		if err == nil && v == true {
			return nil
		}
		if err == nil && v == "invalid" {
			return &ClipError{Msg: "invalid selector"}
		}
		if err != nil {
			st.mu.Lock()
			st.world = 0
			st.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.crashed:
			return ErrTabCrashed
		case <-t.gen.done:
			return ErrBrowserLost
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// typeInto focuses the field, empties it, inserts the value as typed text
// (Input.insertText: the page sees trusted input events) and checks the
// field's length. The value goes only into the DevTools pipe.
func (t *tab) typeInto(ctx context.Context, st *renderState, f LoginField) error {
	sel, _ := json.Marshal(f.selector())
	var ok bool
	focus := `(function(s){var el=document.querySelector(s);if(!el)return false;el.focus();` +
		`if(typeof el.select==="function")el.select();if("value" in el)el.value="";return document.activeElement===el})(` + string(sel) + `)`
	if err := t.eval(ctx, st, focus, &ok); err != nil {
		return err
	}
	if !ok {
		return errors.New("the field cannot take the focus")
	}
	if f.Value != "" {
		if _, err := cdp.Call(ctx, t.target, input.InsertText, input.InsertTextParams{Text: f.Value}); err != nil {
			return errors.New("inserting the text failed")
		}
	}
	var n int
	if err := t.eval(ctx, st, `(function(s){var el=document.querySelector(s);return el&&"value" in el?el.value.length:-1})(`+string(sel)+`)`, &n); err != nil {
		return err
	}
	if want := utf16Len(f.Value); n != want {
		return fmt.Errorf("the field holds %d characters after typing %d (a maxlength, or a script that rewrote it)", n, want)
	}
	return nil
}

// utf16Len is s's length in UTF-16 code units (what el.value.length
// counts).
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

func httpCookie(c *network.Cookie) *http.Cookie {
	h := &http.Cookie{
		Name: c.Name, Value: c.Value, Domain: c.Domain, Path: c.Path,
		Secure: c.Secure, HttpOnly: c.HTTPOnly,
	}
	if !c.Session && c.Expires > 0 && !math.IsInf(c.Expires, 0) {
		sec, frac := math.Modf(c.Expires)
		h.Expires = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	}
	switch c.SameSite {
	case network.CookieSameSiteLax:
		h.SameSite = http.SameSiteLaxMode
	case network.CookieSameSiteStrict:
		h.SameSite = http.SameSiteStrictMode
	case network.CookieSameSiteNone:
		h.SameSite = http.SameSiteNoneMode
	}
	return h
}

func quote(s string) string { return fmt.Sprintf("%q", s) }
