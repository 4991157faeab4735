package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store/pgstore"
)

// Membership is what a cluster queue needs of the node's membership
// (package cluster's Node).
type Membership interface {
	// ID is this node's member id, Addr its remoting address.
	ID() string
	Addr() string
	// Member reports whether id is a member now, and its address;
	// Members lists them all (this node included).
	Member(id string) (addr string, ok bool)
	Members() map[string]string
	// OnLeft registers fn, called (without blocking) with the ids of the
	// members that leave.
	OnLeft(fn func(ids []string))
	// Evict makes the node leave: it found it was declared dead.
	Evict(err error)
	// RequestTimeout bounds a read from another node; LeaseTTL is the
	// membership lease.
	RequestTimeout() time.Duration
	LeaseTTL() time.Duration
}

// ClusterQueue is a queue shared by the nodes of a cluster: it implements
// API on any node, for every action of the cluster. Each action is owned
// by one task actor on one node (the node that accepted it, until a node
// with a free thread claims it, or a survivor takes it over); a request
// about an action is a message to that actor, over protoactor's remoting
// when it lives on another node. The owner of record is in the shared
// store; the queue-wide views (lists, counts) are read from it.
type ClusterQueue struct {
	cfg     Config
	sys     *actor.ActorSystem
	replies *replies
	pid     *actor.PID // this node's cluster QueueManager
	name    string     // its name: "queue-<name>"
	prefix  string     // PID id prefix of task actors: "queue-<name>/"
	upper   string
	db      *pgstore.Store
	mem     Membership
	// slowStore is set while the store is slow to read an action's row
	// (readRow), probing while a read checks whether it still is.
	slowStore, probing atomic.Bool
}

var _ API = (*ClusterQueue)(nil)

// Name implements API.
func (q *ClusterQueue) Name() string { return q.cfg.Name }

// FetchActions implements API.
func (q *ClusterQueue) FetchActions() []string { return q.cfg.Repository.FetchActions() }

// Config returns the queue's effective configuration.
func (q *ClusterQueue) Config() Config { return q.cfg }

func (q *ClusterQueue) readTimeout(ctx context.Context) time.Duration {
	t := q.cfg.AskTimeout
	if d, ok := ctx.Deadline(); ok {
		t = min(t, max(time.Until(d), time.Nanosecond))
	}
	return t
}

// managerPID is the cluster QueueManager of the node at addr.
func (q *ClusterQueue) managerPID(addr string) *actor.PID { return actor.NewPID(addr, q.name) }

// taskPID is the task actor of action id on the node at addr.
func (q *ClusterQueue) taskPID(addr, id string) *actor.PID { return actor.NewPID(addr, q.prefix+id) }

// Submit implements API: the action is validated here and queued by this
// node's QueueManager, which owns it until a node claims it to run it.
func (q *ClusterQueue) Submit(ctx context.Context, spec *messages.ActionSpec) (string, error) {
	return submit(ctx, q.cfg, q.replies, q.pid, q.readTimeout(ctx), spec, "(the shared store is slow or the queue is busy)")
}

// isWrite reports whether msg changes the action: such a request is
// answered once the change is in the shared store.
func isWrite(msg any) bool {
	switch msg.(type) {
	case *messages.StopAction, *messages.CancelAction, *messages.PauseAction, *messages.ResumeAction,
		*messages.ChangePriority, *messages.DuplicateAction:
		return true
	}
	return false
}

// writeTimeout bounds a change asked of another node: its worker's stop
// and its group commit. Past it the node is taken for dead.
func (q *ClusterQueue) writeTimeout() time.Duration {
	return q.cfg.StopTimeout + q.cfg.AskTimeout
}

// request routes msg to the task actor that owns the action of token: the
// local actor if this node owns it (no lookup at all), else the owner of
// record in the shared store, over remoting. An owner that has left the
// cluster cannot answer until the survivors take its actions over (within
// the membership lease and a second): meanwhile reads are answered from
// the last state the store has, and changes are refused with ErrTimeout
// (nothing was changed; ask again in a few seconds). An action whose
// record does not decode and that no node holds in memory is answered as
// a list shows it (damaged).
func (q *ClusterQueue) request(ctx context.Context, token string, msg any) (*messages.ActionReply, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", messages.ErrTimeout, err)
	}
	queue, uid, err := messages.ParseToken(token)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(queue, q.upper) {
		return nil, fmt.Errorf("%w: the token belongs to queue %s, not %s", messages.ErrUnknownToken, queue, q.upper)
	}
	id := uid.String()
	write := isWrite(msg)
	local := q.mem.Addr()
	localTimeout := q.readTimeout(ctx)
	if write {
		localTimeout = -1 // as in process: answered once on disk
	}
	res, err := q.replies.request(q.taskPID(local, id), msg, localTimeout)
	if err == nil {
		if _, moved := res.(*messages.NotOwner); !moved {
			return actionReply(res)
		}
	} else if !errors.Is(err, actor.ErrDeadLetter) {
		return nil, mapAskErr(err)
	}
	var last error
	var tried pgstore.Row // the owner asked last, and its epoch
	unreachable := false  // its node could not be reached
	checked := ""         // the owner whose address was asked who listens there
	// A live owner of record without the action's actor is about to have
	// it (its claim or take-over is committed, not yet handled: under load
	// that takes a while; reconciliation makes sure of it within a lease),
	// or the action moved again: asked again after a pause, doubling, for
	// as long as the request may wait.
	wait := q.readTimeout(ctx)
	if write {
		wait = q.writeTimeout()
	}
	deadline := time.Now().Add(wait)
	pause := time.Millisecond
	for attempt := 0; attempt < 4 || time.Now().Before(deadline); attempt++ {
		if attempt >= 2 {
			if !sleepCtx(ctx, min(pause, time.Until(deadline))) {
				return nil, fmt.Errorf("%w: %w", messages.ErrTimeout, ctx.Err())
			}
			pause = min(2*pause, 100*time.Millisecond)
		}
		row, found, err := q.readRow(ctx, uid)
		if err != nil && ctx.Err() != nil {
			return nil, storeFailed(ctx, err)
		}
		if err != nil {
			// The shared store is unreachable, or fails (a damaged
			// record does not: row.Damaged): ask the nodes who owns it.
			owner, addr, ok := q.lookupOwner(ctx, uid)
			if !ok {
				if errors.Is(err, pgstore.ErrUnavailable) {
					return nil, fmt.Errorf("%w: the shared store cannot be reached and no node answers for this action: %v", messages.ErrStore, err)
				}
				// Not a way to the database that failed (TLS
				// settings, ...): its own words.
				return nil, fmt.Errorf("%w: no node answers for this action, and the shared store cannot read it: %v", messages.ErrStore, err)
			}
			row = pgstore.Row{Owner: owner, OwnerAddr: addr}
			found = true
		}
		if !found {
			// A crash tombstone of this node, or a token nobody issued.
			res, err := q.askManager(&lookupTombstone{id: uid, msg: msg}, localTimeout)
			if err != nil {
				return nil, err
			}
			return actionReply(res)
		}
		addr, member := q.mem.Member(row.Owner)
		if row.Owner == q.mem.ID() {
			addr, member = local, true
		}
		if row.Damaged != nil && (row.Owner == "" || !member) {
			return q.damaged(row, msg, write, token)
		}
		if row.Owner == "" || !member {
			return q.ownerGone(row, msg, write, token)
		}
		if unreachable && row.Owner == tried.Owner && row.Epoch == tried.Epoch {
			// Its node could not be reached and nothing moved: it is
			// gone, though its membership has not lapsed yet.
			return q.ownerGone(row, msg, write, token)
		}
		tried, unreachable = row, false
		timeout := q.readTimeout(ctx)
		if write {
			timeout = q.writeTimeout()
		}
		if row.Owner == q.mem.ID() {
			// This node is the owner of record and had no actor for
			// it (a dead letter above): its QueueManager answers for a
			// crash tombstone, whose row stays this node's (asking the
			// actor again timed out: a list showing a tombstone waited
			// AskTimeout), or forwards to the actor it has by now; one
			// it does not hold yet (its claim is committed, not yet
			// handled) is asked again after a pause.
			res, err := q.askManager(&lookupTombstone{id: uid, msg: msg}, timeout)
			if err != nil {
				return nil, err
			}
			switch r := res.(type) {
			case *messages.NotOwner:
				if row.Damaged != nil {
					return q.damaged(row, msg, write, token)
				}
				last = errors.New(r.Message)
				continue
			case *messages.ActionReply:
				if r.Status == nil && r.Code == messages.ErrorCode_ERROR_CODE_UNKNOWN_TOKEN {
					if row.Damaged != nil {
						return q.damaged(row, msg, write, token)
					}
					last = errors.New(r.Message)
					continue
				}
			}
			return actionReply(res)
		}
		sent := time.Now()
		res, err := q.replies.request(q.taskPID(addr, id), msg, timeout)
		switch {
		case err == nil:
			if nm, moved := res.(*messages.NotOwner); moved {
				last = errors.New(nm.Message)
				continue // claimed or taken over meanwhile: the row says by whom
			}
			return actionReply(res)
		case errors.Is(err, actor.ErrDeadLetter) && row.Damaged != nil:
			// No actor answers for it, and its record cannot be read:
			// what the row shows, as a list does (askRows).
			return q.damaged(row, msg, write, token)
		case errors.Is(err, actor.ErrDeadLetter) && messages.Terminal(row.Record.GetStatus().GetState()):
			// It has ended, and its owner has no actor for it: its task
			// actor failed, and the owner keeps a tombstone, which
			// only the owner's own requests reach (lookupTombstone),
			// and wrote it as Error. An ended action changes no more:
			// the row is its last word.
			return q.ended(row, msg, write)
		case errors.Is(err, actor.ErrDeadLetter):
			// No such actor there (moved: the row says where now; or not
			// yet there), or, when remoting took its retries to say so, no
			// such node; or another process listens at the owner's
			// address: the owner's node was restarted on its RemotePort
			// and the old process is still a member until its lease
			// lapses. Its actions are then answered as an owner's that
			// has left (asked again until the deadline, a read failed
			// after AskTimeout, and a list waited as long for each).
			last = err
			unreachable = row.Owner != q.mem.ID() && time.Since(sent) > unreachableAfter
			if !unreachable && row.Owner != checked {
				other, answered := q.listener(ctx, addr, row.Owner)
				if other {
					return q.ownerGone(row, msg, write, token)
				}
				if answered {
					checked = row.Owner // the owner itself: not asked again
				}
			}
			continue
		case errors.Is(err, actor.ErrTimeout):
			if _, still := q.mem.Member(row.Owner); !still && row.Owner != q.mem.ID() {
				return q.ownerGone(row, msg, write, token)
			}
			return nil, mapAskErr(err)
		default:
			return nil, mapAskErr(err)
		}
	}
	return nil, fmt.Errorf("%w: the action kept moving between nodes, or its owner of record had no actor for it, while it was asked for %s (%v); ask again", messages.ErrTimeout, wait, last)
}

// storeFailed is the error of a request whose call to the shared store
// failed with err: ErrTimeout when the request's own context has ended
// (its deadline passed, or its client went away), which the store reports
// as the database out of reach (a call cancelled, as one that outlives
// the store's own deadline), else ErrStore.
func storeFailed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: the request's time ran out while it read the shared store: %w", messages.ErrTimeout, context.Cause(ctx))
	}
	return fmt.Errorf("%w: %v", messages.ErrStore, err)
}

// sleepCtx waits d, or until ctx ends (false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// unreachableAfter: a dead letter that took longer than this came from
// remoting giving up on the node (it retries for about two seconds), not
// from a live node that has no such actor (which answers at once).
const unreachableAfter = 500 * time.Millisecond

func actionReply(res any) (*messages.ActionReply, error) {
	r, ok := res.(*messages.ActionReply)
	if !ok {
		return nil, fmt.Errorf("queue: unexpected reply %T: %w", res, messages.ErrInternal)
	}
	return r, messages.Err(r.Code, r.Message)
}

// damaged answers a request about an action that no node holds in memory
// and whose record in the shared store does not decode (row.Damaged): a
// read is answered as a list shows it (ownerGone: the row's columns, as
// Error, with the token asked, an error saying the record cannot be
// read); a change is refused, as nobody can make it. asked is the token
// the request gave ("" for a list's entry).
func (q *ClusterQueue) damaged(row pgstore.Row, msg any, write bool, asked string) (*messages.ActionReply, error) {
	if write {
		return nil, fmt.Errorf("%w: no node holds this action in memory and its record in the shared store cannot be read, so it cannot be changed: %v", messages.ErrStore, row.Damaged)
	}
	return q.ownerGone(row, msg, false, asked)
}

// ended answers a request about an action whose row says it has ended,
// for which its owner, a live member, has no task actor (a tombstone): a
// read from the row, as ownerGone does; a change refused, as the task
// actor of an ended action (or the tombstone) refuses it. It was asked
// of the stopped actor again and again, for as long as the request
// could wait (AskTimeout), and failed saying the action kept moving; a
// list from another node left the action out.
func (q *ClusterQueue) ended(row pgstore.Row, msg any, write bool) (*messages.ActionReply, error) {
	if !write {
		return q.ownerGone(row, msg, false, "")
	}
	st := rowStatus(row.Record)
	st.Token = q.rowToken(row)
	why := "the action ended as " + messages.StatusName(st.State)
	if st.Error != "" {
		why += " (" + st.Error + ")"
	}
	code, _ := messages.Code(messages.ErrActionEnded)
	r := &messages.ActionReply{Status: st, Code: code, Message: why}
	return r, messages.Err(r.Code, r.Message)
}

// ownerGone answers a request about an action whose owner has left the
// cluster (or that nobody owns yet): reads from the store's last state,
// changes refused until a survivor has adopted it. asked is the token the
// request gave, "" for a list's entry.
//
// A damaged record's view (row.Damaged: pgstore damagedView) is shown as
// Error, though its row keeps its state (the one the list's filters and
// QueueStatus's counts use): its error then reaches an ACI client, whose
// encoders write <error> in that state only (the element's place in
// IDOL's replies; other states may carry an Error that is not sent: a
// tombstone of an ended action, a panic after the end), and the action
// can neither run nor be changed (a claim ends it as Error). Its token is
// the one asked, else rowToken's. GetActionParameters goes by the row's
// state (a damaged queued row has no parameters to give, but is not ended).
func (q *ClusterQueue) ownerGone(row pgstore.Row, msg any, write bool, asked string) (*messages.ActionReply, error) {
	if write || row.Record == nil {
		return nil, fmt.Errorf("%w: the node that owns this action has left the cluster; the others take its actions over within %s: nothing was changed, ask again then",
			messages.ErrTimeout, q.mem.LeaseTTL()+time.Second)
	}
	st := rowStatus(row.Record)
	ended := messages.Terminal(st.State) // the row's
	st.Token = q.rowToken(row)
	if row.Damaged != nil {
		st.State = messages.State_STATE_ERROR
		if asked != "" {
			st.Token = asked
		}
	}
	switch msg.(type) {
	case *messages.GetProgress:
		return &messages.ActionReply{Status: st, Progress: storedProgress(st)}, nil
	case *messages.GetActionParameters:
		if ended {
			code, _ := messages.Code(messages.ErrActionEnded)
			r := &messages.ActionReply{Status: st, Code: code,
				Message: "the action ended as " + messages.StatusName(st.State) + "; parameters are kept only for queued and running actions"}
			return r, messages.Err(r.Code, r.Message)
		}
		return &messages.ActionReply{Status: st, Params: row.Record.GetSpec().GetParams()}, nil
	}
	return &messages.ActionReply{Status: st}, nil
}

// rowToken is the token of row's action: its record's, or, for a damaged
// record's view (pgstore damagedView), which has none, one made from its
// id, naming the node that answers (its TokenHost and TokenPort): it
// differs from the submitter's when another node accepted the action
// (keeping that one needs a token column). A request by token is answered
// with the token asked (ownerGone).
func (q *ClusterQueue) rowToken(row pgstore.Row) string {
	if tok := row.Record.GetStatus().GetToken(); tok != "" {
		return tok
	}
	if uid, err := uuid.Parse(row.Record.GetId()); err == nil {
		return messages.NewToken(q.cfg.TokenHost, q.cfg.TokenPort, q.upper, uid)
	}
	return ""
}

// rowStatus is the status a stored record shows. A record stored while a
// worker ran it shows its last written counts (Running stays set: the
// worker's node has left, and a survivor will re-run or end it).
func rowStatus(a *messages.StoredAction) *messages.ActionStatus {
	st := proto.Clone(a.GetStatus()).(*messages.ActionStatus)
	if st.FetchAction == "" {
		st.FetchAction = a.GetSpec().GetFetchAction()
	}
	if len(st.Counts) == 0 {
		for _, t := range a.GetSpec().GetTasks() {
			st.Counts = append(st.Counts, &messages.DocumentCount{Task: t})
		}
	}
	return st
}

// storedProgress is QueueAction=Progress's answer for an action known only
// from the store: what its owner answered (task.currentProgress), the
// progress its worker ended with included.
func storedProgress(st *messages.ActionStatus) *messages.Progress {
	switch {
	case st.State == messages.State_STATE_FINISHED:
		return &messages.Progress{Percent: 100, Stage: "finished"}
	case st.Running:
		return &messages.Progress{Stage: "running"}
	case !messages.Terminal(st.State):
		return &messages.Progress{Stage: "queued"}
	case st.Progress != nil:
		return stagesAs(st.Progress, st.State)
	}
	return &messages.Progress{Stage: "ended"}
}

// listener asks the QueueManager that listens at addr who it is: other
// when it is not the member owner (the owner's process is gone, and a new
// one, the node restarted on the same RemotePort, a new member, took its
// address); answered when it said who it is (it did not when it does not
// answer in time, has not started yet, or is of a build that does not
// say).
func (q *ClusterQueue) listener(ctx context.Context, addr, owner string) (other, answered bool) {
	res, err := q.sys.Root.RequestFuture(q.managerPID(addr), &messages.OwnerLookup{}, min(q.readTimeout(ctx), q.mem.RequestTimeout())).Result()
	r, ok := res.(*messages.OwnerLookupReply)
	if err != nil || !ok || r.Node == "" {
		return false, false
	}
	return r.Node != owner, true
}

// readRow reads the row of action id, for request. A store that has not
// answered within RequestTimeout (its host frozen, or cut off without a
// reset: the call waits for the store's deadline, 30 s) is not waited for
// when a node owns the action: the nodes are asked then (lookupOwner), and
// the row is the owner they name (its id and address, no record), as when
// the store's call fails. A request about a running action, whose owner
// answers in milliseconds, waited the 30 s first.
//
// The store is then slow (slowStore) until a read answers within
// RequestTimeout again (probe): meanwhile the nodes are asked first, and
// the store read only when none owns the action, and not cancelled. A
// read that the nodes' answer overtakes is cancelled, and a cancelled
// query closes its connection (pgx): while PostgreSQL was slow but live
// (over RequestTimeout), every request about a running action made the
// pool open a new connection, and waited RequestTimeout.
func (q *ClusterQueue) readRow(ctx context.Context, id uuid.UUID) (pgstore.Row, bool, error) {
	if q.slowStore.Load() {
		q.probe(id)
		if owner, addr, ok := q.lookupOwner(ctx, id); ok {
			return pgstore.Row{Owner: owner, OwnerAddr: addr}, true, nil
		}
		return q.db.Action(ctx, q.cfg.Name, id.String())
	}
	type read struct {
		row   pgstore.Row
		found bool
		err   error
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel() // a call the nodes' answer overtook ends with it
	got := make(chan read, 1)
	go func() {
		row, found, err := q.db.Action(rctx, q.cfg.Name, id.String())
		got <- read{row, found, err}
	}()
	t := time.NewTimer(q.mem.RequestTimeout())
	defer t.Stop()
	select {
	case r := <-got:
		return r.row, r.found, r.err
	case <-t.C:
		q.slowStore.Store(true)
	}
	if owner, addr, ok := q.lookupOwner(ctx, id); ok {
		return pgstore.Row{Owner: owner, OwnerAddr: addr}, true, nil
	}
	r := <-got
	return r.row, r.found, r.err
}

// probe reads action id's row, unless a probe is under way, and ends
// slowStore when the store answers within RequestTimeout (it is given no
// longer): while the store stays slow, one connection per RequestTimeout
// is closed by a cancelled read, not one per request.
func (q *ClusterQueue) probe(id uuid.UUID) {
	if !q.probing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer q.probing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), q.mem.RequestTimeout())
		defer cancel()
		_, _, _ = q.db.Action(ctx, q.cfg.Name, id.String())
		if ctx.Err() == nil {
			q.slowStore.Store(false)
		}
	}()
}

// lookupOwner asks every member's QueueManager whether it owns action id
// (the store cannot be read): the owner answers from its own state. During
// a hand-over the old owner answers owned too, until it hears of the claim
// or take-over: the answer with the highest epoch is the owner's.
func (q *ClusterQueue) lookupOwner(ctx context.Context, id uuid.UUID) (owner, addr string, ok bool) {
	members := q.mem.Members()
	type ask struct {
		id, addr string
		f        *actor.Future
	}
	asks := make([]ask, 0, len(members))
	for mid, a := range members {
		asks = append(asks, ask{mid, a, q.sys.Root.RequestFuture(q.managerPID(a), &messages.OwnerLookup{Id: id[:]}, min(q.readTimeout(ctx), q.mem.RequestTimeout()))})
	}
	epoch := int64(-1)
	for _, a := range asks {
		res, err := a.f.Result()
		if r, yes := res.(*messages.OwnerLookupReply); err == nil && yes && r.Owned && r.Epoch > epoch {
			owner, addr, ok, epoch = a.id, a.addr, true, r.Epoch
			if r.Node != "" {
				// Not a.id when that member's process is gone and a
				// new one listens at its address (restarted on its
				// RemotePort): both were asked there.
				owner = r.Node
			}
		}
	}
	return owner, addr, ok
}

func (q *ClusterQueue) askManager(msg any, timeout time.Duration) (any, error) {
	res, err := q.replies.request(q.pid, msg, timeout)
	if errors.Is(err, actor.ErrDeadLetter) {
		return nil, fmt.Errorf("%w: queue %s has stopped", messages.ErrShuttingDown, q.cfg.Name)
	}
	if err != nil {
		return nil, mapAskErr(err)
	}
	return res, nil
}

// Status implements API.
func (q *ClusterQueue) Status(ctx context.Context, token string) (*messages.ActionStatus, error) {
	r, err := q.request(ctx, token, getStatusMsg)
	if err != nil {
		return nil, err
	}
	return r.Status, nil
}

// Progress implements API.
func (q *ClusterQueue) Progress(ctx context.Context, token string) (*messages.ActionReply, error) {
	return q.request(ctx, token, progressMsg)
}

// ActionParameters implements API.
func (q *ClusterQueue) ActionParameters(ctx context.Context, token string) (*messages.ActionReply, error) {
	return q.request(ctx, token, paramsMsg)
}

// Cancel implements API.
func (q *ClusterQueue) Cancel(ctx context.Context, token string) (*messages.ActionReply, error) {
	return q.request(ctx, token, cancelMsg)
}

// Stop implements API.
func (q *ClusterQueue) Stop(ctx context.Context, token string) (*messages.ActionReply, error) {
	return q.request(ctx, token, stopMsg)
}

// ChangePriority implements API: the new priority holds across the
// cluster (claims take the highest first, wherever submitted).
func (q *ClusterQueue) ChangePriority(ctx context.Context, token string, priority int32) (*messages.ActionReply, error) {
	return q.request(ctx, token, &messages.ChangePriority{Priority: priority})
}

// PauseAction implements API.
func (q *ClusterQueue) PauseAction(ctx context.Context, token string) (*messages.ActionReply, error) {
	return q.request(ctx, token, pauseMsg)
}

// ResumeAction implements API.
func (q *ClusterQueue) ResumeAction(ctx context.Context, token string) (*messages.ActionReply, error) {
	return q.request(ctx, token, resumeMsg)
}

// Duplicate implements API: the copy is queued by the original's owner.
func (q *ClusterQueue) Duplicate(ctx context.Context, token string) (*messages.ActionReply, error) {
	return q.request(ctx, token, duplicateMsg)
}

// List implements API: the actions of the whole cluster that f selects,
// each status from its owner (from the store for an owner that has left).
func (q *ClusterQueue) List(ctx context.Context, f *messages.ListActions) ([]*messages.ActionStatus, error) {
	replies, err := q.gather(ctx, f, getStatusMsg)
	if err != nil {
		return nil, err
	}
	out := make([]*messages.ActionStatus, 0, len(replies))
	for _, r := range replies {
		out = append(out, r.Status)
	}
	return out, nil
}

// ListParams implements API.
func (q *ClusterQueue) ListParams(ctx context.Context, skip, maxResults uint32) ([]*messages.ActionReply, error) {
	f := &messages.ListActions{States: []messages.State{
		messages.State_STATE_QUEUED, messages.State_STATE_PROCESSING, messages.State_STATE_PAUSED,
	}, Ascending: true, Skip: skip, MaxResults: maxResults}
	return q.gather(ctx, f, paramsMsg)
}

func (q *ClusterQueue) gather(ctx context.Context, f *messages.ListActions, msg any) ([]*messages.ActionReply, error) {
	rows, err := q.db.ListRows(ctx, q.cfg.Name, f)
	if err != nil {
		return nil, storeFailed(ctx, err)
	}
	out := make([]*messages.ActionReply, 0, len(rows))
	err = q.askRows(ctx, rows, msg, func(ar *messages.ActionReply) {
		if ar != nil && ar.Code == messages.ErrorCode_ERROR_CODE_NONE {
			out = append(out, ar)
		}
	})
	return out, err
}

// askRows sends msg to the owner of every row, a window of requests in
// flight at once, and hands each reply to got in rows' order: the store's
// state for an owner that has left, nil for an action that is gone.
func (q *ClusterQueue) askRows(ctx context.Context, rows []pgstore.Row, msg any, got func(*messages.ActionReply)) error {
	const window = 512
	timeout := q.readTimeout(ctx)
	if isWrite(msg) {
		timeout = q.writeTimeout()
	}
	futures := make([]*actor.Future, 0, window)
	for start := 0; start < len(rows); start += window {
		futures = futures[:0]
		batch := rows[start:min(start+window, len(rows))]
		for _, r := range batch {
			addr, member := q.mem.Member(r.Owner)
			if r.Owner == q.mem.ID() {
				addr, member = q.mem.Addr(), true
			}
			if r.Owner == "" || !member {
				futures = append(futures, nil)
				continue
			}
			futures = append(futures, q.sys.Root.RequestFuture(q.taskPID(addr, r.Record.Id), msg, timeout))
		}
		for i, fu := range futures {
			if fu == nil {
				ar, _ := q.ownerGone(batch[i], msg, isWrite(msg), "")
				got(ar)
				continue
			}
			res, err := fu.Result()
			if err == nil {
				if _, moved := res.(*messages.NotOwner); moved {
					// Claimed meanwhile: ask it again, by token.
					ar, _ := q.request(ctx, q.rowToken(batch[i]), msg)
					got(ar)
					continue
				}
				ar, _ := res.(*messages.ActionReply)
				got(ar)
				continue
			}
			if batch[i].Damaged != nil && errors.Is(err, actor.ErrDeadLetter) {
				// No actor answers for it, and its record cannot be
				// read: what the row shows (as by token: damaged).
				ar, _ := q.damaged(batch[i], msg, isWrite(msg), "")
				got(ar)
				continue
			}
			if errors.Is(err, actor.ErrDeadLetter) || errors.Is(err, actor.ErrTimeout) {
				// Moved or removed meanwhile, or its node died: by token.
				ar, rerr := q.request(ctx, q.rowToken(batch[i]), msg)
				if rerr != nil && ar == nil && !isWrite(msg) && (errors.Is(rerr, messages.ErrTimeout) || ctx.Err() != nil) {
					// Its owner, still a member, did not answer in
					// time (its node frozen, or cut off, until its
					// lease lapses), or the list's own time ran out
					// (its read of the row again then fails too):
					// shown as the store last had it, as for an
					// owner that has left. It was left out, and the
					// list looked complete.
					ar, _ = q.ownerGone(batch[i], msg, false, "")
				}
				if rerr != nil && ar == nil {
					got(nil)
					continue
				}
				got(ar)
				continue
			}
			return mapAskErr(err)
		}
	}
	return nil
}

// CancelQueued implements API across the cluster.
func (q *ClusterQueue) CancelQueued(ctx context.Context, f *messages.ListActions, dryRun bool, list int) (*CancelResult, error) {
	sel, err := cancelSelection(f)
	if err != nil {
		return nil, err
	}
	rows, err := q.db.ListRows(ctx, q.cfg.Name, sel)
	if err != nil {
		return nil, storeFailed(ctx, err)
	}
	c := &cancelTally{res: CancelResult{Matched: len(rows)}, list: list}
	if dryRun {
		err = q.askRows(ctx, rows[:min(list, len(rows))], getStatusMsg, c.read)
		return &c.res, err
	}
	if err = q.askRows(ctx, rows, cancelMsg, c.cancelled); err != nil {
		return &c.res, err
	}
	return &c.res, c.err()
}

// cancelSelection is CancelQueued's filter: f narrowed to the actions a
// Cancel can end.
func cancelSelection(f *messages.ListActions) (*messages.ListActions, error) {
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
	return sel, nil
}

// QueueStatus implements API: the whole cluster's counts, and the threads
// of its live members added up.
func (q *ClusterQueue) QueueStatus(ctx context.Context) (*messages.QueueStatusReply, error) {
	byState, waiting, paused, err := q.db.Counts(ctx, q.cfg.Name)
	if err != nil {
		return nil, storeFailed(ctx, err)
	}
	// The unended actions that do not wait run: a Processing row runs
	// (a claim marks it so), a Paused one runs unless it waits. (A row
	// that ended with its worker still unwinding is written with the
	// worker's final report, so it is not counted.)
	unended := byState[messages.State_STATE_QUEUED] + byState[messages.State_STATE_PROCESSING] + byState[messages.State_STATE_PAUSED]
	running := unended - min(waiting, unended)
	members := q.mem.Members()
	ids := make([]string, 0, len(members))
	for id := range members {
		ids = append(ids, id)
	}
	threads, err := q.db.Threads(ctx, ids)
	if err != nil {
		return nil, storeFailed(ctx, err)
	}
	return &messages.QueueStatusReply{
		Queue: q.cfg.Name, Paused: paused,
		Queued: byState[messages.State_STATE_QUEUED], Processing: byState[messages.State_STATE_PROCESSING],
		PausedActions: byState[messages.State_STATE_PAUSED], Finished: byState[messages.State_STATE_FINISHED],
		Cancelled: byState[messages.State_STATE_CANCELLED], Stopped: byState[messages.State_STATE_STOPPED],
		Error: byState[messages.State_STATE_ERROR], MaximumThreads: uint32(threads),
		MaximumQueueSize: uint32(q.cfg.MaximumQueueSize), Waiting: waiting, Running: running,
	}, nil
}

// Pause implements API: the whole cluster's queue pauses (the flag is in
// the shared store: no node claims), and every node pauses what it runs.
func (q *ClusterQueue) Pause(ctx context.Context) (*messages.QueueStatusReply, error) {
	return q.setPaused(ctx, true)
}

// Resume implements API.
func (q *ClusterQueue) Resume(ctx context.Context) (*messages.QueueStatusReply, error) {
	return q.setPaused(ctx, false)
}

func (q *ClusterQueue) setPaused(ctx context.Context, paused bool) (*messages.QueueStatusReply, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", messages.ErrTimeout, err)
	}
	if err := q.db.SetPaused(context.Background(), q.cfg.Name, paused); err != nil {
		return nil, fmt.Errorf("%w: %v", messages.ErrStore, err)
	}
	var msg any = &messages.ResumeQueue{}
	if paused {
		msg = &messages.PauseQueue{}
	}
	var futures []*actor.Future
	for _, addr := range q.mem.Members() {
		futures = append(futures, q.sys.Root.RequestFuture(q.managerPID(addr), msg, q.writeTimeout()))
	}
	var errs []error
	for _, f := range futures {
		if _, err := f.Result(); err != nil && !errors.Is(err, actor.ErrDeadLetter) {
			errs = append(errs, err)
		}
	}
	qs, err := q.QueueStatus(ctx)
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		what := "resumed"
		if paused {
			what = "paused"
		}
		return qs, fmt.Errorf("%w: the queue is %s in the shared store, but %d node(s) did not confirm in time (they claim nothing while it is paused; they pause or resume what they run when the message reaches them, or at the latest at their next reconciliation, within a lease): %v",
			messages.ErrTimeout, what, len(errs), errors.Join(errs...))
	}
	return qs, nil
}

// ThreadStatus implements API: this node's worker threads.
func (q *ClusterQueue) ThreadStatus(ctx context.Context) ([]Thread, error) {
	res, err := q.askManager(&messages.ThreadStatusRequest{}, q.readTimeout(ctx))
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
		res, err := q.replies.request(q.taskPID(q.mem.Addr(), th.Id), getStatusMsg, q.readTimeout(ctx))
		if err != nil {
			continue // freed meanwhile
		}
		if ar, ok := res.(*messages.ActionReply); ok && ar.Code == messages.ErrorCode_ERROR_CODE_NONE {
			out[i].Action = ar.Status
		}
	}
	return out, nil
}
