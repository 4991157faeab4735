package mailfetch

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/internal/netguard"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/secret"
	"github.com/connectorhq/connector/store"
)

// Fetch actions.
const (
	ActionSynchronize = fetch.ActionSynchronize
	ActionCollect     = fetch.ActionCollect
	ActionIdentifiers = fetch.ActionIdentifiers
	ActionDelete      = fetch.ActionDelete
	ActionInsert      = fetch.ActionInsert
)

// actionParams are each fetch action's own parameters.
var actionParams = map[string][]string{
	ActionSynchronize: {"TaskSections", "ConfigSection"},
	ActionCollect:     {"Identifiers", "Destination", "ConfigSection"},
	ActionIdentifiers: {"ConfigSection"},
	ActionDelete:      {"Identifiers", "ConfigSection"},
	ActionInsert:      {"ConfigSection", "InsertXML"},
}

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
	return []string{ActionSynchronize, ActionCollect, ActionIdentifiers, ActionDelete, ActionInsert}
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

	keyMu sync.Mutex
	key   *secret.Key
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
	r := &Repository{cfg: o.Config, st: o.Store, target: o.Target, log: o.Logger, now: o.Now}
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
	if r.tasks, r.set, err = resolveAll(o.Config, r.keyFile); err != nil {
		return nil, err
	}
	return r, nil
}

// Check validates every task of a configuration without touching anything
// on disk (beyond reading [Security] AESKeyFile when a secret is given
// encrypted).
func Check(cfg *config.Config) error {
	_, _, err := resolveAll(cfg, func() (*secret.Key, error) { return loadKey(cfg) })
	return err
}

func loadKey(cfg *config.Config) (*secret.Key, error) {
	k, err := secret.LoadKeyFile(cfg.Security.AESKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: [Security] AESKeyFile %s does not exist", secret.ErrDecrypt, cfg.Security.AESKeyFile)
	}
	return k, err
}

// keyFile returns the server's AES key (loaded once).
func (r *Repository) keyFile() (*secret.Key, error) {
	r.keyMu.Lock()
	defer r.keyMu.Unlock()
	if r.key != nil {
		return r.key, nil
	}
	k, err := loadKey(r.cfg)
	if err != nil {
		return nil, err
	}
	r.key = k
	return k, nil
}

func resolveAll(cfg *config.Config, key func() (*secret.Key, error)) ([]string, map[string]*settings, error) {
	set := map[string]*settings{}
	var tasks []string
	for _, t := range cfg.FetchTasks {
		name := strings.ToUpper(strings.TrimSpace(t))
		if _, dup := set[name]; dup {
			continue
		}
		s, err := resolve(cfg, t, key)
		if err != nil {
			return nil, nil, err
		}
		tasks = append(tasks, name)
		set[name] = s
	}
	for _, t := range cfg.TaskSections() {
		name := strings.ToUpper(t)
		if _, ok := set[name]; ok {
			continue
		}
		s, err := resolve(cfg, t, key)
		if err != nil {
			return nil, nil, err
		}
		set[name] = s
	}
	return tasks, set, nil
}

// TaskSettings returns the OAuth client and token file of a task, for
// `connector oauth`. The token file is encrypted with the server's key,
// created when missing.
func TaskSettings(cfg *config.Config, task string) (*settings, error) {
	_, set, err := resolveAll(cfg, func() (*secret.Key, error) { return loadKey(cfg) })
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
func (r *Repository) FetchActions() []string { return fetchActions() }

// Exclusive implements fetch.Exclusive: Synchronize and Delete of a task
// rewrite its datastore, one at a time.
func (r *Repository) Exclusive(fetchAction string) bool {
	a := strings.ToUpper(fetchAction)
	return a == ActionSynchronize || a == ActionDelete
}

// request is a validated action.
type request struct {
	action      string
	tasks       []string
	ids         []idEntry
	destination string
	inserts     []insertDoc
	ignored     []string
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
	return req.tasks, nil
}

func (r *Repository) hasTask(name string) bool {
	_, ok := r.set[strings.ToUpper(strings.TrimSpace(name))]
	return ok
}

// prepare checks an action's parameters. Parameters that are not the
// action's own are ignored (their names are logged), as IDOL connectors
// do; task settings cannot be overridden by a request.
func (r *Repository) prepare(action string, params messages.Params) (*request, error) {
	own, ok := actionParams[action]
	if !ok {
		return nil, messages.Invalid("FetchAction", action, "must be one of "+strings.Join(r.FetchActions(), ", "))
	}
	req := &request{action: action}
	get := func(name string) (string, bool) { return params.Get(name) }
	for _, p := range params {
		if !slices.ContainsFunc(own, func(o string) bool { return strings.EqualFold(o, strings.TrimSpace(p.GetName())) }) {
			req.ignored = append(req.ignored, p.GetName())
		}
	}
	section := ""
	if v, ok := get("ConfigSection"); ok {
		section = strings.ToUpper(strings.TrimSpace(v))
		if !r.hasTask(section) {
			return nil, messages.Invalid("ConfigSection", v, "there is no such task section")
		}
	}
	addTask := func(t string) {
		if !slices.Contains(req.tasks, t) {
			req.tasks = append(req.tasks, t)
		}
	}
	switch action {
	case ActionSynchronize:
		if v, ok := get("TaskSections"); ok {
			for _, t := range splitCSV(v) {
				if !r.hasTask(t) {
					return nil, messages.Invalid("TaskSections", t, "there is no such task section")
				}
				addTask(strings.ToUpper(t))
			}
			if len(req.tasks) == 0 {
				return nil, messages.Invalid("TaskSections", v, "must name at least one task section")
			}
		} else if section != "" {
			addTask(section)
		} else {
			req.tasks = slices.Clone(r.tasks)
			if len(req.tasks) == 0 {
				return nil, &messages.ParamError{Name: "TaskSections", Missing: true, Reason: "[FetchTasks] lists no task: name one with TaskSections or ConfigSection"}
			}
		}
	case ActionCollect, ActionDelete:
		v, ok := get("Identifiers")
		if !ok {
			return nil, messages.Missing("Identifiers")
		}
		for _, raw := range splitCSV(v) {
			id, err := DecodeIdentifier(raw)
			if err != nil {
				return nil, messages.Invalid("Identifiers", raw, err.Error())
			}
			if !r.hasTask(id.Task) {
				return nil, messages.Invalid("Identifiers", raw, "names task "+id.Task+", which is not configured")
			}
			if section != "" && id.Task != section {
				return nil, messages.Invalid("Identifiers", raw, "belongs to task "+id.Task+", not to ConfigSection "+section)
			}
			req.ids = append(req.ids, idEntry{raw: raw, id: id})
			addTask(id.Task)
		}
		if len(req.ids) == 0 {
			return nil, messages.Invalid("Identifiers", v, "must list at least one identifier")
		}
		if action == ActionCollect {
			req.destination = strings.TrimSpace(params.Value("Destination"))
			if _, _, err := r.collectFolder(req.destination); err != nil {
				return nil, messages.Invalid("Destination", req.destination, err.Error())
			}
		}
	case ActionIdentifiers:
		if section == "" {
			return nil, messages.Missing("ConfigSection")
		}
		addTask(section)
	case ActionInsert:
		if section == "" {
			return nil, messages.Missing("ConfigSection")
		}
		addTask(section)
		v, ok := get("InsertXML")
		if !ok {
			return nil, messages.Missing("InsertXML")
		}
		var err error
		if req.inserts, err = parseInsertXML(v, r.set[section]); err != nil {
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
	log := r.log.With("token", job.Token, "action", req.action)
	if len(req.ignored) > 0 {
		log.Debug("parameters ignored: not the action's own", "parameters", strings.Join(req.ignored, ","))
	}
	log.Info("action started", "tasks", strings.Join(req.tasks, ","))
	start := r.now()
	var res []*messages.Element
	switch req.action {
	case ActionSynchronize:
		err = r.synchronize(ctx, job, req, log)
	case ActionCollect:
		res, err = r.collect(ctx, job, req)
	case ActionIdentifiers:
		res, err = r.identifiers(ctx, job, req)
	case ActionDelete:
		res, err = r.delete(ctx, job, req)
	case ActionInsert:
		res, err = r.insert(ctx, job, req)
	}
	log.Info("action ended", "elapsed", r.now().Sub(start), "error", err)
	return res, err
}

// counts returns the job's counters of task.
func counts(job *fetch.Job, task string) *fetch.Counts {
	if c := job.Counts(task); c != nil {
		return c
	}
	return &fetch.Counts{Task: task}
}

func (r *Repository) datastore(task string) (store.Datastore, error) {
	ds, err := r.st.Datastore(strings.ToUpper(task))
	if err != nil {
		return nil, fmt.Errorf("mailfetch: datastore of %s: %w", task, err)
	}
	return ds, nil
}

// record notes an action on task for TaskList; the returned function notes
// its end.
func (r *Repository) record(ds store.Datastore, action string) func() {
	start := r.now().UnixMilli()
	return func() {
		err := writeMeta(ds, func(m *taskMeta) {
			m.Calls++
			m.Action = action
			m.LastStartMs = start
			m.LastFinishMs = r.now().UnixMilli()
		})
		if err != nil {
			r.log.Warn("cannot record an action", "error", err)
		}
	}
}

// TaskList implements fetch.TaskLister.
func (r *Repository) TaskList() ([]fetch.TaskInfo, error) {
	names := slices.Clone(r.tasks)
	for _, t := range r.cfg.TaskSections() {
		if n := strings.ToUpper(t); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	stored, err := r.st.DatastoreNames()
	if err != nil {
		return nil, fmt.Errorf("mailfetch: task list: %w", err)
	}
	info := r.st.Info()
	where := info.Path
	if info.InMemory || where == "" {
		where = "memory"
	}
	var out []fetch.TaskInfo
	for _, name := range names {
		ti := fetch.TaskInfo{Name: name, Datastore: where + " [datastore " + name + "]"}
		if slices.Contains(stored, name) {
			ds, err := r.datastore(name)
			if err != nil {
				return nil, err
			}
			m, err := readMeta(ds)
			if err != nil {
				return nil, fmt.Errorf("mailfetch: task list: %s: %w", name, err)
			}
			ti.Action, ti.Calls = m.Action, m.Calls
			ti.LastStart, ti.LastFinish = msTime(m.LastStartMs), msTime(m.LastFinishMs)
		}
		out = append(out, ti)
	}
	return out, nil
}

// sensitive reports whether a request parameter may hold a secret: a
// secret task setting's name ([Task]Password too), or any name with
// password, secret or token in it.
func sensitive(name string) bool {
	n := strings.TrimSpace(name)
	if i := strings.IndexByte(n, ']'); strings.HasPrefix(n, "[") && i > 0 {
		n = n[i+1:]
	}
	l := strings.ToLower(n)
	return isSecretKey(n) || secret.SensitiveName(n) || strings.Contains(l, "token")
}

// Redact implements fetch.Secrets. Requests cannot set task settings, so
// they carry no secret the connector uses; a parameter that looks like one
// is hidden all the same, wherever parameters are shown.
func (r *Repository) Redact(params messages.Params) messages.Params {
	out := make(messages.Params, len(params))
	for i, p := range params {
		out[i] = p
		if sensitive(p.GetName()) {
			out[i] = &messages.Param{Name: p.GetName(), Value: secret.Redacted}
		}
	}
	return out
}

// Seal implements fetch.Secrets: a parameter that looks like a secret is
// replaced by secret.Redacted before the action is stored (the connector
// has no use for it).
func (r *Repository) Seal(params messages.Params) (messages.Params, error) {
	return r.Redact(params), nil
}
