package httpfetch

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/crawl"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/internal/netguard"
)

// Extension makes another connector of this one: a connector that crawls
// the web like the HTTP connector (same tasks, datastore, change
// classification, batching, delivery, deletion of unreached pages,
// progress and fetch actions) and adds settings and page processing of
// its own. The Web connector (connectors/webfetch) is one: it renders
// pages in a browser. The static part (settings) is the Extension, given
// to NewSchema; the run-time part (Options.Begin) is given to New.
type Extension struct {
	// Keys are the extension's task settings, resolved like the HTTP
	// connector's own (task section > [FetchTasks] > [Default], Config
	// fragment and request overrides, IDOL's encrypted form for secret
	// ones, "did you mean" hints).
	Keys []Key
	// NewSettings returns one task's extension settings at their
	// defaults; the keys' Apply fill them in (settings.Ext, TaskStart.Ext).
	NewSettings func() any
	// Check, when set, validates a task's extension settings once
	// resolved (settings that go together). A *SettingError names the
	// key; the error is reported where that key was written.
	Check func(ext any) error
	// Doc is the documentation page that lists the settings (errors about
	// an unknown key point to it). Default docs/connectors/http.md.
	Doc string
}

// Key is one task setting of an Extension.
type Key struct {
	// Name is the setting's documented spelling (keys compare without
	// case).
	Name string
	// Apply parses value into ext (what Extension.NewSettings returned);
	// an error says what is expected.
	Apply func(ext any, value string) error
	// Secret: a password or token. It may be given in IDOL's encrypted
	// form (Apply receives it decrypted), and is never shown in an error,
	// a log, a reply or GetActionParameters (Redact and Seal apply).
	Secret bool
	// FileOnly: set in the configuration file only, never by a request.
	FileOnly bool
	// CheckRequest, when set, checks a value that a request (override or
	// Config fragment) set, against the [Security] ceilings.
	CheckRequest func(sec config.Security, ext any) error
}

// SettingError is an Extension.Check error about one setting.
type SettingError struct {
	Key string
	Err error
}

func (e *SettingError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

// Purpose says why a task's pages are fetched (TaskStart.Purpose).
type Purpose int

// Purposes.
const (
	// PurposeSync: a Synchronize's crawl.
	PurposeSync Purpose = iota
	// PurposeRefetch: pages fetched again to be delivered (Update,
	// Synchronize with Identifiers).
	PurposeRefetch
	// PurposeView: View.
	PurposeView
	// PurposeCollect: Collect, which writes the bytes as served.
	PurposeCollect
)

// TaskStart is what Options.Begin is told about a task about to fetch
// pages.
type TaskStart struct {
	Task    string // upper case
	Purpose Purpose
	// Ext is the task's extension settings (Extension.NewSettings' value,
	// after the file, the Config fragment and the request's overrides).
	Ext any
	// UserAgent is the task's UserAgent setting.
	UserAgent string
	// StartURLs are the task's start URLs (Synchronize).
	StartURLs []string
	// BasicAuth is the task's BasicAuthUsername and BasicAuthPassword
	// with the origins the crawl sends them to (its start URLs'); nil
	// when the task has none. A browser's requests may use them for
	// those origins only.
	BasicAuth *crawl.BasicAuth
	// Deny is [Security] DeniedAddresses: what the task's own requests
	// (a browser's too) must never reach.
	Deny *netguard.Guard
	Log  *slog.Logger
	// Fetch fetches u now, as Update and View fetch a page (the task's
	// client, rules and limits, nothing rendered, no link followed),
	// with jar's cookies, and returns the URL its redirects ended at.
	Fetch func(ctx context.Context, jar http.CookieJar, u string) (finalURL string, err error)
}

// BeginFunc prepares a task for fetching pages (a form login, a
// renderer); an error ends the action as Error (it should say why, the
// caller names the task).
type BeginFunc func(ctx context.Context, t TaskStart) (*TaskRun, error)

// TaskRun is how an extension takes part in one task's fetching. Every
// field may be nil.
type TaskRun struct {
	// Render renders HTML pages (crawl.Config.Render).
	Render crawl.Renderer
	// Jar carries session cookies (crawl.Config.Jar).
	Jar http.CookieJar
	// Document adjusts the document built from a page before it is
	// delivered (fields from Page.Rendered).
	Document func(p *crawl.Page, d *ingest.Document)
	// View returns what View shows of a page instead of its body (the
	// rendered HTML); ok false keeps the body.
	View func(p *crawl.Page) (content []byte, mimeType string, ok bool)
	// Unconditional reports URLs that are always fetched in full, never
	// with a conditional request (a page whose content a 304 cannot
	// vouch for).
	Unconditional func(url string) bool
	// Shape says what of the extension's settings shapes the content of
	// the HTML page at url (whether it is rendered, how it is clipped):
	// "" for the page as served. A page's record keeps the shape it was
	// fetched with (record.Render); when the shape changes, the page is
	// fetched in full (a 304 would keep the content the old settings
	// made).
	Shape func(url string) string
	// End releases what the run holds; called once when the task is done.
	End func()
}

// startTask calls Options.Begin for a task, or returns an empty run.
func (r *Repository) startTask(ctx context.Context, s *settings, purpose Purpose, log *slog.Logger) (*TaskRun, error) {
	if r.beginFn == nil {
		return &TaskRun{}, nil
	}
	tr, err := r.beginFn(ctx, TaskStart{
		Task: s.Task, Purpose: purpose, Ext: s.Ext, UserAgent: s.UserAgent, StartURLs: s.URLs, BasicAuth: s.basicAuth(),
		Deny: r.guard, Log: log,
		Fetch: func(ctx context.Context, jar http.CookieJar, u string) (string, error) {
			return r.fetchOne(ctx, s, jar, u)
		},
	})
	if err != nil {
		return nil, err
	}
	if tr == nil {
		tr = &TaskRun{}
	}
	return tr, nil
}

// fetchOne fetches u now with the task's settings and jar, nothing
// rendered (TaskStart.Fetch), and returns the URL its redirects ended at.
func (r *Repository) fetchOne(ctx context.Context, s *settings, jar http.CookieJar, u string) (string, error) {
	got, err := r.fetchNow(ctx, s, &TaskRun{Jar: jar}, []string{u})
	if err != nil {
		return "", err
	}
	for _, f := range got { // one: u, perhaps as the crawl normalised it
		if f.page != nil {
			return f.page.FinalURL, nil
		}
		if !errors.Is(f.err, errNotDelivered) {
			return "", f.err
		}
	}
	return "", errNotDelivered
}

// shape is Shape's value for a page of mediaType at url: "" for a page
// that is not HTML, or without Shape.
func (tr *TaskRun) shape(mediaType, url string) string {
	if tr == nil || tr.Shape == nil || (mediaType != "text/html" && mediaType != "application/xhtml+xml") {
		return ""
	}
	return tr.Shape(url)
}

// end ends a task run.
func (tr *TaskRun) end() {
	if tr != nil && tr.End != nil {
		tr.End()
	}
}

// document builds a page's document, adjusted by the run.
func (tr *TaskRun) document(task string, p *crawl.Page, extra []ingest.Field) *ingest.Document {
	d := pageDocument(task, p, extra)
	if tr != nil && tr.Document != nil {
		tr.Document(p, d)
	}
	return d
}
