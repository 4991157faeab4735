package mailfetch

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/internal/netguard"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// DefaultConfig is the embedded default configuration of a Google Mail
// connector server.
//
//go:embed default.cfg
var DefaultConfig []byte

// Type is the [Connector] Type of the Google Mail connector.
const Type = "GOOGLEMAIL"

// Descriptor describes the connector to the registry of connector types
// (package connectors). The product name follows IDOL's pattern
// (HTTPCONNECTOR; IDOL's guide is googlemailconnector_24.3_Documentation):
// GOOGLEMAILCONNECTOR.
func Descriptor() *fetch.Descriptor {
	return &fetch.Descriptor{
		Type:          Type,
		Product:       "GOOGLEMAILCONNECTOR",
		DefaultConfig: DefaultConfig,
		Doc:           "docs/connectors/google-mail.md",
		TaskKeys:      TaskKeys,
		Check:         Check,
		FetchActions:  fetchActions(),
		New: func(d fetch.Deps) (fetch.Repository, error) {
			return New(Options{Config: d.Config, Store: d.Store, Target: d.Target, Logger: d.Logger})
		},
	}
}

func fetchActions() []string {
	return []string{restsync.ActionSynchronize, restsync.ActionCollect, restsync.ActionIdentifiers, restsync.ActionDelete, restsync.ActionInsert}
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
}

// Repository is the Google Mail connector: it implements fetch.Repository,
// fetch.Viewer, fetch.TaskLister, fetch.Exclusive and fetch.Secrets.
type Repository struct {
	cfg    *config.Config
	st     store.Store
	target ingest.Target
	log    *slog.Logger
	now    func() time.Time
	guard  *netguard.Guard

	tasks []string             // [FetchTasks], upper case
	set   map[string]*settings // every task section, by upper-case name

	key *restsync.KeyOnce // the server's AES key, loaded when first needed

	// sharedMu gives the tasks turns at letting go of a message another
	// task of the same mailbox may hold (shared.keep).
	sharedMu sync.Mutex
	// wrote counts, per task (upper-case name), the batches of records it
	// wrote in this process: a task's index of the other tasks' records
	// (shared) is read again only when they wrote since.
	wrote map[string]*atomic.Int64
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
		return nil, errors.New("mailfetch: Options.Config and Options.Store are required")
	}
	r := &Repository{cfg: o.Config, st: o.Store, target: o.Target, log: o.Logger, now: o.Now, key: &restsync.KeyOnce{Config: o.Config}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("component", "mailfetch")
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
	r.wrote = make(map[string]*atomic.Int64, len(r.set))
	for name := range r.set {
		r.wrote[name] = new(atomic.Int64)
	}
	return r, nil
}

// Check validates every task of a configuration without touching anything
// on disk (beyond reading [Security] AESKeyFile when a secret is given
// encrypted).
func Check(cfg *config.Config) error {
	return restsync.CheckAll(cfg, resolve)
}

// TaskSettings returns the OAuth client and token file of a task, for
// `connector oauth`. The token file is encrypted with the server's key,
// created when missing.
func TaskSettings(cfg *config.Config, task string) (*settings, error) {
	return restsync.TaskSettings(cfg, resolve, task)
}

// FetchActions implements fetch.Repository.
func (r *Repository) FetchActions() []string { return fetchActions() }

// Exclusive implements fetch.Exclusive: Synchronize and Delete of a task
// rewrite its datastore, one at a time.
func (r *Repository) Exclusive(fetchAction string) bool {
	a := strings.ToUpper(fetchAction)
	return a == restsync.ActionSynchronize || a == restsync.ActionDelete
}

// request is a validated action.
type request struct {
	*restsync.Action
	ids     []idEntry
	inserts []insertDoc
}

type idEntry struct {
	raw string
	id  Identifier
}

// Validate implements fetch.Repository.
func (r *Repository) Validate(fetchAction string, params messages.Params) ([]string, error) {
	req, err := r.prepare(strings.ToUpper(strings.TrimSpace(fetchAction)), params)
	if err != nil {
		return nil, err
	}
	return req.Tasks, nil
}

func (r *Repository) hasTask(name string) bool {
	_, ok := r.set[strings.ToUpper(strings.TrimSpace(name))]
	return ok
}

// prepare checks an action's parameters (restsync.Tasks.Prepare), and
// reads its identifiers and InsertXML.
func (r *Repository) prepare(action string, params messages.Params) (*request, error) {
	t := &restsync.Tasks{Actions: fetchActions(), Listed: r.tasks, Has: r.hasTask, CollectFolders: r.cfg.Security.CollectFolders,
		Identifier: func(raw string) (string, error) {
			id, err := DecodeIdentifier(raw)
			return id.Task, err
		}}
	a, err := t.Prepare(action, params)
	if err != nil {
		return nil, err
	}
	req := &request{Action: a}
	for _, e := range a.IDs {
		id, _ := DecodeIdentifier(e.Raw)
		req.ids = append(req.ids, idEntry{raw: e.Raw, id: id})
	}
	if a.Action == restsync.ActionInsert {
		if req.inserts, err = parseInsertXML(a.InsertXML, r.set[a.Tasks[0]]); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// Run implements fetch.Repository.
func (r *Repository) Run(ctx context.Context, job *fetch.Job) ([]*messages.Element, error) {
	req, err := r.prepare(strings.ToUpper(job.FetchAction), job.Params)
	if err != nil {
		return nil, err
	}
	return restsync.Logged(r.log, r.now, job, req.Action, func(log *slog.Logger) ([]*messages.Element, error) {
		switch req.Action.Action {
		case restsync.ActionSynchronize:
			return nil, r.synchronize(ctx, job, req, log)
		case restsync.ActionCollect:
			return r.collect(ctx, job, req)
		case restsync.ActionIdentifiers:
			return r.identifiers(ctx, job, req)
		case restsync.ActionDelete:
			return r.delete(ctx, job, req)
		case restsync.ActionInsert:
			return r.insert(ctx, job, req)
		}
		return nil, nil
	})
}

func (r *Repository) datastore(task string) (store.Datastore, error) {
	ds, err := r.st.Datastore(strings.ToUpper(task))
	if err != nil {
		return nil, fmt.Errorf("mailfetch: datastore of %s: %w", task, err)
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
		return nil, fmt.Errorf("mailfetch: %w", err)
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
