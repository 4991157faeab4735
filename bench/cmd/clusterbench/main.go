// Command clusterbench measures cluster mode (issue 17) on one machine:
// what scales, as ratios to a reference measured in the same run.
//
//   - hop: GetStatus of a running action asked of a node that does not own
//     it against the same request asked of its owner; Stop on a non-owner
//     (time to Stopped) against Stop on the owner.
//   - takeover: SIGKILL of a node running actions → every one of them
//     running again on a survivor, against the membership lease; and the
//     stall a client of the dead node sees before an answer.
//   - scale: connector CPU and shared-store commits per finished action at
//     N = 1, 2, 3 nodes (no quotas).
//   - quota: finished actions per second at N = 1, 2, 3 with every node in
//     a cgroup of the same CPU quota (load generator, PostgreSQL and etcd
//     outside), and River with the same number of clients under the same
//     quotas on the same kind of PostgreSQL.
//
// Every cluster is internal/clustertest: a three-member etcd, PostgreSQL
// and N real connector nodes on 127.0.0.1, stopped by PID. The program
// prints a JSON document (internal/result) on standard output and, with
// -md, writes the Markdown block of RESULTS.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectorhq/connector/bench/internal/result"
	"github.com/connectorhq/connector/internal/clustertest"
	"github.com/connectorhq/connector/messages"
)

type options struct {
	mode      string
	connector string
	runs      int
	rounds    int
	lease     time.Duration
	iters     int
	stops     int
	dur       time.Duration
	conc      int
	loads     []string // "total", "per-node", "rate"
	rate      float64  // load "rate": submissions per second offered to each node
	threads   int
	tthreads  int
	tasks     int
	quota     float64
	nodes     []int
	md        string
	verbose   bool
	pg        string // river-worker
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "hop,takeover,scale,quota", "comma-separated: hop, takeover, scale, quota (river-worker is internal); or compare: print cluster-compare.sh's table of -in")
	flag.StringVar(&o.connector, "connector", "../bin/connector", "the connector binary")
	flag.IntVar(&o.runs, "runs", 3, "runs of hop, scale and quota (medians, min–max over them)")
	flag.IntVar(&o.rounds, "rounds", 5, "takeover: kill rounds")
	flag.DurationVar(&o.lease, "lease", 3*time.Second, "membership lease ([Cluster] LeaseTTL)")
	flag.IntVar(&o.iters, "iters", 300, "hop: GetStatus requests per running action and node")
	flag.IntVar(&o.stops, "stops", 30, "hop: Stops per run (half on the owner, half on a non-owner)")
	flag.DurationVar(&o.dur, "dur", 8*time.Second, "scale, quota: submitting time of each measurement")
	flag.IntVar(&o.conc, "conc", 16, "scale, quota: closed-loop submitters (in all, or per node: -load); submitter g always submits to node g mod N")
	load := flag.String("load", "total", "scale, quota: comma-separated: total (-conc submitters at every N: the same offered load spread over more nodes), per-node (-conc submitters per node, and per River client: each node offered what one node is offered at N=1), rate (each node, and each River client, offered -rate submissions a second on a fixed schedule by -conc submitters: every N compared at the same rate per node, below the machine's saturation)")
	flag.Float64Var(&o.rate, "rate", 300, "load rate: submissions per second offered to each node")
	flag.IntVar(&o.threads, "threads", 4, "hop, takeover: MaximumThreads of a node")
	flag.IntVar(&o.tthreads, "tput-threads", 64, "scale, quota: MaximumThreads of a node and MaxWorkers of a River client (enough that a node's store round trips, not its threads, set the pace)")
	flag.IntVar(&o.tasks, "tasks", 16, "scale, quota: the actions are spread over this many tasks (at most 64)")
	flag.Float64Var(&o.quota, "quota", 0.15, "quota: CPU quota of each node (cores)")
	nodes := flag.String("nodes", "1,2,3", "scale, quota: node counts")
	flag.StringVar(&o.md, "md", "", "write the Markdown block of RESULTS.md to this file")
	flag.BoolVar(&o.verbose, "v", false, "every process's log to standard error")
	flag.StringVar(&o.pg, "pg", "", "river-worker: PostgreSQL URL")
	in := flag.String("in", "out/cluster-compare", "compare: the folder of cluster-compare.sh's before-N.json and after-N.json")
	flag.Parse()
	if o.mode == "compare" {
		if err := compareRounds(*in, os.Stdout); err != nil {
			fatal(err)
		}
		return
	}
	for _, s := range strings.Split(*nodes, ",") {
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil || n < 1 {
			fatal(fmt.Errorf("-nodes: bad count %q", s))
		}
		o.nodes = append(o.nodes, n)
	}
	for _, s := range strings.Split(*load, ",") {
		if s = strings.TrimSpace(s); s != "total" && s != "per-node" && s != "rate" {
			fatal(fmt.Errorf("-load: %q is not total, per-node or rate", s))
		}
		o.loads = append(o.loads, s)
	}
	if o.rate <= 0 {
		fatal(fmt.Errorf("-rate: %v is not a positive rate", o.rate))
	}
	o.tasks = min(max(o.tasks, 1), emptyTasks)
	if o.mode == "river-worker" {
		if err := riverWorker(o); err != nil {
			fatal(err)
		}
		return
	}
	out := result.New("cluster", o.mode)
	out.Info["cpus"] = fmt.Sprint(numCPU())
	out.Info["lease"] = o.lease.String()
	out.Info["load_before"] = fmt.Sprintf("%.1f", loadavg())
	rep := &report{o: o, out: out}
	for _, m := range strings.Split(o.mode, ",") {
		var err error
		switch strings.TrimSpace(m) {
		case "hop":
			err = rep.hop()
		case "takeover":
			err = rep.takeover()
		case "scale":
			err = rep.scale()
		case "quota":
			err = rep.quotas()
		default:
			err = fmt.Errorf("unknown mode %q", m)
		}
		if err != nil {
			fatal(fmt.Errorf("%s: %w", m, err))
		}
	}
	out.Info["load_after"] = fmt.Sprintf("%.1f", loadavg())
	if busyStops > 0 {
		rep.note("%d Stops (outside the timed ones) were answered ERRORSERVERBUSY and asked again: %q", busyStops, busyText)
	}
	if o.md != "" {
		if err := os.WriteFile(o.md, []byte(rep.markdown()), 0o644); err != nil {
			fatal(err)
		}
	}
	if err := out.Write(os.Stdout); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "clusterbench:", err)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "clusterbench %s: "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05")}, args...)...)
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "\nprocessor") + boolInt(strings.HasPrefix(string(b), "processor"))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// slowSite never answers (until the request is given up): a Synchronize
// of it runs until stopped.
func slowSite() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
}

// env is one cluster under test.
type env struct {
	c    *clustertest.Cluster
	db   *pgx.Conn // to the connector database: rows and counts
	stat *pgx.Conn // to the postgres database: pg_stat_database (not counted in the connector's commits)
	// queries counts the transactions the benchmark itself made on db.
	queries int64
}

func (o options) startCluster(n, threads int, level, slow string) (*env, error) {
	if slow == "" {
		slow = "http://127.0.0.1:9/"
	}
	var slowCfg strings.Builder
	fmt.Fprintf(&slowCfg, "[FetchTasks]\nNumber=%d\n", slowTasks+emptyTasks)
	for i := 0; i < slowTasks; i++ {
		fmt.Fprintf(&slowCfg, "%d=SLOW%d\n", i, i)
	}
	for i := 0; i < emptyTasks; i++ {
		fmt.Fprintf(&slowCfg, "%d=EMPTY%d\n", slowTasks+i, i)
	}
	for i := 0; i < emptyTasks; i++ {
		fmt.Fprintf(&slowCfg, "\n[EMPTY%d]\nUrl=http://127.0.0.1:9/\nFollowRobotProtocol=false\n", i)
	}
	for i := 0; i < slowTasks; i++ {
		fmt.Fprintf(&slowCfg, "\n[SLOW%d]\nUrl=%s\nFollowRobotProtocol=false\nRequestTimeout=1h\n", i, slow)
	}
	cfg := fmt.Sprintf(`[Actions]
MaximumThreads=%d
MaximumQueueSize=5000000
MaximumFinishedActions=1000000
StopTimeout=5s

[Logging]
LogLevel=%s

[Ingestion]
EnableIngestion=false

%s`, threads, level, slowCfg.String())
	co := clustertest.Options{Binary: o.connector, Nodes: n, LeaseTTL: o.lease, Config: cfg}
	if o.verbose {
		co.Output = os.Stderr
	}
	t0 := time.Now()
	c, err := clustertest.Start(co)
	if err != nil {
		return nil, err
	}
	logf("cluster of %d nodes up in %.1fs", n, time.Since(t0).Seconds())
	e := &env{c: c}
	if err := c.WaitMembers(n, time.Minute); err != nil {
		e.stop()
		return nil, err
	}
	ctx := context.Background()
	if e.db, err = pgx.Connect(ctx, c.StoreURL()); err != nil {
		e.stop()
		return nil, err
	}
	if e.stat, err = pgx.Connect(ctx, c.PG.URL("postgres")); err != nil {
		e.stop()
		return nil, err
	}
	return e, nil
}

func (e *env) stop() {
	t0 := time.Now()
	defer func() { logf("cluster stopped in %.1fs", time.Since(t0).Seconds()) }()
	if e.db != nil {
		e.db.Close(context.Background())
	}
	if e.stat != nil {
		e.stat.Close(context.Background())
	}
	if err := e.c.Stop(); err != nil {
		logf("stop the cluster: %v", err)
	}
}

func (e *env) urls() []string {
	var u []string
	for _, n := range e.c.Nodes {
		u = append(u, n.URL())
	}
	return u
}

func (e *env) pids() []int {
	var p []int
	for _, n := range e.c.Nodes {
		p = append(p, n.PID())
	}
	return p
}

// row is what the benchmark reads of an action's row.
type row struct {
	state messages.State
	owner string
}

// rows returns the rows of the actions with tokens.
func (e *env) rows(tokens []string) (map[string]row, error) {
	ids := make([][]byte, 0, len(tokens))
	byID := map[string]string{}
	for _, t := range tokens {
		_, id, err := messages.ParseToken(t)
		if err != nil {
			return nil, err
		}
		ids = append(ids, []byte(id.String()))
		byID[id.String()] = t
	}
	e.queries++
	rs, err := e.db.Query(context.Background(), `SELECT id, state, owner FROM connector_actions WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := map[string]row{}
	for rs.Next() {
		var id []byte
		var st int16
		var r row
		if err := rs.Scan(&id, &st, &r.owner); err != nil {
			return nil, err
		}
		r.state = messages.State(st)
		out[byID[string(id)]] = r
	}
	return out, rs.Err()
}

// count returns the number of actions in state st.
func (e *env) count(st messages.State) (int64, error) {
	e.queries++
	var n int64
	err := e.db.QueryRow(context.Background(), `SELECT count(*) FROM connector_actions WHERE state = $1`, int16(st)).Scan(&n)
	return n, err
}

// commits is xact_commit of the connector database (read from another
// database, so that reading it is not counted).
func commits(stat *pgx.Conn, db string) (int64, error) {
	var n int64
	err := stat.QueryRow(context.Background(), `SELECT xact_commit FROM pg_stat_database WHERE datname = $1`, db).Scan(&n)
	return n, err
}

// settledCommits reads xact_commit after the backends have reported:
// PostgreSQL 15 backends send their counts at most once a second, so it
// waits that long first (the nodes' idle ticks keep committing, so the
// count never stands still).
func settledCommits(stat *pgx.Conn, db string) (int64, error) {
	time.Sleep(1100 * time.Millisecond)
	return commits(stat, db)
}

// walSyncs is pg_stat_wal.wal_sync: WAL flushes to disk of the whole
// server (only the database under test writes there).
func walSyncs(stat *pgx.Conn) (int64, error) {
	var n int64
	err := stat.QueryRow(context.Background(), `SELECT wal_sync FROM pg_stat_wal`).Scan(&n)
	return n, err
}

// memberNodes maps member ids to node indexes (from the nodes' logs).
func (e *env) memberNodes() map[string]int {
	m := map[string]int{}
	for i, n := range e.c.Nodes {
		if id := n.MemberID(); id != "" {
			m[id] = i
		}
	}
	return m
}

// waitState polls until every token's row is in one of states (and, with
// notOwner, not owned by it), and returns the rows.
func (e *env) waitState(tokens []string, timeout time.Duration, notOwner string, states ...messages.State) (map[string]row, error) {
	deadline := time.Now().Add(timeout)
	for {
		rs, err := e.rows(tokens)
		if err != nil {
			return nil, err
		}
		ok := len(rs) == len(tokens)
		for _, r := range rs {
			if !slices.Contains(states, r.state) || (notOwner != "" && (r.owner == notOwner || r.owner == "")) {
				ok = false
			}
		}
		if ok {
			return rs, nil
		}
		if time.Now().After(deadline) {
			return rs, fmt.Errorf("%d actions not in %v within %s: %v", len(tokens), states, timeout, rs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func pick[T any](s []T) T { return s[rand.IntN(len(s))] }
