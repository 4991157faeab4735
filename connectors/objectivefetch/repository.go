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
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/panics"
	"github.com/connectorhq/connector/messages"
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
type Options = restsync.Deps

// Repository is the Objective connector: it implements fetch.Repository,
// fetch.Viewer, fetch.TaskLister, fetch.Exclusive and fetch.Secrets.
type Repository struct {
	*restsync.Repo[settings]
	// batchSize, when set, is the Size of a Synchronize's Batch (tests).
	batchSize int
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
	r := &Repository{}
	base, err := restsync.NewRepo(restsync.RepoOptions[settings]{Deps: o, Name: "objectivefetch", Actions: FetchActions, Keys: keys,
		Resolve: resolve, Decode: decodeIdentifier, Shared: r.shared})
	if err != nil {
		return nil, err
	}
	r.Repo = base
	return r, nil
}

// shared is the repository's restsync.SharedFunc: every task delivers an
// object under one reference, and its record is under the object's id in
// every task's datastore. Task's target holds the object's documents
// unless it is a folder or file of a task that does not index them
// (IndexFolders, which records them without a document); its record is
// then written without a version, so that its next walk finds the object
// changed and delivers it again.
func (r *Repository) shared(task string, w store.Writer, key string, rec *restsync.Record) (bool, error) {
	s := r.Set[task]
	if s == nil {
		return false, nil
	}
	var st objState
	_ = json.Unmarshal(rec.Extra, &st) // a record without a state: its kind from its id
	kind := cmp.Or(st.Kind, kindOf(strings.TrimPrefix(key, objectKey(""))))
	if kind != kindDocument && !s.IndexFolders {
		return false, nil
	}
	return true, restsync.StaleRecord(w, key, rec)
}

// Check validates every task of a configuration without touching anything
// on disk (beyond reading [Security] AESKeyFile when a secret is given
// encrypted).
func Check(cfg *config.Config) error {
	return restsync.CheckAll(cfg, resolve)
}

// Exclusive implements fetch.Exclusive: Synchronize and Delete of a task
// rewrite its datastore, one at a time.
func (r *Repository) Exclusive(fetchAction string) bool {
	a := strings.ToUpper(fetchAction)
	return a == restsync.ActionSynchronize || a == restsync.ActionDelete
}

// request is a validated action.
type request struct {
	*restsync.Action
	inserts []*insertDoc
}

func (r *Repository) prepare(action string, params messages.Params) (*request, error) {
	a, err := r.Prepare(action, params)
	if err != nil {
		return nil, err
	}
	req := &request{Action: a}
	if a.Action == restsync.ActionInsert {
		if req.inserts, err = r.parseInserts(a.InsertXML, r.Set[a.Tasks[0]]); err != nil {
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
	return r.Logged(job, req.Action, func(log *slog.Logger) ([]*messages.Element, error) {
		switch req.Action.Action {
		case restsync.ActionSynchronize:
			return nil, restsync.SyncTasks(ctx, job, req.Tasks, func(task string, progress func(float64, string)) error {
				return r.syncTask(ctx, job, task, progress, log)
			})
		case restsync.ActionCollect:
			return r.Collect(ctx, job, req.Action, r.items())
		case restsync.ActionIdentifiers:
			return r.identifiers(ctx, job, req)
		case restsync.ActionInsert:
			return r.insert(ctx, job, req)
		case restsync.ActionDelete:
			return r.delete(ctx, job, req)
		}
		return nil, nil
	})
}

// open returns the task's API client (kept for its next actions): every
// connection through [Security] DeniedAddresses; basic authentication, or
// tokens of the Keycloak-style endpoint, renewed once when the server
// refuses one mid-run.
func (r *Repository) open(_ context.Context, s *settings) (*api, error) {
	return restsync.Kept(r.Repo, s.Task, func() (*api, error) {
		c, err := r.ServiceClient(s.Task, s.ServerURL, restsync.TLS{CheckCertificate: s.CheckCert, CAFile: s.CACert}, s.Timeout,
			func(hc *http.Client) restsync.Auth {
				// Concurrency requests for documents and a listing's next
				// page can be in flight: as many connections stay open
				// between them (else each burst opens new ones and closes
				// them again).
				if tr, ok := hc.Transport.(*http.Transport); ok {
					tr.MaxIdleConnsPerHost = max(tr.MaxIdleConnsPerHost, int(s.Concurrency)+1)
				}
				if s.Auth != AuthOAuth {
					return restsync.BasicAuth{User: s.Username, Password: s.Password}
				}
				return &restsync.TokenAuth{New: func(ctx context.Context) (oauth2.TokenSource, error) {
					return &keycloak{ctx: context.WithoutCancel(ctx), hc: hc, s: s}, nil
				}}
			},
			restsync.Options{Service: "objective", MaxAttempts: int(s.MaxAttempts), MaxRetryAfter: s.MaxRetryAfter,
				Message: errorMessage, UserAgent: "connector-objective"})
		if err != nil {
			return nil, err
		}
		return &api{c: c, pageSize: int(s.PageSize)}, nil
	})
}

// fatal reports whether err ends the action: the credentials are refused
// or cannot be had (the action ends as Error with the server's message),
// the work panicked (with the panic's), or the action was stopped.
func fatal(ctx context.Context, err error) bool {
	var se *restsync.StatusError
	return ctx.Err() != nil || errors.Is(err, restsync.ErrUnauthorized) || errors.Is(err, restsync.ErrAuth) ||
		errors.Is(err, panics.ErrPanic) || errors.As(err, &se) && se.Status == http.StatusUnauthorized
}
