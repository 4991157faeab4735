package main

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/clustertest"
)

// faultCluster starts three nodes whose fetch task Long crawls zombieSite
// (a few seconds per Synchronize), and Short a single page.
func faultCluster(t *testing.T) *clustertest.Cluster {
	t.Helper()
	site := zombieSite(t)
	c, err := clustertest.Start(clustertest.Options{
		Binary: buildBinary(t), Nodes: 3, Dir: t.TempDir(), LeaseTTL: 3 * time.Second,
		Config: fmt.Sprintf("[Actions]\nMaximumThreads=2\n[FetchTasks]\nNumber=2\n0=Long\n1=Short\n[Long]\nUrl=%s/p/0\nDepth=-1\n[Short]\nUrl=%s/p/299\nDepth=0\n", site.URL, site.URL),
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
	return c
}

// submit sends a Synchronize of task to node n and returns its token.
func submit(t require.TestingT, client *http.Client, n *clustertest.Node, task string) string {
	body, err := aci(client, n.URL(), "action=Fetch&FetchAction=Synchronize&TaskSections="+task)
	require.NoError(t, err)
	tok := between(body, "<token>", "</token>")
	require.NotEmpty(t, tok, body)
	return tok
}

// joins is every node's count of joins (starts and rejoins).
func joins(c *clustertest.Cluster) []int {
	out := make([]int, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Joins()
	}
	return out
}

// requireAllEnd waits until every token ends in one of the states want,
// and then checks it answers the same from every node.
func requireAllEnd(t *testing.T, client *http.Client, c *clustertest.Cluster, tokens []string, want ...string) {
	t.Helper()
	for _, tok := range tokens {
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			st, b := statusOf(ct, client, c.Nodes[0], tok)
			assert.Contains(ct, want, st, b)
		}, 3*time.Minute, 50*time.Millisecond, tok)
		_, b := statusOf(t, client, c.Nodes[0], tok)
		first := between(b, "<responsedata>", "</responsedata>")
		for _, n := range c.Nodes[1:] {
			_, b := statusOf(t, client, n, tok)
			require.Equal(t, first, between(b, "<responsedata>", "</responsedata>"), "%s answers differently", n.Name)
		}
	}
}

// TestClusterSurvivesEtcdLeaderKill kills (SIGKILL) the leader of the
// three-member etcd while actions run and are submitted: nothing a client
// sees changes. No node loses its membership (no node rejoins, no action
// is taken over or restarted), every request keeps succeeding on every
// node, and every action ends Finished.
func TestClusterSurvivesEtcdLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd, PostgreSQL and three real nodes")
	}
	c := faultCluster(t)
	client := &http.Client{Timeout: 15 * time.Second}
	var tokens []string
	for _, n := range c.Nodes {
		tokens = append(tokens, submit(t, client, n, "Long"))
	}
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		st, _ := statusOf(ct, client, c.Nodes[0], tokens[0])
		assert.Equal(ct, "Processing", st)
	}, time.Minute, 20*time.Millisecond)
	before := joins(c)

	leader, err := c.Etcd.Leader()
	require.NoError(t, err)
	c.Etcd.Kill(leader)
	killed := time.Now()
	// For two leases after the kill (the time a lapse would take to
	// show), every node keeps accepting and answering.
	i := 0
	for time.Since(killed) < 2*3*time.Second {
		n := c.Nodes[i%len(c.Nodes)]
		tokens = append(tokens, submit(t, client, n, "Short"))
		for _, tok := range tokens[:3] {
			body, err := aci(client, n.URL(), "action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(tok))
			require.NoError(t, err)
			require.Contains(t, body, "<response>SUCCESS</response>", body)
		}
		i++
	}
	require.NoError(t, c.Etcd.WaitReady(time.Minute), "the two other etcd members elected a leader")
	require.NoError(t, c.Etcd.Restart(leader))
	require.NoError(t, c.Etcd.WaitReady(time.Minute))

	requireAllEnd(t, client, c, tokens, "Finished")
	for _, tok := range tokens[:3] {
		_, b := statusOf(t, client, c.Nodes[0], tok)
		require.NotContains(t, b, "<restarts>", "no action was taken over (restarts shows only when not 0): %s", b)
	}
	require.Equal(t, before, joins(c), "no node lost its membership")
	for _, n := range c.Nodes {
		require.False(t, n.LogContains("cluster members left"), "%s saw a member leave", n.Name)
		require.True(t, n.Running(), "%s runs", n.Name)
	}
}

// TestClusterSurvivesStoreRestart stops the shared PostgreSQL while
// actions run, then starts it again. Meanwhile a submission on any node
// fails at once with an ACI error (it has no token; the client is not
// left waiting past the request timeout); GetStatus of a running action
// answers from its owner, from any node. Once the store is back, every
// acknowledged action is there, answers the same from every node and
// ends; submissions work again. An action whose crawl needed its
// datastore while the store was down ends as Error, saying so (its
// state is written once the store is back).
func TestClusterSurvivesStoreRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd, PostgreSQL and three real nodes")
	}
	c := faultCluster(t)
	client := &http.Client{Timeout: 15 * time.Second}
	var tokens []string
	for _, n := range c.Nodes {
		tokens = append(tokens, submit(t, client, n, "Long"))
		tokens = append(tokens, submit(t, client, n, "Short"))
	}
	var running []string
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		running = running[:0]
		for _, tok := range tokens {
			if st, _ := statusOf(ct, client, c.Nodes[0], tok); st == "Processing" {
				running = append(running, tok)
			}
		}
		assert.NotEmpty(ct, running)
	}, time.Minute, 20*time.Millisecond)

	require.NoError(t, c.PG.Shutdown())
	// The request timeout a client would use: anything past it is a hang.
	quick := &http.Client{Timeout: 10 * time.Second}
	for _, n := range c.Nodes {
		body, err := aci(quick, n.URL(), "action=Fetch&FetchAction=Synchronize&TaskSections=Short")
		require.NoError(t, err, "%s answers a submission while the store is down", n.Name)
		require.Contains(t, body, "<response>ERROR</response>", body)
		require.Empty(t, between(body, "<token>", "</token>"), body)
		for _, tok := range running {
			body, err := aci(quick, n.URL(), "action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(tok))
			require.NoError(t, err)
			require.Contains(t, body, "<response>SUCCESS</response>", "%s answers GetStatus of a running action from its owner: %s", n.Name, body)
		}
	}

	require.NoError(t, c.PG.StartAgain())
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		body, err := aci(client, c.Nodes[1].URL(), "action=Fetch&FetchAction=Synchronize&TaskSections=Short")
		if assert.NoError(ct, err) {
			assert.Contains(ct, body, "<token>", body)
		}
	}, time.Minute, 100*time.Millisecond, "submissions work again")
	for _, tok := range tokens {
		for _, n := range c.Nodes {
			body, err := aci(client, n.URL(), "action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(tok))
			require.NoError(t, err)
			require.Contains(t, body, "<response>SUCCESS</response>", "acknowledged token lost: %s", body)
		}
	}
	requireAllEnd(t, client, c, tokens, "Finished", "Error")
	for _, tok := range tokens {
		if st, b := statusOf(t, client, c.Nodes[2], tok); st == "Error" {
			require.Contains(t, b, "store", "an action ended by the outage says why: %s", b)
		}
	}
	for _, n := range c.Nodes {
		require.True(t, n.Running(), "%s runs", n.Name)
	}
}
