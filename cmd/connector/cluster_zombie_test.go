package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/clustertest"
	"github.com/connectorhq/connector/messages"
)

// zombieSite has 300 pages that each take a moment: a Synchronize of it
// runs for a few seconds.
func zombieSite(t *testing.T) *httptest.Server {
	t.Helper()
	return gatedSite(t, make(chan struct{}), 300) // no page is held
}

// gatedSite is zombieSite whose pages from held on are served only once
// gate is closed (or their request is given up): a run that took an action
// over stays Processing until the test has seen it so, however little of
// the crawl was left and however long the status requests took while a
// node was paused.
func gatedSite(t *testing.T, gate <-chan struct{}, held int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/p/"))
		if n >= held {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		select {
		case <-time.After(30 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<html><head><title>page %d</title></head><body>`, n)
		for _, k := range []int{n + 1, n + 2, n + 3} {
			if k < 300 {
				fmt.Fprintf(w, `<a href="/p/%d">p%d</a> `, k, k)
			}
		}
		fmt.Fprint(w, `</body></html>`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// ownerNode returns the node that owns the action of token, as the shared
// store says.
func ownerNode(t *testing.T, c *clustertest.Cluster, token string) *clustertest.Node {
	t.Helper()
	_, id, err := messages.ParseToken(token)
	require.NoError(t, err)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.StoreURL())
	require.NoError(t, err)
	defer conn.Close(ctx)
	var owner string
	require.NoError(t, conn.QueryRow(ctx, `SELECT owner FROM connector_actions WHERE id = $1`, []byte(id.String())).Scan(&owner))
	for _, n := range c.Nodes {
		if n.MemberID() == owner {
			return n
		}
	}
	t.Fatalf("no node is member %q", owner)
	return nil
}

func statusOf(t require.TestingT, client *http.Client, n *clustertest.Node, tok string) (string, string) {
	body, err := aci(client, n.URL(), "action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(tok))
	require.NoError(t, err)
	return between(body, "<status>", "</status>"), body
}

// TestClusterZombieIsFenced pauses (SIGSTOP) the node running a long
// Synchronize for longer than its lease, then lets it go on (SIGCONT).
// Meanwhile the others take the action over and run it again from the
// shared crawl state (pages already delivered are not new again). The
// paused node, once it wakes, writes nothing over the action (its writes
// are refused: the cluster declared it dead) and starts again by itself as
// a new member. The action ends once, as Finished, the same from every
// node.
func TestClusterZombieIsFenced(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd, PostgreSQL and three real nodes")
	}
	const lease = 3 * time.Second
	// Pages from 10 on wait until the take-over has been seen: the run
	// that takes over may have little left to crawl, and this node's
	// status requests may wait on the paused node meanwhile (in CI the
	// action once finished before a poll saw it Processing again).
	gate := make(chan struct{})
	var opened sync.Once
	openGate := func() { opened.Do(func() { close(gate) }) }
	site := gatedSite(t, gate, 10)
	t.Cleanup(openGate) // runs before the site's Close, which waits for its handlers
	c, err := clustertest.Start(clustertest.Options{
		Binary: buildBinary(t), Nodes: 3, Dir: t.TempDir(), LeaseTTL: lease,
		Config: fmt.Sprintf("[Actions]\nMaximumThreads=2\n[FetchTasks]\nNumber=1\n0=Long\n[Long]\nUrl=%s/p/0\nDepth=-1\n", site.URL),
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			logTimeline(t, c)
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop the cluster: %v", err)
		}
	})
	client := &http.Client{Timeout: 15 * time.Second}

	body, err := aci(client, c.Nodes[0].URL(), "action=Fetch&FetchAction=Synchronize&TaskSections=Long")
	require.NoError(t, err)
	tok := between(body, "<token>", "</token>")
	require.NotEmpty(t, tok, body)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		st, b := statusOf(t, client, c.Nodes[1], tok)
		assert.Equal(ct, "Processing", st)
		assert.NotContains(ct, b, `added="0"`, "some pages delivered already")
	}, time.Minute, 20*time.Millisecond)
	zombie := ownerNode(t, c, tok)
	pid := zombie.PID()
	joins := zombie.Joins()
	var others []*clustertest.Node
	for _, n := range c.Nodes {
		if n != zombie {
			others = append(others, n)
		}
	}

	require.NoError(t, zombie.Signal(syscall.SIGSTOP))
	paused := time.Now()
	// Taken over and running again elsewhere, restarted once.
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		st, b := statusOf(t, client, others[0], tok)
		assert.Equal(ct, "Processing", st)
		assert.Contains(ct, b, "<restarts>1</restarts>")
	}, time.Minute, 20*time.Millisecond)
	t.Logf("taken over and running again %v after the pause (%s)", time.Since(paused), paused.Format("15:04:05.000"))
	openGate()
	require.Eventually(t, func() bool { return time.Since(paused) > 2*lease }, time.Minute, 50*time.Millisecond,
		"paused for longer than the lease")
	require.NoError(t, zombie.Signal(syscall.SIGCONT))

	// The zombie learns it was dropped, and starts again by itself (same
	// process, new member).
	require.Eventually(t, func() bool { return zombie.Joins() > joins }, time.Minute, 50*time.Millisecond,
		"the paused node rejoined as a new member")
	require.Equal(t, pid, zombie.PID(), "it started again in place")
	require.True(t, zombie.LogContains("starting again to rejoin the cluster"))
	require.True(t, zombie.LogContains("stops its work"), "the paused node stopped the work it had")
	require.NoError(t, zombie.WaitReady(time.Minute))

	// The action ends once, Finished, the same everywhere; the run that
	// took over found the pages the paused run had delivered.
	var final string
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		st, b := statusOf(t, client, others[1], tok)
		assert.Equal(ct, "Finished", st)
		final = b
	}, 3*time.Minute, 50*time.Millisecond)
	require.Contains(t, final, "<restarts>1</restarts>")
	require.NotContains(t, final, `unchanged="0"`, "pages delivered before the pause are not new again: %s", final)
	want := between(final, "<responsedata>", "</responsedata>")
	for _, n := range c.Nodes {
		_, b := statusOf(t, client, n, tok)
		require.Equal(t, want, between(b, "<responsedata>", "</responsedata>"), "%s answers differently", n.Name)
	}
}

// logTimeline logs the nodes' membership, take-over and fencing records, in
// each node's order (for a failed cluster test).
func logTimeline(t *testing.T, c *clustertest.Cluster) {
	for _, n := range c.Nodes {
		b, _ := os.ReadFile(n.Log)
		for _, l := range strings.Split(string(b), "\n") {
			for _, k := range []string{"members left", "took over", "evicted", "dropped", "declared", "joined the cluster",
				"no longer owned", "lease", "claim", "action started", "action run ended", "action ended", "write failed", "no longer the owner"} {
				if strings.Contains(l, k) {
					if len(l) > 300 {
						l = l[:300]
					}
					t.Logf("%s: %s", n.Name, l)
					break
				}
			}
		}
	}
}
