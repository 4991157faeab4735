package httpfetch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/internal/netguard"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// Options configure a Repository.
type Options struct {
	// Config is the loaded configuration (required); it must have been
	// loaded with TaskKeys.
	Config *config.Config
	// Store holds the tasks' datastores (required).
	Store store.Store
	// Target receives Synchronize, Insert, Update and Delete output; nil
	// means ingestion is disabled ([Ingestion] EnableIngestion=false):
	// nothing is delivered and no ingest* count moves.
	Target ingest.Target
	// Logger receives the repository's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// FlushInterval bounds how long a crawled page waits in a part-filled
	// batch before it is delivered and recorded; default 1s.
	FlushInterval time.Duration
	// Client sends every HTTP request to the crawled sites; nil lets the
	// crawl build its own keep-alive client per action. For tests.
	Client *http.Client
	// Crawled, when set, receives the figures of every crawl when it ends
	// (metrics; fetch.Deps.Crawled).
	Crawled func(fetch.CrawlStats)
	// Schema is the connector's task settings: nil for the HTTP
	// connector's; NewSchema(extension) for a connector built on this one
	// (the configuration must have been checked with its TaskKeys).
	Schema *Schema
	// Begin, when set, takes part in every task that fetches pages (see
	// Extension).
	Begin BeginFunc
}

// Repository is the HTTP connector: it implements fetch.Repository,
// fetch.Viewer and fetch.TaskLister. It is safe for concurrent use.
type Repository struct {
	crawled   func(fetch.CrawlStats)
	cfg       *config.Config
	st        store.Store
	target    ingest.Target
	log       *slog.Logger
	now       func() time.Time
	client    *http.Client
	batchSize int
	// flushInterval is Options.FlushInterval.
	flushInterval time.Duration
	// maxURLs is a Synchronize crawl's crawl.Config.MaxURLs; 0: the
	// crawl's default (tests lower it).
	maxURLs int

	// taskNames holds, in lower case, every ASCII name for which
	// hasTask is true: hasTask reads it instead of asking cfg (which
	// lowers the name, a copy, and scans [FetchTasks] and the system
	// sections) on every submission. exoticNames is set when a section or
	// [FetchTasks] entry is not ASCII, where Unicode case folding can match
	// names this set does not hold. A Repository is built for one
	// configuration (New), so neither ever changes.
	taskNames   map[string]struct{}
	exoticNames bool

	tasks     []string             // [FetchTasks], upper case, in order
	base      map[string]*settings // file settings of tasks, by upper-case name
	file      map[string]*settings // file settings of every task section, by upper-case name
	schedules []fetch.Schedule

	keys    *keyring        // [Security] AESKeyFile
	guard   *netguard.Guard // [Security] DeniedAddresses
	schema  *Schema
	beginFn BeginFunc

	lockMu sync.Mutex
	locks  map[string]chan struct{} // one Synchronize/Update/Delete per task at a time
	// turns give the tasks turns at letting go of a page another task
	// may hold (keepShared), and keep the marks made on a running task's
	// records (restsync.Turns).
	turns restsync.Turns
	// noted: marks on another task's records are also noted in its
	// datastore (noteMarks).
	noted bool
}

var (
	_ fetch.Repository = (*Repository)(nil)
	_ fetch.Viewer     = (*Repository)(nil)
	_ fetch.TaskLister = (*Repository)(nil)
	_ fetch.Scheduler  = (*Repository)(nil)
	_ fetch.Exclusive  = (*Repository)(nil)
)

// New validates the tasks as Check does and returns the repository.
func New(o Options) (*Repository, error) {
	if o.Config == nil {
		return nil, errors.New("httpfetch: Options.Config is required")
	}
	if o.Store == nil {
		return nil, errors.New("httpfetch: Options.Store is required")
	}
	r := &Repository{
		cfg:           o.Config,
		st:            o.Store,
		target:        o.Target,
		log:           o.Logger,
		now:           o.Now,
		client:        o.Client,
		crawled:       o.Crawled,
		batchSize:     o.Config.Ingestion.BatchSize,
		flushInterval: o.FlushInterval,
		base:          map[string]*settings{},
		locks:         map[string]chan struct{}{},
		keys:          &keyring{path: o.Config.Security.AESKeyFile},
		schema:        o.Schema,
		beginFn:       o.Begin,
	}
	if r.schema == nil {
		r.schema = httpSchema
	}
	r.noted = noteMarks(o.Store)
	r.taskNames, r.exoticNames = taskNameSet(o.Config)
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("component", "httpfetch")
	if r.now == nil {
		r.now = time.Now
	}
	if r.flushInterval <= 0 {
		r.flushInterval = flushInterval
	}
	if r.batchSize <= 0 {
		r.batchSize = ingest.DefaultBatchSize
	}
	var err error
	if r.guard, err = deniedAddresses(o.Config); err != nil {
		return nil, err
	}
	if r.tasks, r.base, r.file, err = r.schema.resolveTasks(o.Config, r.keys.decryptKey); err != nil {
		return nil, err
	}
	for _, name := range r.tasks {
		if sc, ok := r.base[name].schedule(r.now()); ok {
			r.schedules = append(r.schedules, sc)
		}
	}
	return r, nil
}

// Check validates every task of a configuration: for each task listed in
// [FetchTasks], its settings resolved with [Task] > [FetchTasks] >
// [Default], at least one start URL, every value parsed and every regex
// compiled; for the other task sections, their settings. A problem is a
// *config.Error naming the file, line, section and key. Check touches
// nothing on disk: the command runs it before the server creates its data
// folder, so that a refused configuration leaves nothing behind.
func Check(cfg *config.Config) error { return httpSchema.Check(cfg) }

// Check is the package function Check for the schema's settings.
func (sc *Schema) Check(cfg *config.Config) error {
	if _, err := deniedAddresses(cfg); err != nil {
		return err
	}
	keys := &keyring{path: cfg.Security.AESKeyFile}
	_, _, _, err := sc.resolveTasks(cfg, keys.decryptKey)
	return err
}

// deniedAddresses reads [Security] DeniedAddresses; an error names its line.
func deniedAddresses(cfg *config.Config) (*netguard.Guard, error) {
	g, err := netguard.Parse(cfg.Security.DeniedAddresses)
	if err != nil {
		return nil, &config.Error{File: cfg.Path, Line: cfg.Line("Security", "DeniedAddresses"), Section: "Security", Key: "DeniedAddresses", Err: err}
	}
	return g, nil
}

// resolveTasks computes the settings of the tasks [FetchTasks] lists (names
// upper case, in order, in base) and of the other task sections (in file,
// with the listed ones), decrypting secrets given encrypted with key.
func (sc *Schema) resolveTasks(cfg *config.Config, key keyFunc) (tasks []string, base, fileSet map[string]*settings, err error) {
	base, fileSet = map[string]*settings{}, map[string]*settings{}
	file := []layer{cfgLayer{c: cfg, kind: srcFile}}
	for _, t := range cfg.FetchTasks {
		name := strings.ToUpper(strings.TrimSpace(t))
		if _, dup := base[name]; dup {
			continue
		}
		s, err := sc.resolve(t, file, true, key)
		if err != nil {
			return nil, nil, nil, err
		}
		tasks = append(tasks, name)
		base[name] = s
		fileSet[name] = s
	}
	// Task sections that [FetchTasks] does not list run only when a
	// request names them; their settings are checked now all the same
	// (a start URL may come with the request).
	for _, t := range cfg.TaskSections() {
		if _, listed := base[strings.ToUpper(t)]; listed {
			continue
		}
		s, err := sc.resolve(t, file, false, key)
		if err != nil {
			return nil, nil, nil, err
		}
		fileSet[strings.ToUpper(t)] = s
	}
	return tasks, base, fileSet, nil
}

// FetchActions implements fetch.Repository.
func (r *Repository) FetchActions() []string { return fetchActions() }

// Schedules implements fetch.Scheduler: the schedule of every [FetchTasks]
// task that sets ScheduleStartTime, ScheduleRepeatSecs or ScheduleCycles
// (in its section, [FetchTasks] or [Default]) and not ScheduleCycles=0, in
// [FetchTasks] order. ScheduleStartTime=now (the default) is a zero Start;
// a time of day is its next occurrence after New ran. Every is
// ScheduleRepeatSecs (0: run once); Cycles is ScheduleCycles, with 0 for
// unlimited (-1, the default with a repeat) as fetch.Schedule counts.
func (r *Repository) Schedules() []fetch.Schedule { return slices.Clone(r.schedules) }

// hasTask reports whether name is a configured task section.
func (r *Repository) hasTask(name string) bool {
	if len(name) <= maxFastName && isASCII(name) {
		var buf [maxFastName]byte
		for i := 0; i < len(name); i++ {
			c := name[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		if _, ok := r.taskNames[string(buf[:len(name)])]; ok { // no copy: a map index by converted bytes
			return true
		}
		if !r.exoticNames {
			return false
		}
	}
	return slowHasTask(r.cfg, name)
}

// taskName is the name of task section name (one that hasTask accepts) as
// the configuration spells it: hasTask also accepts it in another case
// and, as config.HasTask folds case as Unicode does, in other letters that
// fold to its own (a Kelvin sign for a K, a long s for an s). An action
// names its tasks so (Validate), whatever spelling the request used, so
// that the queue holds one task under one name (fetch.Exclusive: one
// Synchronize of a task at a time), and counts and datastores are the
// task's own. An ASCII name of a configuration whose names are ASCII
// needs no look-up: it differs from the configured one in ASCII case
// only, which upper case (the tasks' form) erases.
func (r *Repository) taskName(name string) string {
	name = strings.TrimSpace(name)
	if !r.exoticNames && isASCII(name) {
		return name
	}
	if s := r.cfg.Section(name); s != nil && !config.IsSystemSection(s.Name) {
		return s.Name
	}
	for _, t := range r.cfg.FetchTasks {
		if strings.EqualFold(t, name) {
			return t
		}
	}
	return name
}

// maxFastName is the longest name hasTask looks up without a copy.
const maxFastName = 64

// slowHasTask is hasTask's answer asked of the configuration itself.
func slowHasTask(cfg *config.Config, name string) bool {
	return name != "" && !config.IsSystemSection(name) && cfg.HasTask(name)
}

// taskNameSet returns Repository.taskNames and exoticNames for cfg.
func taskNameSet(cfg *config.Config) (map[string]struct{}, bool) {
	set := map[string]struct{}{}
	exotic := false
	for _, names := range [][]string{cfg.SectionNames(), cfg.FetchTasks} {
		for _, n := range names {
			if !isASCII(n) {
				exotic = true
				continue
			}
			if slowHasTask(cfg, n) {
				set[strings.ToLower(n)] = struct{}{}
			}
		}
	}
	return set, exotic
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Validate implements fetch.Repository: it checks everything about the
// action that can be checked before it runs (parameters, overrides, the
// Config fragment, identifiers, XML) and returns its task sections in
// upper case, in output order. Problems are *messages.ParamError values.
func (r *Repository) Validate(fetchAction string, params messages.Params) ([]string, error) {
	if err := checkFragmentSize(params); err != nil {
		return nil, err
	}
	p := validatePlans.Get().(*plan)
	defer func() {
		*p = plan{} // keeps nothing of this submission
		validatePlans.Put(p)
	}()
	if err := r.prepareInto(p, strings.ToUpper(strings.TrimSpace(fetchAction)), params); err != nil {
		return nil, err
	}
	// The queue keeps the tasks: a copy, as the plan goes back to the pool.
	return slices.Clone(p.tasks), nil
}

// validatePlans are the plans Validate fills and drops for every
// submission (a plan, with its request, is ~350 bytes of garbage per
// submit): nothing Validate returns refers to one.
var validatePlans = sync.Pool{New: func() any { return new(plan) }}

// Run implements fetch.Repository.
func (r *Repository) Run(ctx context.Context, job *fetch.Job) ([]*messages.Element, error) {
	p, err := r.prepare(strings.ToUpper(job.FetchAction), job.Params)
	if err != nil {
		return nil, err
	}
	log := r.log.With("token", job.Token, "action", p.action)
	if job.Restarts > 0 {
		log.Info("action restarted after a crash; continuing from the datastore", "restarts", job.Restarts)
	}
	log.Info("action started", "tasks", strings.Join(p.tasks, ","))
	if len(p.ignored) > 0 {
		log.Debug("parameters ignored: neither the action's own nor task settings", "parameters", strings.Join(p.ignored, ","))
	}
	start := r.now()
	var res []*messages.Element
	switch p.action {
	case fetch.ActionSynchronize:
		res, err = r.synchronize(ctx, job, p, log)
	case fetch.ActionCollect:
		res, err = r.collect(ctx, job, p)
	case fetch.ActionIdentifiers:
		res, err = r.identifiers(ctx, job, p)
	case fetch.ActionDelete:
		res, err = r.delete(ctx, job, p)
	case fetch.ActionInsert:
		res, err = r.insert(ctx, job, p)
	case fetch.ActionUpdate:
		res, err = r.update(ctx, job, p, false)
	}
	// Not "action ended": that is the queue's line, with the status
	// and counts (one per action). This one marks where this node's
	// run returned, which in a cluster may not be where the action
	// ends.
	log.Info("action run ended", "elapsed", r.now().Sub(start), "error", err)
	return res, err
}

// counts returns the job's counters of task (a detached set if the job
// does not report on it, which Validate rules out).
func counts(job *fetch.Job, task string) *fetch.Counts {
	if c := job.Counts(task); c != nil {
		return c
	}
	return &fetch.Counts{Task: task}
}

// Exclusive implements fetch.Exclusive: Synchronize, Update and Delete of
// one task rewrite its datastore, so the queue runs one of them per task
// at a time (the others wait Queued, holding no thread). lock below stays
// as a guard for callers of Run other than the queue.
func (r *Repository) Exclusive(fetchAction string) bool {
	switch strings.ToUpper(fetchAction) {
	case fetch.ActionSynchronize, fetch.ActionUpdate, fetch.ActionDelete:
		return true
	}
	return false
}

// lock takes task's action lock: Synchronize, Update and Delete of one
// task never overlap (their datastore read-modify-writes would). It waits
// while another holds it, until ctx ends. Giving it back marks again
// the records other tasks marked meanwhile (remark); where marks are
// noted, taking it marks again those an action that died left.
func (r *Repository) lock(ctx context.Context, task string) (func(), error) {
	r.lockMu.Lock()
	ch, ok := r.locks[task]
	if !ok {
		ch = make(chan struct{}, 1)
		r.locks[task] = ch
	}
	r.lockMu.Unlock()
	select {
	case ch <- struct{}{}:
		end := r.turns.Begin(task)
		if r.noted {
			// A note left from before is a mark made while no action
			// of task ran, which the records it reads carry, or one
			// that an action which died (kill -9, a node lost) may
			// have written over and never marked again: marked again
			// now (a record that carries its mark is left as it is).
			r.remarkNoted(task)
		}
		return func() {
			end(func(keys []string) { r.remark(task, keys, nil) })
			if r.noted {
				r.remarkNoted(task)
			}
			<-ch
		}, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// datastore opens task's datastore.
func (r *Repository) datastore(task string) (store.Datastore, error) {
	ds, err := r.st.Datastore(strings.ToUpper(task))
	if err != nil {
		return nil, fmt.Errorf("httpfetch: datastore of %s: %w", task, err)
	}
	return ds, nil
}

// begin records the start of an action on task (TaskList) and returns a
// function that records its end; with newRun, it also returns the task's
// meta record as the new run left it (nil otherwise).
func (r *Repository) begin(ds store.Datastore, action string, newRun bool) (*taskMeta, func(), error) {
	startMs := r.now().UnixMilli()
	if !newRun {
		// Nothing depends on it being on disk before the action runs: one
		// write at the end records the call, deferred: it reaches the
		// disk in the same journal frame as the queue's record of the
		// action's end (or an earlier one), with no fsync of its own
		// while the action holds a thread. Nothing is read here either
		// (no caller uses the meta of an action that starts no run): in
		// a cluster a read is a round trip to the shared store.
		//
		// In a cluster (a store.MergeBookkeeper) the record is not read
		// at the end either: the store adds the call and sets the rest
		// as it commits (record.go, changeMetaDeferred).
		return nil, func() {
			err := changeMetaDeferred(ds, metaChange{calls: 1, action: action, startMs: startMs, finishMs: r.now().UnixMilli()})
			if err != nil {
				r.log.Warn("cannot record an action", "error", err)
			}
		}, nil
	}
	// A new Synchronize run: its number tags the records it writes, so it
	// is on disk before the crawl starts (a crashed run's number is never
	// reused), in a key that no deferred write holds (record.go, runKey).
	m, err := beginRun(ds, func(m *taskMeta) {
		m.Calls++
		m.Action = action
		m.LastStartMs = startMs
	})
	if err != nil {
		return nil, nil, fmt.Errorf("httpfetch: record action start: %w", err)
	}
	return m, func() {
		if err := changeMetaDeferred(ds, metaChange{finishMs: r.now().UnixMilli()}); err != nil {
			r.log.Warn("cannot record the end of an action", "error", err)
		}
	}, nil
}

// TaskList implements fetch.TaskLister: every task of [FetchTasks], then
// every other task section of the configuration, with what its datastore
// records (kept across restarts).
func (r *Repository) TaskList() ([]fetch.TaskInfo, error) {
	names := slices.Clone(r.tasks)
	stored, err := r.st.DatastoreNames()
	if err != nil {
		return nil, fmt.Errorf("httpfetch: task list: %w", err)
	}
	for _, t := range r.cfg.TaskSections() {
		if n := strings.ToUpper(t); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, n := range stored {
		if !slices.Contains(names, n) && r.hasTask(n) {
			names = append(names, n)
		}
	}
	out, err := restsync.TaskListOf(r.st, names, func(ds store.Datastore) (*restsync.TaskMeta, error) {
		m, err := readMeta(ds)
		if err != nil {
			return nil, err
		}
		return &restsync.TaskMeta{Calls: m.Calls, Action: m.Action, LastStartMs: m.LastStartMs, LastFinishMs: m.LastFinishMs}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("httpfetch: %w", err)
	}
	return out, nil
}
