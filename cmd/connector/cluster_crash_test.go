package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/internal/clustertest"
	"github.com/connectorhq/connector/messages"
)

func startCluster(t *testing.T, nodes int, site string, lease time.Duration) *clustertest.Cluster {
	t.Helper()
	c, err := clustertest.Start(clustertest.Options{
		Binary: buildBinary(t), Nodes: nodes, Dir: t.TempDir(), LeaseTTL: lease,
		Config: fmt.Sprintf(`[Actions]
MaximumThreads=2
[FetchTasks]
Number=3
0=Slow1
1=Slow2
2=Slow3
[Default]
Url=%s/p/0
Depth=-1
`, site),
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop the cluster: %v", err)
		}
		if t.Failed() {
			for _, n := range c.Nodes {
				b, _ := os.ReadFile(n.Log)
				if len(b) > 6000 {
					b = b[len(b)-6000:]
				}
				t.Logf("%s log (end):\n%s", n.Name, b)
			}
		}
	})
	return c
}

func aci(client *http.Client, base, query string) (string, error) {
	resp, err := client.Get(base + "/" + query)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestClusterCrashLosesNothing runs three real nodes; submitters send
// Synchronize actions (and Stops and Cancels of them) to random nodes, six
// each per round; a
// random node is killed with SIGKILL at a random moment and started again.
// Then every acknowledged token answers, identically, from every node;
// every action ends; acknowledged Stops and Cancels held. Two rounds here,
// CONNECTOR_CLUSTER_CRASH_ROUNDS=N there (25 in make bench);
// CONNECTOR_CLUSTER_KEEP_LOGS=folder keeps the nodes' logs.
func TestClusterCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd, PostgreSQL and three real nodes")
	}
	rounds := 2
	if v, err := strconv.Atoi(os.Getenv("CONNECTOR_CLUSTER_CRASH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	c := startCluster(t, 3, chainSite(t, 40, 2, 10*time.Millisecond).URL, 3*time.Second)
	t.Cleanup(func() { // before the cluster stops (cleanups run last first)
		keepLogs(t, c)
		if t.Failed() {
			dumpClusterStore(t, c)
		}
	})
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 1))

	acked := map[string]string{}      // token → the final state an acknowledged control requires ("" none)
	kills := map[string][]time.Time{} // node name → when each of its processes was killed, in order
	var mu sync.Mutex
	for round := 0; round < rounds; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				client := &http.Client{Timeout: 15 * time.Second}
				r := rand.New(rand.NewPCG(uint64(seed)+uint64(g), uint64(round)))
				for i := 0; i < 6 && ctx.Err() == nil; i++ {
					n := c.Nodes[r.IntN(len(c.Nodes))]
					if !n.Running() {
						continue
					}
					body, err := aci(client, n.URL(), fmt.Sprintf("action=Fetch&FetchAction=Synchronize&TaskSections=Slow%d&Priority=%d", 1+r.IntN(3), r.IntN(4)))
					tok := between(body, "<token>", "</token>")
					if err != nil || tok == "" {
						continue // its node died, or refused: not acknowledged
					}
					mu.Lock()
					acked[tok] = ""
					mu.Unlock()
					// Now and then, cancel or stop it from another node.
					var verb, want string
					switch r.IntN(6) {
					case 0:
						verb, want = "Cancel", "Cancelled"
					case 1:
						verb, want = "Stop", "Stopped"
					default:
						continue
					}
					m := c.Nodes[r.IntN(len(c.Nodes))]
					body, err = aci(client, m.URL(), "action=QueueInfo&QueueName=fetch&QueueAction="+verb+"&Token="+url.QueryEscape(tok))
					if err == nil && strings.Contains(body, "<response>SUCCESS</response>") && strings.Contains(body, "<status>"+want+"</status>") {
						mu.Lock()
						acked[tok] = want
						mu.Unlock()
					}
				}
			}(g)
		}
		victim := c.Nodes[rng.IntN(len(c.Nodes))]
		killAt := time.Duration(300+rng.IntN(1500)) * time.Millisecond
		time.Sleep(killAt) // the random moment of the crash is the point of the test
		require.NoError(t, victim.Kill())
		kills[victim.Name] = append(kills[victim.Name], time.Now()) // it has exited
		t.Logf("round %d: killed %s after %v", round, victim.Name, killAt)
		time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond) // submissions go on to the others meanwhile
		cancel()
		wg.Wait()
		require.NoError(t, victim.Start())
	}
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, acked)
	t.Logf("%d acknowledged actions", len(acked))

	// Every action ends (the killed nodes' running ones were re-run).
	client := &http.Client{Timeout: 15 * time.Second}
	for tok := range acked {
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			body, err := aci(client, c.Nodes[0].URL(), "action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(tok))
			if !assert.NoError(ct, err) {
				return
			}
			st := between(body, "<status>", "</status>")
			assert.Contains(ct, []string{"Finished", "Stopped", "Cancelled"}, st, "%s: %s", tok, body)
		}, 3*time.Minute, 100*time.Millisecond)
	}
	// And answers identically from every node; acknowledged controls held.
	for tok, want := range acked {
		var first string
		for i, n := range c.Nodes {
			body, err := aci(client, n.URL(), "action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(tok))
			require.NoError(t, err)
			require.Contains(t, body, "<response>SUCCESS</response>", "acknowledged token lost: %s", tok)
			action := between(body, "<responsedata>", "</responsedata>")
			if i == 0 {
				first = action
				if want != "" {
					require.Equal(t, want, between(body, "<status>", "</status>"), "an acknowledged %s was undone: %s", want, body)
				}
				continue
			}
			require.Equal(t, first, action, "%s answers differently from %s", tok, n.Name)
		}
	}
	for _, n := range c.Nodes {
		require.NoError(t, n.Signal(syscall.Signal(0)), "%s still runs", n.Name)
	}
	checkNoDoubleRuns(t, c, kills)
}

// A run of an action in a node's log: its process (the node's name and
// its start number), and when its worker started and ended.
type actionRun struct {
	proc       string
	start, end time.Time
}

var (
	logTimeRE  = regexp.MustCompile(`^time=(\S+) `)
	logTokenRE = regexp.MustCompile(` token="([^"]+)"`)
)

// checkNoDoubleRuns reads the nodes' logs: no action ran on two processes
// at once (a worker's run lasts from its "action started" to its "action
// run ended", or to the kill of its process). Only then could both runs have
// had writes accepted. A process the cluster dropped while it lived (a
// stall longer than its lease, under load) is left out: its writes are
// refused by fencing, which TestClusterZombieIsFenced checks.
func checkNoDoubleRuns(t *testing.T, c *clustertest.Cluster, kills map[string][]time.Time) {
	t.Helper()
	runs := map[string][]actionRun{}
	dropped := map[string]bool{} // processes the cluster dropped
	for _, n := range c.Nodes {
		b, err := os.ReadFile(n.Log)
		require.NoError(t, err)
		proc := -1
		open := map[string]int{} // token → its run without an end yet, in runs
		endOpen := func() {
			end := time.Now()
			if proc >= 0 && proc < len(kills[n.Name]) {
				end = kills[n.Name][proc]
			}
			for tok, i := range open {
				runs[tok][i].end = end
			}
			clear(open)
		}
		for _, line := range strings.Split(string(b), "\n") {
			m := logTimeRE.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, m[1])
			if err != nil {
				continue
			}
			name := fmt.Sprintf("%s#%d", n.Name, proc)
			switch {
			case strings.Contains(line, `msg="joined the cluster"`):
				endOpen()
				proc++
			case strings.Contains(line, `msg="the cluster declared this node dead`),
				strings.Contains(line, `msg="this node lost its cluster membership`):
				dropped[name] = true
			case strings.Contains(line, `msg="action started"`):
				if tm := logTokenRE.FindStringSubmatch(line); tm != nil {
					runs[tm[1]] = append(runs[tm[1]], actionRun{proc: name, start: at})
					open[tm[1]] = len(runs[tm[1]]) - 1
				}
			case strings.Contains(line, `msg="action run ended"`):
				if tm := logTokenRE.FindStringSubmatch(line); tm != nil {
					if i, ok := open[tm[1]]; ok {
						runs[tm[1]][i].end = at
						delete(open, tm[1])
					}
				}
			}
		}
		endOpen()
	}
	checked := 0
	for tok, rs := range runs {
		sort.Slice(rs, func(i, j int) bool { return rs[i].start.Before(rs[j].start) })
		for i := 1; i < len(rs); i++ {
			a, b := rs[i-1], rs[i]
			if dropped[a.proc] || dropped[b.proc] {
				continue
			}
			checked++
			assert.False(t, b.start.Before(a.end), "%s ran on %s (%s to %s) and on %s (from %s) at once",
				tok, a.proc, a.start.Format(time.StampMilli), a.end.Format(time.StampMilli), b.proc, b.start.Format(time.StampMilli))
		}
	}
	t.Logf("runs of %d actions read from the nodes' logs; %d re-runs began after the run before them ended", len(runs), checked)
}

// keepLogs copies every node's whole log into CONNECTOR_CLUSTER_KEEP_LOGS
// (a folder) when it is set, whether the test passed or not: what
// reconciliation corrected shows there as warnings.
func keepLogs(t *testing.T, c *clustertest.Cluster) {
	dir := os.Getenv("CONNECTOR_CLUSTER_KEEP_LOGS")
	if dir == "" {
		return
	}
	for _, n := range c.Nodes {
		if b, err := os.ReadFile(n.Log); err == nil {
			if err := os.WriteFile(filepath.Join(dir, n.Name+".log"), b, 0o644); err != nil {
				t.Logf("keep %s's log: %v", n.Name, err)
			}
		}
	}
	t.Logf("node logs copied to %s", dir)
}

// dumpClusterStore logs what the shared store says of the actions that
// have not ended, the members and the held tasks, and what each node
// answers about those actions: what a failure of the crash test needs to
// be understood.
func dumpClusterStore(t *testing.T, c *clustertest.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.StoreURL())
	if err != nil {
		t.Logf("shared store: %v", err)
		return
	}
	defer conn.Close(ctx)
	for _, n := range c.Nodes {
		t.Logf("%s is member %s", n.Name, n.MemberID())
	}
	for _, q := range []string{
		`SELECT id, addr, dead, joined::text FROM connector_nodes ORDER BY joined`,
		`SELECT convert_from(id, 'UTF8'), seq, state, running, owner, epoch, exclusive::text FROM connector_actions WHERE state < 4 ORDER BY seq`,
		`SELECT convert_from(h.queue, 'UTF8'), h.task, convert_from(h.id, 'UTF8'), coalesce(a.state, -1), coalesce(a.owner, '?') FROM connector_task_holds h LEFT JOIN connector_actions a ON a.queue = h.queue AND a.id = h.id`,
	} {
		rows, err := conn.Query(ctx, q)
		if err != nil {
			t.Logf("%s: %v", q, err)
			continue
		}
		for rows.Next() {
			v, _ := rows.Values()
			t.Logf("store: %v", v)
		}
		rows.Close()
	}
	// What each node answers about the actions that have not ended.
	rows, err := conn.Query(ctx, `SELECT record FROM connector_actions WHERE state < 4 ORDER BY seq LIMIT 20`)
	if err != nil {
		return
	}
	var toks []string
	for rows.Next() {
		var raw []byte
		if rows.Scan(&raw) == nil {
			a := &messages.StoredAction{}
			if proto.Unmarshal(raw, a) == nil {
				toks = append(toks, a.GetStatus().GetToken())
			}
		}
	}
	rows.Close()
	client := &http.Client{Timeout: 5 * time.Second}
	for _, tok := range toks {
		for _, n := range c.Nodes {
			if !n.Running() {
				continue
			}
			body, err := aci(client, n.URL(), "action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(tok))
			t.Logf("%s asked of %s: %v %s", tok, n.Name, err, between(body, "<responsedata>", "</responsedata>")+between(body, "<error>", "</error>"))
		}
	}
}
