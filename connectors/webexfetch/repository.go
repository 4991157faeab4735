// Package webexfetch is the Webex connector ([Connector] Type=WEBEX): it
// indexes Webex spaces (rooms) and their messages, with the messages'
// files as child documents and the rooms' members as the documents'
// security, read as the person who authorized the connector or, as a
// compliance officer, across the organisation. It talks to the Webex
// Messaging REST API (https://webexapis.com/v1) with OAuth 2.0 tokens
// refreshed from the token file `connector oauth` writes.
//
// Fetch actions: Synchronize (incremental: per room, newest first down to
// the last message seen; rooms in order of last activity, so an idle room
// costs no request; as compliance officer, the events feed brings edits
// and deletions), Collect, Identifiers, View, and Insert (posts a message
// when the task's scopes include spark:messages_write).
//
// docs/connectors/webex.md describes the settings and documents, and says
// which behaviour of Webex is documented by Cisco and which is inferred.
// Package webextest is the stand-in the tests and benchmarks run against.
package webexfetch

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/internal/netguard"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/oauth"
	"github.com/connectorhq/connector/secret"
	"github.com/connectorhq/connector/store"
)

// DefaultConfig is the embedded default configuration of a Webex
// connector server.
//
//go:embed default.cfg
var DefaultConfig []byte

// FetchActions are the connector's fetch actions.
var FetchActions = []string{fetch.ActionSynchronize, fetch.ActionCollect, fetch.ActionIdentifiers, fetch.ActionInsert}

// Type is the [Connector] Type of the Webex connector.
const Type = "WEBEX"

// Descriptor describes the connector to the registry of connector types
// (package connectors). The product name follows IDOL's pattern (IDOL's
// guide is WebExConnector_24.1_Documentation): WEBEXCONNECTOR.
func Descriptor() *fetch.Descriptor {
	return &fetch.Descriptor{
		Type:          Type,
		Product:       "WEBEXCONNECTOR",
		DefaultConfig: DefaultConfig,
		Doc:           "docs/connectors/webex.md",
		TaskKeys:      TaskKeys,
		Check:         Check,
		FetchActions:  slices.Clone(FetchActions),
		New: func(d fetch.Deps) (fetch.Repository, error) {
			return New(Options{Config: d.Config, Store: d.Store, Target: d.Target, Logger: d.Logger})
		},
	}
}

// Options configure a Repository.
type Options struct {
	// Config is the loaded configuration (loaded with TaskKeys).
	Config *config.Config
	// Store holds the tasks' datastores.
	Store store.Store
	// Target receives the documents; nil when ingestion is disabled.
	Target ingest.Target
	Logger *slog.Logger
	Now    func() time.Time
	// Sleep replaces the waits for Retry-After and between attempts
	// (tests); nil: real waits.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Repository is the Webex connector: it implements fetch.Repository,
// fetch.Viewer, fetch.TaskLister, fetch.Exclusive and fetch.Secrets.
type Repository struct {
	cfg    *config.Config
	st     store.Store
	target ingest.Target
	log    *slog.Logger
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	guard  *netguard.Guard

	tasks []string             // [FetchTasks], upper case
	set   map[string]*settings // every task section, by upper-case name

	key *restsync.KeyOnce

	// apis are the tasks' API clients, made on first use and kept, so
	// that access tokens and connections outlive an action.
	apiMu sync.Mutex
	apis  map[string]*api
}

var (
	_ fetch.Repository = (*Repository)(nil)
	_ fetch.Viewer     = (*Repository)(nil)
	_ fetch.TaskLister = (*Repository)(nil)
	_ fetch.Exclusive  = (*Repository)(nil)
	_ fetch.Secrets    = (*Repository)(nil)
)

// New resolves every task and returns the repository.
func New(o Options) (*Repository, error) {
	if o.Config == nil || o.Store == nil {
		return nil, errors.New("webexfetch: Options.Config and Options.Store are required")
	}
	r := &Repository{cfg: o.Config, st: o.Store, target: o.Target, log: o.Logger, now: o.Now, sleep: o.Sleep}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("component", "webexfetch")
	if r.now == nil {
		r.now = time.Now
	}
	g, err := netguard.Parse(o.Config.Security.DeniedAddresses)
	if err != nil {
		return nil, &config.Error{File: o.Config.Path, Section: "Security", Key: "DeniedAddresses", Err: err}
	}
	r.guard = g
	r.key = &restsync.KeyOnce{Config: o.Config}
	if r.tasks, r.set, err = restsync.ResolveAll(o.Config, resolve, r.key.Get); err != nil {
		return nil, err
	}
	return r, nil
}

// Check validates every task of a configuration without touching anything
// on disk (beyond reading [Security] AESKeyFile when a secret is given
// encrypted).
func Check(cfg *config.Config) error {
	_, _, err := restsync.ResolveAll(cfg, resolve, func() (*secret.Key, error) { return restsync.LoadKey(cfg) })
	return err
}

// OAuthTask is a task's OAuth 2.0 client and token file, for `connector
// oauth`.
type OAuthTask interface {
	OAuthClient() (oauth.Config, string)
}

// TaskSettings returns a task's OAuth 2.0 client and token file, for
// `connector oauth`.
func TaskSettings(cfg *config.Config, task string) (OAuthTask, error) {
	_, set, err := restsync.ResolveAll(cfg, resolve, func() (*secret.Key, error) { return restsync.LoadKey(cfg) })
	if err != nil {
		return nil, err
	}
	s := set[strings.ToUpper(strings.TrimSpace(task))]
	if s == nil {
		return nil, fmt.Errorf("there is no task [%s] in %s", task, cfg.Path)
	}
	return s, nil
}

// FetchActions implements fetch.Repository.
func (r *Repository) FetchActions() []string { return slices.Clone(FetchActions) }

// Exclusive implements fetch.Exclusive: a task's Synchronize rewrites its
// datastore, one at a time.
func (r *Repository) Exclusive(fetchAction string) bool {
	return strings.EqualFold(fetchAction, restsync.ActionSynchronize)
}

func (r *Repository) hasTask(name string) bool {
	_, ok := r.set[strings.ToUpper(strings.TrimSpace(name))]
	return ok
}

func (r *Repository) tasksOf() *restsync.Tasks {
	return &restsync.Tasks{Actions: FetchActions, Listed: r.tasks, Has: r.hasTask, CollectFolders: r.cfg.Security.CollectFolders,
		Identifier: func(raw string) (string, error) {
			id, err := decodeIdentifier(raw)
			return id.Task, err
		}}
}

// request is a validated action.
type request struct {
	*restsync.Action
	inserts []*restsync.InsertDoc
}

func (r *Repository) prepare(action string, params messages.Params) (*request, error) {
	a, err := r.tasksOf().Prepare(action, params)
	if err != nil {
		return nil, err
	}
	req := &request{Action: a}
	if a.Action == restsync.ActionInsert {
		s := r.set[a.Tasks[0]]
		if !s.canWrite() {
			return nil, messages.Invalid("FetchAction", action, fmt.Sprintf("task %s cannot post messages: its OAuthScopes lack %s (add it, and run `connector oauth` again)", s.Task, WriteScope))
		}
		if req.inserts, err = parseInserts(a.InsertXML, s); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// Validate implements fetch.Repository.
func (r *Repository) Validate(fetchAction string, params messages.Params) ([]string, error) {
	req, err := r.prepare(strings.ToUpper(strings.TrimSpace(fetchAction)), params)
	if err != nil {
		return nil, err
	}
	return req.Tasks, nil
}

// Run implements fetch.Repository.
func (r *Repository) Run(ctx context.Context, job *fetch.Job) ([]*messages.Element, error) {
	req, err := r.prepare(strings.ToUpper(job.FetchAction), job.Params)
	if err != nil {
		return nil, err
	}
	log := r.log.With("token", job.Token, "action", req.Action.Action)
	if len(req.Ignored) > 0 {
		log.Debug("parameters ignored: not the action's own", "parameters", strings.Join(req.Ignored, ","))
	}
	log.Info("action started", "tasks", strings.Join(req.Tasks, ","))
	start := r.now()
	var res []*messages.Element
	switch req.Action.Action {
	case restsync.ActionSynchronize:
		err = r.synchronize(ctx, job, req, log)
	case restsync.ActionCollect:
		res, err = r.collect(ctx, job, req)
	case restsync.ActionIdentifiers:
		res, err = r.identifiers(ctx, job, req)
	case restsync.ActionInsert:
		res, err = r.insert(ctx, job, req)
	}
	log.Info("action ended", "elapsed", r.now().Sub(start), "error", err)
	return res, err
}

func (r *Repository) datastore(task string) (store.Datastore, error) {
	ds, err := r.st.Datastore(strings.ToUpper(task))
	if err != nil {
		return nil, fmt.Errorf("webexfetch: datastore of %s: %w", task, err)
	}
	return ds, nil
}

// TaskList implements fetch.TaskLister.
func (r *Repository) TaskList() ([]fetch.TaskInfo, error) {
	names := slices.Clone(r.tasks)
	for _, t := range r.cfg.TaskSections() {
		if n := strings.ToUpper(t); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	out, err := restsync.TaskList(r.st, names)
	if err != nil {
		return nil, fmt.Errorf("webexfetch: %w", err)
	}
	return out, nil
}

// Redact implements fetch.Secrets. Requests cannot set task settings, so
// they carry no secret the connector uses; a parameter that looks like one
// is hidden all the same, wherever parameters are shown.
func (r *Repository) Redact(params messages.Params) messages.Params {
	return restsync.Redact(params, keys.IsSecret)
}

// Seal implements fetch.Secrets: a parameter that looks like a secret is
// replaced by secret.Redacted before the action is stored (the connector
// has no use for it).
func (r *Repository) Seal(params messages.Params) (messages.Params, error) {
	return r.Redact(params), nil
}

// open returns the task's API client: every connection through [Security]
// DeniedAddresses, tokens refreshed from the task's token file (renewed
// once when Webex refuses one mid-run). The client is kept for the task's
// next actions.
func (r *Repository) open(_ context.Context, s *settings) (*api, error) {
	r.apiMu.Lock()
	defer r.apiMu.Unlock()
	if a := r.apis[s.Task]; a != nil {
		return a, nil
	}
	hc, err := restsync.HTTPClient(r.guard, restsync.TLS{CheckCertificate: s.CheckCert, CAFile: s.CACert}, s.Timeout)
	if err != nil {
		return nil, fmt.Errorf("webexfetch: [%s] %w", s.Task, err)
	}
	key, err := r.key.Get()
	if err != nil {
		return nil, fmt.Errorf("webexfetch: [%s] the token file is encrypted with [Security] AESKeyFile: %w", s.Task, err)
	}
	oc := s.OAuth()
	oc.HTTPClient = hc
	tf := oauth.TokenFile{Path: s.TokenFile, Key: key}
	auth := &restsync.TokenAuth{New: func(ctx context.Context) (oauth2.TokenSource, error) {
		// The source outlives the action that made it: its refreshes
		// must not end with that action.
		return tf.TokenSource(context.WithoutCancel(ctx), oc)
	}}
	c, err := restsync.NewClient(s.APIURL, hc, auth, restsync.Options{
		Service: "webex", MaxAttempts: int(s.MaxAttempts), MaxRetryAfter: s.MaxRetryAfter,
		Message: errorMessage, UserAgent: "connector-webex", Sleep: r.sleep, Logger: r.log,
	})
	if err != nil {
		return nil, err
	}
	a := &api{c: c, pageSize: int(s.PageSize)}
	if r.apis == nil {
		r.apis = map[string]*api{}
	}
	r.apis[s.Task] = a
	return a, nil
}

// httpStatus is a Webex error's status (0 when it is not one).
func httpStatus(err error) int {
	var se *restsync.StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

// fatal reports whether err ends the action: the credentials are refused
// or cannot be had (the action ends as Error with Webex's message), or the
// action was stopped.
func fatal(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, restsync.ErrUnauthorized) || errors.Is(err, restsync.ErrAuth) ||
		httpStatus(err) == http.StatusUnauthorized
}
