package browser

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/inspector"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/connectorhq/connector/internal/netguard"
)

// tab is one page target in a browser context of its own (its own cookie
// jar, storage and cache), reused for up to Config.TabMaxPages renders.
type tab struct {
	gen       *generation
	ctx       context.Context // the chromedp context of the tab
	cancel    context.CancelFunc
	target    *chromedp.Target
	bctx      cdp.BrowserContextID
	mainFrame cdp.FrameID
	pages     int
	ua        string                // user agent override in force
	wsScript  page.ScriptIdentifier // frameNoWebSocketJS in force; "": none
	// unscope stops the closing of this idle tab when the context of its
	// last render ends (RenderOptions.TabsEndWithContext); guarded by the
	// pool's mu.
	unscope func() bool

	crashed   chan struct{}
	crashOnce sync.Once

	// state is the render (or login) in progress, nil between them.
	state atomic.Pointer[renderState]

	qmu    sync.Mutex
	queue  []any         // *fetch.EventRequestPaused, *fetch.EventAuthRequired, *page.EventJavascriptDialogOpening
	notify chan struct{} // cap 1
	closed chan struct{} // closed when the worker has exited
}

// newTab opens a tab in generation g: a new browser context and a page
// target in it, request interception on, service workers bypassed,
// downloads denied.
func newTab(g *generation) (*tab, error) {
	ctx, cancel := chromedp.NewContext(g.ctx, chromedp.WithNewBrowserContext(), chromedp.WithRuntimeDisabled())
	t := &tab{
		gen:     g,
		ctx:     ctx,
		cancel:  cancel,
		crashed: make(chan struct{}),
		notify:  make(chan struct{}, 1),
		closed:  make(chan struct{}),
	}
	fail := func(err error) (*tab, error) {
		cancel()
		return nil, err
	}
	newTabStep(0)
	if err := chromedp.Do(ctx); err != nil {
		return fail(err)
	}
	c := chromedp.FromContext(ctx)
	t.target = c.Target
	t.bctx = c.BrowserContextID
	t.mainFrame = cdp.FrameID(t.target.TargetID)
	newTabStep(1)
	if err := chromedp.Listen(ctx, t.onEvent); err != nil {
		return fail(err)
	}
	go t.work()
	sctx, scancel := context.WithTimeout(ctx, 15*time.Second)
	defer scancel()
	newTabStep(2)
	tree, err := cdp.Call(sctx, t.target, page.GetFrameTree, cdp.Empty{})
	if err != nil {
		return fail(err)
	}
	if tree.FrameTree != nil && tree.FrameTree.Frame != nil {
		t.mainFrame = tree.FrameTree.Frame.ID
	}
	newTabStep(3)
	if _, err := cdp.Call(sctx, g.browser, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorDeny, BrowserContextID: t.bctx,
	}); err != nil {
		return fail(err)
	}
	newTabStep(4)
	if _, err := cdp.Call(sctx, t.target, network.SetBypassServiceWorker, network.SetBypassServiceWorkerParams{Bypass: true}); err != nil {
		return fail(err)
	}
	if _, err := cdp.Call(sctx, t.target, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: noServiceWorkerJS,
	}); err != nil {
		return fail(err)
	}
	newTabStep(5)
	// HandleAuthRequests: a 401 challenge pauses its request until
	// answerAuth answers it (RenderOptions.BasicAuth). The responses of
	// documents (frames) and of "Other" requests (workers' scripts) pause
	// too: they bring a policy of their own, to which answerResponse adds
	// the render's (noWebSocketsCSP).
	yes := true
	if _, err := cdp.Call(sctx, t.target, fetch.Enable, fetch.EnableParams{
		Patterns: []*fetch.RequestPattern{
			{URLPattern: "*", RequestStage: fetch.RequestStageRequest},
			{URLPattern: "*", ResourceType: network.ResourceTypeDocument, RequestStage: fetch.RequestStageResponse},
			{URLPattern: "*", ResourceType: network.ResourceTypeOther, RequestStage: fetch.RequestStageResponse},
		},
		HandleAuthRequests: &yes,
	}); err != nil {
		return fail(err)
	}
	newTabStep(6)
	return t, nil
}

// noServiceWorkerJS runs in every document of a tab before the page's own
// scripts: it makes navigator.serviceWorker.register fail. A service
// worker is a target of its own, whose script and requests the tab's
// request interception never sees: registered, it would fetch what the
// render's request policy forbids (Subresources), and keep running in the
// tab's browser context after the render.
const noServiceWorkerJS = `(function () {
  if (typeof ServiceWorkerContainer === "undefined") return;
  Object.defineProperty(ServiceWorkerContainer.prototype, "register", {
    value: function register() { return Promise.reject(new DOMException("service workers are disabled", "SecurityError")); },
    writable: false, configurable: false,
  });
})()`

// newTabHook, when set (by the tests), is called at each step of newTab:
// the tests cancel renders there.
var newTabHook func(step int)

// newTabSteps is the number of steps newTab reports to newTabHook.
const newTabSteps = 7

func newTabStep(i int) {
	if h := newTabHook; h != nil {
		h(i)
	}
}

// broken reports whether the tab cannot be used again.
func (t *tab) broken() bool {
	select {
	case <-t.crashed:
		return true
	case <-t.ctx.Done():
		return true
	default:
		return false
	}
}

// close closes the tab (target and browser context) and waits until the
// browser has done it (chromedp bounds that wait).
func (t *tab) close() {
	t.cancel()
	<-t.closed
}

// cancelNoWait closes the tab without waiting (used when the whole browser
// is being stopped anyway).
func (t *tab) cancelNoWait() { t.cancel() }

// onEvent runs in chromedp's read loop for the tab: it must not block and
// must not send commands. Interception and dialogs are queued for the
// worker; the rest updates the render state.
func (t *tab) onEvent(ev any) {
	switch e := ev.(type) {
	case *fetch.EventRequestPaused:
		t.enqueue(e)
		return
	case *page.EventJavascriptDialogOpening:
		t.enqueue(e)
		return
	case *fetch.EventAuthRequired:
		t.enqueue(e)
		return
	case *inspector.EventTargetCrashed:
		t.crashOnce.Do(func() { close(t.crashed) })
		if st := t.state.Load(); st != nil {
			st.poke()
		}
		return
	}
	st := t.state.Load()
	if st == nil {
		return
	}
	st.mu.Lock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		st.inflight[e.RequestID] = struct{}{}
		st.lastActivity = time.Now()
	case *network.EventLoadingFinished:
		if _, ok := st.inflight[e.RequestID]; ok {
			delete(st.inflight, e.RequestID)
			st.lastActivity = time.Now()
		}
	case *network.EventLoadingFailed:
		if _, ok := st.inflight[e.RequestID]; ok {
			delete(st.inflight, e.RequestID)
			st.lastActivity = time.Now()
		}
	case *page.EventFrameNavigated:
		if e.Frame != nil && e.Frame.ParentID == "" && e.Frame.ID == t.mainFrame && st.mainServed {
			st.committed = true
			st.loaded = false
			st.lastActivity = time.Now()
		}
	case *page.EventFrameStoppedLoading:
		// Also ends the load of a document whose loading was aborted
		// (a navigation it started and that was refused stops it, and
		// its load event never fires).
		if st.committed && e.FrameID == t.mainFrame {
			st.loaded = true
			st.lastActivity = time.Now()
		}
	case *page.EventLoadEventFired:
		if st.committed {
			st.loaded = true
			st.lastActivity = time.Now()
		}
	default:
		st.mu.Unlock()
		return
	}
	st.mu.Unlock()
	st.poke()
}

func (t *tab) enqueue(ev any) {
	t.qmu.Lock()
	t.queue = append(t.queue, ev)
	t.qmu.Unlock()
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

// work answers paused requests and dialogs, in order, until the tab
// closes.
func (t *tab) work() {
	defer close(t.closed)
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-t.notify:
		}
		for {
			t.qmu.Lock()
			if len(t.queue) == 0 {
				t.queue = nil
				t.qmu.Unlock()
				break
			}
			ev := t.queue[0]
			t.queue[0] = nil
			t.queue = t.queue[1:]
			t.qmu.Unlock()
			if t.ctx.Err() != nil {
				return
			}
			switch e := ev.(type) {
			case *fetch.EventRequestPaused:
				t.answerRequest(e)
			case *page.EventJavascriptDialogOpening:
				t.answerDialog(e)
			case *fetch.EventAuthRequired:
				t.answerAuth(e)
			}
		}
	}
}

func (t *tab) call(f func(ctx context.Context) error) {
	ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
	defer cancel()
	_ = f(ctx)
}

// answerDialog dismisses alert, confirm and prompt (confirm answers false,
// prompt null) and accepts beforeunload (the tab must be able to leave the
// page).
func (t *tab) answerDialog(e *page.EventJavascriptDialogOpening) {
	if st := t.state.Load(); st != nil {
		st.mu.Lock()
		st.dialogs++
		st.mu.Unlock()
	}
	t.call(func(ctx context.Context) error {
		_, err := cdp.Call(ctx, t.target, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{
			Accept: e.Type == page.DialogTypeBeforeunload,
		})
		return err
	})
}

// answerAuth answers an authentication challenge: with the render's
// credentials when they are for the challenging request's origin
// (renderState.credentials), else by cancelling it (the request gets the
// 401 response). Every challenge is answered: its request waits until
// then.
func (t *tab) answerAuth(e *fetch.EventAuthRequired) {
	resp := &fetch.AuthChallengeResponse{Response: fetch.AuthChallengeResponseResponseCancelAuth}
	if st := t.state.Load(); st != nil {
		if user, pass, ok := st.credentials(e); ok {
			resp = &fetch.AuthChallengeResponse{Response: fetch.AuthChallengeResponseResponseProvideCredentials, Username: user, Password: pass}
		}
	}
	t.call(func(ctx context.Context) error {
		_, err := cdp.Call(ctx, t.target, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{RequestID: e.RequestID, AuthChallengeResponse: resp})
		return err
	})
}

// credentials returns the render's Basic credentials for challenge e:
// only a server's (not a proxy's) Basic challenge of a request to one of
// the credentials' origins, and only once per request (a second one means
// they were refused).
func (st *renderState) credentials(e *fetch.EventAuthRequired) (user, pass string, ok bool) {
	a := st.auth
	if a == nil || e.AuthChallenge == nil || e.Request == nil ||
		e.AuthChallenge.Source == fetch.AuthChallengeSourceProxy || !strings.EqualFold(e.AuthChallenge.Scheme, "basic") {
		return "", "", false
	}
	u, err := url.Parse(e.Request.URL)
	if err != nil || !st.authOrigins[netguard.Origin(u)] {
		return "", "", false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.authEnded || st.authTried[e.RequestID] {
		return "", "", false
	}
	if st.authTried == nil {
		st.authTried = map[fetch.RequestID]bool{}
	}
	st.authTried[e.RequestID] = true
	st.authGiven = true
	return a.Username, a.Password, true
}

// setAuth gives the render its Basic credentials (RenderOptions.BasicAuth).
func (st *renderState) setAuth(a *BasicAuth) {
	if a == nil {
		return
	}
	st.auth = a
	st.authOrigins = map[string]bool{}
	for _, o := range a.Origins {
		if u, err := url.Parse(strings.TrimSpace(o)); err == nil && u.Host != "" {
			st.authOrigins[netguard.Origin(u)] = true
		}
	}
}

// endCredentials ends the giving of the render's credentials (a later
// challenge, from a request of a script still running, is cancelled) and
// reports whether any were given. Whether the tab may be reused is
// decided by it: a tab whose HTTP auth cache holds the credentials would
// send them with another render's requests, so no credentials may be
// given after that decision.
func (st *renderState) endCredentials() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.authEnded = true
	return st.authGiven
}

// answerRequest applies the render's request policy to one paused request.
func (t *tab) answerRequest(e *fetch.EventRequestPaused) {
	st := t.state.Load()
	if e.ResponseStatusCode != 0 || e.ResponseErrorReason != "" {
		t.answerResponse(st, e)
		return
	}
	act, reason := decide(st, e, t.mainFrame, t.gen.p.cfg.Deny)
	switch act {
	case actFulfil:
		headers := []*fetch.HeaderEntry{{Name: "Content-Type", Value: st.contentType}}
		if !st.policy.types[ResourceWebSocket] {
			headers = append(headers, &fetch.HeaderEntry{Name: "Content-Security-Policy", Value: noWebSocketsCSP})
		}
		t.call(func(ctx context.Context) error {
			_, err := cdp.Call(ctx, t.target, fetch.FulfillRequest, fetch.FulfillRequestParams{
				RequestID: e.RequestID, ResponseCode: 200, ResponseHeaders: headers, Body: st.body,
			})
			return err
		})
	case actNoContent:
		t.call(func(ctx context.Context) error {
			_, err := cdp.Call(ctx, t.target, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: e.RequestID, ResponseCode: 204})
			return err
		})
	case actContinue:
		t.call(func(ctx context.Context) error {
			_, err := cdp.Call(ctx, t.target, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: e.RequestID})
			return err
		})
	default:
		t.call(func(ctx context.Context) error {
			_, err := cdp.Call(ctx, t.target, fetch.FailRequest, fetch.FailRequestParams{RequestID: e.RequestID, ErrorReason: reason})
			return err
		})
	}
}

// noWebSocketsCSP is the Content-Security-Policy of a rendered document
// whose render does not allow WebSockets: the request interception does
// not see a WebSocket's handshake, so the document's policy refuses it
// (ws: and wss: are not in connect-src; every other scheme a script may
// connect to is). The document's frames without a document of their own
// (about:blank, srcdoc) and its blob: workers inherit it; the page's own
// policies (a <meta> one) apply too.
const noWebSocketsCSP = "connect-src http: https: blob: data:"

// answerResponse continues a paused response (a frame's document, a
// worker's script): with noWebSocketsCSP added to its headers when the
// render does not allow WebSockets, so that a document or worker with a
// policy of its own (not the rendered document's, which it would
// inherit) cannot open one either.
func (t *tab) answerResponse(st *renderState, e *fetch.EventRequestPaused) {
	p := fetch.ContinueResponseParams{RequestID: e.RequestID}
	if st != nil && !st.login && !st.policy.types[ResourceWebSocket] && e.ResponseErrorReason == "" {
		p.ResponseCode = e.ResponseStatusCode
		p.ResponsePhrase = e.ResponseStatusText
		p.ResponseHeaders = append(append(make([]*fetch.HeaderEntry, 0, len(e.ResponseHeaders)+1), e.ResponseHeaders...),
			&fetch.HeaderEntry{Name: "Content-Security-Policy", Value: noWebSocketsCSP})
	}
	t.call(func(ctx context.Context) error {
		_, err := cdp.Call(ctx, t.target, fetch.ContinueResponse, p)
		return err
	})
}

type action int

const (
	actFail action = iota
	actFulfil
	actContinue
	actNoContent // 204: the browser abandons the navigation and keeps the document
)

// decide is the request policy: the first request for the main document
// gets the given bytes; any other main-frame navigation is answered "204
// No Content", on which the browser abandons it and keeps the rendered
// document (failing it would replace the document with an error page);
// a non-http(s) URL or a subresource the policy does not allow fails.
func decide(st *renderState, e *fetch.EventRequestPaused, mainFrame cdp.FrameID, deny *netguard.Guard) (action, network.ErrorReason) {
	if st == nil || e.Request == nil {
		return actFail, network.ErrorReasonAborted
	}
	u, err := url.Parse(e.Request.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		st.count(func() { st.blocked++ })
		return actFail, network.ErrorReasonBlockedByClient
	}
	if !(e.ResourceType == network.ResourceTypeDocument && e.FrameID == mainFrame && !st.login) && deny.CheckHost(u.Host) != nil {
		// A denied host or literal address; names that resolve to a
		// denied address are refused by the proxy.
		st.count(func() { st.blocked++; st.denied++ })
		return actFail, network.ErrorReasonBlockedByClient
	}
	if e.ResourceType == network.ResourceTypeDocument && e.FrameID == mainFrame {
		st.mu.Lock()
		defer st.mu.Unlock()
		if !st.mainServed && !st.login && sameDocument(e.Request.URL, st.navURL) && e.Request.Method == "GET" {
			st.mainServed = true
			return actFulfil, ""
		}
		if st.login {
			st.allowed++
			return actContinue, ""
		}
		st.navBlocked++
		st.navigatedTo(e.Request.URL, e.Request.Method)
		return actNoContent, ""
	}
	if st.login || st.policy.allows(ResourceType(e.ResourceType), u, st.pageHost) {
		st.count(func() { st.allowed++ })
		return actContinue, ""
	}
	st.count(func() { st.blocked++ })
	return actFail, network.ErrorReasonBlockedByClient
}

// sameDocument compares two URLs without their fragments, after the
// normalisation a browser applies (lower-case scheme and host, "/" for an
// empty path).
func sameDocument(a, b string) bool {
	return normDoc(a) == normDoc(b)
}

func normDoc(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	u.Fragment, u.RawFragment = "", ""
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	if u.Path == "" && u.Opaque == "" {
		u.Path = "/"
	}
	if (u.Scheme == "http" && u.Port() == "80") || (u.Scheme == "https" && u.Port() == "443") {
		u.Host = u.Hostname()
	}
	return u.String()
}

// policy is a compiled Subresources.
type policy struct {
	types    map[ResourceType]bool
	sub      Subresources
	sameSite bool
}

func newPolicy(s Subresources) policy {
	p := policy{types: map[ResourceType]bool{}, sub: s, sameSite: s.SameSiteOnly}
	for _, ty := range s.AllowTypes {
		p.types[ty] = true
	}
	return p
}

func (p policy) allows(ty ResourceType, u *url.URL, pageHost string) bool {
	if !p.types[ty] {
		return false
	}
	s := u.String()
	if p.sub.MustHave != nil && !p.sub.MustHave.MatchString(s) {
		return false
	}
	if p.sub.CantHave != nil && p.sub.CantHave.MatchString(s) {
		return false
	}
	if p.sameSite && siteOf(u.Hostname()) != siteOf(pageHost) {
		return false
	}
	return true
}

// siteOf is the host's last two labels (an IP address or a one-label host
// is its own site).
func siteOf(host string) string {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if strings.Count(host, ".") < 2 || strings.Contains(host, ":") || isIPv4(host) {
		return host
	}
	i := strings.LastIndexByte(host, '.')
	j := strings.LastIndexByte(host[:i], '.')
	return host[j+1:]
}

func isIPv4(h string) bool {
	for _, c := range h {
		if (c < '0' || c > '9') && c != '.' {
			return false
		}
	}
	return true
}

// renderState is what the tab's event handlers know about the render in
// progress.
type renderState struct {
	mu          sync.Mutex
	navURL      string
	pageHost    string
	body        []byte
	contentType string
	policy      policy
	login       bool // a login: navigations and subresources go to the network

	// auth and authOrigins are RenderOptions.BasicAuth, set before the
	// render starts; authTried (the requests given the credentials) and
	// authGiven and authEnded are guarded by mu.
	auth        *BasicAuth
	authOrigins map[string]bool
	authTried   map[fetch.RequestID]bool
	authGiven   bool
	authEnded   bool // endCredentials was called: no more are given

	mainServed   bool
	committed    bool
	loaded       bool
	inflight     map[network.RequestID]struct{}
	lastActivity time.Time

	allowed, blocked, navBlocked, dialogs, denied int
	// navigations are the documents the page tried to load in its main
	// frame (Page.Navigations).
	navigations []string

	world   runtime.ExecutionContextID // isolated world of the current document, 0: none yet
	lastURL string                     // login: location.href at the last success check

	changed chan struct{} // cap 1
}

func newRenderState(navURL string) *renderState {
	host := ""
	if u, err := url.Parse(navURL); err == nil {
		host = u.Hostname()
	}
	return &renderState{
		navURL:       navURL,
		pageHost:     host,
		inflight:     map[network.RequestID]struct{}{},
		lastActivity: time.Now(),
		changed:      make(chan struct{}, 1),
	}
}

// maxNavigations bounds Page.Navigations.
const maxNavigations = 20

// navigatedTo notes a main-frame navigation the render did not let the
// page make (st.mu held): a GET of another document than the one
// rendered, once.
func (st *renderState) navigatedTo(u, method string) {
	if method != "GET" || len(st.navigations) >= maxNavigations || sameDocument(u, st.navURL) {
		return
	}
	for _, n := range st.navigations {
		if sameDocument(n, u) {
			return
		}
	}
	st.navigations = append(st.navigations, u)
}

func (st *renderState) poke() {
	select {
	case st.changed <- struct{}{}:
	default:
	}
}

func (st *renderState) count(f func()) {
	st.mu.Lock()
	f()
	st.mu.Unlock()
}

// quietFor returns how long the network has been quiet (0 while a request
// is in flight or before the load event), and whether the page loaded.
func (st *renderState) quietFor(now time.Time) (time.Duration, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.loaded || len(st.inflight) > 0 {
		return 0, st.loaded
	}
	return now.Sub(st.lastActivity), true
}

// errTabGone: the tab's context ended during a render without the
// render's own cancellation (the browser detached or closed the tab).
var errTabGone = fmt.Errorf("%w: the browser closed the tab", ErrTabCrashed)
