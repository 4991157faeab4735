// Package objectivefetch is the Objective connector ([Connector]
// Type=OBJECTIVE): it indexes the folder tree of an Objective ECM /
// Objective Nexus server under configured root folders (by id or path):
// folders, Objective "files" (record containers) with their parts, and
// documents with their current version (or every version, or the
// corporate ones), with catalogue fields as metadata and the objects'
// permissions as security. It talks to Objective's REST API with basic
// authentication or OAuth 2.0 tokens from its Keycloak-style token
// endpoint.
//
// Fetch actions: Synchronize (incremental: every container is listed, and
// only documents whose entity tag or update time changed are read again;
// what a complete listing no longer shows is deleted), Collect,
// Identifiers, View, Insert (as IDOL's Objective connector documents it:
// InsertXML with PATH and FOLDER_OBJECT_TYPE) and Delete.
//
// No description of Objective's REST API is public: the connector follows
// the shape a public client shows. docs/connectors/objective.md says which
// behaviour is documented and which inferred; package objectivetest is the
// stand-in the tests and benchmarks run against, and lists the inferences.
package objectivefetch

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
	"github.com/connectorhq/connector/secret"
	"github.com/connectorhq/connector/store"
)

// DefaultConfig is the embedded default configuration of an Objective
// connector server.
//
//go:embed default.cfg
var DefaultConfig []byte

// FetchActions are the connector's fetch actions.
var FetchActions = []string{fetch.ActionSynchronize, fetch.ActionCollect, fetch.ActionIdentifiers,
	fetch.ActionInsert, fetch.ActionDelete}

// Type is the [Connector] Type of the Objective connector.
const Type = "OBJECTIVE"

// Descriptor describes the connector to the registry of connector types
// (package connectors). The product name follows IDOL's, whose current
// guides call it the Objective REST Connector: OBJECTIVERESTCONNECTOR.
func Descriptor() *fetch.Descriptor {
	return &fetch.Descriptor{
		Type:          Type,
		Product:       "OBJECTIVERESTCONNECTOR",
		DefaultConfig: DefaultConfig,
		Doc:           "docs/connectors/objective.md",
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

// Repository is the Objective connector: it implements fetch.Repository,
// fetch.Viewer, fetch.TaskLister, fetch.Exclusive and fetch.Secrets.
type Repository struct {
	cfg    *config.Config
	st     store.Store
	target ingest.Target
	log    *slog.Logger
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	guard  *netguard.Guard
	key    *restsync.KeyOnce

	tasks []string             // [FetchTasks], upper case
	set   map[string]*settings // every task section, by upper-case name

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
		return nil, errors.New("objectivefetch: Options.Config and Options.Store are required")
	}
	r := &Repository{cfg: o.Config, st: o.Store, target: o.Target, log: o.Logger, now: o.Now, sleep: o.Sleep,
		key: &restsync.KeyOnce{Config: o.Config}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("component", "objectivefetch")
	if r.now == nil {
		r.now = time.Now
	}
	g, err := netguard.Parse(o.Config.Security.DeniedAddresses)
	if err != nil {
		return nil, &config.Error{File: o.Config.Path, Section: "Security", Key: "DeniedAddresses", Err: err}
	}
	r.guard = g
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

// FetchActions implements fetch.Repository.
func (r *Repository) FetchActions() []string { return slices.Clone(FetchActions) }

// Exclusive implements fetch.Exclusive: Synchronize and Delete of a task
// rewrite its datastore, one at a time.
func (r *Repository) Exclusive(fetchAction string) bool {
	a := strings.ToUpper(fetchAction)
	return a == restsync.ActionSynchronize || a == restsync.ActionDelete
}

func (r *Repository) hasTask(name string) bool {
	_, ok := r.set[strings.ToUpper(strings.TrimSpace(name))]
	return ok
}

// request is a validated action.
type request struct {
	*restsync.Action
	inserts []*insertDoc
}

func (r *Repository) prepare(action string, params messages.Params) (*request, error) {
	t := &restsync.Tasks{Actions: FetchActions, Listed: r.tasks, Has: r.hasTask, CollectFolders: r.cfg.Security.CollectFolders,
		Identifier: func(raw string) (string, error) {
			id, err := decodeIdentifier(raw)
			return id.Task, err
		}}
	a, err := t.Prepare(action, params)
	if err != nil {
		return nil, err
	}
	req := &request{Action: a}
	if a.Action == restsync.ActionInsert {
		if req.inserts, err = r.parseInserts(a.InsertXML, r.set[a.Tasks[0]]); err != nil {
			return nil, err
		}
	}
	if a.Action == restsync.ActionDelete {
		for _, e := range a.IDs {
			id, _ := decodeIdentifier(e.Raw)
			if id.Kind != kindDocument || id.Part != "" {
				return nil, messages.Invalid("Identifiers", e.Raw, "only a document can be deleted (not a folder, a file or a single version)")
			}
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
	case restsync.ActionDelete:
		res, err = r.delete(ctx, job, req)
	}
	log.Info("action ended", "elapsed", r.now().Sub(start), "error", err)
	return res, err
}

func (r *Repository) datastore(task string) (store.Datastore, error) {
	ds, err := r.st.Datastore(strings.ToUpper(task))
	if err != nil {
		return nil, fmt.Errorf("objectivefetch: datastore of %s: %w", task, err)
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
		return nil, fmt.Errorf("objectivefetch: %w", err)
	}
	return out, nil
}

// Redact implements fetch.Secrets.
func (r *Repository) Redact(params messages.Params) messages.Params {
	return restsync.Redact(params, keys.IsSecret)
}

// Seal implements fetch.Secrets: a parameter that looks like a secret is
// replaced by secret.Redacted before the action is stored.
func (r *Repository) Seal(params messages.Params) (messages.Params, error) {
	return r.Redact(params), nil
}

// open returns the task's API client (kept for its next actions): every
// connection through [Security] DeniedAddresses; basic authentication, or
// tokens of the Keycloak-style endpoint, renewed once when the server
// refuses one mid-run.
func (r *Repository) open(_ context.Context, s *settings) (*api, error) {
	r.apiMu.Lock()
	defer r.apiMu.Unlock()
	if a := r.apis[s.Task]; a != nil {
		return a, nil
	}
	hc, err := restsync.HTTPClient(r.guard, restsync.TLS{CheckCertificate: s.CheckCert, CAFile: s.CACert}, s.Timeout)
	if err != nil {
		return nil, fmt.Errorf("objectivefetch: [%s] %w", s.Task, err)
	}
	var auth restsync.Auth = restsync.BasicAuth{User: s.Username, Password: s.Password}
	if s.Auth == AuthOAuth {
		auth = &restsync.TokenAuth{New: func(ctx context.Context) (oauth2.TokenSource, error) {
			return &keycloak{ctx: context.WithoutCancel(ctx), hc: hc, s: s}, nil
		}}
	}
	c, err := restsync.NewClient(s.ServerURL, hc, auth, restsync.Options{
		Service: "objective", MaxAttempts: int(s.MaxAttempts), MaxRetryAfter: s.MaxRetryAfter,
		Message: errorMessage, UserAgent: "connector-objective", Sleep: r.sleep, Logger: r.log,
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

// fatal reports whether err ends the action: the credentials are refused
// or cannot be had (the action ends as Error with the server's message),
// or the action was stopped.
func fatal(ctx context.Context, err error) bool {
	var se *restsync.StatusError
	return ctx.Err() != nil || errors.Is(err, restsync.ErrUnauthorized) || errors.Is(err, restsync.ErrAuth) ||
		errors.As(err, &se) && se.Status == http.StatusUnauthorized
}
