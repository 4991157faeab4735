package restsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
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

// Repo is what the REST connectors' repositories share: the
// configuration, the store and target, the tasks' resolved settings (S),
// the deny list, the AES key, and the fetch actions that work the same way
// in each (parameters, TaskList, Collect, View, Identifiers, secrets).
// Each connector embeds it and adds its own Synchronize, Insert, ...
type Repo[S any] struct {
	Cfg    *config.Config
	Store  store.Store
	Target ingest.Target
	Log    *slog.Logger
	Now    func() time.Time
	Sleep  func(ctx context.Context, d time.Duration) error
	Guard  *netguard.Guard
	Key    *KeyOnce
	// Tasks are the [FetchTasks] tasks (upper case); Set every task
	// section's settings, by upper-case name.
	Tasks []string
	Set   map[string]*S

	name    string // the package, in errors and logs
	actions []string
	keys    *Keys[S]
	decode  func(raw string) (Identifier, error)

	apiMu sync.Mutex
	apis  map[string]any

	shared SharedFunc
	// turns order the tasks' keepShared and keep their marks (Turns).
	turns Turns
}

// SharedFunc is a connector's part in keeping the documents another
// task still indexes (RepoOptions.Shared). It is called within a write
// of task's datastore with task's record of a key another task's
// Synchronize forgets (same key, same reference): it reports whether
// task's target holds the record's documents and, when it does, changes
// the record in w (and what else of task's it must) so that task's next
// Synchronize delivers them again (StaleRecord).
type SharedFunc func(task string, w store.Writer, key string, rec *Record) (held bool, err error)

// Deps are what a REST connector's repository is built from (its
// Options).
type Deps struct {
	// Config is the loaded configuration (loaded with the connector's
	// TaskKeys).
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

// RepoOptions build a Repo.
type RepoOptions[S any] struct {
	Deps
	// Name is the connector's package, in errors and logs (webexfetch).
	Name    string
	Actions []string
	Keys    *Keys[S]
	Resolve func(cfg *config.Config, task string, key func() (*secret.Key, error)) (*S, error)
	// Decode reads one of the connector's identifiers (checking its kind).
	Decode func(raw string) (Identifier, error)
	// Shared, when set, makes a task's Synchronize keep the documents of
	// an item it forgets that another task of the repository still
	// indexes: every task delivers an item under one reference to the
	// one target, and removing it would take the other task's document
	// out of the index, which that task, its record saying the target
	// holds it, would never deliver again. The task forgets the item
	// alone; Shared marks the other task's record so that its next run
	// delivers its own document (the one in the index may be this
	// task's); the last task to let the item go removes it. For
	// connectors whose item keys are the same in every task's datastore.
	Shared SharedFunc
}

// NewRepo resolves every task.
func NewRepo[S any](o RepoOptions[S]) (*Repo[S], error) {
	if o.Config == nil || o.Store == nil {
		return nil, fmt.Errorf("%s: Options.Config and Options.Store are required", o.Name)
	}
	r := &Repo[S]{Cfg: o.Config, Store: o.Store, Target: o.Target, Log: o.Logger, Now: o.Now, Sleep: o.Sleep,
		Key: &KeyOnce{Config: o.Config}, name: o.Name, actions: o.Actions, keys: o.Keys, decode: o.Decode, shared: o.Shared}
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
	r.Log = r.Log.With("component", o.Name)
	if r.Now == nil {
		r.Now = time.Now
	}
	g, err := netguard.Parse(o.Config.Security.DeniedAddresses)
	if err != nil {
		return nil, &config.Error{File: o.Config.Path, Section: "Security", Key: "DeniedAddresses", Err: err}
	}
	r.Guard = g
	if r.Tasks, r.Set, err = ResolveAll(o.Config, o.Resolve, r.Key.Get); err != nil {
		return nil, err
	}
	return r, nil
}

// Kept returns the task's client of its service, made by make on first use
// and kept for the task's next actions (so that access tokens and
// connections outlive an action).
func Kept[S any, A any](r *Repo[S], task string, make func() (A, error)) (A, error) {
	r.apiMu.Lock()
	defer r.apiMu.Unlock()
	if a, ok := r.apis[task].(A); ok {
		return a, nil
	}
	a, err := make()
	if err != nil {
		return a, err
	}
	if r.apis == nil {
		r.apis = map[string]any{}
	}
	r.apis[task] = a
	return a, nil
}

// ForgetClients drops the kept clients (tests).
func (r *Repo[S]) ForgetClients() {
	r.apiMu.Lock()
	defer r.apiMu.Unlock()
	r.apis = nil
}

// FetchActions implements fetch.Repository.
func (r *Repo[S]) FetchActions() []string { return slices.Clone(r.actions) }

// HasTask reports whether a task section is configured.
func (r *Repo[S]) HasTask(name string) bool {
	_, ok := r.Set[strings.ToUpper(strings.TrimSpace(name))]
	return ok
}

// Prepare checks an action's parameters (Tasks.Prepare).
func (r *Repo[S]) Prepare(action string, params messages.Params) (*Action, error) {
	t := &Tasks{Actions: r.actions, Listed: r.Tasks, Has: r.HasTask, CollectFolders: r.Cfg.Security.CollectFolders,
		Identifier: func(raw string) (string, error) {
			id, err := r.decode(raw)
			return id.Task, err
		}}
	return t.Prepare(action, params)
}

// Datastore returns a task's datastore.
func (r *Repo[S]) Datastore(task string) (store.Datastore, error) {
	ds, err := r.Store.Datastore(strings.ToUpper(task))
	if err != nil {
		return nil, fmt.Errorf("%s: datastore of %s: %w", r.name, task, err)
	}
	return ds, nil
}

// Record returns the record of key in a task's datastore, or nil (a task
// that never ran has no datastore, and none is made for the asking).
func (r *Repo[S]) Record(task, key string) (*Record, error) {
	names, err := r.Store.DatastoreNames()
	if err != nil || !slices.Contains(names, task) {
		return nil, err
	}
	ds, err := r.Datastore(task)
	if err != nil {
		return nil, err
	}
	return GetRecord(ds, key)
}

// TaskList implements fetch.TaskLister.
func (r *Repo[S]) TaskList() ([]fetch.TaskInfo, error) {
	names := slices.Clone(r.Tasks)
	for _, t := range r.Cfg.TaskSections() {
		if n := strings.ToUpper(t); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	out, err := TaskList(r.Store, names)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.name, err)
	}
	return out, nil
}

// Redact implements fetch.Secrets. Requests cannot set task settings, so
// they carry no secret the connector uses; a parameter that looks like one
// is hidden all the same, wherever parameters are shown.
func (r *Repo[S]) Redact(params messages.Params) messages.Params {
	return Redact(params, r.keys.IsSecret)
}

// Seal implements fetch.Secrets: a parameter that looks like a secret is
// replaced by secret.Redacted before the action is stored (the connector
// has no use for it).
func (r *Repo[S]) Seal(params messages.Params) (messages.Params, error) {
	return r.Redact(params), nil
}

// Logged runs an action's work between an "action started" and an
// "action run ended" line of the log.
func (r *Repo[S]) Logged(job *fetch.Job, a *Action, work func(log *slog.Logger) ([]*messages.Element, error)) ([]*messages.Element, error) {
	return Logged(r.Log, r.Now, job, a, work)
}

// Logged runs an action's work between an "action started" and an "action
// run ended" line of log (with the job's token and the action), noting
// the parameters ignored. ("action ended" is the queue's line, one per
// action, with its status and counts.)
func Logged(log *slog.Logger, now func() time.Time, job *fetch.Job, a *Action, work func(log *slog.Logger) ([]*messages.Element, error)) ([]*messages.Element, error) {
	log = log.With("token", job.Token, "action", a.Action)
	if len(a.Ignored) > 0 {
		log.Debug("parameters ignored: not the action's own", "parameters", strings.Join(a.Ignored, ","))
	}
	log.Info("action started", "tasks", strings.Join(a.Tasks, ","))
	start := now()
	res, err := work(log)
	log.Info("action run ended", "elapsed", now().Sub(start), "error", err)
	return res, err
}

// SyncTasks runs sync for each task of a Synchronize in turn, with a
// progress stage each; a failing task does not stop the others (their
// errors are joined), a stopped action does. A task's stage reads
// Finished once its sync returns, unless the action was stopped: then it
// keeps the percentage it reached.
func SyncTasks(ctx context.Context, job *fetch.Job, tasks []string, sync func(task string, progress func(pct float64, where string)) error) error {
	prog := NewProgress(job, tasks)
	var errs []error
	for i, task := range tasks {
		if err := job.Checkpoint(ctx); err != nil {
			return err
		}
		err := sync(task, func(pct float64, where string) { prog.Set(i, pct, where) })
		if err != nil && ctx.Err() != nil {
			// Stopped: the task keeps the progress it reached (its
			// stage reads Stopped with the action), not Finished.
			return context.Cause(ctx)
		}
		prog.Set(i, 100, "")
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// TaskSync is what one task's Synchronize works with, in every REST
// connector: the task's datastore, counters, log and Batch.
type TaskSync struct {
	Job    *fetch.Job
	Task   string
	DS     store.Datastore
	Counts *fetch.Counts
	Log    *slog.Logger
	// Batch gathers and delivers the task's documents and records.
	Batch *Batch
}

// Fail counts a non-fatal failure of an item and lists it.
func (t *TaskSync) Fail(where string, err error) {
	t.Counts.Errors.Add(1)
	t.Job.Fail(t.Task, where, err.Error())
	t.Log.Warn("failed", "where", where, "error", err)
}

// SyncTask runs one task's Synchronize: it records the action on the
// task, calls open for the task's client, then run with a TaskSync whose
// Batch it closes at the end, and logs the requests, retries and
// throttled answers of the client meanwhile.
func (r *Repo[S]) SyncTask(job *fetch.Job, task string, log *slog.Logger, open func() (*Client, error), run func(t *TaskSync) error) error {
	ds, err := r.Datastore(task)
	if err != nil {
		return err
	}
	defer NoteAction(ds, ActionSynchronize, r.Now, r.Log)()
	c, err := open()
	if err != nil {
		return err
	}
	t := &TaskSync{Job: job, Task: task, DS: ds, Counts: Counts(job, task), Log: log.With("task", task)}
	t.Batch = &Batch{DS: ds, Target: r.Target, Counts: t.Counts, Log: t.Log, Report: FailOf(job, task)}
	if r.shared != nil {
		t.Batch.Keep = r.keepShared(task, ds, t.Log)
		// Once the batches are written (Close, below): the marks other
		// tasks made on this task's records meanwhile, which the run may
		// have overwritten, are made again.
		end := r.turns.Begin(task)
		if r.noteMarks() {
			// The marks noted (made from other nodes too), after the
			// marks this node saw. A note left from before is a mark
			// made while task did not run, which the records this run
			// reads carry, or one that a run which died (kill -9, a
			// node lost) may have written over and never made again:
			// made again now (marking a record that carries its mark
			// changes nothing).
			defer r.remarkNoted(task, ds, t.Log)
			r.remarkNoted(task, ds, t.Log)
		}
		defer end(func(keys []string) { r.remark(task, ds, keys, nil, t.Log) })
	}
	defer t.Batch.Close()
	before := c.Stats()
	err = run(t)
	st := c.Stats()
	t.Log.Info("task synchronized", "requests", st.Requests-before.Requests, "retries", st.Retries-before.Retries,
		"throttled", st.Throttled-before.Throttled, "error", err)
	return err
}

// Fetched is an item fetched now for View and Collect.
type Fetched struct {
	Ref, MimeType, Name string
	Content             []byte
	// Doc is the item's document, as Synchronize makes it.
	Doc *ingest.Document
}

// ItemSource is what Collect and View need of a connector: whether the
// task indexed an item, and the item fetched now.
type ItemSource struct {
	// Known reports whether the task indexed the item.
	Known func(id Identifier) (bool, error)
	// Fetch fetches it now; messages.ErrNotFound when it is gone.
	Fetch func(ctx context.Context, id Identifier) (*Fetched, error)
	// Fatal reports whether an error ends the action (refused
	// credentials).
	Fatal func(ctx context.Context, err error) bool
}

func (r *Repo[S]) checkID(raw string) (Identifier, error) {
	id, err := r.decode(raw)
	if err != nil {
		return id, messages.Invalid("Identifier", raw, err.Error())
	}
	if !r.HasTask(id.Task) {
		return id, messages.Invalid("Identifier", raw, "names task "+id.Task+", which is not configured")
	}
	return id, nil
}

// View implements the View action: the item, fetched now, with its
// document's fields as metadata; only items the task indexed.
func (r *Repo[S]) View(ctx context.Context, raw string, src ItemSource) (*fetch.ViewResult, error) {
	id, err := r.checkID(raw)
	if err != nil {
		return nil, err
	}
	known, err := src.Known(id)
	if err != nil {
		return nil, fmt.Errorf("%s: view: %w", r.name, err)
	}
	if !known {
		return nil, fmt.Errorf("%s: view: task %s has not indexed this %s: %w", r.name, id.Task, id.Kind, messages.ErrNotFound)
	}
	f, err := src.Fetch(ctx, id)
	if err != nil {
		return nil, err
	}
	meta := make([]*messages.Param, 0, len(f.Doc.Fields))
	for _, fl := range f.Doc.Fields {
		meta = append(meta, &messages.Param{Name: fl.Name, Value: fl.Value})
	}
	return &fetch.ViewResult{Reference: f.Ref, MimeType: f.MimeType, FileName: f.Name, Content: f.Content, Metadata: meta}, nil
}

// Collect fetches each identified item now and writes it to the action's
// Destination with an IDX file of its document beside it. An item given
// twice is fetched, written, counted and listed once.
func (r *Repo[S]) Collect(ctx context.Context, job *fetch.Job, a *Action, src ItemSource) ([]*messages.Element, error) {
	o := &Outcome{}
	c, err := OpenCollector(a.Destination)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.name, err)
	}
	defer c.Close()
	given := map[Identifier]bool{}
	for _, task := range a.Tasks {
		ds, err := r.Datastore(task)
		if err != nil {
			return nil, err
		}
		done := NoteAction(ds, ActionCollect, r.Now, r.Log)
		cnt := Counts(job, task)
		for _, e := range a.IDs {
			if e.Task != task {
				continue
			}
			if err := job.Checkpoint(ctx); err != nil {
				done()
				return o.Elements(), err
			}
			id, _ := r.decode(e.Raw)
			if given[id] {
				continue
			}
			given[id] = true
			known, err := src.Known(id)
			if err != nil {
				done()
				return o.Elements(), err
			}
			if !known {
				o.Failure(e.Raw, "the task has not indexed this "+id.Kind)
				continue
			}
			f, err := src.Fetch(ctx, id)
			if err == nil {
				_, err = c.Write(f.Name, f.Content, f.Doc, r.Now())
			}
			if err != nil {
				if src.Fatal(ctx, err) {
					done()
					return o.Elements(), err
				}
				o.Failure(e.Raw, err.Error())
				cnt.Errors.Add(1)
				continue
			}
			cnt.Collected.Add(1)
			o.Success(e.Raw)
		}
		done()
	}
	return o.Elements(), nil
}

// Listed is one identifier of the Identifiers action.
type Listed struct {
	ID, Name, Type, Attributes string
}

// Identifiers lists what a task indexed: list turns each record under
// prefix into an identifier (ok false: not listed).
func (r *Repo[S]) Identifiers(ctx context.Context, job *fetch.Job, task, prefix string, list func(key string, rec *Record) (Listed, bool)) ([]*messages.Element, error) {
	ds, err := r.Datastore(task)
	if err != nil {
		return nil, err
	}
	defer NoteAction(ds, ActionIdentifiers, r.Now, r.Log)()
	cnt := Counts(job, task)
	g := &messages.Element{Name: "identifiers", List: true, Attrs: []*messages.Param{{Name: "parent_identifier", Value: "ROOT"}}}
	n := 0
	err = EachRecord(ds, prefix, func(key string, rec *Record) error {
		if n++; n%256 == 0 {
			if err := job.Checkpoint(ctx); err != nil {
				return err
			}
		}
		l, ok := list(key, rec)
		if !ok {
			return nil
		}
		if l.Name == "" {
			l.Name = rec.Ref
		}
		g.Children = append(g.Children, &messages.Element{Name: "identifier", List: true, Text: l.ID,
			Attrs: []*messages.Param{{Name: "name", Value: l.Name}, {Name: "type", Value: l.Type}, {Name: "attributes", Value: l.Attributes}}})
		cnt.Seen.Add(1)
		return nil
	})
	return []*messages.Element{g}, err
}

// Inserting is one item of an Insert as its result names it: Ref in a
// <failed>, InsertID (InsertXML's insert_id) beside its identifier.
type Inserting struct{ Ref, InsertID string }

// Insert runs an Insert's items on task, in order: open (the task's
// client) first, then create for each item, which makes it in the service
// and returns its identifier. An item that fails is listed as failed,
// unless fatal says the error ends the action (refused credentials, a
// stopped action).
func (r *Repo[S]) Insert(ctx context.Context, job *fetch.Job, task string, items []Inserting, open func() error,
	create func(i int) (string, error), fatal func(context.Context, error) bool) ([]*messages.Element, error) {
	ds, err := r.Datastore(task)
	if err != nil {
		return nil, err
	}
	defer NoteAction(ds, ActionInsert, r.Now, r.Log)()
	cnt := Counts(job, task)
	o := &Outcome{}
	if err := open(); err != nil {
		return nil, err
	}
	for i, it := range items {
		if err := job.Checkpoint(ctx); err != nil {
			return o.Elements(), err
		}
		id, err := create(i)
		if err != nil {
			if fatal(ctx, err) {
				return o.Elements(), err
			}
			o.Failure(it.Ref, err.Error())
			cnt.Errors.Add(1)
			continue
		}
		cnt.Inserted.Add(1)
		o.Success(id)
		o.Inserted = append(o.Inserted, Inserted{ID: id, InsertID: it.InsertID})
	}
	return o.Elements(), nil
}

// ServiceClient is a task's client of its service: every connection
// through the deny list, with the task's certificate settings and timeout.
func (r *Repo[S]) ServiceClient(task, base string, t TLS, timeout time.Duration, auth func(hc *http.Client) Auth, o Options) (*Client, error) {
	hc, err := HTTPClient(r.Guard, t, timeout)
	if err != nil {
		return nil, fmt.Errorf("%s: [%s] %w", r.name, task, err)
	}
	if o.Sleep == nil {
		o.Sleep = r.Sleep
	}
	if o.Logger == nil {
		o.Logger = r.Log
	}
	var a Auth
	if auth != nil {
		a = auth(hc)
	}
	return NewClient(base, hc, a, o)
}

// keepShared is the Batch.Keep of task's Synchronize (ds its datastore):
// for the references of an item's record that a batch would remove, each
// other task of the repository (with a datastore) whose record of the
// same key has the same reference and holds one of them is asked
// (Shared) whether its target holds its documents, and marked to deliver
// them again; the references it holds are kept. A datastore that cannot
// be read or written counts as holding nothing (the removal goes ahead,
// as it did before).
//
// The tasks take turns at it (Turns), and the records of what it keeps
// are written before it returns, forgotten: a record whose own reference
// is kept is deleted, one whose children only are kept loses them. Two
// tasks letting an item go at once would otherwise each find the other's
// record still holding it, each keep it, and leave it in the index with
// no task to remove it; taking turns, the second finds the first's record
// forgotten and removes it. (A record that holds less claims nothing the
// target does not have, so it may be written before the batch's
// removals. An item forgotten whose own reference is kept while another
// of its references is removed loses its record before that removal: if
// the target refuses it, the next run does not try it again.)
//
// In a store that several processes share (store.Turns: the nodes of a
// cluster), the turn is the store's too: the turn of one node does not
// order a task on another, so two tasks letting go of one item on two
// nodes at once both kept it.
func (r *Repo[S]) keepShared(task string, ds store.Datastore, log *slog.Logger) func(drops []*Dropping) error {
	return func(drops []*Dropping) error {
		defer r.turns.Take()()
		return store.Turn(r.Store, r.name+": letting go of an item another task may hold", func() error {
			return r.keepSharedTurn(task, ds, drops, log)
		})
	}
}

// KeepSharedChecked, when set (tests only), is called by keepShared
// between its look at the other tasks' records and its write of the
// records of what task keeps.
var KeepSharedChecked func(task string)

// keepSharedTurn is keepShared's work, during its turn.
func (r *Repo[S]) keepSharedTurn(task string, ds store.Datastore, drops []*Dropping, log *slog.Logger) error {
	others := r.otherTasks(task, log)
	if len(others) == 0 {
		return nil
	}
	// Which other tasks' records may hold what each item removes: one
	// read of each other task's datastore for the whole batch, not
	// one per item and task (with those, a task of 20 forgetting
	// 10,000 items took 58 times as long as alone; 6.6 with this:
	// BenchmarkForgetAcrossTasks in objectivefetch).
	keys := make([][]byte, len(drops))
	for i, d := range drops {
		keys[i] = RecordKey(d.Key)
	}
	holders := make([][]string, len(drops))
	for _, n := range slices.Sorted(maps.Keys(others)) {
		vals, err := store.GetMany(others[n], keys)
		if err != nil {
			log.Warn("the records of another task cannot be read; the items it indexes are removed", "task", n, "error", err)
			continue
		}
		for i, v := range vals {
			if o, err := decodeRecord(drops[i].Key, v); err == nil && holds(o, drops[i].Rec, drops[i].Refs) {
				holders[i] = append(holders[i], n)
			}
		}
	}
	var forgot []*Dropping
	var kept [][]string
	for i, d := range drops {
		if len(holders[i]) == 0 {
			continue
		}
		refs := r.keepHeld(others, holders[i], d.Key, d.Rec, slices.Clone(d.Refs), log)
		if len(refs) == len(d.Refs) {
			continue
		}
		forgot = append(forgot, d)
		kept = append(kept, slices.DeleteFunc(slices.Clone(d.Refs), func(ref string) bool { return slices.Contains(refs, ref) }))
		d.Refs = refs
	}
	if len(forgot) == 0 {
		return nil
	}
	if KeepSharedChecked != nil {
		KeepSharedChecked(task)
	}
	return ds.Update(func(w store.Writer) error {
		for i, d := range forgot {
			o, err := getRecord(w.Get, d.Key)
			if err != nil {
				return err
			}
			switch {
			case o == nil || o.Ref != d.Rec.Ref:
				// forgotten, or another item's by now
			case slices.Contains(kept[i], o.Ref):
				err = w.Delete(RecordKey(d.Key))
			default:
				o.Kids = slices.DeleteFunc(o.Kids, func(ref string) bool { return slices.Contains(kept[i], ref) })
				var b []byte
				if b, err = json.Marshal(o); err == nil {
					err = w.Put(RecordKey(d.Key), b)
				}
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// otherTasks returns the datastores of the repository's tasks but task,
// by name.
func (r *Repo[S]) otherTasks(task string, log *slog.Logger) map[string]store.Datastore {
	names, err := r.Store.DatastoreNames()
	if err != nil {
		log.Warn("the other tasks' datastores cannot be listed", "error", err)
		return nil
	}
	out := map[string]store.Datastore{}
	for _, n := range names {
		if strings.EqualFold(n, task) || !r.HasTask(n) {
			continue
		}
		if ds, err := r.Store.Datastore(n); err == nil {
			out[n] = ds
		}
	}
	return out
}

// holds reports whether o, another task's record of the key of rec
// (this task's), is of the same item and holds one of refs.
func holds(o, rec *Record, refs []string) bool {
	return o != nil && o.Ref == rec.Ref &&
		slices.ContainsFunc(refs, func(ref string) bool { return ref == o.Ref || slices.Contains(o.Kids, ref) })
}

// keepHeld returns refs (of rec, this task's record of key) without those
// the records of key of the other tasks named (holders, which were found
// holding some) hold, which it marks (Shared). The turn is taken.
func (r *Repo[S]) keepHeld(others map[string]store.Datastore, holders []string, key string, rec *Record, refs []string, log *slog.Logger) []string {
	noted := r.noteMarks()
	for _, n := range holders {
		ds := others[n]
		var held *Record
		err := ds.Update(func(w store.Writer) error {
			o, err := getRecord(w.Get, key)
			if err != nil || !holds(o, rec, refs) {
				return err
			}
			ok, err := r.shared(n, w, key, o)
			if ok && err == nil {
				held = o
				if noted {
					err = w.Put(markKey(key), []byte{1})
				}
			}
			return err
		})
		if err != nil {
			log.Warn("cannot mark another task's item to be delivered again; its documents are removed", "reference", rec.Ref, "task", n, "error", err)
			continue
		}
		if held == nil {
			continue
		}
		r.turns.Marked(n, key)
		log.Info("another task indexes the item: its documents stay", "reference", rec.Ref, "task", n)
		refs = slices.DeleteFunc(refs, func(ref string) bool { return ref == held.Ref || slices.Contains(held.Kids, ref) })
	}
	return refs
}

// remark makes again the marks other tasks made (Shared) on records of
// task, in ds, while task ran: its run may have written over them a copy
// of the record read before (see Turns). A record the run forgot is left
// alone. The turn is taken. The notes drop (remarkNoted) are deleted in
// the same write.
func (r *Repo[S]) remark(task string, ds store.Datastore, keys []string, drop [][]byte, log *slog.Logger) {
	err := ds.Update(func(w store.Writer) error {
		for _, k := range drop {
			if err := w.Delete(k); err != nil {
				return err
			}
		}
		for _, key := range keys {
			o, err := getRecord(w.Get, key)
			if err != nil || o == nil {
				if err != nil {
					return err
				}
				continue
			}
			if _, err := r.shared(task, w, key, o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		log.Warn("cannot mark again the items other tasks marked to be delivered again", "items", len(keys), "error", err)
	}
}

// noteMarks reports whether the marks on another task's records are
// noted in its datastore (keepHeld): in every store but the memory
// store, whose datastores do not outlive the process. In a store several
// processes share (store.Turns: the nodes of a cluster), the marked
// task's run may be on another node, whose Turns does not hear of the
// mark, so its run's write of the record as it read it undid the mark
// (its next runs found the item unchanged and never delivered it again,
// which stayed in the index as the marking task's document). In any
// store, the marked task's run may die (kill -9) after that write and
// before it marks the record again: the marks its process kept in memory
// (Turns) were lost with it, with the same outcome. The notes are listed
// by prefix (store.ForEachPrefix), which the embedded and shared stores
// serve without reading the task's other records.
func (r *Repo[S]) noteMarks() bool {
	if _, ok := r.Store.(store.Turns); ok {
		return true
	}
	return !r.Store.Info().InMemory
}

// remarkNoted reads the notes of the marks other tasks made on task's
// records (keepHeld), deletes them and marks those records again
// (remark): at the end of a run of task, which may have written them as
// it read them before the mark, and at its start, for the notes a run
// that died left (the others are of records that carry their mark,
// which marking again leaves as they are). A note made between is marked
// again at the run's end, which costs a delivery more at most. A failure
// is logged: the notes stay, for the next run.
func (r *Repo[S]) remarkNoted(task string, ds store.Datastore, log *slog.Logger) {
	defer r.turns.Take()()
	var keys []string
	var drop [][]byte
	err := store.ForEachPrefix(ds, []byte(markPrefix), func(k, _ []byte) error {
		keys = append(keys, string(k[len(markPrefix):]))
		drop = append(drop, bytes.Clone(k))
		return nil
	})
	if err != nil {
		log.Warn("cannot read the marks other tasks made on this task's items", "error", err)
		return
	}
	if len(drop) == 0 {
		return
	}
	r.remark(task, ds, keys, drop, log)
}

// StaleRecord writes rec under key in w with no version, so that the
// task's next Synchronize, finding the item's version changed, delivers
// it again.
func StaleRecord(w store.Writer, key string, rec *Record) error {
	rec.Version = ""
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return w.Put(RecordKey(key), b)
}
