package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectorhq/connector/bench/internal/crawlbench"
	"github.com/connectorhq/connector/bench/internal/procstat"
	"github.com/connectorhq/connector/bench/internal/result"
	"github.com/connectorhq/connector/crawl"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/store"
)

// liveAt is the share of the pages done at which a phase's live heap is
// taken: late in the crawl, when every URL of the site is known (the last
// level's links were all found while the level before it was crawled)
// and most records are written.
const liveAt = 0.95

// phase is what measure learns about one crawl.
type phase struct {
	elapsed  time.Duration
	base     uint64 // live heap (HeapAlloc after two GCs) before the phase
	live     uint64 // live heap (HeapAlloc right after a forced GC) at liveAt
	liveRSS  int64  // RSS at the same moment
	peak     uint64 // highest HeapInuse sampled every 100 ms
	measured bool
}

func (p phase) perURL(n int) float64 { return (float64(p.live) - float64(p.base)) / float64(n) }

// measure runs fn and watches the heap while it runs: a sample of
// HeapInuse every 100 ms, and once done() reaches liveAt·n (checked every
// 10 ms), a forced GC and the live heap right after it.
func measure(n int, done func() int64, heapProfile string, fn func() error) (phase, error) {
	var p phase
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p.base = ms.HeapAlloc
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Progress is checked every 10 ms (a small site goes from 95% to
		// done in a fraction of a second), the heap sampled every 100 ms.
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for tick := 0; ; tick++ {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			var s runtime.MemStats
			if tick%10 == 0 {
				runtime.ReadMemStats(&s)
				p.peak = max(p.peak, s.HeapInuse)
			}
			if !p.measured && float64(done()) >= liveAt*float64(n) {
				runtime.GC()
				runtime.ReadMemStats(&s)
				p.live = s.HeapAlloc
				p.liveRSS, _ = procstat.RSS(0)
				p.measured = true
				if heapProfile != "" {
					writeHeapProfile(heapProfile)
				}
			}
		}
	}()
	t0 := time.Now()
	err := fn()
	p.elapsed = time.Since(t0)
	close(stop)
	wg.Wait()
	if err == nil && !p.measured {
		err = fmt.Errorf("the crawl ended before %.0f%% of %d pages were done: no live heap measured", liveAt*100, n)
	}
	return p, err
}

// writeHeapProfile writes the heap profile as of the last GC to path;
// a failure is reported on standard error (the profile is a diagnosis
// aid, not a result).
func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("heap").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "crawlours: heap profile: %v\n", err)
	}
}

// profilePath is prefix-name.heap, or "" without a prefix.
func profilePath(prefix, name string) string {
	if prefix == "" {
		return ""
	}
	return prefix + "-" + name + ".heap"
}

// runMemory measures, on the generated site of -n pages served by
// cmd/crawlsite -gen (every page at a unique URL, n URLs in all):
//
//  1. the crawl engine alone crawling it (unlimited depth, no hooks but a
//     counter): its live heap per URL late in the crawl (dedup set,
//     frontier, per-worker caches);
//  2. a first Synchronize of a task crawling it, into an empty datastore
//     (-store durable: bbolt file in -dir; memory: in the heap), IDX
//     ingestion into -dir/ingest: live heap per URL late in the crawl, and
//     then the datastore file size per URL;
//  3. a second Synchronize against that datastore of n records: every page
//     is asked conditionally and answered 304, every record rewritten with
//     the new run number: live heap per URL late in the crawl, file size
//     per URL after it.
//
// Each live heap is taken right after a forced GC once 95% of the pages
// are done, minus the live heap before the phase started; bbolt's mapped
// file counts in RSS, not in the Go heap. With -heapprofile PREFIX, a heap
// profile is written at that moment of each phase to
// PREFIX-{engine,first,resync}.heap.
func runMemory(ctx context.Context, o opts) error {
	if o.n <= 0 {
		return errors.New("-n (the number of pages of the generated site) is required in memory mode")
	}
	out := result.New("crawl-memory", o.store)
	out.Info["n"] = fmt.Sprint(o.n)
	out.Info["settings"] = fmt.Sprintf("engine: crawl.Config{Depth: -1, StayOnSite: true, FollowRobots: false, Concurrency: %d}; Synchronize: Depth=-1 FollowRobotProtocol=false Concurrency=%d, IDX ingestion, datastore %s", o.conc, o.conc, o.store)

	// 1. The engine alone.
	var pages atomic.Int64
	cfg := crawl.Config{StartURLs: []string{o.start}, Depth: -1, StayOnSite: true, FollowRobots: false, Concurrency: o.conc}
	var stats crawl.Stats
	eng, err := measure(o.n, pages.Load, profilePath(o.heapprofile, "engine"), func() error {
		var err error
		stats, err = crawl.Crawl(ctx, cfg, crawl.Hooks{
			OnPage:  func(*crawl.Page) { pages.Add(1) },
			OnError: func(u string, _ int, err error) { fmt.Fprintf(os.Stderr, "crawlours: %s: %v\n", u, err) },
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("engine crawl: %w", err)
	}
	if stats.Pages != int64(o.n) {
		return fmt.Errorf("engine crawl: %d pages, want %d (stats %+v)", stats.Pages, o.n, stats)
	}
	out.Add("engine_heap_per_url_b", eng.perURL(o.n), "B")
	out.Add("engine_pages_per_s", float64(o.n)/eng.elapsed.Seconds(), "pages/s")
	fmt.Fprintf(os.Stderr, "crawlours: engine crawl of %d pages in %v, %.1f B/URL live\n", o.n, eng.elapsed.Round(time.Millisecond), eng.perURL(o.n))

	// 2 and 3. Two Synchronize runs.
	o.depth = -1
	c, err := openConnector(o)
	if err != nil {
		return err
	}
	defer c.close()
	for i, name := range []string{"first", "resync"} {
		var job atomic.Pointer[fetch.Job]
		seen := func() int64 {
			if j := job.Load(); j != nil {
				if cnt := j.Counts("BENCH"); cnt != nil {
					return int64(cnt.Seen.Load())
				}
			}
			return 0
		}
		ph, err := measure(o.n, seen, profilePath(o.heapprofile, name), func() error {
			if _, err := c.synchronize(ctx, func(j *fetch.Job) { job.Store(j) }); err != nil {
				return err
			}
			return c.recordEnd() // as in sync mode: the end's commit carries the deferred writes
		})
		if err != nil {
			return fmt.Errorf("%s Synchronize: %w", name, err)
		}
		s := job.Load().Counts("BENCH").Snapshot()
		want := s.Added
		if i == 1 {
			want = s.Unchanged
		}
		if s.Seen != uint64(o.n) || want != uint64(o.n) || s.Errors != 0 {
			return fmt.Errorf("%s Synchronize: seen %d added %d unchanged %d errors %d; want %d pages, all %s",
				name, s.Seen, s.Added, s.Unchanged, s.Errors, o.n, map[int]string{0: "added", 1: "unchanged"}[i])
		}
		ds, err := c.st.Datastore("BENCH")
		if err != nil {
			return err
		}
		keys, err := ds.Len()
		if err != nil {
			return err
		}
		if keys < o.n {
			return fmt.Errorf("%s Synchronize: the datastore holds %d keys, want at least %d", name, keys, o.n)
		}
		out.Add(name+"_heap_per_url_b", ph.perURL(o.n), "B")
		out.Add(name+"_heap_peak_mib", float64(ph.peak)/(1<<20), "MiB")
		out.Add(name+"_rss_mib", float64(ph.liveRSS)/(1<<20), "MiB")
		out.Add(name+"_pages_per_s", float64(o.n)/ph.elapsed.Seconds(), "pages/s")
		out.Add(name+"_elapsed_s", ph.elapsed.Seconds(), "s")
		if o.store == "durable" {
			st, err := os.Stat(filepath.Join(o.dir, store.DefaultFile))
			if err != nil {
				return err
			}
			out.Add(name+"_file_per_url_b", float64(st.Size())/float64(o.n), "B")
			out.Add(name+"_file_mib", float64(st.Size())/(1<<20), "MiB")
		}
		out.Info[name+"_keys"] = fmt.Sprint(keys)
		fmt.Fprintf(os.Stderr, "crawlours: %s Synchronize of %d pages in %v, %.1f B/URL live\n", name, o.n, ph.elapsed.Round(time.Millisecond), ph.perURL(o.n))
	}
	u, err := crawlbench.SelfUsage()
	if err != nil {
		return err
	}
	out.Add("maxrss_mib", float64(u.MaxRSS)/(1<<20), "MiB")
	return out.Write(os.Stdout)
}
