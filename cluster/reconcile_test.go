package cluster_test

// Reconciliation in process: what tells a node that an action changed
// owner can be lost (a claim notice sent once by a node that dies before
// it leaves; a claim whose COMMIT went through but whose result its node
// never got). Each node compares its task actors with the owners of record
// every lease: these tests lose the notice or the result on purpose and
// fail without that.

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/actors/queue"
	"github.com/connectorhq/connector/cluster"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store/pgstore"
)

// busyCluster is two nodes of one thread each, both running a blocking
// action (so that a new action waits, owned by the node that accepted
// it), and the tokens of the blocking actions by the node that runs them.
func busyCluster(t *testing.T) (*testCluster, map[*node]string) {
	c := newCluster(t, 2, 1)
	busy := map[*node]string{}
	for i := 0; i < 2; i++ {
		tok, err := c.nodes[0].q.Submit(ctx, spec("block", 0))
		require.NoError(t, err)
		c.waitState(tok, messages.State_STATE_PROCESSING)
		busy[c.ownerOf(tok)] = tok
	}
	require.Len(t, busy, 2, "one on each node")
	return c, busy
}

// A node whose claim notice never reached the action's previous owner (the
// claimer died before the notice left, or it was lost on the way) leaves
// that owner with a task actor of an action it no longer owns: without
// reconciliation it answers Queued to every local request, forever, while
// the claimer runs and ends the action.
func TestLostClaimNoticeLeavesNoStaleActor(t *testing.T) {
	c, busy := busyCluster(t)
	n1, n2 := c.nodes[0], c.nodes[1]
	x, err := n1.q.Submit(ctx, spec("instant", 0))
	require.NoError(t, err)
	c.waitState(x, messages.State_STATE_QUEUED)

	// The store sends the claimer's notice nowhere: n1's address of record
	// for x is a port nobody listens on.
	_, id, err := messages.ParseToken(x)
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, c.url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	tag, err := conn.Exec(ctx, `UPDATE connector_actions SET owner_addr = '127.0.0.1:1' WHERE id = $1`, []byte(id.String()))
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())

	// n2's thread frees: n2 claims x and runs it to its end.
	c.repo.Release(busy[n2])
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		st, err := n2.q.Status(ctx, x)
		if assert.NoError(ct, err) {
			assert.Equal(ct, messages.State_STATE_FINISHED, st.State)
		}
	}, 30*time.Second, 10*time.Millisecond)

	// n1 answers what the owner of record says within about a lease
	// (2 s here), not its stale Queued.
	start := time.Now()
	c.waitState(x, messages.State_STATE_FINISHED)
	t.Logf("n1 answered Finished %v after n2 ended it", time.Since(start))
	c.repo.Release(busy[n1])
}

// A claim whose COMMIT went through but whose result its node never got
// (the store answered after the operation's timeout) leaves the action
// Processing in the store, owned by a live node that runs nothing for it:
// nobody claims it (it is not queued), nobody adopts it (its owner lives).
// Reconciliation finds it owned without a task actor and takes it again:
// queued again, as an interrupted action, and run.
func TestClaimWhoseResultWasLostIsTakenAgain(t *testing.T) {
	c, busy := busyCluster(t)
	n1, n2 := c.nodes[0], c.nodes[1]
	x, err := n1.q.Submit(ctx, spec("instant", 0))
	require.NoError(t, err)
	c.waitState(x, messages.State_STATE_QUEUED)

	// n2's claim of x, whose result n2 never sees (nor does n1 get a
	// notice: the claim sent none).
	as2, err := pgstore.Open(ctx, pgstore.Config{URL: c.url, Node: n2.mem.ID()})
	require.NoError(t, err)
	defer as2.Close()
	claimed, err := as2.Claim(ctx, "fetch", n2.mem.ID(), n2.mem.Addr(), 1)
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.Equal(t, x, claimed[0].Record.Status.Token)

	// Taken again by n2: queued (restarted once), the same on every node.
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		st, err := n2.q.Status(ctx, x)
		if assert.NoError(ct, err) {
			assert.Equal(ct, messages.State_STATE_QUEUED, st.State)
			assert.EqualValues(ct, 1, st.Restarts)
		}
	}, 30*time.Second, 10*time.Millisecond)
	c.waitState(x, messages.State_STATE_QUEUED)

	// A thread frees: x runs and ends.
	c.repo.Release(busy[n1])
	c.repo.Release(busy[n2])
	c.waitState(x, messages.State_STATE_FINISHED)
}

// A Stop asked of a node that does not own the action, while its owner of
// record has no actor for it yet (here: never will, until reconciliation
// takes it again; in the crash test: a claimer under load that had not
// handled its claim's commit yet), waits for that actor rather than
// answering ERRORSERVERBUSY at once after four quick dead letters.
func TestStopWaitsForTheOwnersActor(t *testing.T) {
	c, busy := busyCluster(t)
	n1, n2 := c.nodes[0], c.nodes[1]
	x, err := n1.q.Submit(ctx, spec("instant", 0))
	require.NoError(t, err)
	c.waitState(x, messages.State_STATE_QUEUED)
	as2, err := pgstore.Open(ctx, pgstore.Config{URL: c.url, Node: n2.mem.ID()})
	require.NoError(t, err)
	defer as2.Close()
	claimed, err := as2.Claim(ctx, "fetch", n2.mem.ID(), n2.mem.Addr(), 1)
	require.NoError(t, err)
	require.Len(t, claimed, 1)

	r, err := n1.q.Stop(ctx, x)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_STOPPED, r.Status.State)
	c.waitState(x, messages.State_STATE_STOPPED)
	c.repo.Release(busy[n1])
	c.repo.Release(busy[n2])
}

// unlisted is a node's membership before it has the member list: joined,
// but its first view of the members has not come (it comes just after).
type unlisted struct{ *cluster.Node }

func (unlisted) Members() map[string]string { return map[string]string{} }

// A node that starts while its membership has not given it the member list
// yet takes nobody for dead: with no members known, every other node's
// actions looked orphaned, and its first scan declared a live node dead
// (fencing it: it had to leave and start again) and took its running
// action over, to run it a second time.
func TestJoiningNodeDeclaresNobodyDead(t *testing.T) {
	c := newCluster(t, 1, 1)
	n1 := c.nodes[0]
	b, err := n1.q.Submit(ctx, spec("block", 0))
	require.NoError(t, err)
	c.waitState(b, messages.State_STATE_PROCESSING)
	// n1 joined long before any grace a scan gives a new member.
	conn, err := pgx.Connect(ctx, c.url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `UPDATE connector_nodes SET joined = now() - interval '1 hour' WHERE id = $1`, n1.mem.ID())
	require.NoError(t, err)

	// n2 joins; its queue starts before its first view of the members.
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	mem, err := cluster.Join(sys, cluster.Config{Name: "routing", Provider: test.NewTestProvider(c.agent), LeaseTTL: 2 * time.Second})
	require.NoError(t, err)
	db, err := pgstore.Open(ctx, pgstore.Config{URL: c.url, Node: mem.ID()})
	require.NoError(t, err)
	q, err := queue.StartCluster(sys, queue.Config{
		Name: "fetch", Repository: c.repo, TokenHost: "127.0.0.1", TokenPort: 7000, MaximumThreads: 1,
		AskTimeout: 10 * time.Second, StopTimeout: 5 * time.Second,
	}, db, unlisted{mem})
	require.NoError(t, err)
	n2 := &node{name: "n2", sys: sys, mem: mem, db: db, q: q}
	c.nodes = append(c.nodes, n2)

	// Its first store operation is that scan; an action it then claims
	// and runs comes after.
	x, err := n2.q.Submit(ctx, spec("instant", 0))
	require.NoError(t, err)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		st, err := n2.q.Status(ctx, x)
		if assert.NoError(ct, err) {
			assert.Equal(ct, messages.State_STATE_FINISHED, st.State)
		}
	}, 30*time.Second, 10*time.Millisecond)
	alive, err := n1.db.NodeAlive(ctx, n1.mem.ID())
	require.NoError(t, err)
	require.True(t, alive, "n1 was declared dead")
	st, err := n1.q.Status(ctx, b)
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_PROCESSING, st.State)
	require.Zero(t, st.Restarts)
	c.repo.Release(b)
}

// The claimer of an action dies before its notice reaches the previous
// owner (here a node the test plays on the store: it claims, then is
// never heard of again), and the survivors take the action over from it.
// Whichever takes it, every node then answers for it as the store has it
// (queued again, restarted once), and it runs. When the previous owner
// takes it over before its reconciliation retired its idle actor, that
// actor is renewed (taskInit again) rather than poisoned and replaced
// under the same name. (Which node takes it over is a race, so this test
// does not always tell the code before reconciliation from the code after;
// TestLostClaimNoticeLeavesNoStaleActor does.)
func TestTakeOverOfAnActionWithAStaleActor(t *testing.T) {
	c, busy := busyCluster(t)
	n1 := c.nodes[0]
	x, err := n1.q.Submit(ctx, spec("instant", 0))
	require.NoError(t, err)
	c.waitState(x, messages.State_STATE_QUEUED)

	ghost, err := pgstore.Open(ctx, pgstore.Config{URL: c.url, Node: "ghost"})
	require.NoError(t, err)
	defer ghost.Close()
	require.NoError(t, ghost.RegisterNode(ctx, "ghost", "127.0.0.1:1", 1))
	conn, err := pgx.Connect(ctx, c.url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `UPDATE connector_nodes SET joined = now() - interval '1 hour' WHERE id = 'ghost'`)
	require.NoError(t, err)
	claimed, err := ghost.Claim(ctx, "fetch", "ghost", "127.0.0.1:1", 1)
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.Equal(t, x, claimed[0].Record.Status.Token)

	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		for _, nd := range c.nodes {
			st, err := nd.q.Status(ctx, x)
			if assert.NoError(ct, err, nd.name) {
				assert.Equal(ct, messages.State_STATE_QUEUED, st.State, nd.name)
				assert.EqualValues(ct, 1, st.Restarts, nd.name)
			}
		}
	}, 30*time.Second, 10*time.Millisecond)
	for _, tok := range busy {
		c.repo.Release(tok)
	}
	c.waitState(x, messages.State_STATE_FINISHED)
}

// A node with free threads claims what it queues in the transaction that
// queues it: no other node takes it from under it (which cost a task
// actor spawned on the submitter and retired on a remote notice, and a
// second one on the claimer: about one action in ten moved that way at
// three nodes under load, issue 17). Both nodes submit at once, so both
// claim all the time; every action must have run on the node that
// accepted it.
func TestSubmitterClaimsWhatItQueues(t *testing.T) {
	const perNode, submitters = 60, 4
	// More threads than a node's submissions: its claims never fall
	// short of what it queued.
	c := newCluster(t, 2, perNode+1)
	type sub struct{ tok, node string }
	subs := make(chan sub, 2*perNode)
	errs := make(chan error, 2*submitters)
	for _, nd := range c.nodes {
		for g := 0; g < submitters; g++ {
			go func() {
				for i := g; i < perNode; i += submitters {
					tok, err := nd.q.Submit(ctx, spec("instant", 0))
					if err != nil {
						errs <- err
						return
					}
					subs <- sub{tok, nd.mem.ID()}
				}
				errs <- nil
			}()
		}
	}
	for i := 0; i < 2*submitters; i++ {
		require.NoError(t, <-errs)
	}
	close(subs)
	conn, err := pgx.Connect(ctx, c.url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	n := 0
	for s := range subs {
		n++
		_, id, err := messages.ParseToken(s.tok)
		require.NoError(t, err)
		var owner string
		var state int
		var epoch int64
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			err := conn.QueryRow(ctx, `SELECT owner, state, epoch FROM connector_actions WHERE id = $1`, []byte(id.String())).Scan(&owner, &state, &epoch)
			if assert.NoError(ct, err) {
				assert.Equal(ct, int(messages.State_STATE_FINISHED), state, "action %s", s.tok)
			}
		}, 30*time.Second, 10*time.Millisecond)
		assert.Equal(t, s.node, owner, "action %s accepted by %s ran on %s (epoch %d)", s.tok, s.node, owner, epoch)
	}
	require.Equal(t, 2*perNode, n)
}

// An ended action that retention removed from the store, whose notice
// (ActionsRemoved, sent once over remoting by the node that applied
// retention) never reached its owner (lost on the way, or the retaining
// node died between its commit and the notice), stayed on its owner for
// good: GetStatus asked of that node answered Finished while every other
// node said the token is unknown, and the node held its entry until it
// stopped. Reconciliation checks ended actions too, a share at a time.
func TestLostRetentionNoticeLeavesNoEndedAction(t *testing.T) {
	c := newCluster(t, 2, 1)
	tok, err := c.nodes[0].q.Submit(ctx, spec("instant", 0))
	require.NoError(t, err)
	c.waitState(tok, messages.State_STATE_FINISHED)
	ghost, err := pgstore.Open(ctx, pgstore.Config{URL: c.url, Node: "ghost"})
	require.NoError(t, err)
	defer ghost.Close()
	_, id, err := messages.ParseToken(tok)
	require.NoError(t, err)
	row, found, err := ghost.Action(ctx, "fetch", id.String())
	require.NoError(t, err)
	require.True(t, found)
	var owner *node
	for _, nd := range c.nodes {
		if nd.mem.ID() == row.Owner {
			owner = nd
		}
	}
	require.NotNil(t, owner)

	// Retention, applied by a node whose notice is lost: the row goes,
	// nobody is told.
	removed, err := ghost.Retain(ctx, "fetch", 0, 0, 100)
	require.NoError(t, err)
	require.Len(t, removed, 1)
	_, err = c.other(owner).q.Status(ctx, tok)
	require.ErrorIs(t, err, messages.ErrUnknownToken, "another node")

	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		_, err := owner.q.Status(ctx, tok)
		assert.ErrorIs(ct, err, messages.ErrUnknownToken, "its owner, after a reconciliation")
	}, 30*time.Second, 50*time.Millisecond)
}
