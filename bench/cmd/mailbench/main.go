// Command mailbench measures the Google Mail connector against Dovecot
// (Debian's, started unprivileged on 127.0.0.1 with a Maildir written for
// the run):
//
//  1. Full Synchronize: messages per second for N messages (default
//     10 000), against a ceiling measured in the same run: a plain IMAP
//     client (go-imap v2) fetching the same messages with the same FETCH
//     items the connector's full Synchronize asks for (UID FETCH 1:* (UID
//     FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[]<0.MaxMessageBytes>)),
//     with no parsing and no ingestion. The former ceiling, the bodies
//     alone (UID FETCH 1:* BODY.PEEK[]), is measured in the same runs and
//     shown beside it. Runs alternate; the figures are medians.
//  2. Re-sync of the unchanged mailbox: time, and the IMAP commands and
//     message bodies a proxy between the connector and Dovecot saw.
//  3. Memory: the peak RSS of a child process that synchronizes a mailbox
//     holding a message with a 50 MB attachment, with MaxMessageBytes at
//     16 MiB and at 64 MiB, and of the same mailbox without that message.
//
// It prints a Markdown section (and writes it with -results between the
// "mail" markers of RESULTS.md). For analysis, MAILBENCH_NOINGEST=1 runs
// the connector without an ingestion target, MAILBENCH_MEMSTORE=1 with an
// in-memory store, MAILBENCH_CPUPROFILE=FILE profiles the first full
// Synchronize, MAILBENCH_BLOCKPROFILE=FILE writes a block profile of it
// (where goroutines waited), MAILBENCH_TRACE=FILE an execution trace of
// it (go tool trace: when each goroutine ran, what each waited for), and
// MAILBENCH_TASK adds settings to the task's section of the full
// Synchronize (e.g. MAILBENCH_TASK=FetchBatchSize=1000).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	benchresult "github.com/connectorhq/connector/bench/internal/result"
	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/mailfetch"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/store"
)

const user = "bench@example.com"

// isChild: this process is a memory run's child.
var isChild bool

// ingestBatch is [Ingestion] IngestBatchSize of the runs (-batch).
var ingestBatch = 100

// withMemory: the memory runs are made (-memory).
var withMemory = true

// profiled: the CPU profile (MAILBENCH_CPUPROFILE) is of the first
// Synchronize only.
var profiled bool

func main() {
	n := flag.Int("n", 10000, "messages in the mailbox")
	runs := flag.Int("runs", 3, "runs of the full Synchronize and of the ceiling (medians)")
	results := flag.String("results", "", "RESULTS.md to update between <!-- mail:begin --> and <!-- mail:end -->")
	flag.IntVar(&ingestBatch, "batch", 100, "[Ingestion] IngestBatchSize of the connector's runs")
	child := flag.String("child", "", "internal: synchronize with this configuration and exit (memory runs)")
	flag.BoolVar(&withMemory, "memory", true, "measure the peak RSS too (false: the full Synchronize and re-sync only, for quick comparisons)")
	profile := flag.String("profile", "", "analysis: run -runs full Synchronizes (no ceiling, no re-sync, no memory runs) under one CPU profile written to FILE, with the allocations to FILE.allocs")
	flag.Parse()
	if *child != "" {
		isChild = true
		if err := childSync(*child); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *profile != "" {
		if err := profileSyncs(*n, *runs, *profile); err != nil {
			log.Fatal(err)
		}
		return
	}
	out, err := run(*n, *runs)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(out)
	if *results != "" {
		if err := splice(*results, out); err != nil {
			log.Fatal(err)
		}
	}
}

// corpus writes n messages like everyday mail: a few kilobytes of text,
// one in five with a small attachment.
func corpus(d *mailtest.Dovecot, n int) (int64, error) {
	var total int64
	para := strings.Repeat("The quarterly figures are attached and the meeting moves to Thursday. ", 20)
	for i := range n {
		m := mailtest.Message{From: fmt.Sprintf("sender%d@example.com", i%97), To: user,
			Subject: fmt.Sprintf("Report %d – figures", i), Text: fmt.Sprintf("Message %d.\n%s", i, para)}
		if i%5 == 0 {
			m.Attachments = []mailtest.Attachment{{Name: fmt.Sprintf("notes-%d.txt", i), ContentType: "text/plain", Data: []byte(para)}}
		}
		raw := m.Raw()
		total += int64(len(raw))
		if _, err := d.Deliver(user, "INBOX", raw, "S"); err != nil {
			return 0, err
		}
	}
	return total, nil
}

// profileSyncs runs full Synchronizes of n messages under one CPU
// profile, and writes the allocations made meanwhile.
func profileSyncs(n, runs int, path string) error {
	d, err := mailtest.StartDovecotProcess(mailtest.DovecotOptions{Users: map[string]string{user: "pw"}})
	if err != nil {
		return err
	}
	defer d.Stop()
	if _, err := corpus(d, n); err != nil {
		return err
	}
	if _, err := ceiling(d.Addr, sameItems); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.MemProfileRate = 64 << 10
	profiled = true // no per-run profile
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	for r := range runs {
		res, err := fullSync(d, false)
		if err != nil {
			pprof.StopCPUProfile()
			return err
		}
		log.Printf("run %d: %.0f msg/s, %.0f ms of CPU per 1000 messages", r+1, float64(n)/res.full.Seconds(), perThousand(res.cpu, n))
	}
	pprof.StopCPUProfile()
	a, err := os.Create(path + ".allocs")
	if err != nil {
		return err
	}
	defer a.Close()
	return pprof.Lookup("allocs").WriteTo(a, 0)
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perThousand is d per 1000 of n, in milliseconds.
func perThousand(d time.Duration, n int) float64 {
	return float64(d) / float64(time.Millisecond) * 1000 / float64(n)
}

func run(n, runs int) (string, error) {
	d, err := mailtest.StartDovecotProcess(mailtest.DovecotOptions{Users: map[string]string{user: "pw"}})
	if err != nil {
		return "", err
	}
	defer d.Stop()
	bytesTotal, err := corpus(d, n)
	if err != nil {
		return "", err
	}
	// Dovecot indexes the Maildir on first access: do it before timing.
	if _, err := ceiling(d.Addr, sameItems); err != nil {
		return "", err
	}
	var ceil, ours, ceilCPU, oursCPU, ceilDove, oursDove []float64
	var bodies, bodiesCPU, bodiesDove []float64 // the former ceiling: bodies alone
	var oursAllocs []float64                    // heap allocations per message
	var oursDocs uint64
	var resync resyncResult
	for r := range runs {
		// Neither side pays for the other's garbage.
		for _, c := range []struct {
			items           ceilingItems
			rate, cpu, dove *[]float64
		}{{bodiesOnly, &bodies, &bodiesCPU, &bodiesDove}, {sameItems, &ceil, &ceilCPU, &ceilDove}} {
			runtime.GC()
			c0, d0 := cpuTime(), dovecotCPU(d.Dir)
			t, err := ceiling(d.Addr, c.items)
			if err != nil {
				return "", err
			}
			*c.cpu = append(*c.cpu, perThousand(cpuTime()-c0, n))
			*c.dove = append(*c.dove, perThousand(dovecotSettled(d.Dir)-d0, n))
			*c.rate = append(*c.rate, float64(n)/t.Seconds())
		}
		runtime.GC()
		d0 := dovecotCPU(d.Dir)
		res, err := fullSync(d, r == runs-1)
		if err != nil {
			return "", err
		}
		oursDove = append(oursDove, perThousand(dovecotSettled(d.Dir)-d0, n))
		oursCPU = append(oursCPU, perThousand(res.cpu, n))
		oursAllocs = append(oursAllocs, float64(res.allocs)/float64(n))
		ours = append(ours, float64(n)/res.full.Seconds())
		oursDocs = res.docs
		if r == runs-1 {
			resync = res.resync
		}
		log.Printf("run %d: ceiling %.0f msg/s (CPU/1000: %.0f ms, Dovecot %.0f ms), bodies alone %.0f msg/s (CPU/1000: %.0f ms, Dovecot %.0f ms), ours %.0f msg/s (CPU/1000: %.0f ms, Dovecot %.0f ms, %.0f allocations per message): %.2f of the ceiling, %.2f of bodies alone",
			r+1, ceil[r], ceilCPU[r], ceilDove[r], bodies[r], bodiesCPU[r], bodiesDove[r], ours[r], oursCPU[r], oursDove[r], oursAllocs[r], ours[r]/ceil[r], ours[r]/bodies[r])
	}
	mem := &memResult{}
	if withMemory {
		var err error
		if mem, err = memory(); err != nil {
			return "", err
		}
	}
	mc, mo, mb := median(ceil), median(ours), median(bodies)
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- mail:begin -->\n")
	fmt.Fprintf(&b, "Measured %s on this machine (2 cores, shared), Dovecot %s, %d messages (%.1f MiB, one in five with an attachment: %d documents), medians of %d alternating runs; each ratio is taken within a run, then its median (min–max).\n\n",
		time.Now().UTC().Format("2006-01-02"), dovecotVersion(), n, float64(bytesTotal)/(1<<20), oursDocs, runs)
	fmt.Fprintf(&b, "| Figure | Value | Reference (same run) | Ratio | Goal |\n|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| Full Synchronize, messages/s (fetch, MIME, documents, IDX files, datastore) | %.0f | plain IMAP client fetching the same items (UID, FLAGS, RFC822.SIZE, INTERNALDATE, body): %.0f | **%s** | ≥ 0.7 |\n", mo, mc, ratioCell(ours, ceil, "%.2f"))
	fmt.Fprintf(&b, "| the same, against the former ceiling | %.0f | plain IMAP client fetching the bodies alone (UID, body): %.0f | %s | |\n", mo, mb, ratioCell(ours, bodies, "%.2f"))
	fmt.Fprintf(&b, "| Full Synchronize, CPU time of the process per 1000 messages (store opened and closed included) | %.0f ms | plain IMAP client, same items: %.0f ms; bodies alone: %.0f ms | %s | |\n",
		median(oursCPU), median(ceilCPU), median(bodiesCPU), ratioCell(oursCPU, ceilCPU, "%.1f×"))
	fmt.Fprintf(&b, "| Full Synchronize, heap allocations of the process per message (same span; does not depend on the machine's load) | %.0f | | | |\n", median(oursAllocs))
	fmt.Fprintf(&b, "| Full Synchronize, CPU time of Dovecot per 1000 messages | %.0f ms | for the plain IMAP client, same items: %.0f ms; bodies alone: %.0f ms | %s | |\n",
		median(oursDove), median(ceilDove), median(bodiesDove), ratioCell(oursDove, ceilDove, "%.1f×"))
	fmt.Fprintf(&b, "| Re-sync of the unchanged mailbox: time | %s | full Synchronize: %s | %.3f | |\n",
		resync.time.Round(time.Millisecond), resync.fullTime.Round(time.Millisecond), resync.time.Seconds()/resync.fullTime.Seconds())
	fmt.Fprintf(&b, "| Re-sync: IMAP commands sent | %d (%s) | | | |\n", resync.commands, strings.Join(resync.names, ", "))
	fmt.Fprintf(&b, "| Re-sync: message bodies fetched | %d | | | 0 |\n", resync.bodies)
	if withMemory {
		fmt.Fprintf(&b, "| Peak RSS, mailbox with a 50 MB attachment, MaxMessageBytes=16 MiB | %.0f MiB | same mailbox without it: %.0f MiB | +%.0f MiB | bounded by the limit |\n",
			mem.limited, mem.baseline, mem.limited-mem.baseline)
		fmt.Fprintf(&b, "| Peak RSS, same, MaxMessageBytes=128 MiB (the whole message) | %.0f MiB | | +%.0f MiB | |\n", mem.whole, mem.whole-mem.baseline)
	}
	fmt.Fprintf(&b, "\nRuns (msg/s): ceiling (same items) %s; bodies alone %s; ours %s. CPU per 1000 messages (ms): ceiling %s; bodies alone %s; ours %s; Dovecot for the ceiling %s, for bodies alone %s, for ours %s.\n",
		fmtList(ceil), fmtList(bodies), fmtList(ours), fmtList(ceilCPU), fmtList(bodiesCPU), fmtList(oursCPU), fmtList(ceilDove), fmtList(bodiesDove), fmtList(oursDove))
	fmt.Fprintf(&b, "Command: `make -C bench mail` (bench/mail.sh: `out/bin/mailbench -n %d -runs %d -results RESULTS.md`).\n", n, runs)
	fmt.Fprintf(&b, "<!-- mail:end -->\n")
	return b.String(), nil
}

func fmtList(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.0f", x))
	}
	return strings.Join(parts, ", ")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func dovecotVersion() string {
	out, err := exec.Command(mailtest.DovecotBinary, "--version").Output()
	if err != nil {
		return "?"
	}
	return strings.Fields(string(out))[0]
}

// ceilingItems: what the ceiling's UID FETCH asks for.
type ceilingItems int

const (
	// sameItems: the FETCH items of the connector's full Synchronize
	// (imapbox's fetchStreamed): UID, FLAGS, RFC822.SIZE, INTERNALDATE
	// and the body cut at the default MaxMessageBytes. The ceiling.
	sameItems ceilingItems = iota
	// bodiesOnly: UID and the whole body, the ceiling before 2026-12-05
	// (Dovecot serves it more cheaply: no INTERNALDATE); shown beside.
	bodiesOnly
)

// ceiling fetches every message with a plain client (one UID FETCH 1:*
// of items) and discards what it reads: no parsing, no ingestion.
func ceiling(addr string, items ceilingItems) (time.Duration, error) {
	start := time.Now()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.Login(user, "pw").Wait(); err != nil {
		return 0, err
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		return 0, err
	}
	var set imap.UIDSet
	set.AddRange(1, 0) // 1:*
	opts := &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}
	if items == sameItems {
		opts = &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true, InternalDate: true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true, Partial: &imap.SectionPartial{Offset: 0, Size: mailfetch.DefaultMaxMessageBytes}}}}
	}
	fc := c.Fetch(set, opts)
	for {
		m := fc.Next()
		if m == nil {
			break
		}
		for {
			it := m.Next()
			if it == nil {
				break
			}
			if b, ok := it.(imapclient.FetchItemDataBodySection); ok && b.Literal != nil {
				if _, err := io.Copy(io.Discard, b.Literal); err != nil {
					return 0, err
				}
			}
		}
	}
	if err := fc.Close(); err != nil {
		return 0, err
	}
	_ = c.Logout().Wait()
	return time.Since(start), nil
}

type resyncResult struct {
	time, fullTime   time.Duration
	commands, bodies int64
	names            []string
}

type syncResult struct {
	full   time.Duration
	cpu    time.Duration // of this process, from opening the store to closing it
	allocs uint64        // heap allocations of this process, the same span
	docs   uint64
	resync resyncResult
}

// bodyRE matches a FETCH response that carries a message body.
var bodyRE = regexp.MustCompile(`(?i)^\* \d+ FETCH .*BODY\[`)

func taskConfig(dir, addr string, extra string) string {
	host, port, _ := strings.Cut(addr, ":")
	return fmt.Sprintf("[Server]\nDataDirectory=%s\n[Ingestion]\nIngesterType=IDX\nIngestBatchSize=%d\nIngestDirectory=%s\n[FetchTasks]\n0=Mail\n[Mail]\nImapServer=%s\nImapPort=%s\nImapSecurity=NONE\nUsername=%s\nPassword=pw\n%s",
		filepath.Join(dir, "data"), ingestBatch, filepath.Join(dir, "ingest"), host, port, user, extra)
}

// synchronize runs one Synchronize of a fresh repository on cfgText's
// store (a bbolt file in dir, kept between calls).
func synchronize(cfgText string) (uint64, time.Duration, error) {
	cfg, err := config.Parse("bench.cfg", []byte(cfgText), mailfetch.TaskKeys)
	if err != nil {
		return 0, 0, err
	}
	st, err := store.Open(store.Config{Dir: cfg.Server.DataDirectory})
	if err != nil {
		return 0, 0, err
	}
	defer st.Close()
	target, err := ingest.Open(ingest.Options{Type: "IDX", Directory: cfg.Ingestion.Directory}, nil)
	if err != nil {
		return 0, 0, err
	}
	defer target.Close()
	var tgt ingest.Target = target
	if os.Getenv("MAILBENCH_NOINGEST") != "" {
		tgt = nil
	}
	if os.Getenv("MAILBENCH_MEMSTORE") != "" {
		st, _ = store.Open(store.Config{Driver: store.DriverMemory})
	}
	repo, err := mailfetch.New(mailfetch.Options{Config: cfg, Store: st, Target: tgt})
	if err != nil {
		return 0, 0, err
	}
	tasks, err := repo.Validate("SYNCHRONIZE", nil)
	if err != nil {
		return 0, 0, err
	}
	job := fetch.NewJob("bench", "SYNCHRONIZE", nil, tasks)
	if !isChild && !profiled {
		if p := os.Getenv("MAILBENCH_CPUPROFILE"); p != "" {
			profiled = true
			if f, err := os.Create(p); err == nil {
				_ = pprof.StartCPUProfile(f)
				defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
			}
		}
		if p := os.Getenv("MAILBENCH_TRACE"); p != "" {
			profiled = true
			if f, err := os.Create(p); err == nil {
				_ = trace.Start(f)
				defer func() { trace.Stop(); _ = f.Close() }()
			}
		}
		if p := os.Getenv("MAILBENCH_BLOCKPROFILE"); p != "" {
			profiled = true
			runtime.SetBlockProfileRate(10000) // a sample per 10 µs blocked
			defer func() {
				runtime.SetBlockProfileRate(0)
				if f, err := os.Create(p); err == nil {
					_ = pprof.Lookup("block").WriteTo(f, 0)
					_ = f.Close()
				}
			}()
		}
	}
	start := time.Now()
	if _, err := repo.Run(context.Background(), job); err != nil {
		return 0, 0, err
	}
	c := job.Counts("MAIL").Snapshot()
	return c.Added + c.Updated, time.Since(start), nil
}

func fullSync(d *mailtest.Dovecot, measureResync bool) (*syncResult, error) {
	dir, err := os.MkdirTemp("", "mailbench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfgText := taskConfig(dir, d.Addr, os.Getenv("MAILBENCH_TASK"))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m0, c0 := ms.Mallocs, cpuTime()
	docs, full, err := synchronize(cfgText)
	if err != nil {
		return nil, err
	}
	res := &syncResult{full: full, docs: docs, cpu: cpuTime() - c0}
	runtime.ReadMemStats(&ms)
	res.allocs = ms.Mallocs - m0
	if measureResync {
		// The re-sync goes through a proxy that counts the commands sent
		// and the message bodies returned.
		var bodies atomic.Int64
		p, err := mailtest.NewProxy(d.Addr, func(line string) string {
			if bodyRE.MatchString(line) {
				bodies.Add(1)
			}
			return line
		})
		if err != nil {
			return nil, err
		}
		changed, t, err := synchronize(taskConfig(dir, p.Addr, ""))
		p.Close()
		if err != nil {
			return nil, err
		}
		if changed != 0 {
			return nil, fmt.Errorf("the re-sync found %d changed documents", changed)
		}
		names := p.Commands()
		res.resync = resyncResult{time: t, fullTime: full, commands: int64(len(names)), bodies: bodies.Load(), names: names}
	}
	return res, nil
}

type memResult struct{ baseline, limited, whole float64 }

// memory measures peak RSS in child processes.
func memory() (*memResult, error) {
	small := func(d *mailtest.Dovecot) error {
		for i := range 200 {
			raw := mailtest.Message{From: "a@example.com", To: user, Subject: fmt.Sprintf("small %d", i), Text: "hello"}.Raw()
			if _, err := d.Deliver(user, "INBOX", raw, ""); err != nil {
				return err
			}
		}
		return nil
	}
	measure := func(withBig bool, limit int64) (float64, error) {
		d, err := mailtest.StartDovecotProcess(mailtest.DovecotOptions{Users: map[string]string{user: "pw"}})
		if err != nil {
			return 0, err
		}
		defer d.Stop()
		if err := small(d); err != nil {
			return 0, err
		}
		if withBig {
			raw := mailtest.Message{From: "a@example.com", To: user, Subject: "fifty megabytes", Text: "see attached",
				Attachments: []mailtest.Attachment{{Name: "huge.bin", Data: bytes.Repeat([]byte{0x5A}, 50<<20)}}}.Raw()
			if _, err := d.Deliver(user, "INBOX", raw, ""); err != nil {
				return 0, err
			}
		}
		dir, err := os.MkdirTemp("", "mailmem")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(dir)
		cfgPath := filepath.Join(dir, "mail.cfg")
		if err := os.WriteFile(cfgPath, []byte(taskConfig(dir, d.Addr, fmt.Sprintf("MaxMessageBytes=%d\n", limit))), 0o600); err != nil {
			return 0, err
		}
		self, _ := os.Executable()
		cmd := exec.Command(self, "-child", cfgPath)
		cmd.Stderr = os.Stderr
		cmd.Env = append(os.Environ(), os.Getenv("MAILBENCH_CHILD_ENV"))
		out, err := cmd.Output()
		if err != nil {
			return 0, err
		}
		// The child reports its own VmHWM: the rusage of a child counts
		// the parent's pages at fork.
		var kib float64
		if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "VmHWM %f", &kib); err != nil {
			return 0, fmt.Errorf("child said %q", out)
		}
		return kib / 1024, nil
	}
	var r memResult
	var err error
	if r.baseline, err = measure(false, 16<<20); err != nil {
		return nil, err
	}
	if r.limited, err = measure(true, 16<<20); err != nil {
		return nil, err
	}
	if r.whole, err = measure(true, 128<<20); err != nil {
		return nil, err
	}
	return &r, nil
}

func childSync(cfgPath string) error {
	text, err := os.ReadFile(cfgPath)
	if err != nil {
		return err
	}
	_, _, err = synchronize(string(text))
	if err != nil {
		return err
	}
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fmt.Printf("VmHWM %s\n", strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	if p := os.Getenv("MAILBENCH_MEMPROFILE"); p != "" {
		f, ferr := os.Create(p)
		if ferr == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			_ = f.Close()
		}
	}
	return err
}

// splice replaces the mail section of RESULTS.md.
// mailSection is this program's block of RESULTS.md (and of
// out/RESULTS.quick.md, where QUICK runs write it).
var mailSection = benchresult.Section{Begin: "<!-- mail:begin -->", End: "<!-- mail:end -->", Head: "## Google Mail connector (connectors/mailfetch)"}

// splice writes section (its markers included) into the file at path: in
// place of the block between the markers, or, in a file without them (the
// QUICK runs' out/RESULTS.quick.md, which other steps write too), added
// at its end under the section's heading; the rest of the file is kept.
func splice(path, section string) error {
	block := strings.TrimSuffix(strings.TrimPrefix(section, mailSection.Begin+"\n"), mailSection.End+"\n")
	return mailSection.Update(path, block)
}

// ratioCell is num ÷ den taken within each run, median (min–max), each
// ratio formatted with format: the house rule's ratio to a same-run
// reference (not the ratio of the medians, which sets figures of
// different runs against each other).
func ratioCell(num, den []float64, format string) string {
	return benchresult.RatioSpread(num, den, func(v float64) string { return fmt.Sprintf(format, v) })
}
