package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectorhq/connector/actors/queue"
	connconfig "github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/webfetch"
	"github.com/connectorhq/connector/crawl/browser"
	connfetch "github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/server"
	"github.com/connectorhq/connector/store"
)

// The Web connector's rows (connectors/webfetch): the same site crawled
// by a Synchronize of the connector (the crawl engine fetches, robots,
// dedup and the datastore included; the browser renders the fetched
// bytes), at the same tab counts, in the same iterations as the ceiling;
// Stop → Stopped through the real queue; memory over a long crawl.

// connectorConfig is a Web connector configuration crawling the bench
// site from page 0 with n tabs.
func (b *bench) connectorConfig(dir, start string, n int, extra ...string) (*connconfig.Config, error) {
	if !strings.Contains(strings.Join(extra, "\n"), "RenderWaitSelector") {
		extra = append(extra, `RenderWaitSelector=body[data-ready="1"]`)
	}
	tasks := "Number=1\n0=Bench"
	if strings.Contains(strings.Join(extra, "\n"), "[BenchHTTP]") {
		tasks = "Number=2\n0=Bench\n1=BenchHTTP"
	}
	text := fmt.Sprintf(`[Connector]
Type=WEB
BrowserTabs=%d
BrowserIdleTimeout=1h
[Server]
DataDirectory=%s
Port=0
[Actions]
MaximumThreads=2
[Ingestion]
EnableIngestion=false
[Logging]
LogLevel=error
[FetchTasks]
%s
[Bench]
Url=%s
Depth=-1
Concurrency=%d
FollowRobotProtocol=false
%s
`, n, dir, tasks, start, n+1, strings.Join(extra, "\n"))
	cfg, err := connconfig.Parse("bench.cfg", []byte(text), webfetch.TaskKeys)
	if err != nil {
		return nil, err
	}
	return cfg, webfetch.Descriptor().Check(cfg)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// connector crawls the site with the Web connector at n tabs: pages/s of
// the Synchronize, the browser already started (as the ceiling's is).
func (b *bench) connector(_ []string, n int) error {
	dir, err := os.MkdirTemp(b.c.tmp, "conn-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg, err := b.connectorConfig(dir, b.s.url(0), n)
	if err != nil {
		return err
	}
	st, err := store.Open(store.Config{Driver: store.DriverMemory})
	if err != nil {
		return err
	}
	defer st.Close()
	repo, err := webfetch.New(webfetch.Options{Config: cfg, Store: st, Logger: quiet,
		Browser: &browser.Config{Tabs: n, IdleTimeout: -1, TempDir: b.c.tmp}})
	if err != nil {
		return err
	}
	defer repo.Close()
	// Warm: the browser starts and its n tabs open.
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, _ = repo.Pool().Render(context.Background(), b.s.url(0), b.s.page(0), "text/html", browser.RenderOptions{WaitSelector: `body[data-ready="1"]`})
		})
	}
	wg.Wait()
	pages0 := b.s.pages.Load()
	p := messages.Params{{Name: "ConfigSection", Value: "Bench"}}
	tasks, err := repo.Validate(connfetch.ActionSynchronize, p)
	if err != nil {
		return err
	}
	job := connfetch.NewJob("bench", connfetch.ActionSynchronize, p, tasks)
	start := time.Now()
	if _, err := repo.Run(context.Background(), job); err != nil {
		return fmt.Errorf("connector at %d tabs: %w", n, err)
	}
	el := time.Since(start)
	c := job.Counts("BENCH").Snapshot()
	if int(c.Added) != b.c.pages || c.Errors != 0 {
		b.note("connector at %d tabs: %d pages added, %d errors (want %d, 0)", n, c.Added, c.Errors, b.c.pages)
	}
	rate := float64(c.Added) / el.Seconds()
	b.add(key("connector", n), rate)
	b.add(key("connector-docs-per-page", n), float64(b.s.pages.Load()-pages0)/float64(c.Added))
	logf("connector %d tabs: %.1f pages/s (%d pages in %s)", n, rate, c.Added, el.Round(time.Millisecond))
	return nil
}

// neverSite serves pages that never settle (each keeps a request open)
// and link to each other, for the Stop row.
func neverSite() (base string, served *atomic.Int64, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	served = new(atomic.Int64)
	done := make(chan struct{})
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/hang") {
			select {
			case <-r.Context().Done():
			case <-done:
			}
			return
		}
		served.Add(1)
		k, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/n/"))
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<html><body>page %d <a href="/n/%d">a</a> <a href="/n/%d">b</a><script>fetch("/hang?%d")</script></body></html>`, k, 2*k+1, 2*k+2, k)
	})}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), served, func() { close(done); srv.Close() }, nil
}

// connectorStop measures Stop → Stopped through the server's queue (the
// action's record written to the store, fsync included) for a
// Synchronize whose tab is rendering a page that never settles (the
// crawl's level barrier holds the rest).
func (b *bench) connectorStop() error {
	base, served, stopSite, err := neverSite()
	if err != nil {
		return err
	}
	defer stopSite()
	dir, err := os.MkdirTemp(b.c.tmp, "stop-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// BenchHTTP is the same-run reference: the same site crawled by a task
	// that renders nothing (RenderUrlRegex matches no URL), that is the
	// HTTP connector's crawl and unwinding, on the same queue and store.
	// Its Stops alternate with the rendering action's.
	cfg, err := b.connectorConfig(dir, base+"/n/0", 2, "RenderDeadline=1h", "RenderWaitSelector=#never",
		"[BenchHTTP]", "Url="+base+"/n/0", "Depth=-1", "Concurrency=3", "FollowRobotProtocol=false", "RenderUrlRegex=^$")
	if err != nil {
		return err
	}
	// BROWSERBENCH_STOP_MEMSTORE=1: the queue on the memory store, so that
	// the row leaves out the durable commit of the Stopped record.
	if os.Getenv("BROWSERBENCH_STOP_MEMSTORE") != "" {
		cfg.Actions.UseInMemoryDatastore = true
	}
	if err := os.MkdirAll(filepath.Join(dir, "browser"), 0o700); err != nil {
		return err
	}
	var repo *webfetch.Repository
	srv, err := server.Start(cfg, server.Options{Port: 0, LogOutput: io.Discard, Repository: func(d server.Deps) (connfetch.Repository, error) {
		r, err := webfetch.New(webfetch.Options{Config: d.Config, Store: d.Store, Target: d.Target, Logger: d.Logger,
			Browser: &browser.Config{Tabs: 2, IdleTimeout: -1, TempDir: filepath.Join(dir, "browser")}})
		repo = r
		return r, err
	}})
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	q := srv.Queue()
	ctx := context.Background()
	var lat, ref []float64
	for k := 0; k < b.c.connStopN; k++ {
		// The reference first: an action crawling without the browser,
		// stopped once it has fetched a few pages.
		tok, err := q.Submit(ctx, &messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE",
			Params: messages.Params{{Name: "ConfigSection", Value: "BenchHTTP"}}})
		if err != nil {
			return err
		}
		deadline := time.Now().Add(time.Minute)
		for n0 := served.Load(); served.Load() < n0+5; {
			if time.Now().After(deadline) {
				return errors.New("stop row: the reference action never crawled")
			}
			time.Sleep(time.Millisecond)
		}
		t0 := time.Now()
		rep, err := q.Stop(ctx, tok)
		if err != nil {
			return err
		}
		ref = append(ref, float64(time.Since(t0))/float64(time.Millisecond))
		if s := rep.GetStatus().GetState(); s != messages.State_STATE_STOPPED {
			return fmt.Errorf("stop row: the reference's Stop answered %v", s)
		}
		if err := b.stopRendering(ctx, q, repo, &lat); err != nil {
			return err
		}
	}
	sort.Float64s(lat)
	sort.Float64s(ref)
	b.add("conn-stop-p50", quantile(lat, 0.50))
	b.add("conn-stop-p99", quantile(lat, 0.99))
	b.add("conn-stop-max", lat[len(lat)-1])
	b.add("conn-stop-n", float64(len(lat)))
	b.add("conn-stop-ref-p50", quantile(ref, 0.50))
	b.add("conn-stop-ref-p99", quantile(ref, 0.99))
	b.add("conn-stop-ref-max", ref[len(ref)-1])
	logf("connector Stop → Stopped: p50 %.2f ms, p99 %.2f ms, max %.2f ms (n=%d); reference without the browser: p50 %.2f ms, p99 %.2f ms, max %.2f ms",
		quantile(lat, 0.5), quantile(lat, 0.99), lat[len(lat)-1], len(lat), quantile(ref, 0.5), quantile(ref, 0.99), ref[len(ref)-1])
	return nil
}

// stopRendering submits a Synchronize of the never-settling site, stops
// it once a tab renders, and appends the Stop → Stopped time to lat.
func (b *bench) stopRendering(ctx context.Context, q *queue.Queue, repo *webfetch.Repository, lat *[]float64) error {
	tok, err := q.Submit(ctx, &messages.ActionSpec{Action: "FETCH", FetchAction: "SYNCHRONIZE",
		Params: messages.Params{{Name: "ConfigSection", Value: "Bench"}}})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for repo.Pool().Stats().Busy < 1 {
		if time.Now().After(deadline) {
			return errors.New("stop row: the action never started rendering")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t0 := time.Now()
	rep, err := q.Stop(ctx, tok)
	if err != nil {
		return err
	}
	*lat = append(*lat, float64(time.Since(t0))/float64(time.Millisecond))
	if s := rep.GetStatus().GetState(); s != messages.State_STATE_STOPPED {
		return fmt.Errorf("stop row: Stop answered %v", s)
	}
	// The stopped action's tabs close in the background; the next
	// action waits for them (as a real one would wait for a tab).
	for repo.Pool().Stats().Busy > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// connectorMemory crawls a site of connMemPages pages with the Web
// connector at 4 tabs and samples the browser's PSS and RSS and this
// process's RSS every 1,000 pages.
func (b *bench) connectorMemory() error {
	s, err := newSite(b.c.connMemPages)
	if err != nil {
		return err
	}
	defer s.close()
	dir, err := os.MkdirTemp(b.c.tmp, "mem-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg, err := b.connectorConfig(dir, s.url(0), 4)
	if err != nil {
		return err
	}
	st, err := store.Open(store.Config{Driver: store.DriverMemory})
	if err != nil {
		return err
	}
	defer st.Close()
	repo, err := webfetch.New(webfetch.Options{Config: cfg, Store: st, Logger: quiet,
		Browser: &browser.Config{Tabs: 4, IdleTimeout: -1, TempDir: b.c.tmp}})
	if err != nil {
		return err
	}
	defer repo.Close()
	p := messages.Params{{Name: "ConfigSection", Value: "Bench"}}
	tasks, err := repo.Validate(connfetch.ActionSynchronize, p)
	if err != nil {
		return err
	}
	job := connfetch.NewJob("bench", connfetch.ActionSynchronize, p, tasks)
	done := make(chan error, 1)
	start := time.Now()
	go func() { _, err := repo.Run(context.Background(), job); done <- err }()
	next := int64(1000)
	for {
		select {
		case err := <-done:
			if err != nil {
				return err
			}
			c := job.Counts("BENCH").Snapshot()
			b.add("conn-mem-pages", float64(c.Added))
			b.add("conn-mem-rate", float64(c.Added)/time.Since(start).Seconds())
			b.add("conn-mem-tabs-opened", float64(repo.Pool().Stats().TabsOpened))
			return nil
		case <-time.After(100 * time.Millisecond):
		}
		seen := int64(job.Counts("BENCH").Snapshot().Seen)
		if seen < next {
			continue
		}
		m := measure(repo.Pool())
		goRSS := m.goRSS
		b.add("conn-mem-at", float64(seen))
		b.add("conn-mem-pss", float64(m.pss))
		b.add("conn-mem-rss", float64(m.rss))
		b.add("conn-mem-go", float64(goRSS))
		logf("connector memory at %d pages: browser PSS %.0f MiB, RSS %.0f MiB, Go RSS %.0f MiB", seen, float64(m.pss)/(1<<20), float64(m.rss)/(1<<20), float64(goRSS)/(1<<20))
		next += 1000
	}
}
