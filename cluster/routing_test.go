package cluster_test

// Routing in process: three nodes in one process (protoactor's in-memory
// membership provider, real remoting on loopback between their actor
// systems, one real PostgreSQL), every QueueAction asked of every node.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/actors/queue"
	"github.com/connectorhq/connector/cluster"
	"github.com/connectorhq/connector/fetch/fetchtest"
	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store/pgstore"
)

var pg *pgtest.Server

func TestMain(m *testing.M) {
	s, err := pgtest.Start(pgtest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pg = s
	code := m.Run()
	if err := s.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

type node struct {
	name string
	sys  *actor.ActorSystem
	mem  *cluster.Node
	db   *pgstore.Store
	q    *queue.ClusterQueue
}

type testCluster struct {
	t     *testing.T
	agent *test.InMemAgent
	url   string
	repo  *fetchtest.Repo
	nodes []*node
	newID func() (uuid.UUID, error) // the queues' action ids; nil: the default
	opts  clusterOptions
}

// clusterOptions are what a test changes of its nodes' settings.
type clusterOptions struct {
	askTimeout   time.Duration // the queues' AskTimeout; 0: 10 s
	storeTimeout time.Duration // the stores' deadline (pgstore Timeout); 0: its default, 30 s
	// fixedPorts has each node's remoting listen on a free port below the
	// range the system hands out for port 0 and outgoing connections
	// (freeFixedPort): a test that frees such a port and binds it again
	// finds it still free on a loaded machine.
	fixedPorts bool
	lease      time.Duration // the nodes' LeaseTTL; 0: 2 s
}

func newCluster(t *testing.T, n, threads int) *testCluster {
	t.Helper()
	return newClusterOn(t, pg.DatabaseT(t), n, threads)
}

// newClusterOn is newCluster on the database at url.
func newClusterOn(t *testing.T, url string, n, threads int) *testCluster {
	t.Helper()
	return newClusterWith(t, url, n, threads, clusterOptions{})
}

// newClusterWith is newClusterOn with opts.
func newClusterWith(t *testing.T, url string, n, threads int, opts clusterOptions) *testCluster {
	t.Helper()
	c := &testCluster{t: t, agent: test.NewInMemAgent(), url: url,
		repo: &fetchtest.Repo{DefaultMode: "block"}, opts: opts}
	for i := 0; i < n; i++ {
		port := 0
		if opts.fixedPorts {
			port = freeFixedPort(t)
		}
		c.startAt(fmt.Sprintf("n%d", i+1), threads, port)
	}
	for _, nd := range c.nodes {
		c.waitMembers(nd, len(c.nodes))
	}
	t.Cleanup(func() {
		c.repo.ReleaseAll()
		for _, nd := range c.nodes {
			c.stop(nd)
		}
	})
	return c
}

func (c *testCluster) start(name string, threads int) *node {
	c.t.Helper()
	return c.startAt(name, threads, 0)
}

// startAt starts a node whose remoting listens on port (0: any free one).
func (c *testCluster) startAt(name string, threads, port int) *node {
	t := c.t
	t.Helper()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	lease := c.opts.lease
	if lease == 0 {
		lease = 2 * time.Second
	}
	mem, err := cluster.Join(sys, cluster.Config{Name: "routing", Provider: test.NewTestProvider(c.agent), LeaseTTL: lease, Port: port})
	require.NoError(t, err)
	db, err := pgstore.Open(context.Background(), pgstore.Config{URL: c.url, Node: mem.ID(), Timeout: c.opts.storeTimeout})
	require.NoError(t, err)
	ask := c.opts.askTimeout
	if ask == 0 {
		ask = 10 * time.Second
	}
	q, err := queue.StartCluster(sys, queue.Config{
		Name: "fetch", Repository: c.repo, TokenHost: "127.0.0.1", TokenPort: 7000, MaximumThreads: threads,
		AskTimeout: ask, StopTimeout: 5 * time.Second, NewID: c.newID,
	}, db, mem)
	require.NoError(t, err)
	nd := &node{name: name, sys: sys, mem: mem, db: db, q: q}
	c.nodes = append(c.nodes, nd)
	return nd
}

func (c *testCluster) stop(nd *node) {
	if nd.q != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_ = nd.q.Shutdown(ctx)
		cancel()
		nd.q = nil
	}
	nd.mem.Leave()
	nd.db.Close()
}

func (c *testCluster) waitMembers(nd *node, n int) {
	c.t.Helper()
	require.EventuallyWithT(c.t, func(ct *assert.CollectT) {
		assert.Len(ct, nd.mem.Members(), n)
	}, 30*time.Second, 10*time.Millisecond)
}

var ctx = context.Background()

func spec(mode string, prio int32) *messages.ActionSpec {
	return &messages.ActionSpec{FetchAction: "SYNCHRONIZE", Priority: prio,
		Params: []*messages.Param{{Name: "Mode", Value: mode}}}
}

// statusEverywhere returns the action's status as each node answers it,
// and checks that every node says the same state.
func (c *testCluster) stateEverywhere(ct *assert.CollectT, token string) messages.State {
	var first messages.State
	for i, nd := range c.nodes {
		st, err := nd.q.Status(ctx, token)
		if !assert.NoError(ct, err, "node %s", nd.name) {
			return 0
		}
		if i == 0 {
			first = st.State
		} else {
			assert.Equal(ct, first, st.State, "node %s", nd.name)
		}
	}
	return first
}

func (c *testCluster) waitState(token string, want messages.State) {
	c.t.Helper()
	require.EventuallyWithT(c.t, func(ct *assert.CollectT) {
		assert.Equal(ct, want, c.stateEverywhere(ct, token))
	}, 30*time.Second, 10*time.Millisecond)
}

// ownerOf returns the node whose thread runs token.
func (c *testCluster) ownerOf(token string) *node {
	c.t.Helper()
	_, id, err := messages.ParseToken(token)
	require.NoError(c.t, err)
	for _, nd := range c.nodes {
		threads, err := nd.q.ThreadStatus(ctx)
		require.NoError(c.t, err)
		for _, th := range threads {
			if th.Action != nil && th.Action.Token == token {
				return nd
			}
		}
	}
	c.t.Fatalf("no node runs %s (%s)", token, id)
	return nil
}

func (c *testCluster) other(nd *node) *node {
	for _, o := range c.nodes {
		if o != nd {
			return o
		}
	}
	return nil
}

// Every QueueAction works from every node, whichever node accepted the
// action and whichever runs it.
func TestEveryQueueActionFromEveryNode(t *testing.T) {
	c := newCluster(t, 3, 1)
	a, b, n3 := c.nodes[0], c.nodes[1], c.nodes[2]

	// Three blocking actions submitted on one node run on three nodes:
	// each node has one thread, and idle nodes claim.
	var running []string
	for i := 0; i < 3; i++ {
		tok, err := a.q.Submit(ctx, spec("block", 0))
		require.NoError(t, err)
		running = append(running, tok)
	}
	for _, tok := range running {
		c.waitState(tok, messages.State_STATE_PROCESSING)
	}
	owners := map[string]bool{}
	for _, tok := range running {
		owners[c.ownerOf(tok).name] = true
	}
	require.Len(t, owners, 3, "MaximumThreads is per node: one action on each")

	// Pause the queue from one node: all see it; a new action waits.
	qs, err := b.q.Pause(ctx)
	require.NoError(t, err)
	require.True(t, qs.Paused)
	for _, nd := range c.nodes {
		qs, err := nd.q.QueueStatus(ctx)
		require.NoError(t, err)
		require.True(t, qs.Paused)
		require.EqualValues(t, 3, qs.MaximumThreads, "the cluster's threads")
	}
	x, err := n3.q.Submit(ctx, spec("instant", 1))
	require.NoError(t, err)
	c.waitState(x, messages.State_STATE_QUEUED)

	// Controls of a queued action from nodes that do not own it.
	r, err := a.q.ChangePriority(ctx, x, 9)
	require.NoError(t, err)
	require.EqualValues(t, 9, r.Status.Priority)
	st, err := b.q.Status(ctx, x)
	require.NoError(t, err)
	require.EqualValues(t, 9, st.Priority)
	_, err = b.q.PauseAction(ctx, x)
	require.NoError(t, err)
	c.waitState(x, messages.State_STATE_PAUSED)
	_, err = a.q.ResumeAction(ctx, x)
	require.NoError(t, err)
	c.waitState(x, messages.State_STATE_QUEUED)
	r, err = a.q.ActionParameters(ctx, x)
	require.NoError(t, err)
	require.Equal(t, "instant", messages.Params(r.Params).Value("Mode"))
	r, err = a.q.Progress(ctx, x)
	require.NoError(t, err)
	require.Equal(t, "queued", r.Progress.Stage)
	r, err = b.q.Duplicate(ctx, x)
	require.NoError(t, err)
	y := r.NewToken
	require.NotEmpty(t, y)
	c.waitState(y, messages.State_STATE_QUEUED)
	_, err = n3.q.Cancel(ctx, y)
	require.NoError(t, err)
	c.waitState(y, messages.State_STATE_CANCELLED)

	// A running action refuses Cancel, from any node.
	_, err = b.q.Cancel(ctx, running[0])
	require.ErrorIs(t, err, messages.ErrActionRunning)

	// Lists are the cluster's, the same from every node.
	var lists [][]string
	for _, nd := range c.nodes {
		sts, err := nd.q.List(ctx, &messages.ListActions{})
		require.NoError(t, err)
		var toks []string
		for _, s := range sts {
			toks = append(toks, s.Token)
		}
		lists = append(lists, toks)
	}
	require.Len(t, lists[0], 5)
	require.Equal(t, lists[0], lists[1])
	require.Equal(t, lists[0], lists[2])
	params, err := n3.q.ListParams(ctx, 0, 0)
	require.NoError(t, err)
	require.Len(t, params, 4, "three running, one queued")
	dry, err := a.q.CancelQueued(ctx, &messages.ListActions{}, true, 10)
	require.NoError(t, err)
	require.Equal(t, 1, dry.Matched)

	// Resume; stop a running action from a node that does not run it:
	// its thread frees, and the queued action runs.
	_, err = a.q.Resume(ctx)
	require.NoError(t, err)
	victim := running[1]
	owner := c.ownerOf(victim)
	r, err = c.other(owner).q.Stop(ctx, victim)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_STOPPED, r.Status.State)
	c.waitState(victim, messages.State_STATE_STOPPED)
	c.waitState(x, messages.State_STATE_FINISHED)

	// CancelQueued for real, across nodes.
	var waiting []string
	_, err = a.q.Pause(ctx)
	require.NoError(t, err)
	for i := 0; i < 4; i++ {
		tok, err := c.nodes[i%3].q.Submit(ctx, spec("instant", 0))
		require.NoError(t, err)
		waiting = append(waiting, tok)
	}
	res, err := b.q.CancelQueued(ctx, &messages.ListActions{}, false, 10)
	require.NoError(t, err)
	require.Equal(t, 4, res.Cancelled)
	for _, tok := range waiting {
		c.waitState(tok, messages.State_STATE_CANCELLED)
	}
	_, err = a.q.Resume(ctx)
	require.NoError(t, err)
}

// Priority order holds across the cluster: a node whose thread frees runs
// the highest-priority queued action, wherever it was submitted.
func TestPriorityAcrossNodes(t *testing.T) {
	c := newCluster(t, 2, 1)
	a, b := c.nodes[0], c.nodes[1]
	var busy []string
	for i := 0; i < 2; i++ {
		tok, err := a.q.Submit(ctx, spec("block", 0))
		require.NoError(t, err)
		busy = append(busy, tok)
	}
	for _, tok := range busy {
		c.waitState(tok, messages.State_STATE_PROCESSING)
	}
	low, err := a.q.Submit(ctx, spec("block", 1))
	require.NoError(t, err)
	high, err := b.q.Submit(ctx, spec("block", 5))
	require.NoError(t, err)
	c.waitState(low, messages.State_STATE_QUEUED)
	c.waitState(high, messages.State_STATE_QUEUED)
	// Free the thread of node a: it takes b's high-priority action.
	var mine string
	for _, tok := range busy {
		if c.ownerOf(tok) == a {
			mine = tok
		}
	}
	require.NotEmpty(t, mine)
	c.repo.Release(mine)
	c.waitState(high, messages.State_STATE_PROCESSING)
	require.Equal(t, a, c.ownerOf(high))
	c.waitState(low, messages.State_STATE_QUEUED)
}

// A node that dies (here: its queue and membership stop without handing
// anything back, as kill -9 would) loses nothing: its actions answer from
// the survivors, its running action runs again elsewhere, its queued ones
// run.
func TestTakeoverOfADeadNode(t *testing.T) {
	c := newCluster(t, 3, 1)
	a := c.nodes[0]
	var toks []string
	for i := 0; i < 3; i++ {
		tok, err := a.q.Submit(ctx, spec("block", 0))
		require.NoError(t, err)
		toks = append(toks, tok)
	}
	for _, tok := range toks {
		c.waitState(tok, messages.State_STATE_PROCESSING)
	}
	victim := c.ownerOf(toks[0])
	var mine, others []string
	for _, tok := range toks {
		if c.ownerOf(tok) == victim {
			mine = append(mine, tok)
		} else {
			others = append(others, tok)
		}
	}
	// Its queued actions too: every thread is busy, so this one waits.
	survivor := c.other(victim)
	q1, err := victim.q.Submit(ctx, spec("instant", 0))
	require.NoError(t, err)
	c.waitState(q1, messages.State_STATE_QUEUED)

	// Die: the actors stop where they are (nothing written), the
	// membership goes.
	victim.sys.Root.StopFuture(actor.NewPID(victim.sys.Address(), "queue-fetch")).Wait()
	victim.q = nil
	victim.mem.Leave()
	var live []*node
	for _, nd := range c.nodes {
		if nd != victim {
			live = append(live, nd)
		}
	}
	c.nodes = live
	defer func() { c.nodes = append(c.nodes, victim) }()

	for _, tok := range mine {
		// taken over, run again: Processing again on a survivor
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			st := c.stateEverywhere(ct, tok)
			assert.Equal(ct, messages.State_STATE_QUEUED, st)
		}, 30*time.Second, 20*time.Millisecond)
	}
	c.waitState(q1, messages.State_STATE_QUEUED)
	// Free a survivor's thread; the re-queued action (the oldest) runs
	// there, restarted.
	c.repo.Release(others[0])
	for _, tok := range mine {
		c.waitState(tok, messages.State_STATE_PROCESSING)
		st, err := survivor.q.Status(ctx, tok)
		require.NoError(t, err)
		require.EqualValues(t, 1, st.Restarts)
	}
	for _, tok := range append(mine, others[1:]...) {
		c.repo.Release(tok)
	}
	c.waitState(q1, messages.State_STATE_FINISHED)
	for _, tok := range mine {
		c.waitState(tok, messages.State_STATE_FINISHED)
	}
	sts, err := survivor.q.List(ctx, &messages.ListActions{})
	require.NoError(t, err)
	var all []string
	for _, s := range sts {
		all = append(all, s.Token)
	}
	sort.Strings(all)
	want := append(append([]string{}, toks...), q1)
	sort.Strings(want)
	require.Equal(t, want, all, "nothing lost")
}

// A node that learns another node claimed an action (ActionMoved) before
// it has handled the commit of its own submission of that action (the
// claim came between the store's COMMIT and the manager's handling of it)
// starts no task actor for it: such an actor would answer every local
// request with the state it had when submitted (Queued), forever, while
// the claimer runs and ends it. Here the claimer is a node the test plays
// on the store (ghost), so that the notice comes once and early, as in
// the race. The ghost is no member: under a 2 s lease, n1 took it for an
// orphan (4 s after it registered, on a loaded machine) and took its
// action over, before or after the ghost's claim; the lease is long here.
func TestClaimNoticeBeforeSubmitCommitKeepsNoStaleActor(t *testing.T) {
	c := &testCluster{t: t, agent: test.NewInMemAgent(), url: pg.DatabaseT(t),
		repo: &fetchtest.Repo{DefaultMode: "block"}, opts: clusterOptions{lease: time.Minute}}
	raced := uuid.MustParse("0190a5c0-0000-7000-8000-00000000beef")
	var ids []uuid.UUID
	c.newID = func() (uuid.UUID, error) {
		if len(ids) == 1 {
			ids = append(ids, raced)
			return raced, nil
		}
		id, err := uuid.NewV7()
		ids = append(ids, id)
		return id, err
	}
	n1 := c.start("n1", 1)
	c.waitMembers(n1, 1)
	t.Cleanup(func() {
		c.repo.ReleaseAll()
		c.stop(n1)
	})

	// n1's only thread runs a blocking action: n1 claims nothing more.
	busy, err := n1.q.Submit(ctx, spec("block", 0))
	require.NoError(t, err)
	c.waitState(busy, messages.State_STATE_PROCESSING)

	ghost, err := pgstore.Open(ctx, pgstore.Config{URL: c.url, Node: "ghost"})
	require.NoError(t, err)
	defer ghost.Close()
	require.NoError(t, ghost.RegisterNode(ctx, "ghost", "127.0.0.1:1", 1))

	// The claimer's notice reaches n1's manager before its submission's
	// commit does (the submission is the next message it handles).
	n1.sys.Root.Send(actor.NewPID(n1.mem.Addr(), "queue-fetch"), &messages.ActionMoved{Id: raced[:], Epoch: 2})
	token, err := n1.q.Submit(ctx, spec("block", 0))
	require.NoError(t, err)
	_, id, err := messages.ParseToken(token)
	require.NoError(t, err)
	require.Equal(t, raced, id)

	claimed, err := ghost.Claim(ctx, "fetch", "ghost", "127.0.0.1:1", 1)
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.Equal(t, raced.String(), claimed[0].Record.Id)
	require.EqualValues(t, 2, claimed[0].Epoch, "the epoch the notice named")
	rec := claimed[0].Record
	rec.Status.State, rec.Status.Running, rec.Status.EndedUnixMs = messages.State_STATE_FINISHED, false, time.Now().UnixMilli()
	fenced, err := ghost.WriteOwned(ctx, "fetch", "ghost", []pgstore.OwnedWrite{{Epoch: 2, Record: rec}})
	require.NoError(t, err)
	require.Empty(t, fenced)

	// n1 answers what the owner of record says, not a stale Queued.
	st, err := n1.q.Status(ctx, token)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_FINISHED, st.State)
}

// A Duplicate is checked by the original's owner (admit: Validate and
// Seal of the stored parameters, which may take long for a large Config
// fragment) outside the action's task actor: while Validate is held, the
// action still answers GetStatus and Stop asked from another node, and
// the Duplicate, asked from that node too, brings the copy's token once
// Validate returns. It used to be checked in the actor's Receive, so
// both waited behind it.
func TestDuplicateDoesNotBlockItsActionAcrossNodes(t *testing.T) {
	c := newCluster(t, 2, 1)
	gate := fetchtest.NewGate()
	defer gate.Release()
	c.repo.ValidateFunc = func(string, messages.Params) ([]string, error) {
		gate.Hold()
		return []string{fetchtest.Task}, nil
	}
	run, err := c.nodes[0].q.Submit(ctx, spec("block", 2))
	require.NoError(t, err)
	c.waitState(run, messages.State_STATE_PROCESSING)
	asker := c.other(c.ownerOf(run))

	gate.Arm()
	type result struct {
		r   *messages.ActionReply
		err error
	}
	dup, stopped := make(chan result, 1), make(chan result, 1)
	go func() { r, err := asker.q.Duplicate(ctx, run); dup <- result{r, err} }()
	testwait.Recv(t, gate.Entered(), 30*time.Second, "the Duplicate to reach Validate")

	st, err := asker.q.Status(ctx, run)
	require.NoError(t, err, "GetStatus while a Duplicate is admitted")
	require.Equal(t, messages.State_STATE_PROCESSING, st.State)
	go func() { r, err := asker.q.Stop(ctx, run); stopped <- result{r, err} }()
	s := testwait.Recv(t, stopped, 30*time.Second, "the answer to Stop while a Duplicate is admitted")
	require.NoError(t, s.err)
	require.Equal(t, messages.State_STATE_STOPPED, s.r.Status.State)

	gate.Release()
	d := testwait.Recv(t, dup, 30*time.Second, "the Duplicate's answer once Validate returned")
	require.NoError(t, d.err)
	require.NotEmpty(t, d.r.NewToken)
	require.Equal(t, messages.State_STATE_STOPPED, d.r.Status.State)
	c.waitState(d.r.NewToken, messages.State_STATE_PROCESSING)
	c.repo.Release(d.r.NewToken)
	c.waitState(d.r.NewToken, messages.State_STATE_FINISHED)
}

// freeFixedPort returns a port of 127.0.0.1 that is free, chosen below
// the range the system hands out for port 0 and outgoing connections
// (ip_local_port_range): no other process gets it by chance once the test
// has freed it again, as one may get a port of that range meanwhile (a
// connection it opens) on a loaded machine.
func freeFixedPort(t *testing.T) int {
	t.Helper()
	low := 32768 // Linux's default
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 2048 {
				low = n
			}
		}
	}
	span := min(low-1024, 8192)
	first := rand.IntN(span)
	for i := range span {
		port := low - 1 - (first+i)%span
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			require.NoError(t, ln.Close())
			return port
		}
	}
	t.Fatalf("no free port below %d", low)
	return 0
}
