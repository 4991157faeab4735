package server

// The differential test of cluster mode (issue 17: "QueueStatus and
// GetStatus lists show the whole cluster from any node, with the same
// filters, sorting and paging as today"; every QueueAction with a token
// works on any node): the same scripted ACI requests go to a single node
// with its embedded store and to a cluster of two nodes (etcd and
// PostgreSQL started by the test), each request of the cluster's script to
// a node that changes from one request to the next, and the replies are
// compared once what must differ (tokens, times) is normalised.

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/fetch/fetchtest"
	"github.com/connectorhq/connector/internal/etcdtest"
	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/messages"
)

// diffSide is one of the two systems compared: its nodes' ACI addresses,
// its repository (shared by its nodes, in this process) and the tokens
// it returned, in submission order.
type diffSide struct {
	t     *testing.T
	name  string
	addrs []string
	nodes []*Server
	// also replaces what differs for a reason of the test's own
	also   func(string) string
	repo   *fetchtest.Repo
	tokens []string       // by submission index
	ids    map[string]int // action id → submission index
	turn   int            // the next request goes to addrs[turn%len]
}

func diffRepo() *fetchtest.Repo {
	return &fetchtest.Repo{DefaultMode: "block",
		Actions: []string{fetch.ActionSynchronize, fetch.ActionCollect},
		ValidateFunc: func(_ string, p messages.Params) ([]string, error) {
			return []string{strings.ToUpper(p.Value("TaskSections") + p.Value("ConfigSection"))}, nil
		}}
}

// diffConfig is the configuration both sides share, plus extra.
func diffConfig(t *testing.T, threads int, actions, extra string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse("diff.cfg", []byte(fmt.Sprintf(`
[Server]
Host=127.0.0.1
Port=0
DataDirectory=%s
[Actions]
MaximumThreads=%d
MaxListResults=50
StopTimeout=5s
%s
[Ingestion]
IngestDirectory=%s
%s`, dir, threads, actions, filepath.Join(dir, "out"), extra)), nil)
	require.NoError(t, err)
	return cfg
}

// exclusiveRepo is the repository of both sides: a Synchronize holds its
// tasks, as the HTTP connector's does.
type exclusiveRepo struct{ *fetchtest.Repo }

func (exclusiveRepo) Exclusive(fetchAction string) bool {
	return fetchAction == fetch.ActionSynchronize
}

func diffStart(t *testing.T, cfg *config.Config, repo *fetchtest.Repo) *Server {
	t.Helper()
	s, err := Start(cfg, Options{Port: -1, LogOutput: io.Discard, Repository: func(Deps) (fetch.Repository, error) { return exclusiveRepo{repo}, nil }})
	require.NoError(t, err)
	t.Cleanup(func() { stop(t, s) })
	return s
}

// newDiffSides starts a single node with two threads and a cluster of two
// nodes with one thread each: the same number of threads in all. actions
// is added to both's [Actions].
func newDiffSides(t *testing.T, actions string) (single, clu *diffSide) {
	t.Helper()
	single = &diffSide{t: t, name: "single", repo: diffRepo(), ids: map[string]int{}}
	s := diffStart(t, diffConfig(t, 2, actions, ""), single.repo)
	single.addrs = []string{s.Addr().String()}

	e := etcdtest.StartT(t, etcdtest.Options{Dir: t.TempDir(), Members: 1})
	pg := pgtest.StartT(t, pgtest.Options{})
	store := pg.DatabaseT(t)
	clu = &diffSide{t: t, name: "cluster", repo: diffRepo(), ids: map[string]int{}}
	key := filepath.Join(t.TempDir(), "aes.ky") // every node's (checkClusterKey)
	for i := 0; i < 2; i++ {
		n := diffStart(t, diffConfig(t, 1, actions, fmt.Sprintf(`[Security]
AESKeyFile=%s
[Cluster]
Enabled=true
Name=diff
Etcd=%s
Store=%s
RemoteHost=127.0.0.1
LeaseTTL=5s
`, key, e.Members[0].ClientURL, store)), clu.repo)
		clu.addrs = append(clu.addrs, n.Addr().String())
		clu.nodes = append(clu.nodes, n)
	}
	return single, clu
}

// get sends the request to the side's next node and returns the reply.
func (d *diffSide) get(q string) string {
	d.t.Helper()
	addr := d.addrs[d.turn%len(d.addrs)]
	d.turn++
	return d.getAt(addr, q)
}

func (d *diffSide) getAt(addr, q string) string {
	d.t.Helper()
	resp, err := http.Get("http://" + addr + "/" + q)
	require.NoError(d.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(d.t, err)
	return string(b)
}

var tokenRe = regexp.MustCompile(`[A-Za-z0-9+/]{40,}={0,2}`)

// idOf returns the action id a token names ("" if it is not one).
func idOf(tok string) string {
	b, err := base64.StdEncoding.DecodeString(tok)
	if err != nil {
		return ""
	}
	parts := strings.Split(string(b), ":")
	if len(parts) < 4 || parts[len(parts)-2] != "FETCH" {
		return ""
	}
	return parts[len(parts)-1]
}

func mustDecode(tok string) []byte {
	b, _ := base64.StdEncoding.DecodeString(tok)
	return b
}

// learn records every token of reply not seen yet, as the next
// submission indexes (a Fetch's or a Duplicate's reply).
func (d *diffSide) learn(reply string) {
	for _, tok := range tokenRe.FindAllString(reply, -1) {
		if id := idOf(tok); id != "" {
			if _, ok := d.ids[id]; !ok {
				d.ids[id] = len(d.tokens)
				d.tokens = append(d.tokens, tok)
			}
		}
	}
}

var (
	aciTimeRe   = regexp.MustCompile(`\d{4}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2}`)
	errTimeRe   = regexp.MustCompile(`\d{2} [A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2}`)
	durationRe  = regexp.MustCompile(`(time_in_queue|time_processing|seconds)(>|":"|":\{"\$":")\d+`)
	epochString = "1970-Jan-01 00:00:00"
)

// norm replaces what must differ between the sides: tokens by their
// submission index (T3), times that happened by TIME (those that did not,
// the epoch, stay), durations by N.
func (d *diffSide) norm(reply string) string {
	reply = tokenRe.ReplaceAllStringFunc(reply, func(tok string) string {
		id := idOf(tok)
		if id == "" {
			return tok
		}
		if i, ok := d.ids[id]; ok {
			if tok != d.tokens[i] {
				// the action's id, but not the token its submitter got
				return "T" + strconv.Itoa(i) + "(as " + strings.Join(strings.Split(string(mustDecode(tok)), ":")[:2], ":") + ")"
			}
			return "T" + strconv.Itoa(i)
		}
		return "T?"
	})
	reply = aciTimeRe.ReplaceAllStringFunc(reply, func(s string) string {
		if s == epochString {
			return "EPOCH"
		}
		return "TIME"
	})
	reply = errTimeRe.ReplaceAllString(reply, "TIME")
	if d.also != nil {
		reply = d.also(reply)
	}
	// A full queue's error says whose queue is full (docs/cluster.md).
	reply = strings.ReplaceAll(reply, " waiting actions across the cluster (", " waiting actions (")
	return durationRe.ReplaceAllString(reply, "${1}${2}N")
}

// tok returns the token of submission i, escaped for a URL.
func (d *diffSide) tok(i int) string { return url.QueryEscape(d.tokens[i]) }

// diff runs the same steps on both sides.
type diff struct {
	t    *testing.T
	a, b *diffSide
}

// q sends the request (in which {T3} is submission 3's token) to both
// sides and compares the normalised replies; it returns them.
func (x *diff) q(q string) (string, string) {
	x.t.Helper()
	ra := x.a.get(x.a.expand(q))
	rb := x.b.get(x.b.expand(q))
	x.a.learn(ra)
	x.b.learn(rb)
	na, nb := x.a.norm(ra), x.b.norm(rb)
	if na != nb {
		x.t.Errorf("the replies differ: %s%s\n--- single:\n%s\n--- cluster:\n%s", q, where(na, nb), na, nb)
	}
	if readOnly(q) {
		x.b.sameOnEveryNode(x.b.expand(q))
	}
	return na, nb
}

var readOnlyRe = regexp.MustCompile(`(?i)QueueAction=(GetStatus|Progress|GetActionParameters|QueueStatus)(&|$)`)

// readOnly reports whether q changes nothing (so it may be sent again).
func readOnly(q string) bool {
	return readOnlyRe.MatchString(q) ||
		(strings.Contains(q, "QueueAction=CancelQueued") && !strings.Contains(q, "Confirm=true"))
}

// sameOnEveryNode checks that every node answers q alike, times
// included: a node answers for the actions it owns and for the others'.
// A duration that ticked between the replies is asked again.
func (d *diffSide) sameOnEveryNode(q string) {
	d.t.Helper()
	var got []string
	for try := 0; try < 5; try++ {
		got = got[:0]
		for _, addr := range d.addrs {
			got = append(got, errTimeRe.ReplaceAllString(d.getAt(addr, q), "TIME"))
		}
		same := true
		for _, r := range got[1:] {
			same = same && r == got[0]
		}
		if same {
			return
		}
	}
	d.t.Errorf("the nodes answer %s differently:\n%s", q, strings.Join(got, "\n---\n"))
}

var placeholderRe = regexp.MustCompile(`\{T(\d+)\}`)

func (d *diffSide) expand(q string) string {
	return placeholderRe.ReplaceAllStringFunc(q, func(s string) string {
		i, _ := strconv.Atoi(s[2 : len(s)-1])
		return d.tok(i)
	})
}

// until polls the request on both sides until pred holds of each
// side's normalised reply (deadline 20 s).
func (x *diff) until(q string, what string, pred func(string) bool) {
	x.t.Helper()
	for _, d := range []*diffSide{x.a, x.b} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			r := d.norm(d.get(d.expand(q)))
			if pred(r) {
				break
			}
			if time.Now().After(deadline) {
				x.t.Fatalf("%s: %s never came: %s\nits queue: %s\nits threads: %s", d.name, what, r,
					d.norm(d.get(qi+"GetStatus")), d.norm(d.get("action=ThreadStatus")))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func statusIs(status string) func(string) bool {
	return func(r string) bool { return strings.Contains(r, "<status>"+status+"</status>") }
}

// count returns a predicate: the reply holds n actions in status.
func count(status string, n int) func(string) bool {
	return func(r string) bool { return strings.Count(r, "<status>"+status+"</status>") == n }
}

// release lets submission i's action finish on both sides.
func (x *diff) release(i int) {
	x.a.repo.Release(x.a.tokens[i])
	x.b.repo.Release(x.b.tokens[i])
}

const (
	qi = "action=QueueInfo&QueueName=fetch&QueueAction="
	// processing lists the running actions.
	processing = qi + "GetStatus&State=processing"
)

// newDiff compares the two sides; every action they wait to release is
// released when the test ends.
func newDiff(single, clu *diffSide) *diff {
	single.t.Cleanup(func() {
		single.repo.ReleaseAll()
		clu.repo.ReleaseAll()
	})
	return &diff{t: single.t, a: single, b: clu}
}

func TestDifferentialSingleAndCluster(t *testing.T) {
	t.Parallel()
	single, clu := newDiffSides(t, "")
	x := newDiff(single, clu)

	// Two running actions fill the two threads.
	x.q("action=Fetch&FetchAction=Synchronize&ConfigSection=A") // T0
	x.until(processing, "T0 running", count("Processing", 1))
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=B&Extra=x%20y") // T1
	x.until(processing, "T1 running", count("Processing", 2))
	// Four queued ones.
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=C&Priority=1")              // T2
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=D&Priority=5")              // T3
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=E")                         // T4
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=F&Priority=3&Mode=instant") // T5

	for i := 0; i < 6; i++ {
		x.q(fmt.Sprintf(qi+"GetStatus&Token={T%d}", i))
	}
	lists := func() {
		t.Helper()
		x.settle()
		x.q(qi + "QueueStatus")
		x.q(qi + "GetStatus")
		for _, st := range []string{"queued", "processing", "Queued,Processing", "finished", "cancelled", "stopped", "paused", "error"} {
			x.q(qi + "GetStatus&State=" + st)
		}
		for _, by := range []string{"queue-time", "start-time", "finish-time", "priority"} {
			for _, order := range []string{"ascending", "descending"} {
				x.q(qi + "GetStatus&Sort-By=" + by + "&Sort-Order=" + order)
				x.q(qi + "GetStatus&Sort-By=" + by + "&Sort-Order=" + order + "&Start=2&MaxResults=3")
			}
		}
		x.qs(
			"GetStatus&Min-Priority=1&Max-Priority=5",
			"GetStatus&Min-Priority=3",
			"GetStatus&Max-Priority=0&State=queued",
		)
		hourAgo := strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)
		x.q(qi + "GetStatus&Queued-After=" + hourAgo)
		x.q(qi + "GetStatus&Queued-Before=" + hourAgo)
		x.q(qi + "GetStatus&Finished-After=" + hourAgo)
		x.q(qi + "GetStatus&Finished-Before=" + hourAgo)
		x.qs(
			"GetStatus&Start=1&MaxResults=1",
			"GetStatus&Start=4&MaxResults=2",
			"GetStatus&Start=100",
			"GetStatus&ResponseFormat=json",
			"GetStatus&ResponseFormat=simplejson&Sort-By=priority",
			"QueueStatus&ResponseFormat=json",
			"GetActionParameters",
			"GetActionParameters&Start=2&MaxResults=2",
			"GetActionParameters&ResponseFormat=simplejson",
			"CancelQueued",
			"CancelQueued&Max-Priority=1",
		)
	}
	lists()

	// Errors.
	for _, q := range []string{
		qi + "GetStatus&Token=bm90IGEgdG9rZW4%3D",
		qi + "GetStatus&Token=",
		qi + "Stop&Token=garbage",
		qi + "Cancel&Token=%20",
		qi + "ChangePriority&Token={T4}",
		qi + "ChangePriority&Token={T4}&Priority=abc",
		qi + "ChangePriority&Priority=3",
		qi + "Progress",
		qi + "Duplicate",
		qi + "Nope",
		"action=QueueInfo&QueueName=other&QueueAction=GetStatus",
		qi + "GetStatus&State=nope",
		qi + "GetStatus&Sort-By=nope",
		qi + "GetStatus&Sort-Order=nope",
		qi + "GetStatus&MaxResults=0",
		qi + "GetStatus&MaxResults=51",
		qi + "GetStatus&Start=0",
		qi + "GetStatus&Min-Priority=x",
		qi + "GetStatus&Queued-After=yesterday",
		qi + "Cancel&Token={T0}",
		qi + "ChangePriority&Token={T0}&Priority=9",
		qi + "Resume&Token={T2}",
		qi + "CancelQueued&State=processing",
		qi + "CancelQueued&Token={T2}",
		qi + "GetStatus&ResponseFormat=json&Token=x",
		qi + "GetStatus&ResponseFormat=simplejson&Token=x",
	} {
		x.q(q)
	}

	// Controls of queued and running actions.
	x.qs(
		"ChangePriority&Token={T4}&Priority=10",
		"Cancel&Token={T2}",
		"Stop&Token={T3}",
		"Pause&Token={T5}",
		"GetStatus&Token={T5}",
		"Resume&Token={T5}",
		"Pause&Token={T1}",
		"Progress&Token={T1}",
		"Resume&Token={T1}",
		"Progress&Token={T0}",
		"Progress&Token={T0}&ResponseFormat=json",
		"GetActionParameters&Token={T1}",
		"GetActionParameters&Token={T4}&ResponseFormat=json",
	)
	x.q(qi + "Duplicate&Token={T4}") // T6, priority 10
	x.q(qi + "GetStatus&Token={T6}")
	x.q(qi + "GetActionParameters&Token={T6}")
	for _, q := range []string{
		qi + "Cancel&Token={T2}",
		qi + "Stop&Token={T3}",
		qi + "Pause&Token={T2}",
		qi + "Resume&Token={T3}",
		qi + "ChangePriority&Token={T2}&Priority=1",
		qi + "Duplicate&Token={T2}",
		qi + "GetActionParameters&Token={T3}",
		qi + "Progress&Token={T2}",
	} {
		x.q(q)
	}
	lists()

	// Stop the running T0: its thread runs the highest priority queued
	// action, T4 (10, before its copy T6).
	x.q(qi + "Stop&Token={T0}")
	x.until(processing, "T4 running", func(r string) bool {
		return count("Processing", 2)(r) && strings.Contains(r, "T4<")
	})
	x.q(processing)
	// T1 finishes: T6 (10), then T5 (3) which finishes at once, then T2
	// was cancelled, so the queue is empty but for nothing.
	x.release(1)
	x.until(qi+"GetStatus&Token={T1}", "T1 finished", statusIs("Finished"))
	x.until(processing, "T6 running", func(r string) bool {
		return count("Processing", 2)(r) && strings.Contains(r, "T6<")
	})
	x.q(processing)
	x.release(4)
	x.until(qi+"GetStatus&Token={T5}", "T5 finished", statusIs("Finished"))
	lists()

	// The queue's Pause pauses T6, which runs; the replies' counts may
	// show it as it was (docs/protocol.md), so they are compared once
	// settled.
	x.qMasked(qi + "Pause")
	x.until(qi+"GetStatus&Token={T6}", "T6 paused", statusIs("Paused"))
	x.until(qi+"QueueStatus", "the queue's counts settled", func(r string) bool { return strings.Contains(r, "<paused>1</paused>") })
	x.q(qi + "QueueStatus")
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=G&Priority=2") // T7
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=H&Priority=4") // T8
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=I&Priority=2") // T9
	x.qs(
		"ChangePriority&Token={T9}&Priority=8",
		"QueueStatus",
		"GetStatus&State=queued&Sort-By=priority",
		"GetStatus&State=paused",
	)
	x.qMasked(qi + "Resume")
	// The free thread takes T9 (8); once T6 ends, its thread T8 (4); T7
	// waits.
	x.running(9, 6)
	x.q(processing)
	x.release(6)
	x.until(qi+"GetStatus&Token={T6}", "T6 finished", statusIs("Finished"))
	x.running(9, 8)
	x.q(processing)
	x.q(qi + "CancelQueued&Confirm=true")
	lists()
	x.release(8)
	x.until(qi+"GetStatus&Token={T8}", "T8 finished", statusIs("Finished"))
	x.release(9)
	x.running()
	lists()
}

var countsRe = regexp.MustCompile(`<(pending|running|completed|queued|processing|paused|finished|cancelled|stopped|error)>\d+<`)

// qMasked is q for a reply whose counts may differ (they are masked).
func (x *diff) qMasked(q string) {
	x.t.Helper()
	ra := x.a.norm(x.a.get(x.a.expand(q)))
	rb := x.b.norm(x.b.get(x.b.expand(q)))
	ra, rb = countsRe.ReplaceAllString(ra, "<$1>N<"), countsRe.ReplaceAllString(rb, "<$1>N<")
	if ra != rb {
		x.t.Errorf("the replies differ: %s\n--- single:\n%s\n--- cluster:\n%s", q, ra, rb)
	}
}

// settle waits until the cluster's queue-wide counts are the single
// node's: an action's change reaches them with its owner's next group
// commit, after its owner answers for it (docs/cluster.md).
func (x *diff) settle() {
	x.t.Helper()
	q := qi + "QueueStatus"
	deadline := time.Now().Add(20 * time.Second)
	for {
		a, b := x.a.norm(x.a.get(q)), x.b.norm(x.b.get(q))
		if a == b {
			return
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("the queue's counts never agreed:\n--- single:\n%s\n--- cluster:\n%s", a, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// variant returns submission i's token changed by f (its decoded form in,
// the token to send out), escaped for a URL.
func (d *diffSide) variant(i int, f func(decoded string) string) string {
	b, err := base64.StdEncoding.DecodeString(d.tokens[i])
	require.NoError(d.t, err)
	return url.QueryEscape(f(string(b)))
}

// qv is q with {V} replaced by each side's variant of submission i's
// token.
func (x *diff) qv(q string, i int, f func(string) string) {
	x.t.Helper()
	ra := x.a.get(strings.ReplaceAll(q, "{V}", x.a.variant(i, f)))
	rb := x.b.get(strings.ReplaceAll(q, "{V}", x.b.variant(i, f)))
	na, nb := x.a.norm(ra), x.b.norm(rb)
	if na != nb {
		x.t.Errorf("the replies differ: %s\n--- single:\n%s\n--- cluster:\n%s", q, na, nb)
	}
}

func TestDifferentialSingleAndClusterStatesAndTokens(t *testing.T) {
	t.Parallel()
	single, clu := newDiffSides(t, "")
	staged := &messages.Progress{Percent: 40, Stage: "crawl", Stages: []*messages.Stage{
		{Name: "list", Percent: 100, State: messages.State_STATE_FINISHED},
		{Name: "crawl", Percent: 30, State: messages.State_STATE_PROCESSING, Stages: []*messages.Stage{
			{Name: "fetch", Percent: 50, State: messages.State_STATE_PROCESSING},
			{Name: "store", Percent: 0, State: messages.State_STATE_QUEUED},
		}},
	}}
	single.repo.Staged, clu.repo.Staged = staged, staged
	x := newDiff(single, clu)

	x.q("action=Fetch&FetchAction=Collect&ConfigSection=S&Mode=stages") // T0
	x.until(processing, "T0 running", count("Processing", 1))
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=K&Mode=count") // T1
	x.until(processing, "T1 running", count("Processing", 2))
	x.until(qi+"GetStatus&Token={T1}", "T1's counts", func(r string) bool { return strings.Contains(r, `seen="7"`) })
	x.qs(
		"Progress&Token={T0}",
		"Progress&Token={T0}&MaxDepth=1",
		"Progress&Token={T0}&AllStages=true&ResponseFormat=simplejson",
		"Progress&Token={T1}",
		"GetStatus&Token={T1}",
		"GetStatus&Sort-By=start-time&Sort-Order=ascending",
		"GetStatus&ResponseFormat=xml",
	)
	x.settle()
	x.q(qi + "QueueStatus")
	x.threads()
	x.q("action=QueueInfo&QueueName=FETCH&QueueAction=getstatus&token={T0}")

	// A running action paused, then stopped while paused.
	x.q(qi + "Pause&Token={T0}")
	x.until(qi+"GetStatus&Token={T0}", "T0 paused", statusIs("Paused"))
	x.qs(
		"Progress&Token={T0}",
		"GetStatus&State=paused",
		"Pause&Token={T0}",
		"Stop&Token={T0}",
		"Progress&Token={T0}",
		"GetStatus&Token={T0}",
	)

	// Errors of the work.
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=F&Mode=fail") // T2
	x.until(qi+"GetStatus&Token={T2}", "T2 failed", statusIs("Error"))
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=P&Mode=panic") // T3
	x.until(qi+"GetStatus&Token={T3}", "T3 failed", statusIs("Error"))
	x.qs(
		"GetStatus&Token={T2}",
		"GetStatus&Token={T3}&ResponseFormat=json",
		"Progress&Token={T3}",
	)
	x.release(1)
	x.until(qi+"GetStatus&Token={T1}", "T1 finished", statusIs("Finished"))
	x.q(qi + "GetStatus&Token={T1}")
	x.q(qi + "Progress&Token={T1}")
	for _, q := range []string{"GetActionParameters", "Duplicate", "Pause", "Resume", "Cancel", "Stop", "ChangePriority&Priority=2"} {
		x.q(qi + q + "&Token={T2}")
		x.q(qi + q + "&Token={T1}")
		x.q(qi + q + "&Token={T0}")
	}
	x.settle()
	x.q(qi + "GetStatus&State=error")
	x.q(qi + "GetStatus&State=error,stopped&Sort-By=finish-time&Sort-Order=ascending")

	// Tokens as clients send them.
	enc := base64.StdEncoding.EncodeToString
	for name, f := range map[string]func(string) string{
		"url-safe":       func(s string) string { return base64.URLEncoding.EncodeToString([]byte(s)) },
		"no padding":     func(s string) string { return base64.RawStdEncoding.EncodeToString([]byte(s)) },
		"double escaped": func(s string) string { return url.QueryEscape(enc([]byte(s))) },
		"other host": func(s string) string {
			p := strings.Split(s, ":")
			return enc([]byte("10.9.9.9:1:" + strings.Join(p[len(p)-2:], ":")))
		},
		"other queue": func(s string) string {
			p := strings.Split(s, ":")
			return enc([]byte(p[0] + ":" + p[1] + ":OTHER:" + p[len(p)-1]))
		},
		"lower-case queue": func(s string) string {
			p := strings.Split(s, ":")
			return enc([]byte(p[0] + ":" + p[1] + ":fetch:" + p[len(p)-1]))
		},
		"other id": func(s string) string {
			p := strings.Split(s, ":")
			return enc([]byte(p[0] + ":" + p[1] + ":FETCH:0190aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee"))
		},
		"upper-case id": func(s string) string {
			return enc([]byte(strings.ToUpper(s)))
		},
		"no id": func(s string) string {
			p := strings.Split(s, ":")
			return enc([]byte(p[0] + ":" + p[1] + ":FETCH:"))
		},
	} {
		t.Log(name)
		x.qv(qi+"GetStatus&Token={V}", 1, f)
		x.qv(qi+"Progress&Token={V}", 0, f)
		x.qv(qi+"Stop&Token={V}", 2, f)
	}
	x.qv(qi+"GetStatus&Token={V}", 1, func(s string) string {
		return strings.ReplaceAll(base64.StdEncoding.EncodeToString([]byte(s)), "+", " ")
	})

	// One action per task at a time, across the cluster.
	x.q("action=Fetch&FetchAction=Synchronize&ConfigSection=X") // T4
	x.until(processing, "T4 running", count("Processing", 1))
	x.q("action=Fetch&FetchAction=Synchronize&ConfigSection=X&Priority=9") // T5 waits for X
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=Y")                // T6 runs
	x.until(processing, "T6 running", func(r string) bool { return count("Processing", 2)(r) && strings.Contains(r, "T6<") })
	x.qs(
		"GetStatus&Token={T5}",
		"Pause&Token={T5}",
		"ChangePriority&Token={T5}&Priority=7",
		"GetActionParameters&Token={T5}",
		"Resume&Token={T5}",
	)
	x.q(qi + "Duplicate&Token={T4}") // T7: Synchronize X, priority 0
	x.q(qi + "GetStatus&Token={T7}")
	x.q(qi + "GetActionParameters")
	x.settle()
	x.q(qi + "GetStatus&State=queued")
	x.q(qi + "CancelQueued")
	x.release(4)
	x.until(processing, "T5 running", func(r string) bool { return count("Processing", 2)(r) && strings.Contains(r, "T5<") })
	x.q(qi + "GetStatus&Token={T7}")
	x.release(5)
	x.until(processing, "T7 running", func(r string) bool { return count("Processing", 2)(r) && strings.Contains(r, "T7<") })
	x.release(6)
	x.release(7)
	x.running()

	// Many queued actions: pages, sorting by priority with ties, the
	// reply's limit.
	x.qMasked(qi + "Pause")
	for i := 0; i < 56; i++ { // T8..T63
		x.q(fmt.Sprintf("action=Fetch&FetchAction=Collect&ConfigSection=M%d&Mode=instant&Priority=%d", i, i%4))
	}
	x.settle()
	for _, q := range []string{
		"GetStatus", "GetStatus&Start=51", "GetStatus&Start=40&MaxResults=20",
		"GetStatus&State=queued&Sort-By=priority", "GetStatus&State=queued&Sort-By=priority&Sort-Order=ascending",
		"GetStatus&State=queued&Sort-By=priority&Start=13&MaxResults=5",
		"GetStatus&State=queued&Sort-By=queue-time&Sort-Order=ascending&Start=50",
		"GetStatus&Min-Priority=2&Max-Priority=2&Sort-By=priority",
		"GetActionParameters&Start=50", "GetActionParameters&MaxResults=3&Start=7",
		"CancelQueued&Sort-By=priority&Start=3&MaxResults=5",
		"CancelQueued&Min-Priority=3&Confirm=true",
		"CancelQueued&Sort-By=priority&Sort-Order=ascending&MaxResults=2&Confirm=true",
	} {
		x.q(qi + q)
	}
	x.settle()
	x.q(qi + "QueueStatus")
	x.qMasked(qi + "Resume")
	x.drained()
	x.settle()
	x.qs(
		"QueueStatus",
		"GetStatus&State=cancelled&Sort-By=priority",
		"GetStatus&State=finished&MaxResults=5&Sort-By=priority&Sort-Order=ascending",
	)
}

func TestDifferentialSingleAndClusterLimits(t *testing.T) {
	t.Parallel()
	single, clu := newDiffSides(t, "")
	x := newDiff(single, clu)
	for _, q := range []string{
		"action=Fetch&FetchAction=Collect&ConfigSection=A&Priority=abc",
		"action=Fetch&FetchAction=Collect&ConfigSection=A&Priority=3000000000",
		"action=Fetch&FetchAction=Collect&ConfigSection=A&Priority=-3000000000",
		"action=Fetch&ConfigSection=A",
		"action=Fetch&FetchAction=Nope&ConfigSection=A",
	} {
		x.q(q)
	}
	x.q(qi + "Pause")
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=A&Priority=-5")         // T0
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=B&Priority=2147483647") // T1
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=C&Mode=instant")        // T2
	x.q("action=Fetch&FetchAction=Synchronize&ConfigSection=X")                 // T3
	x.q("action=Fetch&FetchAction=Synchronize&ConfigSection=X&Priority=1")      // T4
	x.q(qi + "Pause&Token={T2}")
	x.q(qi + "Duplicate&Token={T2}") // T5
	x.qs(
		"GetStatus&Token={T5}",
		"GetActionParameters&Token={T2}",
		"GetActionParameters",
	)
	for _, q := range []string{
		"ChangePriority&Token={T0}&Priority=-2147483648",
		"ChangePriority&Token={T0}&Priority=2147483648",
		"ChangePriority&Token={T0}&Priority=",
		"GetStatus&Min-Priority=5&Max-Priority=1",
		"GetStatus&Start=99999999999",
		"GetStatus&Start=4294967297",
		"GetStatus&MaxResults=99999999999",
		"GetStatus&MaxResults=-1",
		"GetStatus&Start=-1",
		"GetStatus&Min-Priority=-2147483648&Sort-By=priority",
		"GetStatus&Max-Priority=2147483647&Min-Priority=2147483647",
		"GetStatus&Queued-After=2026-01-15",
		"GetStatus&Queued-Before=2999-01-15%2010:00:00",
		"GetStatus&Queued-After=2999-01-15T10:00:00Z",
		"GetStatus&Queued-After=0",
		"GetStatus&Finished-After=0",
		"GetStatus&State=queued,queued",
		"GetStatus&State=",
		"GetStatus&State=%20queued%20,%20paused",
		"GetStatus&State=queued,",
		"GetStatus&Sort-By=PRIORITY&Sort-Order=ASCENDING",
		"GetActionParameters&MaxResults=51",
		"GetActionParameters&Start=0",
		"GetActionParameters&State=queued",
		"CancelQueued&State=queued&Sort-By=priority",
		"CancelQueued&Finished-After=0",
		"CancelQueued&State=paused",
		"QueueStatus&Token=garbage",
		"ChangePriority&Token={T0}&Priority=-5",
	} {
		x.q(qi + q)
	}
	// The queue's pause holds the paused T2; a resumed queue runs the
	// others in priority order, T4 holding X, so T3 waits.
	x.qMasked(qi + "Resume")
	x.running(1, 4)
	x.q(processing)
	// The queue paused again: running actions pause; Resume of one of
	// them lifts its own pause only.
	x.qMasked(qi + "Pause")
	x.until(qi+"GetStatus&State=paused", "T1 and T4 paused", func(r string) bool {
		return strings.Contains(r, "T1<") && strings.Contains(r, "T4<")
	})
	x.settle()
	x.qs(
		"GetStatus&State=paused",
		"Resume&Token={T1}",
		"GetStatus&Token={T1}",
	)
	x.q(qi + "Resume&Token={T2}") // T2 paused before it started: queued again, the queue still paused
	x.q(qi + "GetStatus&Token={T2}")
	x.q(qi + "Stop&Token={T4}")   // paused and running
	x.q(qi + "Cancel&Token={T3}") // waiting for X
	x.settle()
	x.q(qi + "GetStatus")
	x.qMasked(qi + "Resume")
	// T1 runs on; the free thread runs T2 (0, instant) then its copy T5,
	// then T0 (-5).
	x.until(qi+"GetStatus&Token={T2}", "T2 finished", statusIs("Finished"))
	x.until(qi+"GetStatus&Token={T5}", "T5 finished", statusIs("Finished"))
	x.running(1, 0)
	x.release(0)
	x.release(1)
	x.running()
	x.settle()
	x.q(qi + "GetStatus")
}

var threadTokenRe = regexp.MustCompile(`<autn:token>([^<]*)</autn:token>`)

// threads compares ThreadStatus: a cluster node lists its own threads
// (MaximumThreads is per node), so the busy threads of all its nodes
// together are compared with the single node's.
func (x *diff) threads() {
	x.t.Helper()
	busy := func(d *diffSide) []string {
		var toks []string
		for _, addr := range d.addrs {
			for _, m := range threadTokenRe.FindAllStringSubmatch(d.norm(d.getAt(addr, "action=ThreadStatus")), -1) {
				toks = append(toks, m[1])
			}
		}
		sort.Strings(toks)
		return toks
	}
	require.Equal(x.t, busy(x.a), busy(x.b), "the actions on threads")
}

func TestDifferentialSingleAndClusterRetention(t *testing.T) {
	t.Parallel()
	single, clu := newDiffSides(t, "MaximumFinishedActions=3\nMaximumQueueSize=4\nFinishedActionMaxAge=30s")
	x := newDiff(single, clu)
	x.q(qi + "Pause")
	for i := 0; i < 5; i++ { // T0..T3, the fifth refused
		x.q(fmt.Sprintf("action=Fetch&FetchAction=Collect&ConfigSection=A%d&Priority=%d", i, i%2))
	}
	x.settle()
	x.q(qi + "QueueStatus")
	x.q(qi + "Duplicate&Token={T0}") // refused: the queue is full
	x.q(qi + "Cancel&Token={T0}")
	x.q(qi + "Duplicate&Token={T1}") // T4
	x.q(qi + "Stop&Token={T2}")
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=B&Mode=instant") // T5
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=C")              // refused
	x.settle()
	x.q(qi + "GetStatus")
	x.qMasked(qi + "Resume")
	// T1 and T3 (1) run, T4 (1); T5 finishes at once once a thread is
	// free.
	x.running(1, 3)
	for _, i := range []int{1, 3, 4} {
		x.release(i)
		x.until(fmt.Sprintf(qi+"GetStatus&Token={T%d}", i), "finished", func(r string) bool {
			return statusIs("Finished")(r) || strings.Contains(r, "CONQUEUEINFO111")
		})
	}
	x.drained()
	// Retention keeps the three most recently ended of the six.
	x.until(qi+"QueueStatus", "retention", func(r string) bool { return strings.Contains(r, "<completed>3</completed>") })
	x.settle()
	x.q(qi + "QueueStatus")
	x.q(qi + "GetStatus")
	for i := 0; i < 6; i++ {
		x.q(fmt.Sprintf(qi+"GetStatus&Token={T%d}", i))
	}
}

// The order in which actions that wait for one task run: one at a time,
// in priority order, then arrival, whichever node they were sent to.
func TestDifferentialSingleAndClusterTaskOrder(t *testing.T) {
	t.Parallel()
	single, clu := newDiffSides(t, "")
	x := newDiff(single, clu)
	x.q("action=Fetch&FetchAction=Synchronize&ConfigSection=X") // T0 holds X
	x.until(processing, "T0 running", count("Processing", 1))
	prios := []int{0, 3, 3, 1, 5, 3, 0, 5, -1, 2}
	for i, p := range prios { // T1..T10
		x.q(fmt.Sprintf("action=Fetch&FetchAction=Synchronize&ConfigSection=X&Priority=%d&N=%d", p, i))
	}
	x.qs(
		"ChangePriority&Token={T9}&Priority=4",
		"ChangePriority&Token={T5}&Priority=-3",
		"Pause&Token={T2}",
	)
	x.q(qi + "Duplicate&Token={T4}") // T11, priority 1
	x.qs(
		"Stop&Token={T8}",
		"Cancel&Token={T6}",
		"Pause&Token={T7}",
		"Resume&Token={T7}",
	)
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=Y") // T12 runs beside
	x.until(processing, "T12 running", func(r string) bool { return count("Processing", 2)(r) && strings.Contains(r, "T12<") })
	x.release(12)
	x.settle()
	x.qs(
		"GetStatus&State=queued&Sort-By=priority",
		"GetActionParameters",
		"CancelQueued&Sort-By=priority&Sort-Order=ascending",
	)
	x.threads()
	// Release the runner, one at a time; record who runs next.
	var order []string
	cur := 0
	for step := 0; step < 9; step++ {
		x.release(cur)
		x.until(fmt.Sprintf(qi+"GetStatus&Token={T%d}", cur), "the runner finished", statusIs("Finished"))
		next := -1
		x.until(qi+"GetStatus&State=queued,processing", "the next runner", func(r string) bool {
			return count("Processing", 1)(r) || !strings.Contains(r, "<status>Queued")
		})
		if step == 5 {
			// Once the next one runs, so that it cannot race the claim.
			x.q(qi + "Resume&Token={T2}")
		}
		na, nb := x.q(processing)
		if na != nb || !strings.Contains(na, "<token>T") {
			break
		}
		n, err := strconv.Atoi(between(na, "<token>T", "</token>"))
		require.NoError(t, err, na)
		next = n
		order = append(order, fmt.Sprintf("T%d", next))
		cur = next
	}
	t.Logf("ran after T0: %v", order)
	x.release(cur)
	x.running()
	x.settle()
	x.q(qi + "GetStatus&Sort-By=finish-time&Sort-Order=ascending")
}

// A node that leaves cleanly: the actions it owned, ended or waiting,
// answer from the other nodes as they did before, and as the single
// node's do.
func TestDifferentialSingleAndClusterNodeLeaves(t *testing.T) {
	t.Parallel()
	single, clu := newDiffSides(t, "")
	staged := &messages.Progress{Percent: 40, Stage: "crawl", Stages: []*messages.Stage{
		{Name: "list", Percent: 100, State: messages.State_STATE_FINISHED},
		{Name: "crawl", Percent: 30, State: messages.State_STATE_PROCESSING},
	}}
	single.repo.Staged, clu.repo.Staged = staged, staged
	x := newDiff(single, clu)
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=A&Mode=instant&Extra=%C3%A9t%C3%A9") // T0
	x.until(qi+"GetStatus&Token={T0}", "T0 finished", statusIs("Finished"))
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=B&Mode=fail") // T1
	x.until(qi+"GetStatus&Token={T1}", "T1 failed", statusIs("Error"))
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=C&Mode=count") // T2
	x.until(qi+"GetStatus&Token={T2}", "T2's counts", func(r string) bool { return strings.Contains(r, `seen="7"`) })
	x.q("action=Fetch&FetchAction=Synchronize&ConfigSection=D&Mode=stages") // T3
	x.until(processing, "T2 and T3 running", count("Processing", 2))
	x.release(2)
	x.until(qi+"GetStatus&Token={T2}", "T2 finished", statusIs("Finished"))
	x.q(qi + "Stop&Token={T3}")
	x.running()
	x.qMasked(qi + "Pause")
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=E") // T4
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=F") // T5
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=G") // T6
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=H") // T7
	x.qs(
		"Cancel&Token={T4}",
		"Pause&Token={T5}",
		"ChangePriority&Token={T6}&Priority=4",
		"Stop&Token={T7}",
	)
	all := func() {
		t.Helper()
		x.settle()
		for i := 0; i < 8; i++ {
			for _, q := range []string{"GetStatus", "Progress", "GetActionParameters"} {
				x.q(fmt.Sprintf(qi+"%s&Token={T%d}", q, i))
			}
		}
		x.qs(
			"GetStatus",
			"GetStatus&ResponseFormat=simplejson",
			"GetStatus&Sort-By=finish-time",
			"GetStatus&Sort-By=start-time&Sort-Order=ascending",
			"GetActionParameters",
			"QueueStatus",
			"CancelQueued",
		)
	}
	all()
	// The second node leaves.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, clu.nodes[1].Shutdown(ctx))
	clu.addrs = clu.addrs[:1]
	// The queue's threads are its live nodes'.
	clu.also = func(r string) string {
		return strings.ReplaceAll(r, "<maximum_threads>1<", "<maximum_threads>2<")
	}
	all()
	x.q(qi + "ChangePriority&Token={T5}&Priority=2")
	x.q(qi + "Resume&Token={T5}")
	x.q(qi + "Duplicate&Token={T6}") // T8
	x.q(qi + "Cancel&Token={T6}")
	all()
	x.qMasked(qi + "Resume")
	// The one node left runs T8 (4) first, as the single node does.
	x.until(processing, "T8 running", func(r string) bool { return strings.Contains(r, "T8<") })
	x.release(8)
	x.until(qi+"GetStatus&Token={T5}", "T5 running", statusIs("Processing"))
	x.release(5)
	x.drained()
	// (The single node ran T5 and T8 at once, on its two threads: their
	// start times are not compared.)
	x.settle()
	x.q(qi + "QueueStatus")
	for _, i := range []int{5, 8} {
		x.q(fmt.Sprintf(qi+"GetStatus&Token={T%d}", i))
		x.q(fmt.Sprintf(qi+"Progress&Token={T%d}", i))
	}
}

// where says where two replies part: the rest of each from there.
func where(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(0, i-200)
	return fmt.Sprintf("\n--- from byte %d, single: ...%s\n--- cluster: ...%s", i, a[from:min(len(a), i+400)], b[from:min(len(b), i+400)])
}

// qf is q with a request made for each side by f (from its own replies).
func (x *diff) qf(f func(d *diffSide) string) {
	x.t.Helper()
	qa, qb := f(x.a), f(x.b)
	na, nb := x.a.norm(x.a.get(qa)), x.b.norm(x.b.get(qb))
	if na != nb {
		x.t.Errorf("the replies differ: %s / %s%s", qa, qb, where(na, nb))
	}
}

var queuedTimeRe = regexp.MustCompile(`<(queued_time|process_start_time|process_end_time)>([^<]*)<`)

// timeOf returns the time element of submission i's action, as shown.
func (d *diffSide) timeOf(i int, elem string) time.Time {
	d.t.Helper()
	r := d.get(qi + "GetStatus&Token=" + d.tok(i))
	for _, m := range queuedTimeRe.FindAllStringSubmatch(r, -1) {
		if m[1] == elem {
			at, err := time.ParseInLocation("2006-Jan-02 15:04:05", m[2], time.Local)
			require.NoError(d.t, err)
			return at
		}
	}
	d.t.Fatalf("no %s in %s", elem, r)
	return time.Time{}
}

// The time filters' bounds, at the times the actions show.
func TestDifferentialSingleAndClusterTimeBounds(t *testing.T) {
	t.Parallel()
	single, clu := newDiffSides(t, "")
	x := newDiff(single, clu)
	x.q("action=Fetch&FetchAction=Collect&ConfigSection=A&Mode=instant") // T0
	x.until(qi+"GetStatus&Token={T0}", "T0 finished", statusIs("Finished"))
	x.settle()
	for _, elem := range []string{"queued_time", "process_end_time"} {
		param := map[string]string{"queued_time": "Queued", "process_end_time": "Finished"}[elem]
		for _, shift := range []time.Duration{-time.Second, 0, time.Second} {
			for _, side := range []string{"After", "Before"} {
				for _, format := range []string{"unix", "2006-Jan-02 15:04:05", time.RFC3339} {
					x.qf(func(d *diffSide) string {
						at := d.timeOf(0, elem).Add(shift)
						v := strconv.FormatInt(at.Unix(), 10)
						if format != "unix" {
							v = url.QueryEscape(at.Format(format))
						}
						return qi + "GetStatus&" + param + "-" + side + "=" + v
					})
				}
			}
		}
	}
}

// running waits until the actions of the submissions want, and no other,
// run on both sides.
func (x *diff) running(want ...int) {
	x.t.Helper()
	x.until(processing, fmt.Sprintf("%v running", want), func(r string) bool {
		for _, i := range want {
			if !strings.Contains(r, fmt.Sprintf("<token>T%d<", i)) {
				return false
			}
		}
		return count("Processing", len(want))(r)
	})
}

// drained waits until nothing is queued or running on both sides.
func (x *diff) drained() {
	x.t.Helper()
	x.until(qi+"QueueStatus", "the queue drained", func(r string) bool {
		return strings.Contains(r, "<pending>0</pending>") && strings.Contains(r, "<running>0</running>")
	})
}

// qs is q of each QueueInfo request (qi and each).
func (x *diff) qs(queries ...string) {
	x.t.Helper()
	for _, q := range queries {
		x.q(qi + q)
	}
}
