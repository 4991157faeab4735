// Command crawlours is our side of the crawl benchmark: one crawl of a
// site served by cmd/crawlsite, in a process of its own, printing one
// result JSON document (internal/result) on standard output.
//
//   - -mode engine: the crawl engine alone, crawl.Crawl(ctx, Config,
//     Hooks) from -start with Depth -depth, StayOnSite, Concurrency
//     -conc, FollowRobots off (colly ignores robots.txt by default, and
//     the site has none: on, ours would ask for /robots.txt once and get
//     a 404), other settings at their defaults; OnPage only records the
//     page's URL. This is the figure compared with colly.
//   - -mode sync: the product's full Synchronize (httpfetch.Repository.Run
//     of FetchAction=Synchronize, exactly as the server runs it) of a task
//     with the same crawl settings, delivering IDX files into a temporary
//     folder and recording every page in the task's datastore: -store
//     memory (UseInMemoryDatastore=true) or durable (bbolt file in -dir).
//   - -mode memory: datastore memory at scale (see memory.go).
//
// Every run checks that the pages found are exactly those of -expect (a
// file of URLs, one per line, written by cmd/crawldriver from the site's
// files): in sync mode, the datastore's URL records and the references of
// the IDX files written must both be that set. A mismatch exits 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/connectorhq/connector/bench/internal/crawlbench"
	"github.com/connectorhq/connector/bench/internal/result"
	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/httpfetch"
	"github.com/connectorhq/connector/crawl"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

type opts struct {
	mode, store, start, expect, dir, cpuprofile, heapprofile, allocprofile string
	conc, depth, n, repeat                                                 int
	timeout                                                                time.Duration
}

func main() {
	var o opts
	flag.StringVar(&o.mode, "mode", "engine", "engine, sync or memory")
	flag.StringVar(&o.store, "store", "memory", "sync and memory modes: the datastore, memory or durable")
	flag.StringVar(&o.start, "start", "", "start URL (required)")
	flag.StringVar(&o.expect, "expect", "", "file of the URLs the crawl must find, one per line (engine and sync: required)")
	flag.StringVar(&o.dir, "dir", "", "scratch folder for the datastore and the IDX files (default: a new temporary folder, removed at the end)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the crawl to this file")
	flag.StringVar(&o.allocprofile, "allocprofile", "", "engine and sync modes: write a heap profile (allocations since start, sample_index=alloc_space) to this file at the end")
	flag.StringVar(&o.heapprofile, "heapprofile", "", "memory mode: write heap profiles at each phase's measuring point to PREFIX-{engine,first,resync}.heap")
	flag.IntVar(&o.conc, "conc", 4, "concurrency (fetches in flight)")
	flag.IntVar(&o.depth, "depth", 2, "link depth from the start URL (-1: unlimited)")
	flag.IntVar(&o.n, "n", 0, "memory mode: the number of pages of the generated site")
	flag.IntVar(&o.repeat, "repeat", 1, "engine mode: crawl this many times back to back (for -cpuprofile); the figures are of all the crawls together")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Hour, "give up after this long")
	flag.Parse()
	if err := run(o); err != nil {
		result.Fatal("crawlours", err)
	}
}

func run(o opts) error {
	if o.start == "" {
		return errors.New("-start is required")
	}
	if o.dir == "" {
		d, err := os.MkdirTemp("", "crawlours-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.dir = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	if o.mode == "memory" {
		return runMemory(ctx, o)
	}
	if o.expect == "" {
		return errors.New("-expect is required")
	}
	want, err := crawlbench.ReadURLs(o.expect)
	if err != nil {
		return err
	}
	var out *result.Output
	switch o.mode {
	case "engine":
		out, err = runEngine(ctx, o, want)
	case "sync":
		out, err = runSync(ctx, o, want)
	default:
		return fmt.Errorf("-mode %q: want engine, sync or memory", o.mode)
	}
	if err != nil {
		return err
	}
	if o.allocprofile != "" {
		f, err := os.Create(o.allocprofile)
		if err != nil {
			return err
		}
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return out.Write(os.Stdout)
}

// profile starts a CPU profile when asked and returns its stop function.
func profile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func runEngine(ctx context.Context, o opts, want []string) (*result.Output, error) {
	out := result.New("crawl", "ours-engine")
	out.Info["settings"] = fmt.Sprintf("crawl.Config{Depth: %d, StayOnSite: true, FollowRobots: false, Concurrency: %d}, defaults otherwise (own keep-alive client, MaxIdleConnsPerHost=Concurrency+1)", o.depth, o.conc)
	var (
		mu    sync.Mutex
		pages []string
		errs  []string
	)
	cfg := crawl.Config{StartURLs: []string{o.start}, Depth: o.depth, StayOnSite: true, FollowRobots: false, Concurrency: o.conc}
	hooks := crawl.Hooks{
		OnPage: func(p *crawl.Page) {
			mu.Lock()
			pages = append(pages, p.FinalURL)
			mu.Unlock()
		},
		OnError: func(u string, _ int, err error) {
			mu.Lock()
			errs = append(errs, fmt.Sprintf("%s: %v", u, err))
			mu.Unlock()
		},
	}
	stop, err := profile(o.cpuprofile)
	if err != nil {
		return nil, err
	}
	m, err := crawlbench.Start()
	if err != nil {
		return nil, err
	}
	var (
		stats    crawl.Stats
		requests int64
	)
	for i := 0; i < max(o.repeat, 1); i++ {
		if i > 0 {
			pages = pages[:0]
		}
		stats, err = crawl.Crawl(ctx, cfg, hooks)
		if err != nil {
			return nil, fmt.Errorf("crawl: %w", err)
		}
		requests += stats.Requests
	}
	if err := m.End(); err != nil {
		return nil, err
	}
	stop()
	if err := m.Record(out, len(pages)*max(o.repeat, 1), int(requests)); err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%d crawl errors, first: %s", len(errs), errs[0])
	}
	repeats, err := crawlbench.Check(want, pages)
	if err != nil {
		return nil, err
	}
	out.Add("repeats", float64(repeats), "pages")
	out.Info["urls_discovered"] = fmt.Sprint(stats.URLsDiscovered)
	out.Info["skipped"] = fmt.Sprintf("%+v", stats.Skipped)
	return out, nil
}

// syncConfig is the configuration of a one-task connector crawling start
// with the engine run's crawl settings, delivering IDX files to
// dir/ingest.
func syncConfig(o opts) string {
	return fmt.Sprintf(`[Server]
DataDirectory=%s

[Actions]
UseInMemoryDatastore=%t

[Ingestion]
EnableIngestion=true
IngesterType=IDX
IngestDirectory=%s

[FetchTasks]
0=BENCH

[BENCH]
Url=%s
Depth=%d
StayOnSite=true
FollowRobotProtocol=false
Concurrency=%d
`, o.dir, o.store == "memory", filepath.Join(o.dir, "ingest"), o.start, o.depth, o.conc)
}

// connector is a Repository wired as the server wires it (server.go):
// the store of [Server] DataDirectory / [Actions] UseInMemoryDatastore
// and the target of [Ingestion].
type connector struct {
	cfg    *config.Config
	st     store.Store
	target ingest.Target
	repo   *httpfetch.Repository
}

func openConnector(o opts) (*connector, error) {
	if o.store != "memory" && o.store != "durable" {
		return nil, fmt.Errorf("-store %q: want memory or durable", o.store)
	}
	cfg, err := config.Parse("bench.cfg", []byte(syncConfig(o)), httpfetch.TaskKeys)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c := &connector{cfg: cfg}
	c.st, err = store.Open(store.Config{Driver: driver(cfg.Actions.UseInMemoryDatastore), Dir: cfg.Server.DataDirectory, Logger: log})
	if err != nil {
		return nil, err
	}
	in := cfg.Ingestion
	c.target, err = ingest.Open(ingest.Options{Type: in.Type, Directory: in.Directory, Timeout: in.Timeout, BatchSize: in.BatchSize}, log)
	if err != nil {
		c.close()
		return nil, err
	}
	c.repo, err = httpfetch.New(httpfetch.Options{Config: cfg, Store: c.st, Target: c.target, Logger: log})
	if err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *connector) close() {
	if c.target != nil {
		_ = c.target.Close()
	}
	if c.st != nil {
		_ = c.st.Close()
	}
}

// synchronize runs one Synchronize action of the task to its end and
// returns its job (counts). onJob, when not nil, is given the job before
// it starts (to watch its counts).
func (c *connector) synchronize(ctx context.Context, onJob func(*fetch.Job)) (*fetch.Job, error) {
	tasks, err := c.repo.Validate(fetch.ActionSynchronize, nil)
	if err != nil {
		return nil, err
	}
	job := fetch.NewJob("bench", fetch.ActionSynchronize, nil, tasks)
	if onJob != nil {
		onJob(job)
	}
	if _, err := c.repo.Run(ctx, job); err != nil {
		return nil, fmt.Errorf("synchronize: %w", err)
	}
	return job, nil
}

// recordEnd writes what the queue writes when an action ends (its
// record, state Finished) and, in the same journal frame and fdatasync,
// every datastore write deferred until then.
func (c *connector) recordEnd() error {
	return c.st.ApplyActions("bench", []store.ActionMutation{{Put: &messages.StoredAction{
		Id: "bench", Spec: &messages.ActionSpec{FetchAction: fetch.ActionSynchronize},
		Status: &messages.ActionStatus{Seq: 1, State: messages.State_STATE_FINISHED},
	}}})
}

// storedURLs returns the URLs of the task's datastore records ("u:<URL>"
// keys, httpfetch/doc.go "Datastore").
func (c *connector) storedURLs() ([]string, error) {
	ds, err := c.st.Datastore("BENCH")
	if err != nil {
		return nil, err
	}
	var out []string
	err = ds.ForEach(func(k, _ []byte) error {
		if u, ok := strings.CutPrefix(string(k), "u:"); ok {
			out = append(out, u)
		}
		return nil
	})
	return out, err
}

// idxRefs returns the references of every document in the IDX folder.
func idxRefs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var refs []string
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ingest.ExtIDX {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		docs, err := ingest.ReadIDX(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		for _, d := range docs {
			refs = append(refs, d.Reference)
		}
	}
	sort.Strings(refs)
	return refs, nil
}

func runSync(ctx context.Context, o opts, want []string) (*result.Output, error) {
	out := result.New("crawl", "ours-sync-"+o.store)
	out.Info["settings"] = fmt.Sprintf("Synchronize of one task: Depth=%d StayOnSite=true FollowRobotProtocol=false Concurrency=%d, IDX ingestion (IngestBatchSize 100), datastore %s", o.depth, o.conc, o.store)
	c, err := openConnector(o)
	if err != nil {
		return nil, err
	}
	defer c.close()
	stop, err := profile(o.cpuprofile)
	if err != nil {
		return nil, err
	}
	m, err := crawlbench.Start()
	if err != nil {
		return nil, err
	}
	job, err := c.synchronize(ctx, nil)
	if err != nil {
		return nil, err
	}
	// The server acknowledges the end of an action once the queue's record
	// of it is on disk, and the datastore writes the task deferred
	// (store.UpdateDeferred) ride that commit: it is part of the run.
	if err := c.recordEnd(); err != nil {
		return nil, err
	}
	if err := m.End(); err != nil {
		return nil, err
	}
	cnt := job.Counts("BENCH")
	if cnt == nil {
		return nil, errors.New("no counts for task BENCH")
	}
	s := cnt.Snapshot()
	if err := m.Record(out, int(s.Seen), -1); err != nil {
		return nil, err
	}
	stop()
	if s.Errors != 0 || s.Ingestfailed != 0 || s.Added != uint64(len(want)) || s.Ingestadded != uint64(len(want)) {
		return nil, fmt.Errorf("counts: seen %d added %d ingestadded %d ingestfailed %d errors %d; want %d added and delivered, no error",
			s.Seen, s.Added, s.Ingestadded, s.Ingestfailed, s.Errors, len(want))
	}
	urls, err := c.storedURLs()
	if err != nil {
		return nil, err
	}
	if _, err := crawlbench.Check(want, urls); err != nil {
		return nil, fmt.Errorf("datastore: %w", err)
	}
	refs, err := idxRefs(c.cfg.Ingestion.Directory)
	if err != nil {
		return nil, err
	}
	repeats, err := crawlbench.Check(want, refs)
	if err != nil {
		return nil, fmt.Errorf("IDX files: %w", err)
	}
	out.Add("repeats", float64(repeats), "pages")
	if o.store == "durable" {
		if st, err := os.Stat(filepath.Join(o.dir, store.DefaultFile)); err == nil {
			out.Add("store_file_mib", float64(st.Size())/(1<<20), "MiB")
		}
	}
	return out, nil
}

// driver is the store engine of [Actions] UseInMemoryDatastore.
func driver(inMemory bool) string {
	if inMemory {
		return store.DriverMemory
	}
	return store.DriverBolt
}
