// Command restbench measures the Webex and Objective connectors against
// their stand-ins (connectors/webexfetch/webextest and
// connectors/objectivefetch/objectivetest), in this process on 127.0.0.1:
//
//  1. Full Synchronize: items per second for N messages (Webex) or
//     documents (Objective), default 10 000, with a bbolt datastore and an
//     IDX folder on disk, against a ceiling measured in the same run: a
//     plain client (net/http, encoding/json) listing and downloading the
//     same items, with no datastore and no ingestion. The ceiling fetches
//     what any client must fetch to index an item as the connector does,
//     and nothing the connector could avoid: Webex, the rooms, each room's
//     members (a message's security list) and messages page by page
//     (decoded whole: a message's text is in its JSON), and each file;
//     Objective, the folders' listings and, for each document, its
//     catalogue fields, its permissions and its content (the stand-in,
//     like the public client it follows, offers no way to have fields or
//     permissions with the listing, and whether a document inherits its
//     folder's permissions is known only from its own permissions answer).
//     For Objective the figures of a client downloading only the contents
//     are shown too (the ceiling before 2026-12-05). Each side first makes
//     one untimed pass (the process's heap grows to its working size:
//     see warmUp; RESTBENCH_WARMUP=0 leaves it out); then the runs, in
//     which the two sides take turns going first; the figures are
//     medians. The log gives each run's page faults. The CPU time of the
//     process (getrusage, user + system) during each timed pass is given
//     per 1000 items: it counts
//     the stand-in serving the requests as well as the client, so the
//     difference between the connector's and the ceiling's is the
//     connector's own extra work.
//  2. Re-sync of the unchanged service: the requests sent, per room or
//     folder; and after a change in a few rooms or folders.
//
// It prints a Markdown section (and writes it with -results between the
// "rest" markers of RESULTS.md). For analysis, RESTBENCH_NOINGEST=1 runs
// the connectors without an ingestion target, RESTBENCH_MEMSTORE=1 with an
// in-memory store, RESTBENCH_CONCURRENCY=N sets the Webex task's
// Concurrency (rooms read at once; default 4), RESTBENCH_LATENCY=D makes
// every answer of the Webex stand-in wait D (a service across a network:
// there the ceiling, one request at a time, is not what a connector
// should be held to), RESTBENCH_CPUPROFILE=FILE profiles each timed full
// Synchronize of each connector (FILE.webex, FILE.webex.2, ...,
// FILE.objective, ...: pprof merges them), RESTBENCH_MEMPROFILE=FILE
// writes the allocations so far after each of them (compare two with
// pprof -base), and RESTBENCH_BLOCKPROFILE=FILE writes block profiles
// (where goroutines waited, since the first).
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/oauth2"

	benchresult "github.com/connectorhq/connector/bench/internal/result"
	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/objectivefetch"
	"github.com/connectorhq/connector/connectors/objectivefetch/objectivetest"
	"github.com/connectorhq/connector/connectors/webexfetch"
	"github.com/connectorhq/connector/connectors/webexfetch/webextest"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/oauth"
	"github.com/connectorhq/connector/secret"
	"github.com/connectorhq/connector/store"
)

// ingestBatch is [Ingestion] IngestBatchSize of the runs (-batch).
var ingestBatch = 100

// containers is how many rooms (Webex) or folders (Objective) hold the N
// items.
const containers = 50

func main() {
	n := flag.Int("n", 10000, "messages (Webex) and documents (Objective)")
	runs := flag.Int("runs", 5, "alternating runs of each connector and its ceiling (medians)")
	results := flag.String("results", "", "RESULTS.md to update between <!-- rest:begin --> and <!-- rest:end -->")
	flag.IntVar(&ingestBatch, "batch", 100, "[Ingestion] IngestBatchSize of the connectors' IDX target")
	only := flag.String("only", "", "webex or objective: that connector alone (analysis; -results needs both)")
	flag.Parse()
	var rs []*result
	if *only != "objective" {
		w, err := benchWebex(*n, *runs)
		if err != nil {
			log.Fatal("webex: ", err)
		}
		rs = append(rs, w)
	}
	if *only != "webex" {
		o, err := benchObjective(*n, *runs)
		if err != nil {
			log.Fatal("objective: ", err)
		}
		rs = append(rs, o)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- rest:begin -->\n")
	fmt.Fprintf(&b, "Measured %s on this machine (2 cores, shared), %d items in %d rooms or folders, medians of %d runs after an untimed one of each side (RESTBENCH_WARMUP=%s), the sides taking turns going first, the stand-in in the same process (no OpenAPI validation while timing), a bbolt datastore and an IDX folder on disk (IngestBatchSize=%d); each ratio is taken within a run, then its median (min–max).\n\n",
		time.Now().UTC().Format("2006-01-02"), *n, containers, *runs, map[bool]string{true: "1", false: "0"}[warmUp()], ingestBatch)
	fmt.Fprintf(&b, "| Figure | Value | Reference (same run) | Ratio | Goal |\n|---|---|---|---|---|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s: full Synchronize, %s/s (lists, files, documents, IDX files, datastore) | %.0f | %s: %.0f | **%s** | ≥ 0.7 |\n",
			r.name, r.unit, median(r.ours), r.ceilingName, median(r.ceiling), ratioCell(r.ours, r.ceiling))
		if len(r.ceiling2) > 0 {
			fmt.Fprintf(&b, "| %s: the same | %.0f | %s: %.0f | %s | |\n", r.name, median(r.ours), r.ceiling2Name, median(r.ceiling2), ratioCell(r.ours, r.ceiling2))
		}
		if len(r.ceiling3) > 0 {
			fmt.Fprintf(&b, "| %s: the same | %.0f | %s: %.0f | %s | |\n", r.name, median(r.ours), r.ceiling3Name, median(r.ceiling3), ratioCell(r.ours, r.ceiling3))
		}
		fmt.Fprintf(&b, "| %s: CPU of the process per 1000 %s, ms (connector or client, and the stand-in) | %s | ceiling: %s | %s | |\n",
			r.name, r.unit, fmtRange(r.oursCPU, "%.0f"), fmtRange(r.ceilingCPU, "%.0f"), ratioCell(r.oursCPU, r.ceilingCPU))
		fmt.Fprintf(&b, "| %s: re-sync of the unchanged service, requests | %d (%s) | %d %s | %.2f per %s | a handful per %s |\n",
			r.name, r.resync.total, r.resync.detail, containers, r.container+"s", float64(r.resync.total)/containers, r.container, r.container)
		fmt.Fprintf(&b, "| %s: re-sync after one new item in each of 5 %ss, requests | %d (%s) | | | |\n",
			r.name, r.container, r.changed.total, r.changed.detail)
	}
	for _, r := range rs {
		fmt.Fprintf(&b, "\n%s runs (%s/s): ceiling %s; ours %s.", r.name, r.unit, fmtList(r.ceiling), fmtList(r.ours))
		if len(r.ceiling2) > 0 {
			fmt.Fprintf(&b, " %s: %s.", r.ceiling2Name, fmtList(r.ceiling2))
		}
		if len(r.ceiling3) > 0 {
			fmt.Fprintf(&b, " %s: %s.", r.ceiling3Name, fmtList(r.ceiling3))
		}
		fmt.Fprintf(&b, " CPU per 1000 %s, ms: ceiling %s; ours %s.", r.unit, fmtList(r.ceilingCPU), fmtList(r.oursCPU))
	}
	fmt.Fprintf(&b, "\n\nCommand: `make -C bench rest` (bench/rest.sh: `out/bin/restbench -n %d -runs %d -batch %d -results RESULTS.md`).\n", *n, *runs, ingestBatch)
	fmt.Fprintf(&b, "<!-- rest:end -->\n")
	fmt.Print(b.String())
	if *results != "" && *only == "" {
		if err := splice(*results, b.String()); err != nil {
			log.Fatal(err)
		}
	}
}

type result struct {
	name, unit, container string
	ceilingName           string
	ceiling2Name          string
	ceiling3Name          string
	ceiling, ceiling2     []float64
	ceiling3              []float64 // Objective: contents only
	ours                  []float64
	// CPU milliseconds of the process per 1000 items, per run.
	ceilingCPU, oursCPU []float64
	resync, changed     requests
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perThousand is CPU milliseconds per 1000 of n items.
func perThousand(cpu time.Duration, n int) float64 {
	return float64(cpu) / float64(time.Millisecond) * 1000 / float64(n)
}

// fmtRange is "median (min–max)".
func fmtRange(xs []float64, format string) string {
	if len(xs) == 0 {
		return ""
	}
	return fmt.Sprintf(format+" ("+format+"–"+format+")", median(xs), slices.Min(xs), slices.Max(xs))
}

type requests struct {
	total  int
	detail string
}

func requestsOf(by map[string]int, total int) requests {
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range by {
			if !yield(k) {
				return
			}
		}
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", by[k], k))
	}
	return requests{total: total, detail: strings.Join(parts, ", ")}
}

func fmtList(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.0f", x))
	}
	return strings.Join(parts, ", ")
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// text is a message's or document's text, a few hundred bytes of prose.
func text(i int) string {
	return fmt.Sprintf("Item %d. ", i) + strings.Repeat("The quarterly figures are attached and the meeting moves to Thursday. ", 5)
}

// syncOnce runs one Synchronize of repo's first task and returns the
// documents it delivered and its duration; profile names its profiles
// (RESTBENCH_CPUPROFILE, RESTBENCH_BLOCKPROFILE), "" for none.
func syncOnce(repo fetch.Repository, profile string) (uint64, time.Duration, error) {
	tasks, err := repo.Validate("SYNCHRONIZE", nil)
	if err != nil {
		return 0, 0, err
	}
	job := fetch.NewJob("bench", "SYNCHRONIZE", nil, tasks)
	if p := os.Getenv("RESTBENCH_CPUPROFILE"); p != "" && profile != "" {
		if f, err := os.Create(p + "." + profile); err == nil {
			_ = pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
		}
	}
	if p := os.Getenv("RESTBENCH_BLOCKPROFILE"); p != "" && profile != "" {
		runtime.SetBlockProfileRate(10000) // a sample per 10 µs blocked
		defer func() {
			runtime.SetBlockProfileRate(0)
			if f, err := os.Create(p + "." + profile); err == nil {
				_ = pprof.Lookup("block").WriteTo(f, 0)
				_ = f.Close()
			}
		}()
	}
	if os.Getenv("RESTBENCH_MEMPROFILE") != "" && profile != "" {
		runtime.MemProfileRate = 4096
		runtime.GC()
	}
	start := time.Now()
	if _, err := repo.Run(context.Background(), job); err != nil {
		return 0, 0, err
	}
	d := time.Since(start)
	if p := os.Getenv("RESTBENCH_MEMPROFILE"); p != "" && profile != "" {
		if f, err := os.Create(p + "." + profile); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			_ = f.Close()
		}
	}
	c := job.Snapshot()[0]
	if c.Errors > 0 {
		return 0, 0, fmt.Errorf("%d errors: %v", c.Errors, job.Failures())
	}
	return c.Added + c.Updated, d, nil
}

// env is a connector's store and IDX folder in a fresh folder.
type env struct {
	dir    string
	st     store.Store
	target ingest.Target
}

func newEnv(dir string) (*env, error) {
	sc := store.Config{Dir: filepath.Join(dir, "data")}
	if os.Getenv("RESTBENCH_MEMSTORE") != "" {
		sc = store.Config{Driver: store.DriverMemory}
	}
	st, err := store.Open(sc)
	if err != nil {
		return nil, err
	}
	t, err := ingest.Open(ingest.Options{Type: "IDX", Directory: filepath.Join(dir, "ingest"), BatchSize: ingestBatch}, nil)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &env{dir: dir, st: st, target: t}, nil
}

// deliverTo is the target the connector is given (none with
// RESTBENCH_NOINGEST).
func (e *env) deliverTo() ingest.Target {
	if os.Getenv("RESTBENCH_NOINGEST") != "" {
		return nil
	}
	return e.target
}

func (e *env) close() {
	_ = e.target.Close()
	_ = e.st.Close()
}

// profileName is the name of the profiles of a connector's run r
// (counted from 0): NAME for the first, NAME.2, NAME.3, ... for the
// others (pprof merges several: go tool pprof BIN FILE.webex FILE.webex.*).
func profileName(name string, r int) string {
	if r == 0 {
		return name
	}
	return name + "." + strconv.Itoa(r+1)
}

// warmUp reports whether each connector and its ceiling make one untimed
// pass before the timed runs (RESTBENCH_WARMUP=0: not). The first passes
// of a process were slower on both sides, the connector's more (quiet
// take of 2026-12-05: Webex 0.68 and 0.72 of the ceiling in runs 1 and 2,
// then 0.75-0.79): the process's heap grows to its working size (from
// ~40 MB after the set-up to ~85 MB over the first two runs), each new
// page costing a page fault in the Go allocator (perf: memmove, span
// initialisation, memclr; about 1.5 µs of system CPU and 5-10 µs of wall
// time each on this virtual machine, measured under load), while the
// collector paces itself to the growing heap. The plain client's first
// pass takes ~4000-5000 faults and its later ones almost none; the
// connector's first ~6000-11000, falling over the next runs (the log
// gives them). A server that runs for days is past that.
func warmUp() bool { return os.Getenv("RESTBENCH_WARMUP") != "0" }

// order is the order of the sides in run r: 0 the ceiling, 1 the
// connector; they take turns going first, so that neither always runs in
// the wake of the other (its garbage collected, its files written back).
func order(r int) [2]int {
	if r%2 == 0 {
		return [2]int{0, 1}
	}
	return [2]int{1, 0}
}

// faults is the process's minor page faults so far.
func faults() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Minflt
}

// --- Webex ---

func benchWebex(n, runs int) (*result, error) {
	srv := webextest.New(webextest.Options{})
	defer srv.Close()
	var people []string
	for i := range 10 {
		people = append(people, srv.AddPerson(fmt.Sprintf("person%d@example.com", i), fmt.Sprintf("Person %d", i)))
	}
	srv.SetMe(people[0], false)
	var rooms []string
	for r := range containers {
		rooms = append(rooms, srv.AddRoom(fmt.Sprintf("Room %d", r), "group", people...))
	}
	files := 0
	for i := range n {
		room := rooms[i%containers]
		m := &webextest.Message{RoomID: room, PersonID: people[i%len(people)], Text: text(i)}
		if i%20 == 0 {
			m.Files = []string{srv.AddFile(&webextest.File{Name: fmt.Sprintf("notes-%d.txt", i), ContentType: "text/plain", Data: []byte(strings.Repeat(text(i), 5))})}
			files++
		}
		srv.PostMessage(m)
	}
	if d, err := time.ParseDuration(os.Getenv("RESTBENCH_LATENCY")); err == nil && d > 0 {
		// Each answer waits d, as a service across a network would.
		srv.SetFault(func(*http.Request) *webextest.Fault { time.Sleep(d); return nil })
	}
	res := &result{name: "Webex", unit: "messages", container: "room", ceilingName: "plain client listing the same rooms, members and messages and downloading the files"}
	token := srv.IssueAccessToken()
	hc := &http.Client{}
	// ceiling is one pass of the plain client: messages/s, CPU ms per
	// 1000, page faults.
	ceiling := func() (float64, float64, int64, error) {
		f0, c0 := faults(), cpuTime()
		t, err := webexCeiling(hc, srv.URL, token, n, files)
		if err != nil {
			return 0, 0, 0, err
		}
		return float64(n) / t.Seconds(), perThousand(cpuTime()-c0, n), faults() - f0, nil
	}
	// ours is one full Synchronize into a fresh datastore and IDX folder;
	// with last, the re-syncs are measured with them once both sides of
	// the run are done (resync).
	var resync func() error
	ours := func(profile string, last bool) (float64, float64, int64, error) {
		dir, err := os.MkdirTemp("", "restbench-webex-")
		if err != nil {
			return 0, 0, 0, err
		}
		repo, e, err := webexRepo(srv, dir)
		if err != nil {
			_ = os.RemoveAll(dir)
			return 0, 0, 0, err
		}
		done := func() { e.close(); _ = os.RemoveAll(dir) }
		f0, c0 := faults(), cpuTime()
		docs, d, err := syncOnce(repo, profile)
		if err != nil {
			return 0, 0, 0, err
		}
		cpu, flt := perThousand(cpuTime()-c0, n), faults()-f0
		if want := uint64(n + files + containers); docs != want {
			done()
			return 0, 0, 0, fmt.Errorf("delivered %d documents, want %d", docs, want)
		}
		if !last {
			done()
			return float64(n) / d.Seconds(), cpu, flt, nil
		}
		resync = func() error {
			defer done()
			srv.ResetRequests()
			if _, _, err := syncOnce(repo, ""); err != nil {
				return err
			}
			res.resync = requestsOf(srv.Requests())
			for _, room := range rooms[:5] {
				srv.Post(room, people[1], "one more")
			}
			srv.ResetRequests()
			if _, _, err := syncOnce(repo, ""); err != nil {
				return err
			}
			res.changed = requestsOf(srv.Requests())
			return nil
		}
		return float64(n) / d.Seconds(), cpu, flt, nil
	}
	if warmUp() {
		// Untimed: the process's heap grows to its working size (see
		// warmUp), for both sides.
		if _, _, _, err := ceiling(); err != nil {
			return nil, err
		}
		if _, _, _, err := ours("", false); err != nil {
			return nil, err
		}
	}
	for r := range runs {
		var cr, ccpu, or, ocpu float64
		var cflt, oflt int64
		var err error
		// The sides take turns going first (order effects).
		for _, side := range order(r) {
			if side == 0 {
				cr, ccpu, cflt, err = ceiling()
			} else {
				or, ocpu, oflt, err = ours(profileName("webex", r), r == runs-1)
			}
			if err != nil {
				return nil, err
			}
		}
		res.ceiling, res.ceilingCPU = append(res.ceiling, cr), append(res.ceilingCPU, ccpu)
		res.ours, res.oursCPU = append(res.ours, or), append(res.oursCPU, ocpu)
		log.Printf("webex run %d: ceiling %.0f msg/s, ours %.0f msg/s; CPU per 1000: ceiling %.0f ms, ours %.0f ms; page faults: ceiling %d, ours %d (%s first)",
			r+1, cr, or, ccpu, ocpu, cflt, oflt, [2]string{"ceiling", "ours"}[order(r)[0]])
	}
	if resync != nil {
		if err := resync(); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func webexRepo(srv *webextest.Server, dir string) (fetch.Repository, *env, error) {
	e, err := newEnv(dir)
	if err != nil {
		return nil, nil, err
	}
	key, err := secret.EnsureKeyFile(filepath.Join(dir, "aes.ky"))
	if err != nil {
		return nil, nil, err
	}
	if err := (oauth.TokenFile{Path: filepath.Join(dir, "webex.token"), Key: key}).Save(&oauth2.Token{RefreshToken: srv.IssueRefreshToken()}, "client-id", nil); err != nil {
		return nil, nil, err
	}
	text := fmt.Sprintf(`[Connector]
Type=WEBEX
[Server]
DataDirectory=%[1]s/data
[Security]
AESKeyFile=%[1]s/aes.ky
[FetchTasks]
0=Webex
[Webex]
WebexApiUrl=%[2]s
OAuthTokenUrl=%[2]s/access_token
OAuthClientID=client-id
OAuthClientSecret=client-secret
OAuthTokenFile=%[1]s/webex.token
PageSize=100
`, dir, srv.URL)
	if c := os.Getenv("RESTBENCH_CONCURRENCY"); c != "" {
		text += "Concurrency=" + c + "\n"
	}
	cfg, err := config.Parse("bench.cfg", []byte(text), webexfetch.TaskKeys)
	if err != nil {
		return nil, nil, err
	}
	repo, err := webexfetch.New(webexfetch.Options{Config: cfg, Store: e.st, Target: e.deliverTo()})
	return repo, e, err
}

// webexCeiling lists every room, its members and its messages page by
// page (Link headers) and downloads every file, as a plain client would,
// decoding the JSON and discarding it all.
func webexCeiling(hc *http.Client, base, token string, n, files int) (time.Duration, error) {
	start := time.Now()
	get := func(u string, v any) (http.Header, error) {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		if v == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			return resp.Header, err
		}
		return resp.Header, json.NewDecoder(resp.Body).Decode(v)
	}
	// The fields of Webex's Room, Membership and ListMessage that make
	// an item's document.
	type page struct {
		Items []struct {
			ID                string   `json:"id"`
			Title             string   `json:"title"`
			Type              string   `json:"type"`
			LastActivity      string   `json:"lastActivity"`
			RoomID            string   `json:"roomId"`
			ParentID          string   `json:"parentId"`
			Text              string   `json:"text"`
			Markdown          string   `json:"markdown"`
			HTML              string   `json:"html"`
			Files             []string `json:"files"`
			PersonID          string   `json:"personId"`
			PersonEmail       string   `json:"personEmail"`
			PersonDisplayName string   `json:"personDisplayName"`
			MentionedPeople   []string `json:"mentionedPeople"`
			Created           string   `json:"created"`
			Updated           string   `json:"updated"`
		} `json:"items"`
	}
	var roomIDs []string
	for u := base + "/rooms?sortBy=lastactivity&max=100"; u != ""; {
		var p page
		h, err := get(u, &p)
		if err != nil {
			return 0, err
		}
		for _, it := range p.Items {
			roomIDs = append(roomIDs, it.ID)
		}
		u = next(h)
	}
	msgs, got := 0, 0
	for _, room := range roomIDs {
		for u := base + "/memberships?roomId=" + url.QueryEscape(room) + "&max=1000"; u != ""; {
			var p page
			h, err := get(u, &p)
			if err != nil {
				return 0, err
			}
			u = next(h)
		}
		for u := base + "/messages?roomId=" + url.QueryEscape(room) + "&max=100"; u != ""; {
			var p page
			h, err := get(u, &p)
			if err != nil {
				return 0, err
			}
			for _, it := range p.Items {
				msgs++
				for _, f := range it.Files {
					if _, err := get(f, nil); err != nil {
						return 0, err
					}
					got++
				}
			}
			u = next(h)
		}
	}
	if msgs != n || got != files {
		return 0, fmt.Errorf("the ceiling read %d messages and %d files, want %d and %d", msgs, got, n, files)
	}
	return time.Since(start), nil
}

func next(h http.Header) string {
	v := h.Get("Link")
	i, j := strings.IndexByte(v, '<'), strings.IndexByte(v, '>')
	if i < 0 || j < i || !strings.Contains(v[j:], `rel="next"`) {
		return ""
	}
	return v[i+1 : j]
}

// --- Objective ---

func benchObjective(n, runs int) (*result, error) {
	srv := objectivetest.New(objectivetest.Options{Users: map[string]string{"indexer": "pw"}})
	defer srv.Close()
	var folders []string
	for f := range containers {
		folders = append(folders, srv.AddFolder(objectivetest.RootID, fmt.Sprintf("Folder %02d", f),
			objectivetest.Permission{Principal: "Staff", PrincipalType: "group", Privileges: []string{"read", "browse"}},
			objectivetest.Permission{Principal: "indexer", PrincipalType: "user", Privileges: []string{"read", "browse", "write"}}))
	}
	for i := range n {
		srv.AddDocument(folders[i%containers], objectivetest.Doc{Name: fmt.Sprintf("doc-%05d.txt", i), Data: []byte(text(i)),
			Fields: []objectivetest.Field{{Name: "Author", Value: fmt.Sprintf("Author %d", i%17)}, {Name: "Reference", Value: strconv.Itoa(i)}}})
	}
	res := &result{name: "Objective", unit: "documents", container: "folder",
		ceilingName:  "plain client listing the same folders and reading each document's fields, permissions and content, one request at a time",
		ceiling2Name: "the same plain client with 4 documents at a time (the connector's Concurrency)",
		ceiling3Name: "a plain client reading only each document's content (no fields, no permissions), one request at a time"}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	// ceilings are one pass of each plain client: documents/s of each,
	// CPU ms per 1000 and page faults of the first.
	ceilings := func() ([3]float64, float64, int64, error) {
		var rates [3]float64
		f0, c0 := faults(), cpuTime()
		var cpu float64
		var flt int64
		for i, c := range []struct {
			workers int
			whole   bool
		}{{1, true}, {4, true}, {1, false}} {
			t, err := objectiveCeiling(hc, srv.URL, n, c.workers, c.whole)
			if err != nil {
				return rates, 0, 0, err
			}
			rates[i] = float64(n) / t.Seconds()
			if i == 0 {
				cpu, flt = perThousand(cpuTime()-c0, n), faults()-f0
			}
		}
		return rates, cpu, flt, nil
	}
	var resync func() error
	ours := func(profile string, last bool) (float64, float64, int64, error) {
		dir, err := os.MkdirTemp("", "restbench-objective-")
		if err != nil {
			return 0, 0, 0, err
		}
		repo, e, err := objectiveRepo(srv, dir)
		if err != nil {
			_ = os.RemoveAll(dir)
			return 0, 0, 0, err
		}
		done := func() { e.close(); _ = os.RemoveAll(dir) }
		f0, c0 := faults(), cpuTime()
		docs, d, err := syncOnce(repo, profile)
		if err != nil {
			return 0, 0, 0, err
		}
		cpu, flt := perThousand(cpuTime()-c0, n), faults()-f0
		if want := uint64(n + containers + 1); docs != want {
			done()
			return 0, 0, 0, fmt.Errorf("delivered %d documents, want %d", docs, want)
		}
		if !last {
			done()
			return float64(n) / d.Seconds(), cpu, flt, nil
		}
		resync = func() error {
			defer done()
			srv.ResetRequests()
			if _, _, err := syncOnce(repo, ""); err != nil {
				return err
			}
			res.resync = requestsOf(srv.Requests())
			for _, f := range folders[:5] {
				srv.AddDocument(f, objectivetest.Doc{Name: "one-more.txt", Data: []byte("new")})
			}
			srv.ResetRequests()
			if _, _, err := syncOnce(repo, ""); err != nil {
				return err
			}
			res.changed = requestsOf(srv.Requests())
			for _, f := range folders[:5] {
				srv.Remove(srv.Find(f, "one-more.txt"))
			}
			return nil
		}
		return float64(n) / d.Seconds(), cpu, flt, nil
	}
	if warmUp() {
		if _, _, _, err := ceilings(); err != nil {
			return nil, err
		}
		if _, _, _, err := ours("", false); err != nil {
			return nil, err
		}
	}
	for r := range runs {
		var cr [3]float64
		var ccpu, or, ocpu float64
		var cflt, oflt int64
		var err error
		for _, side := range order(r) {
			if side == 0 {
				cr, ccpu, cflt, err = ceilings()
			} else {
				or, ocpu, oflt, err = ours(profileName("objective", r), r == runs-1)
			}
			if err != nil {
				return nil, err
			}
		}
		res.ceiling, res.ceiling2, res.ceiling3 = append(res.ceiling, cr[0]), append(res.ceiling2, cr[1]), append(res.ceiling3, cr[2])
		res.ceilingCPU = append(res.ceilingCPU, ccpu)
		res.ours, res.oursCPU = append(res.ours, or), append(res.oursCPU, ocpu)
		log.Printf("objective run %d: ceiling %.0f doc/s (4 at a time %.0f, contents only %.0f), ours %.0f doc/s; CPU per 1000: ceiling %.0f ms, ours %.0f ms; page faults: ceiling %d, ours %d (%s first)",
			r+1, cr[0], cr[1], cr[2], or, ccpu, ocpu, cflt, oflt, [2]string{"ceiling", "ours"}[order(r)[0]])
	}
	if resync != nil {
		if err := resync(); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func objectiveRepo(srv *objectivetest.Server, dir string) (fetch.Repository, *env, error) {
	e, err := newEnv(dir)
	if err != nil {
		return nil, nil, err
	}
	text := fmt.Sprintf(`[Connector]
Type=OBJECTIVE
[Server]
DataDirectory=%[1]s/data
[FetchTasks]
0=Objective
[Objective]
ServerUrl=%[2]s
Username=indexer
Password=pw
`, dir, srv.URL)
	cfg, err := config.Parse("bench.cfg", []byte(text), objectivefetch.TaskKeys)
	if err != nil {
		return nil, nil, err
	}
	repo, err := objectivefetch.New(objectivefetch.Options{Config: cfg, Store: e.st, Target: e.deliverTo()})
	return repo, e, err
}

// objectiveCeiling lists the folders page by page and reads every
// document (with whole: its catalogue fields, its permissions and its
// content, one after the other; else its content alone), workers
// documents at a time, decoding the JSON and discarding it all.
func objectiveCeiling(hc *http.Client, base string, n, workers int, whole bool) (time.Duration, error) {
	start := time.Now()
	get := func(u string, v any) error {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.SetBasicAuth("indexer", "pw")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		if v == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			return err
		}
		return json.NewDecoder(resp.Body).Decode(v)
	}
	// The fields of a listed object that make its document.
	type item struct {
		ID                   string `json:"id"`
		Type                 string `json:"type"`
		Name                 string `json:"name"`
		ParentID             string `json:"parentId"`
		DateCreated          string `json:"dateCreated"`
		DateUpdated          string `json:"dateUpdated"`
		ETag                 string `json:"$etag"`
		CurrentVersionNumber int    `json:"currentVersionNumber"`
		FileSize             int64  `json:"fileSize"`
		Extension            string `json:"extension"`
		State                string `json:"state"`
		Revision             int    `json:"revision"`
		VersionLabel         string `json:"versionLabel"`
		CorporateValue       bool   `json:"corporateValue"`
		DocVersionName       string `json:"docVersionName"`
	}
	list := func(parent string) ([]item, error) {
		var all []item
		for off := 0; ; off += 200 {
			var page []item
			if err := get(fmt.Sprintf("%s/api/resources?parentId=%s&containersFirst=true&offset=%d&limit=200", base, parent, off), &page); err != nil {
				return nil, err
			}
			all = append(all, page...)
			if len(page) < 200 {
				return all, nil
			}
		}
	}
	top, err := list("fA0")
	if err != nil {
		return 0, err
	}
	docs := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	got := 0
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range docs {
				var err error
				if whole {
					var fields []struct {
						Name  string `json:"name"`
						Label string `json:"label"`
						Value any    `json:"value"`
					}
					var perms []struct {
						Principal     string   `json:"principal"`
						PrincipalType string   `json:"principalType"`
						Privileges    []string `json:"privileges"`
						Deny          bool     `json:"deny"`
					}
					err = cmp.Or(get(base+"/api/resources/documents/"+id+"/fields", &fields),
						get(base+"/api/resources/documents/"+id+"/permissions", &perms))
				}
				if err == nil {
					err = get(base+"/api/resources/documents/"+id+"/content", nil)
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				got++
				mu.Unlock()
			}
		}()
	}
	for _, f := range top {
		kids, err := list(f.ID)
		if err != nil {
			close(docs)
			wg.Wait()
			return 0, err
		}
		for _, k := range kids {
			if k.Type == "document" {
				docs <- k.ID
			}
		}
	}
	close(docs)
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	if got != n {
		return 0, fmt.Errorf("the ceiling read %d documents, want %d", got, n)
	}
	return time.Since(start), nil
}

// restSection is this program's block of RESULTS.md (and of
// out/RESULTS.quick.md, where QUICK runs write it).
var restSection = benchresult.Section{Begin: "<!-- rest:begin -->", End: "<!-- rest:end -->", Head: "## Webex and Objective connectors (connectors/webexfetch, connectors/objectivefetch)"}

// splice writes section (its markers included) into the file at path: in
// place of the block between the markers, or, in a file without them (the
// QUICK runs' out/RESULTS.quick.md, which other steps write too), added
// at its end under the section's heading; the rest of the file is kept.
func splice(path, section string) error {
	block := strings.TrimSuffix(strings.TrimPrefix(section, restSection.Begin+"\n"), restSection.End+"\n")
	return restSection.Update(path, block)
}

// ratioCell is num ÷ den taken within each run, median (min–max): the
// house rule's ratio to a same-run reference (not the ratio of the
// medians, which sets figures of different runs against each other).
func ratioCell(num, den []float64) string {
	return benchresult.RatioSpread(num, den, func(v float64) string { return fmt.Sprintf("%.2f", v) })
}
