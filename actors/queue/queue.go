package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// Config configures one queue. The zero value of every optional field is a
// sane default.
type Config struct {
	Name       string           // queue name, e.g. "fetch" (required)
	Repository fetch.Repository // performs the actions (required)
	// TokenHost and TokenPort are written into tokens (the server's
	// address as clients reach it).
	TokenHost string
	TokenPort int

	MaximumThreads         int           // default 4
	MaximumQueueSize       int           // default 100000
	MaximumFinishedActions int           // retention by count; negative = keep none; default 10000
	FinishedActionMaxAge   time.Duration // retention by age; 0 = no age limit
	StopTimeout            time.Duration // longest a Stop reply waits for the worker; default 5s
	AskTimeout             time.Duration // how long a request to an actor may take; default 5s
	// RetryInterval is how long after a failed commit its changes are
	// written again (with the next batch, or on their own); default 1s.
	// Not after store.ErrFailed: the store refuses every write until the
	// server restarts, and they are no longer retried on their own.
	RetryInterval time.Duration
	// CommitDelay and CommitSiblings gather more submissions into a
	// durable queue's group commit, as PostgreSQL's commit_delay and
	// commit_siblings do: when the disk is free and the last two commits
	// acknowledged at least CommitSiblings submissions between them
	// (other clients are submitting), a batch of submissions waits up to
	// CommitDelay for more before it is written, and goes as soon as it
	// holds half as many as those two commits did. A client that submits
	// alone does not wait (at most its first two commits after a burst of
	// other clients' do). Each commit costs the same fdatasync whatever it carries, so
	// fewer, fuller commits cost less CPU per submission. Defaults 200µs
	// and 5; a negative CommitDelay never waits. The wait is a runtime
	// timer, which ends late on a process with nothing else to do: Go's
	// network poller sleeps at least a millisecond (dur15 measured holds
	// that ended by the timer at 2.2× CommitDelay on average, with 200µs).
	// A submission is still acknowledged only once it is on disk.
	CommitDelay    time.Duration
	CommitSiblings int
	// RetentionInterval is how often ended actions are checked against
	// FinishedActionMaxAge; default a tenth of it, between 1s and 1m.
	RetentionInterval time.Duration

	// Store, when set, makes the queue durable: a token is returned only
	// once its action is on disk, and actions are restored at Start.
	// nil keeps the queue in memory only ([Actions] UseInMemoryDatastore).
	Store store.Store
	// OnRestart says what happens at Start to actions that were running
	// when the process died: RestartRerun (default) or RestartError.
	OnRestart string

	Logger *slog.Logger
	// Observer hears of submissions, starts, ends, stops and group commits
	// (metrics); nil: nobody.
	Observer Observer
	Now      func() time.Time // clock; default time.Now
	// NewID makes action ids; default UUIDv7 (time-ordered, as
	// uuid.NewV7, from randomness read in blocks: ids.go). Tests set it
	// for reproducible tokens.
	NewID func() (uuid.UUID, error)
	// ListEntry, when set, encodes an action's entry of a list reply (the
	// front end's XML <action> element; dst is appended to). The task
	// actor calls it once, when its action has ended and no worker runs
	// it, so that its status can no longer change; the QueueManager keeps
	// the bytes, and ListEntries hands them out instead of asking the
	// action (docs/architecture.md, "How a list is answered"). nil: every
	// list asks every action it shows.
	ListEntry ListEncoder

	// fetchActions is Repository.FetchActions, read once (withDefaults):
	// admit looks every submission up in it.
	fetchActions []string
	// retainBatch is the most ended actions one retention statement of
	// a cluster removes (pgstore's Retain); default retainBatch. Tests
	// set it lower.
	retainBatch int
	// adoptBatch is the most actions one take-over transaction of a
	// cluster takes (pgstore's Adopt); default adoptBatch. Tests set it
	// lower.
	adoptBatch int
}

// ListEncoder appends the list entry of an ended action to dst (see
// Config.ListEntry). Its output must not depend on the time it is called:
// it is only given statuses with an end time.
type ListEncoder func(dst []byte, st *messages.ActionStatus) []byte

// Policies for actions found running after a crash.
const (
	RestartRerun = "Rerun" // queue it again; it continues from its task's datastore
	RestartError = "Error" // end it as Error ("interrupted by a server crash")
)

func (c *Config) withDefaults() error {
	if c.Name == "" {
		return errors.New("queue: Config.Name is required")
	}
	if c.Repository == nil {
		return errors.New("queue: Config.Repository is required")
	}
	c.fetchActions = c.Repository.FetchActions()
	if c.MaximumThreads <= 0 {
		c.MaximumThreads = 4
	}
	if c.MaximumQueueSize <= 0 {
		c.MaximumQueueSize = 100000
	}
	switch {
	case c.MaximumFinishedActions == 0:
		c.MaximumFinishedActions = 10000
	case c.MaximumFinishedActions < 0:
		c.MaximumFinishedActions = 0
	}
	if c.retainBatch <= 0 {
		c.retainBatch = retainBatch
	}
	if c.adoptBatch <= 0 {
		c.adoptBatch = adoptBatch
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = 5 * time.Second
	}
	if c.AskTimeout <= 0 {
		c.AskTimeout = 5 * time.Second
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = time.Second
	}
	switch {
	case c.CommitDelay == 0:
		c.CommitDelay = defaultCommitDelay
	case c.CommitDelay < 0:
		c.CommitDelay = 0
	}
	if c.CommitSiblings <= 0 {
		c.CommitSiblings = defaultCommitSiblings
	}
	if c.RetentionInterval <= 0 {
		c.RetentionInterval = min(max(c.FinishedActionMaxAge/10, time.Second), time.Minute)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Observer == nil {
		c.Observer = noObserver{}
	}
	if c.NewID == nil {
		c.NewID = newIDSource(time.Now).NewID
	}
	if c.TokenHost == "" {
		c.TokenHost = "127.0.0.1"
	}
	switch {
	case c.OnRestart == "" || strings.EqualFold(c.OnRestart, RestartRerun):
		c.OnRestart = RestartRerun
	case strings.EqualFold(c.OnRestart, RestartError):
		c.OnRestart = RestartError
	default:
		return fmt.Errorf("queue: unknown OnRestart policy %q (want %s or %s)", c.OnRestart, RestartRerun, RestartError)
	}
	return nil
}

// Queue is the handle to a running queue, safe for concurrent use. Requests
// about one action go straight to the action's own actor.
type Queue struct {
	cfg     Config
	sys     *actor.ActorSystem
	replies *replies
	pid     *actor.PID
	prefix  string // PID id prefix of task actors: "<queue>/"
	upper   string
	// afterViews, when set (by tests), runs in listed between the
	// QueueManager's answer and the questions to the actors: a seam for
	// what happens meanwhile (retention).
	afterViews func()
}

// Start spawns the queue's QueueManager actor in sys.
func Start(sys *actor.ActorSystem, cfg Config) (*Queue, error) {
	return StartContext(context.Background(), sys, cfg)
}

// StartContext is Start, which stops early when ctx is done (the server
// asked to stop while it starts: SIGTERM, Ctrl-C): loading the stored
// actions, restoring them and the first dispatch stop at the next action,
// the QueueManager stops (writing the changes of the actions it restored,
// as a shutdown does), and the error wraps ctx's. Nothing is lost: an
// action not restored yet is still in the store as it was, and is
// restored at the next start.
func StartContext(ctx context.Context, sys *actor.ActorSystem, cfg Config) (*Queue, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	sh := &shared{
		repo: cfg.Repository, log: cfg.Logger.With("queue", cfg.Name), now: cfg.Now,
		stopTimeout: cfg.StopTimeout, listEntry: cfg.ListEntry, fetchActions: cfg.fetchActions,
		tokenHost: cfg.TokenHost, tokenPort: cfg.TokenPort, queue: strings.ToUpper(cfg.Name),
	}
	m := newManager(cfg, sh, sys.Root)
	m.cut = ctx.Done()
	restored := 0
	if cfg.Store != nil {
		m.st = cfg.Store
		err := cfg.Store.LoadActions(cfg.Name, func(a *messages.StoredAction) error {
			m.restore = append(m.restore, a)
			if len(m.restore)%256 == 0 {
				return ctx.Err()
			}
			return nil
		})
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("queue: load %s actions: stopped after %d: %w", cfg.Name, len(m.restore), context.Cause(ctx))
			}
			return nil, fmt.Errorf("queue: load %s actions: %w", cfg.Name, err)
		}
		restored = len(m.restore)
		ds, err := cfg.Store.Datastore(metaDatastore(cfg.Name))
		if err != nil {
			return nil, fmt.Errorf("queue: load %s state: %w", cfg.Name, err)
		}
		v, err := ds.Get(pausedKey)
		if err != nil {
			return nil, fmt.Errorf("queue: load %s state: %w", cfg.Name, err)
		}
		m.paused = len(v) == 1 && v[0] == 1
	}
	props := actor.PropsFromProducer(func() actor.Actor { return m },
		actor.WithReceiverMiddleware(managerPanic(sh.log)),
		actor.WithDispatcher(m.disp))
	name := "queue-" + strings.ToLower(cfg.Name)
	pid, err := sys.Root.SpawnNamed(props, name)
	if err != nil {
		return nil, fmt.Errorf("queue: start %s: %w", cfg.Name, err)
	}
	q := &Queue{cfg: cfg, sys: sys, pid: pid, prefix: pid.Id + "/", upper: strings.ToUpper(cfg.Name), replies: newReplies(sys, 1024)}
	q.replies.stopped = m.stopped
	// The QueueManager restores stored actions when it starts; answering
	// this request means it is done, so Start returns a queue whose every
	// token already resolves.
	if err := waitRestored(ctx, sys, pid, m, restored, sh.log); err != nil {
		return nil, fmt.Errorf("queue: start %s: %w", cfg.Name, err)
	}
	return q, nil
}

// Bounds of Start's wait for the QueueManager to restore its stored
// actions (waitRestored). Variables for the tests.
var (
	// startTimeout is how long the restore may go without restoring
	// one more action (at least AskTimeout): a restore that progresses is
	// waited for however long it takes.
	startTimeout = time.Minute
	// restoreLogEvery is how often a restore still going on logs its
	// progress.
	restoreLogEvery = 10 * time.Second
)

// waitRestored waits until the QueueManager pid has restored its total
// stored actions, finished its start (retention, the first dispatch) and
// answered. It gives up when ctx is done, and otherwise only when the
// start went startTimeout without progress (one more action restored,
// evicted or dispatched: a big store takes as long as it takes, and says
// how far it is every restoreLogEvery); the QueueManager is then stopped,
// not left running: it holds the store, which the caller closes on this
// error, and its name, which a new Start would find taken. Its stop comes
// once its start is over (at once when ctx is done: it stops restoring);
// waitRestored waits for that as long again.
func waitRestored(ctx context.Context, sys *actor.ActorSystem, pid *actor.PID, m *manager, total int, log *slog.Logger) error {
	stall := max(m.cfg.AskTimeout, startTimeout)
	fut := sys.Root.RequestFuture(pid, &messages.QueueStatusRequest{}, -1) // bounded below
	answered := make(chan error, 1)
	go func() { answered <- fut.Wait() }()
	tick := time.NewTicker(min(restoreLogEvery, stall))
	defer tick.Stop()
	began := time.Now()
	last, lastAt, logged := m.starting.Load(), began, began
	stop := func() string {
		sys.Root.Stop(fut.PID()) // ends the waiting goroutine
		sys.Root.Stop(pid)
		select {
		case <-m.stopped:
			return "it is stopped"
		case <-time.After(stall):
			return fmt.Sprintf("it stops once its start is over (not within another %s)", stall)
		}
	}
	for {
		select {
		case err := <-answered:
			if err != nil || ctx.Err() == nil {
				return err
			}
			// Done just as the start ended: stopped all the same, as
			// the caller is stopping.
			stopped := stop()
			return fmt.Errorf("stopped as its start ended: %s: %w", stopped, context.Cause(ctx))
		case <-ctx.Done():
			stopped := stop()
			return fmt.Errorf("restore stopped at %d of %d stored actions (the rest wait in the store for the next start); %s: %w",
				m.restored.Load(), total, stopped, context.Cause(ctx))
		case now := <-tick.C:
			if n := m.starting.Load(); n != last {
				last, lastAt = n, now
			}
			if now.Sub(lastAt) >= stall {
				stopped := stop()
				return fmt.Errorf("the QueueManager's start made no progress for %s (%d of %d stored actions restored in %s); %s",
					stall, m.restored.Load(), total, now.Sub(began).Round(time.Millisecond), stopped)
			}
			if now.Sub(logged) >= restoreLogEvery {
				logged = now
				log.Info("restoring stored actions", "restored", m.restored.Load(), "actions", total, "elapsed", now.Sub(began).Round(time.Second))
			}
		}
	}
}

// taskPID is the address of the task actor of action id: the one place
// that knows how a task actor is addressed (it is spawned as the
// QueueManager's child named by the id, and a token holds the id, so no
// lookup table sits between a request and its owner). A cluster resolves
// the id to the node that holds the action instead.
func (q *Queue) taskPID(id string) *actor.PID { return actor.NewPID(q.sys.Address(), q.prefix+id) }

// taskPIDOf is taskPID(id.String()) with the name built in one allocation
// (a request by token: GetStatus, the most frequent request).
func (q *Queue) taskPIDOf(id uuid.UUID) *actor.PID {
	var buf [128]byte
	return actor.NewPID(q.sys.Address(), string(appendID(append(buf[:0], q.prefix...), id)))
}

// appendID appends id as uuid.UUID.String writes it.
func appendID(b []byte, id uuid.UUID) []byte {
	const hexDigits = "0123456789abcdef"
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[c>>4], hexDigits[c&0x0f])
	}
	return b
}

// Name returns the queue's name as configured.
func (q *Queue) Name() string { return q.cfg.Name }

// FetchActions implements API: the repository's fetch actions.
func (q *Queue) FetchActions() []string { return q.cfg.Repository.FetchActions() }

// Submit implements API: it checks the action (admit) and queues it, and
// returns its token once it is accepted (with a store: once it is on
// disk). A submission either gets its token or is not queued: when the
// QueueManager has not answered within AskTimeout (or by ctx's deadline),
// Submit asks it to withdraw the submission, which it does if the action
// has not been sent to the disk yet (the error is then ErrTimeout, and
// nothing was queued); if it has, Submit waits for that write's outcome,
// however long the disk takes.
func (q *Queue) Submit(ctx context.Context, spec *messages.ActionSpec) (string, error) {
	return submit(ctx, q.cfg, q.replies, q.pid, q.readTimeout(ctx), spec, "(the disk is slow or the queue is busy)")
}

// submit is the one submit path of both queues: the action is admitted
// (validated, sealed), then sent to the QueueManager at pid, which
// answers once the action is durable; past timeout it is asked to
// withdraw the submission (why says what may be slow), which it does if
// the action has not been sent to the store yet.
func submit(ctx context.Context, cfg Config, r *replies, pid *actor.PID, timeout time.Duration, spec *messages.ActionSpec, why string) (string, error) {
	spec, err := admit(cfg.Repository, cfg.fetchActions, spec)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%w: %w", messages.ErrTimeout, err)
	}
	req := &submitRequest{msg: messages.SubmitAction{Spec: spec}}
	req.env.Message = &req.msg
	res, err := r.requestWithdrawable(pid, &req.envelope, timeout,
		func(sender *actor.PID) any { return &withdrawSubmit{sender: sender} })
	if errors.Is(err, actor.ErrDeadLetter) {
		return "", fmt.Errorf("%w: queue %s has stopped", messages.ErrShuttingDown, cfg.Name)
	}
	if err != nil {
		return "", mapAskErr(err)
	}
	if _, ok := res.(*submitWithdrawn); ok {
		return "", fmt.Errorf("%w: the %s queue could not record the action within %s %s, so it was withdrawn: it is not queued",
			messages.ErrTimeout, cfg.Name, timeout, why)
	}
	reply, ok := res.(*messages.SubmitReply)
	if !ok {
		return "", fmt.Errorf("queue: submit: unexpected reply %T: %w", res, messages.ErrInternal)
	}
	if err := messages.Err(reply.Code, reply.Message); err != nil {
		return "", err
	}
	return reply.Token, nil
}

// submitRequest is a submission to the QueueManager and its envelope
// (with its sender), in one allocation.
type submitRequest struct {
	envelope
	msg messages.SubmitAction
}

// request sends a request (GetActionStatus, CancelAction, StopAction, ...)
// to the task actor that owns token and returns its reply. A reply that
// carries an error code is returned together with that error, so callers
// can still show the action's status.
func (q *Queue) request(ctx context.Context, token string, msg any) (*messages.ActionReply, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", messages.ErrTimeout, err)
	}
	queue, id, err := messages.ParseToken(token)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(queue, q.upper) {
		return nil, fmt.Errorf("%w: the token belongs to queue %s, not %s", messages.ErrUnknownToken, queue, q.upper)
	}
	pid := q.taskPIDOf(id)
	timeout := q.askTimeout(ctx, msg)
	res, err := q.replies.request(pid, msg, timeout)
	if errors.Is(err, actor.ErrDeadLetter) {
		// No live actor: a tombstone, or an unknown token.
		res, err = q.askFor(q.pid, &lookupTombstone{id: id, msg: msg}, timeout)
	} else if err != nil {
		err = mapAskErr(err)
	}
	if err != nil {
		return nil, err
	}
	r, ok := res.(*messages.ActionReply)
	if !ok {
		return nil, fmt.Errorf("queue: unexpected reply %T: %w", res, messages.ErrInternal)
	}
	return r, messages.Err(r.Code, r.Message)
}

// askTimeout is how long a request to a task actor may take. A request
// that changes the action is answered once the change is on disk (a Stop
// also waits for the worker, up to StopTimeout), and its reply says what
// happened: it has no timeout (negative), since giving up first would
// answer "busy, retry later" for a change already in effect, or, for a
// Duplicate, leave a copy queued whose token nobody was told. The task
// actor and the QueueManager answer each of these requests (the
// QueueManager once the disk has answered, or when it stops); one that
// protoactor dropped with a mailbox when the QueueManager stopped ends
// with ErrShuttingDown then (replies.stopped). Reads keep AskTimeout, or
// ctx's earlier deadline.
func (q *Queue) askTimeout(ctx context.Context, msg any) time.Duration {
	switch msg.(type) {
	case *messages.StopAction, *messages.CancelAction, *messages.PauseAction, *messages.ResumeAction,
		*messages.ChangePriority, *messages.DuplicateAction:
		return -1
	}
	return q.readTimeout(ctx)
}

var getStatusMsg = &messages.GetActionStatus{}

// Status implements API: the status of the action with token.
func (q *Queue) Status(ctx context.Context, token string) (*messages.ActionStatus, error) {
	r, err := q.request(ctx, token, getStatusMsg)
	if err != nil {
		return nil, err
	}
	return r.Status, nil
}

// List returns the statuses of the actions the filter selects, in the
// filter's order. Each status comes from the action's own actor, or from
// the QueueManager's copy of its task if it has none (listed); actions
// removed by retention while the list is gathered are left out, and a
// page that lost one is read again, so that it stays full while there
// are actions beyond it.
func (q *Queue) List(ctx context.Context, f *messages.ListActions) ([]*messages.ActionStatus, error) {
	return listed(ctx, q, f, getStatusMsg, false, func(_ string, st *messages.ActionStatus, _ *messages.ActionReply) *messages.ActionStatus {
		return st
	})
}

// ListEntry is one action of a list (ListEntries): its list entry,
// encoded once when the action ended (Config.ListEntry), or else its
// status, asked of its actor.
type ListEntry struct {
	Encoded string
	Status  *messages.ActionStatus
}

// ListEntries is List for a front end that writes the list's entries as
// Config.ListEntry encodes them: an ended action's entry comes encoded
// from the QueueManager, which keeps it (its status can no longer
// change), and only the other actions are read as List reads them.
// Actions removed by retention while those are asked are left out.
func (q *Queue) ListEntries(ctx context.Context, f *messages.ListActions) ([]ListEntry, error) {
	return listed(ctx, q, f, getStatusMsg, true, func(enc string, st *messages.ActionStatus, _ *messages.ActionReply) ListEntry {
		return ListEntry{Encoded: enc, Status: st}
	})
}

// ListParams returns the parameters of the queued and running actions
// (GetActionParameters without a token), oldest first: at most maxResults
// of them (0: all) after the first skip.
func (q *Queue) ListParams(ctx context.Context, skip, maxResults uint32) ([]*messages.ActionReply, error) {
	f := &messages.ListActions{States: []messages.State{
		messages.State_STATE_QUEUED, messages.State_STATE_PROCESSING, messages.State_STATE_PAUSED,
	}, Ascending: true, Skip: skip, MaxResults: maxResults}
	return listed(ctx, q, f, paramsMsg, false, func(_ string, _ *messages.ActionStatus, ar *messages.ActionReply) *messages.ActionReply {
		return ar
	})
}

// listed reads the actions f selects, in f's order: it asks the
// QueueManager for them (listViews), answers msg (GetActionStatus or
// GetActionParameters) for those whose tasks' copies it handed out (queued
// actions without an actor) as their actors would, and asks the others'
// actors, many requests in flight at once (askEach). Each action goes
// through conv to the list: its status and its reply to msg (for
// GetActionStatus, made from a task's copy, only its status: no reply is
// made), or (encoded: an ended action's, where the QueueManager keeps it)
// its encoded list entry alone. Actions that answer with an error (or are
// gone) are left out.
//
// A page is full while there are actions beyond it (a client reads a
// shorter one as the last page): when one of a full page's actions was
// left out (retention removed it while the page was gathered), the page
// is read again, at most listRetries times, and then given as it is.
func listed[T any](ctx context.Context, q *Queue, f *messages.ListActions, msg any, encoded bool, conv func(string, *messages.ActionStatus, *messages.ActionReply) T) ([]T, error) {
	if f == nil {
		f = &messages.ListActions{}
	}
	// One deadline for the whole list: the QueueManager's step and the
	// actors' share the read's timeout (readTimeout), as one request.
	ctx, cancel := context.WithTimeout(ctx, q.readTimeout(ctx))
	defer cancel()
	for try := 0; ; try++ {
		out, full, left, err := listOnce(ctx, q, f, msg, encoded, conv)
		if err != nil || !full || left == 0 || try == listRetries {
			return out, err
		}
	}
}

// listRetries bounds the times listed reads a page again.
const listRetries = 3

// listOnce is one reading of listed's page: full says the QueueManager
// gave as many actions as f asks for, left how many of them were left out
// (gone when asked, or no longer answering msg: an action that ended
// while GetActionParameters listed it).
func listOnce[T any](ctx context.Context, q *Queue, f *messages.ListActions, msg any, encoded bool, conv func(string, *messages.ActionStatus, *messages.ActionReply) T) (out []T, full bool, left int, err error) {
	buf := viewBufs.Get().(*[]listView)
	res, err := q.ask(ctx, q.pid, &listViews{f: f, encoded: encoded, buf: *buf})
	if err != nil {
		// The QueueManager may still write into buf: it is not reused.
		return nil, false, 0, err
	}
	views, ok := res.([]listView)
	if !ok {
		return nil, false, 0, fmt.Errorf("queue: list: unexpected reply %T: %w", res, messages.ErrInternal)
	}
	defer func() {
		// What the views point to is not kept alive by the pool.
		clear(views)
		if cap(views) <= maxPooledViews {
			*buf = views[:0]
			viewBufs.Put(buf)
		}
	}()
	if q.afterViews != nil {
		q.afterViews()
	}
	var ask []string
	for i := range views {
		if views[i].how == viewAsk {
			ask = append(ask, views[i].id.String())
		}
	}
	asked := make([]*messages.ActionReply, 0, len(ask))
	if err := q.askEach(ctx, ask, msg, func(ar *messages.ActionReply) { asked = append(asked, ar) }); err != nil {
		return nil, false, 0, err
	}
	out = make([]T, 0, len(views))
	j := 0
	for i := range views {
		v := &views[i]
		switch v.how {
		case viewEncoded:
			out = append(out, conv(v.encoded, nil, nil))
		case viewTask:
			token := v.token
			if token == "" {
				token = messages.NewToken(q.cfg.TokenHost, q.cfg.TokenPort, q.upper, v.id)
			}
			if msg == getStatusMsg {
				out = append(out, conv("", v.statusAs(token, nil), nil))
				continue
			}
			ar := v.reply(msg, token)
			out = append(out, conv("", ar.Status, ar))
		default:
			if ar := asked[j]; ar != nil && ar.Code == messages.ErrorCode_ERROR_CODE_NONE {
				out = append(out, conv("", ar.Status, ar))
			} else {
				left++
			}
			j++
		}
	}
	return out, f.MaxResults > 0 && len(views) == int(f.MaxResults), left, nil
}

// viewBufs holds the buffers the QueueManager writes a list's views into
// (listViews): a page of 1000 views is 120 KB, which, allocated per list,
// cost the QueueManager page faults and the collector its scans.
var viewBufs = sync.Pool{New: func() any { return new([]listView) }}

// maxPooledViews bounds the buffers kept in viewBufs (a list of every
// action is not kept for the next one).
const maxPooledViews = 4096

// match asks the QueueManager for the ids of the actions f selects, in
// f's order.
func (q *Queue) match(ctx context.Context, f *messages.ListActions) ([]string, error) {
	res, err := q.ask(ctx, q.pid, f)
	if err != nil {
		return nil, err
	}
	lr, ok := res.(*messages.ListActionsReply)
	if !ok {
		return nil, fmt.Errorf("queue: list: unexpected reply %T: %w", res, messages.ErrInternal)
	}
	return lr.Ids, nil
}

// CancelResult is the outcome of CancelQueued.
type CancelResult struct {
	// Matched is the number of actions the filter selected that had not
	// started (the ones a Cancel can end).
	Matched int
	// Cancelled is how many of them were cancelled (0 on a dry run).
	Cancelled int
	// Skipped is how many had started, ended or gone by the time their
	// Cancel reached them, and were left as they were.
	Skipped int
	// Actions are the statuses of the first of them (at most the list
	// bound given), in the filter's order: Cancelled, or as they are on
	// a dry run.
	Actions []*messages.ActionStatus
}

// CancelQueued cancels, in one request, every action f selects that has
// not started (Queued, or Paused before it started; f.States may narrow
// that to one of them): each is sent a Cancel, as QueueAction=Cancel would,
// so each action's own actor decides, and an action that starts meanwhile
// is skipped, never stopped. With dryRun nothing is cancelled: the result
// says what would be. The statuses of at most list of them are returned.
func (q *Queue) CancelQueued(ctx context.Context, f *messages.ListActions, dryRun bool, list int) (*CancelResult, error) {
	sel := proto.Clone(f).(*messages.ListActions)
	sel.NotStarted = true
	if len(sel.States) == 0 {
		sel.States = []messages.State{messages.State_STATE_QUEUED, messages.State_STATE_PAUSED}
	}
	for _, st := range sel.States {
		if st != messages.State_STATE_QUEUED && st != messages.State_STATE_PAUSED {
			return nil, fmt.Errorf("%w: only Queued and Paused actions that have not started can be cancelled, not %s",
				messages.ErrInvalidParam, messages.StatusName(st))
		}
	}
	ids, err := q.match(ctx, sel)
	if err != nil {
		return nil, err
	}
	c := &cancelTally{res: CancelResult{Matched: len(ids)}, list: list}
	if dryRun {
		err = q.askEach(ctx, ids[:min(list, len(ids))], getStatusMsg, c.read)
		return &c.res, err
	}
	if err = q.askEach(ctx, ids, cancelMsg, c.cancelled); err != nil {
		return &c.res, err
	}
	return &c.res, c.err()
}

// cancelTally gathers the replies to CancelQueued's requests (in either
// queue) into its result.
type cancelTally struct {
	res  CancelResult
	list int // the most statuses res lists
	// unrecorded counts the Cancels in effect that the disk refused to
	// record (why: the first one's reply).
	unrecorded int
	why        string
	// refused counts the Cancels that the store could not record and
	// that changed nothing (a cluster node undoes a change to an action
	// that waits for a thread when the shared store cannot record it):
	// the actions are as they were, counted skipped, and err says why
	// (whyRefused: the first one's reply).
	refused    int
	whyRefused string
}

func (c *cancelTally) keep(st *messages.ActionStatus) {
	if len(c.res.Actions) < c.list {
		c.res.Actions = append(c.res.Actions, st)
	}
}

// read takes a dry run's status reply.
func (c *cancelTally) read(ar *messages.ActionReply) {
	if ar != nil && ar.Code == messages.ErrorCode_ERROR_CODE_NONE {
		c.keep(ar.Status)
	}
}

// cancelled takes the reply to one Cancel. A Cancel that the disk refused
// to record has cancelled the action all the same (its reply is an
// ErrStore with the Cancelled status, as QueueAction=Cancel's): it counts
// as cancelled, not as skipped, and err says it is not on disk. One that
// a cluster's store could not record was refused, and changed nothing
// (an ErrStore with the status the action still has): it counts as
// skipped, and err says why.
func (c *cancelTally) cancelled(ar *messages.ActionReply) {
	switch {
	case ar != nil && ar.Code == messages.ErrorCode_ERROR_CODE_NONE:
	case ar != nil && ar.Code == messages.ErrorCode_ERROR_CODE_STORE && ar.Status.GetState() == messages.State_STATE_CANCELLED:
		if c.unrecorded++; c.why == "" {
			c.why = ar.Message
		}
	case ar != nil && ar.Code == messages.ErrorCode_ERROR_CODE_STORE:
		// Not recorded, and not made: the action is as it was.
		if c.refused++; c.whyRefused == "" {
			c.whyRefused = ar.Message
		}
		c.res.Skipped++
		return
	default:
		c.res.Skipped++
		return
	}
	c.res.Cancelled++
	c.keep(ar.Status)
}

// err is the outcome of a confirmed CancelQueued: nil, or an ErrStore when
// some of its Cancels are in effect but not on disk, or were refused
// because the store could not record them.
func (c *cancelTally) err() error {
	if c.unrecorded == 0 && c.refused == 0 {
		return nil
	}
	msg := fmt.Sprintf("%d of the %d selected actions are now Cancelled (%d skipped)", c.res.Cancelled, c.res.Matched, c.res.Skipped)
	if c.refused > 0 {
		msg += fmt.Sprintf("; %d of the skipped ones were not cancelled because the store could not record their Cancel, which changed nothing (ask again once it answers); the first: %s",
			c.refused, c.whyRefused)
	}
	if c.unrecorded > 0 {
		msg += fmt.Sprintf(", but %d of these cancellations could not be written; the first: %s", c.unrecorded, c.why)
	}
	return fmt.Errorf("%w: %s", messages.ErrStore, msg)
}

// QueueStatus implements API: the queue's counters.
func (q *Queue) QueueStatus(ctx context.Context) (*messages.QueueStatusReply, error) {
	return q.queueReply(ctx, &messages.QueueStatusRequest{}, q.readTimeout(ctx))
}

// Pause implements API: it pauses the whole queue (running actions pause,
// queued ones wait) and returns once the paused flag is on disk (with a
// store).
func (q *Queue) Pause(ctx context.Context) (*messages.QueueStatusReply, error) {
	return q.queueReply(ctx, &messages.PauseQueue{}, -1)
}

// Resume implements API: it resumes the queue and every paused action,
// once that is on disk.
func (q *Queue) Resume(ctx context.Context) (*messages.QueueStatusReply, error) {
	return q.queueReply(ctx, &messages.ResumeQueue{}, -1)
}

// Thread is one of the queue's worker threads and the action it runs
// (nil when idle).
type Thread struct {
	Number int // 1..MaximumThreads
	Action *messages.ActionStatus
}

// ThreadStatus returns the queue's worker threads (MaximumThreads of
// them), by number, each with the status of the action it runs. An action
// keeps its thread, and its number, from the moment it is dispatched until
// its worker has exited: a stopped action holds its thread while its work
// unwinds. Each busy thread's status comes from its action's actor.
func (q *Queue) ThreadStatus(ctx context.Context) ([]Thread, error) {
	res, err := q.ask(ctx, q.pid, &messages.ThreadStatusRequest{})
	if err != nil {
		return nil, err
	}
	r, ok := res.(*messages.ThreadStatusReply)
	if !ok {
		return nil, fmt.Errorf("queue: unexpected reply %T: %w", res, messages.ErrInternal)
	}
	if err := messages.Err(r.Code, r.Message); err != nil {
		return nil, err
	}
	out := make([]Thread, len(r.Threads))
	for i, th := range r.Threads {
		out[i].Number = int(th.Number)
		if th.Id == "" {
			continue
		}
		res, err := q.ask(ctx, q.taskPID(th.Id), getStatusMsg)
		if errors.Is(err, messages.ErrShuttingDown) {
			continue // the actor is gone: the thread was freed meanwhile
		}
		if err != nil {
			return nil, err
		}
		if ar, ok := res.(*messages.ActionReply); ok && ar.Code == messages.ErrorCode_ERROR_CODE_NONE {
			out[i].Action = ar.Status
		}
	}
	return out, nil
}

func (q *Queue) queueReply(ctx context.Context, msg any, timeout time.Duration) (*messages.QueueStatusReply, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", messages.ErrTimeout, err)
	}
	res, err := q.askFor(q.pid, msg, timeout)
	if err != nil {
		return nil, err
	}
	r, ok := res.(*messages.QueueStatusReply)
	if !ok {
		return nil, fmt.Errorf("queue: unexpected reply %T: %w", res, messages.ErrInternal)
	}
	return r, messages.Err(r.Code, r.Message)
}

// Shutdown stops admission, stops running actions (they end as Stopped;
// queued actions stay queued), waits until their workers have exited or
// ctx ends, and then stops the queue's actors.
func (q *Queue) Shutdown(ctx context.Context) error {
	return shutdown(ctx, q.sys, q.pid, q.cfg.Name, q.cfg.AskTimeout)
}

// shutdown asks the manager pid to begin its shutdown and waits, until ctx's
// deadline (or askTimeout without one), for its running actions to stop;
// then it stops the queue's actors.
func shutdown(ctx context.Context, sys *actor.ActorSystem, pid *actor.PID, name string, askTimeout time.Duration) error {
	wait := askTimeout
	if d, ok := ctx.Deadline(); ok {
		wait = time.Until(d)
	}
	var err error
	if wait > 0 {
		_, err = sys.Root.RequestFuture(pid, &beginShutdown{}, wait).Result()
		if errors.Is(err, actor.ErrTimeout) {
			err = fmt.Errorf("queue %s: running actions did not stop in time: %w", name, context.DeadlineExceeded)
		}
	}
	if serr := sys.Root.StopFuture(pid).Wait(); serr != nil && err == nil {
		err = fmt.Errorf("queue %s: stop actors: %w", name, serr)
	}
	return err
}

// ask sends a read to an actor of the queue. A dead letter means the queue
// has stopped.
func (q *Queue) ask(ctx context.Context, pid *actor.PID, msg any) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", messages.ErrTimeout, err)
	}
	return q.askFor(pid, msg, q.readTimeout(ctx))
}

func (q *Queue) askFor(pid *actor.PID, msg any, timeout time.Duration) (any, error) {
	res, err := q.replies.request(pid, msg, timeout)
	if errors.Is(err, actor.ErrDeadLetter) {
		return nil, fmt.Errorf("%w: queue %s has stopped", messages.ErrShuttingDown, q.cfg.Name)
	}
	if err != nil {
		return nil, mapAskErr(err)
	}
	return res, nil
}

func mapAskErr(err error) error {
	if errors.Is(err, actor.ErrTimeout) {
		return fmt.Errorf("%w: %v", messages.ErrTimeout, err)
	}
	return fmt.Errorf("%w: %v", messages.ErrInternal, err)
}
