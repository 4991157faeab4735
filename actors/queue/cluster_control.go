package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store/pgstore"
)

// --- timers, shutdown ------------------------------------------------------------

func (m *cmanager) startTicker(ctx actor.Context) {
	m.tickStop = sendEvery(ctx, m.tickEvery(), &cTick{})
}

// tick: claim when threads are free (another node's submissions reach us
// by nudge, this is the fallback; idlePoll says how often), and look for
// orphaned actions every lease (a departure whose event this node missed).
func (m *cmanager) tick() {
	// (Half a tick of slack: the claim went a little after its tick.)
	if m.running < m.cfg.MaximumThreads && time.Since(m.lastClaim) >= m.idlePoll()-m.tickEvery()/2 {
		m.claimWanted = true
	}
	if time.Since(m.lastOrphans) >= m.mem.LeaseTTL() {
		m.lastOrphans = time.Now()
		m.adoptAll = true
	}
	if time.Since(m.lastReconcile) >= m.mem.LeaseTTL() {
		m.reconcileWanted = true
	}
	// A Stopped held for a final report that did not come within a
	// tick (the worker is stuck and nobody waits for the Stop).
	for id, at := range m.stopHeld {
		if time.Since(at) >= m.tickEvery() {
			delete(m.stopHeld, id)
			if e := m.entries[id]; e != nil && !e.retired && e.crash == "" {
				m.write(e, nil)
			}
		}
	}
	// A notice waits at most for the commit being handled when it came
	// (one store operation, bounded by its timeout); the others were for
	// actors already gone.
	for id, n := range m.moved {
		if time.Since(n.at) > max(movedKeep, 2*m.cfg.AskTimeout) {
			delete(m.moved, id)
		}
	}
}

// beginShutdown: no more submissions or claims; running actions' workers
// are stopped; once they have exited, this node's actions are handed back
// to the cluster (running ones queued again for the others) and the reply
// goes to the waiter.
func (m *cmanager) beginShutdown(ctx actor.Context) {
	m.shutting = true
	m.shutWaiter = ctx.Sender()
	for _, e := range m.entries {
		if e.slot {
			ctx.Send(e.pid, &shutdownTask{})
		}
	}
	m.checkShutdown(ctx)
}

func (m *cmanager) checkShutdown(ctx actor.Context) {
	if !m.shutting || m.released || m.running > 0 || m.inflight || m.shutWaiter == nil {
		return
	}
	if m.pending != nil && (len(m.pending.submits) > 0 || len(m.pending.writes) > 0) {
		return // the last changes first (next runs them)
	}
	if len(m.unsettled) > 0 {
		return // asked once more (next), their requesters answered
	}
	if len(m.retry) > 0 && !m.gaveUp && !m.evicted {
		// The failed changes too, at once (next), before the release:
		// it would hand back, queued again, an action whose end is
		// among them.
		return
	}
	m.released = true
	if !m.evicted {
		c, cancel := context.WithTimeout(context.Background(), m.opTimeout())
		err := m.db.Release(c, m.cfg.Name, m.node, func(a *messages.StoredAction) {
			a.Status.Running = false
			if messages.Terminal(a.Status.State) {
				a.Status.Restarts++
				return
			}
			requeued(a.Status)
		})
		cancel()
		if err != nil {
			m.sh.log.Error("could not hand this node's actions back to the cluster; the others take them over when its membership lapses", "err", err)
		}
	}
	ctx.Send(m.shutWaiter, &shutdownDone{})
}

// --- construction ------------------------------------------------------------------

// StartCluster starts the queue as a node of a cluster: its QueueManager
// owns this node's share of the actions in db, the shared store, and mem
// is the node's membership. cfg.Store is not used (db is the store).
func StartCluster(sys *actor.ActorSystem, cfg Config, db *pgstore.Store, mem Membership) (*ClusterQueue, error) {
	return StartClusterContext(context.Background(), sys, cfg, db, mem)
}

// StartClusterContext is StartCluster, which gives up when ctx is done
// (the server asked to stop while it starts: SIGTERM, Ctrl-C): its calls
// to the shared store (the node's registration, the queue's state) end
// at once instead of waiting out their timeout.
func StartClusterContext(ctx context.Context, sys *actor.ActorSystem, cfg Config, db *pgstore.Store, mem Membership) (*ClusterQueue, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	if db == nil || mem == nil {
		return nil, errors.New("queue: a cluster queue needs the shared store and the membership")
	}
	c, cancel := context.WithTimeout(ctx, max(cfg.AskTimeout, 10*time.Second))
	defer cancel()
	if err := db.RegisterNode(c, mem.ID(), mem.Addr(), cfg.MaximumThreads); err != nil {
		return nil, fmt.Errorf("queue: register node %s in the shared store: %w", mem.ID(), err)
	}
	_, _, paused, err := db.Counts(c, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("queue: read the %s queue's state: %w", cfg.Name, err)
	}
	sh := &shared{
		repo: cfg.Repository, log: cfg.Logger.With("queue", cfg.Name, "node", mem.ID()), now: cfg.Now,
		stopTimeout: cfg.StopTimeout,
	}
	name := "queue-" + strings.ToLower(cfg.Name)
	m := newClusterManager(cfg, sh, sys.Root, db, mem, name)
	m.paused = paused
	props := actor.PropsFromProducer(func() actor.Actor { return m },
		actor.WithReceiverMiddleware(managerPanic(sh.log)))
	pid, err := sys.Root.SpawnNamed(props, name)
	if err != nil {
		return nil, fmt.Errorf("queue: start %s: %w", cfg.Name, err)
	}
	mem.OnLeft(func(ids []string) { sys.Root.Send(pid, &cAdopt{dead: ids}) })
	q := &ClusterQueue{cfg: cfg, sys: sys, pid: pid, name: name, prefix: pid.Id + "/", upper: strings.ToUpper(cfg.Name),
		replies: newReplies(sys, 1024), db: db, mem: mem}
	q.replies.stopped = m.stopped
	return q, nil
}

// Shutdown stops admission and claims, stops this node's running actions
// (their work continues on another node: they are queued again), hands
// every action it owns back to the cluster, and stops its actors.
func (q *ClusterQueue) Shutdown(ctx context.Context) error {
	return shutdown(ctx, q.sys, q.pid, q.cfg.Name, q.cfg.AskTimeout)
}

func cloneStatus(st *messages.ActionStatus) *messages.ActionStatus {
	return proto.Clone(st).(*messages.ActionStatus)
}

// retainEvery is how often the retainer applies retention; retryEvery how
// long after a failed commit its changes go again.
func (m *cmanager) retainEvery() time.Duration {
	return min(max(m.cfg.FinishedActionMaxAge/10, time.Second), time.Minute)
}

func (m *cmanager) retryEvery() time.Duration { return time.Second }

// tickEvery is the period of the manager's tick: a quarter of the lease,
// at most a second.
func (m *cmanager) tickEvery() time.Duration { return min(m.mem.LeaseTTL()/4, time.Second) }

// idlePoll is how long a node with free threads waits after its last
// claim before it looks for queued actions again, unless told sooner (a
// nudge from the node that queued them, a departure, a thread freed): a
// tick after a claim that found work, then twice as long after each
// claim in a row that found nothing, up to the lease. An idle cluster
// then asks the store about once a lease per node instead of four times
// a second, and the poll (a fallback for a lost nudge) still comes
// within a lease.
func (m *cmanager) idlePoll() time.Duration {
	return min(m.tickEvery()<<min(m.idleClaims, 3), m.mem.LeaseTTL())
}

// movedKeep: how long at least an ActionMoved notice without an actor is
// kept (and twice AskTimeout: well beyond a store operation's timeout,
// max(AskTimeout, 5s)).
const movedKeep = time.Minute
