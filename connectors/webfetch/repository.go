package webfetch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/httpfetch"
	"github.com/connectorhq/connector/crawl"
	"github.com/connectorhq/connector/crawl/browser"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/internal/netguard"
	"github.com/connectorhq/connector/store"
)

// Options configure a Repository.
type Options struct {
	// Config is the loaded configuration (required), checked with
	// TaskKeys.
	Config *config.Config
	// Store holds the tasks' datastores (required).
	Store store.Store
	// Target receives the documents; nil: ingestion is disabled.
	Target ingest.Target
	// Logger receives the repository's logs; nil discards them.
	Logger *slog.Logger
	// Client sends the crawl's own HTTP requests (tests); nil: the
	// crawl's client, which enforces [Security] DeniedAddresses.
	Client *http.Client
	// Crawled receives the figures of every crawl when it ends (metrics;
	// fetch.Deps.Crawled).
	Crawled func(fetch.CrawlStats)
	// Browser overrides the browser pool's configuration built from
	// [Connector] (tests: a binary that fails, a small TempDir). Its
	// Deny is always [Security] DeniedAddresses.
	Browser *browser.Config
}

// Repository is the Web connector: the HTTP connector's repository
// (tasks, datastore, change classification, delivery, deletions,
// progress, every fetch action) with pages rendered in one headless
// browser per server. It implements fetch.Closer: the server closes it
// (and so the browser) in its shutdown order.
type Repository struct {
	*httpfetch.Repository
	pool *browser.Pool
	log  *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

var (
	_ fetch.Repository = (*Repository)(nil)
	_ fetch.Viewer     = (*Repository)(nil)
	_ fetch.TaskLister = (*Repository)(nil)
	_ fetch.Scheduler  = (*Repository)(nil)
	_ fetch.Exclusive  = (*Repository)(nil)
	_ fetch.Secrets    = (*Repository)(nil)
	_ fetch.Closer     = (*Repository)(nil)
)

// New builds the repository and the browser pool (which starts its
// browser on first use). A missing browser binary is an error naming
// [Connector] BrowserExecutable.
func New(o Options) (*Repository, error) {
	if o.Config == nil {
		return nil, errors.New("webfetch: Options.Config is required")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	deny, err := netguard.Parse(o.Config.Security.DeniedAddresses)
	if err != nil {
		return nil, &config.Error{File: o.Config.Path, Line: o.Config.Line("Security", "DeniedAddresses"), Section: "Security", Key: "DeniedAddresses", Err: err}
	}
	bc := browserConfig(o.Config)
	if o.Browser != nil {
		bc = *o.Browser
	}
	bc.Deny = deny
	bc.Logger = log.With("component", "browser")
	if bc.TempDir == "" {
		// The browser's profile folders live in the server's data folder.
		bc.TempDir = filepath.Join(o.Config.Server.DataDirectory, "browser")
		if err := os.MkdirAll(bc.TempDir, 0o700); err != nil {
			return nil, fmt.Errorf("webfetch: the browser's folder: %w", err)
		}
	}
	pool, err := browser.New(bc)
	if err != nil {
		return nil, &config.Error{File: o.Config.Path, Line: o.Config.Line("Connector", "BrowserExecutable"), Section: "Connector", Key: "BrowserExecutable", Err: err}
	}
	r := &Repository{pool: pool, log: log.With("component", "webfetch")}
	r.Repository, err = httpfetch.New(httpfetch.Options{
		Config: o.Config, Store: o.Store, Target: o.Target, Logger: o.Logger, Client: o.Client, Crawled: o.Crawled,
		Schema: schema, Begin: r.begin,
	})
	if err != nil {
		_ = pool.Close()
		return nil, err
	}
	return r, nil
}

// browserConfig is the pool's configuration from [Connector].
func browserConfig(cfg *config.Config) browser.Config {
	c := cfg.Connector
	return browser.Config{
		Exec:        c.BrowserExecutable,
		Tabs:        c.BrowserTabs,
		IdleTimeout: c.BrowserIdleTimeout,
		TabMaxPages: c.BrowserTabMaxPages,
	}
}

// Pool is the repository's browser pool (for tests and benchmarks).
func (r *Repository) Pool() *browser.Pool { return r.pool }

// Close stops the browser (every process of it) and waits for the pool's
// goroutines. The server calls it once the queue has stopped every action.
func (r *Repository) Close() error {
	if r == nil {
		return nil
	}
	r.closeOnce.Do(func() { r.closeErr = r.pool.Close() })
	return r.closeErr
}

// begin is httpfetch's Options.Begin: a form login when the task has one,
// then the renderer of the task's pages (none for Collect, which writes
// pages as served).
func (r *Repository) begin(ctx context.Context, t httpfetch.TaskStart) (*httpfetch.TaskRun, error) {
	s := ws(t.Ext)
	run := &taskRun{s: s, pool: r.pool, log: t.Log, fetch: t.Fetch}
	if len(t.StartURLs) > 0 {
		run.start = t.StartURLs[0]
	}
	if s.login.set {
		cookies, err := r.login(ctx, s, t.UserAgent, t.BasicAuth)
		if err != nil {
			return nil, err
		}
		if run.jar, err = newSessionJar(cookies); err != nil {
			return nil, err
		}
		t.Log.Info("logged in", "url", redactQuery(s.login.url), "cookies", len(cookies))
	}
	tr := &httpfetch.TaskRun{Document: run.document, View: run.view}
	if run.jar != nil {
		tr.Jar = run.jar
	}
	if t.Purpose != httpfetch.PurposeCollect {
		tr.Render = run
		run.shape = s.renderShape()
		tr.Shape = run.pageShape
		run.opts = s.renderOptions(t.UserAgent)
		// The page's own requests to the task's origins answer their
		// 401 with the task's credentials, as the crawl's do.
		run.opts.BasicAuth = browserAuth(t.BasicAuth)
	}
	if s.always {
		tr.Unconditional = run.renders
	}
	return tr, nil
}

// login logs in with the task's form and returns the session's cookies.
// The login's pages that the site answers 401 are sent again with the
// task's Basic credentials when they are to the crawl's origins (a
// login page behind HTTP Basic authentication), as the rendered pages'
// requests are.
func (r *Repository) login(ctx context.Context, s *settings, userAgent string, basic *crawl.BasicAuth) ([]*http.Cookie, error) {
	l := s.login
	var fields []browser.LoginField
	if l.userSet {
		fields = append(fields, browser.LoginField{Selector: l.userField, Value: l.user})
	}
	if l.passwordSet {
		fields = append(fields, browser.LoginField{Selector: l.passField, Value: l.password, Secret: true})
	}
	cookies, err := r.pool.Login(ctx, browser.Login{
		URL: l.url, Fields: fields, Submit: l.submit,
		SuccessSelector: l.successSel, SuccessURL: l.successURL, UserAgent: userAgent,
		BasicAuth: browserAuth(basic),
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		var se *browser.StartError
		if errors.As(err, &se) {
			return nil, err
		}
		return nil, fmt.Errorf("form login failed: %w", err)
	}
	return cookies, nil
}

// browserAuth is the task's Basic credentials for the browser; nil when
// the task has none.
func browserAuth(a *crawl.BasicAuth) *browser.BasicAuth {
	if a == nil {
		return nil
	}
	return &browser.BasicAuth{Username: a.Username, Password: a.Password, Origins: a.Origins}
}

func redactQuery(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// renderOptions are the browser's options for the task's pages.
func (s *settings) renderOptions(userAgent string) browser.RenderOptions {
	o := browser.RenderOptions{
		Deadline:     s.deadline,
		QuietWindow:  s.quiet,
		WaitSelector: s.waitSelector,
		Clip:         s.clip,
		UserAgent:    userAgent,
		// The crawl's context spans the task: when it ends (done or
		// stopped), the tabs it left idle are closed with it.
		TabsEndWithContext: true,
	}
	if s.allowTypes != nil {
		o.Subresources.AllowTypes = s.allowTypes
	}
	return o
}

var (
	_ crawl.Renderer        = (*taskRun)(nil)
	_ crawl.RedirectWatcher = (*taskRun)(nil)
)
