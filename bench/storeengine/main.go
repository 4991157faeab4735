// Command storeengine measures candidate embedded engines for the durable
// store (package store) on this machine, in one run, and prints a markdown
// table of medians: group-commit throughput of an ApplyActions-shaped write
// (puts of ~400-byte StoredAction records, fsync'd per commit) at batch sizes
// 1, 8, 64 and 256, next to the raw fsync rate of the same disk; the time to
// load 100k records after a reopen; and file size and memory after 1M puts,
// deletes of half, and further churn.
//
// Each (engine, run) is measured in a child process (the binary re-executes
// itself with -child) so that memory figures are not polluted by another
// engine, and each child measures its own fsync floor just before its
// throughput phase so that ratios compare like with like on a shared, noisy
// machine.
//
// Usage (from bench/): go run ./storeengine -runs 3
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

var batchSizes = []int{1, 8, 64, 256}

var engines = []string{"bbolt", "bbolt-nofreelistsync", "pebble", "store-nocompact", "store"}

func main() {
	var (
		child   = flag.Bool("child", false, "internal: measure one engine and print JSON")
		engine  = flag.String("engine", "", "internal: engine for -child")
		dir     = flag.String("dir", "", "scratch folder on the disk to measure (default: a new temporary folder)")
		runs    = flag.Int("runs", 3, "runs per engine; the table shows medians")
		dur     = flag.Duration("dur", 3*time.Second, "duration of each throughput measurement")
		recN    = flag.Int("recovery", 100_000, "records loaded in the recovery phase")
		churnN  = flag.Int("churn", 1_000_000, "records put in the churn phase (half are then deleted)")
		only    = flag.String("engines", strings.Join(engines, ","), "comma-separated engines to measure")
		verbose = flag.Bool("v", false, "print every run's raw figures to stderr")
	)
	flag.Parse()
	if *child {
		res, err := measure(*engine, *dir, *dur, *recN, *churnN)
		if err != nil {
			fmt.Fprintln(os.Stderr, "storeengine:", err)
			os.Exit(1)
		}
		if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
			fmt.Fprintln(os.Stderr, "storeengine:", err)
			os.Exit(1)
		}
		return
	}
	if err := parent(*dir, *runs, *dur, *recN, *churnN, strings.Split(*only, ","), *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "storeengine:", err)
		os.Exit(1)
	}
}

// result is one child's figures.
type result struct {
	Engine       string             `json:"engine"`
	FloorAppend  float64            `json:"floor_append_per_s"`  // write 400 B at EOF + fdatasync
	FloorInPlace float64            `json:"floor_inplace_per_s"` // overwrite 400 B + fdatasync
	Commits      map[string]float64 `json:"commits_per_s"`       // by batch size
	Records      map[string]float64 `json:"records_per_s"`
	RecoveryMS   float64            `json:"recovery_ms"`
	RecoveryN    int                `json:"recovery_n"`
	SizeAfterPut int64              `json:"size_after_put"`
	SizeAfterDel int64              `json:"size_after_del"`
	SizeChurn    int64              `json:"size_after_churn"`
	RSSChurn     int64              `json:"rss_after_churn"`
	PeakRSS      int64              `json:"peak_rss"`
	HeapChurn    int64              `json:"heap_after_churn"`
	ChurnSeconds float64            `json:"churn_seconds"`
	RecordBytes  int                `json:"record_bytes"`
	// The product's store (engines "store", "store-nocompact") only.
	LiveBytes         int64   `json:"live_bytes"`         // keys and values of the live records, in the store's layout
	SizeSettled       int64   `json:"size_after_settled"` // once a compaction due after the churn ran (store) or 3 s after
	SettleSeconds     float64 `json:"settle_s"`
	Compactions       int     `json:"compactions"`        // online compactions during the churn phase
	SettleCompactions int     `json:"settle_compactions"` // and after it, until settled
	CompactMaxS       float64 `json:"compact_max_s"`      // the longest one
	PauseMaxMS        float64 `json:"pause_max_ms"`       // the longest swap (every call waits)
	ProbeP99MS        float64 `json:"probe_p99_ms"`       // ApplyActions of one action, beside the churn
	ProbeMaxMS        float64 `json:"probe_max_ms"`
	ProbeN            int     `json:"probe_n"`
}

func (r *result) floor() float64 { return max(r.FloorAppend, r.FloorInPlace) }

func parent(dir string, runs int, dur time.Duration, recN, churnN int, names []string, verbose bool) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "storeengine-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	byEngine := map[string][]*result{}
	start := time.Now()
	for run := 0; run < runs; run++ {
		// Rotate the order so no engine always runs first (page cache,
		// other engineers' load).
		for i := range names {
			name := names[(i+run)%len(names)]
			sub := filepath.Join(dir, fmt.Sprintf("%s-%d", name, run))
			cmd := exec.Command(self, "-child", "-engine", name, "-dir", sub,
				"-dur", dur.String(), "-recovery", strconv.Itoa(recN), "-churn", strconv.Itoa(churnN))
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			os.RemoveAll(sub)
			if err != nil {
				return fmt.Errorf("%s run %d: %w", name, run, err)
			}
			var r result
			if err := json.Unmarshal(out, &r); err != nil {
				return fmt.Errorf("%s run %d: %w", name, run, err)
			}
			if verbose {
				fmt.Fprintf(os.Stderr, "run %d %s: %s", run, name, out)
			}
			byEngine[name] = append(byEngine[name], &r)
		}
	}
	printTable(os.Stdout, names, byEngine, runs, recN, churnN, time.Since(start))
	return nil
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func med(rs []*result, f func(*result) float64) float64 {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = f(r)
	}
	return median(xs)
}

func printTable(w *os.File, names []string, by map[string][]*result, runs, recN, churnN int, took time.Duration) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	fmt.Fprintf(bw, "Medians of %d runs per engine (%s, %s, %d CPU, took %s). Floor = max(append+fdatasync, overwrite+fdatasync) of 400-byte writes, measured by the same child just before its throughput phase; \"×floor\" = commits/s ÷ floor.\n\n",
		runs, time.Now().UTC().Format("2006-01-02"), runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU(), took.Round(time.Second))
	fmt.Fprintf(bw, "| metric |")
	for _, n := range names {
		fmt.Fprintf(bw, " %s |", n)
	}
	fmt.Fprintf(bw, "\n|---|")
	for range names {
		fmt.Fprintf(bw, "---:|")
	}
	fmt.Fprintln(bw)
	row := func(label string, f func(rs []*result) string) {
		fmt.Fprintf(bw, "| %s |", label)
		for _, n := range names {
			fmt.Fprintf(bw, " %s |", f(by[n]))
		}
		fmt.Fprintln(bw)
	}
	row("record size (bytes)", func(rs []*result) string { return fmt.Sprint(rs[0].RecordBytes) })
	row("fsync floor append (/s)", func(rs []*result) string {
		return fmt.Sprintf("%.0f", med(rs, func(r *result) float64 { return r.FloorAppend }))
	})
	row("fsync floor overwrite (/s)", func(rs []*result) string {
		return fmt.Sprintf("%.0f", med(rs, func(r *result) float64 { return r.FloorInPlace }))
	})
	for _, b := range batchSizes {
		k := strconv.Itoa(b)
		row(fmt.Sprintf("batch %d: commits/s (×floor)", b), func(rs []*result) string {
			c := med(rs, func(r *result) float64 { return r.Commits[k] })
			ratio := med(rs, func(r *result) float64 { return r.Commits[k] / r.floor() })
			return fmt.Sprintf("%.0f (%.2f)", c, ratio)
		})
		row(fmt.Sprintf("batch %d: records/s", b), func(rs []*result) string {
			return fmt.Sprintf("%.0f", med(rs, func(r *result) float64 { return r.Records[k] }))
		})
	}
	row(fmt.Sprintf("load %d after reopen (ms)", recN), func(rs []*result) string {
		return fmt.Sprintf("%.0f", med(rs, func(r *result) float64 { return r.RecoveryMS }))
	})
	mib := func(f func(*result) int64) func(rs []*result) string {
		return func(rs []*result) string {
			return fmt.Sprintf("%.1f", med(rs, func(r *result) float64 { return float64(f(r)) / (1 << 20) }))
		}
	}
	row(fmt.Sprintf("size after %d puts (MiB)", churnN), mib(func(r *result) int64 { return r.SizeAfterPut }))
	row("size after deleting half (MiB)", mib(func(r *result) int64 { return r.SizeAfterDel }))
	row("size after 2 churn rounds (MiB)", mib(func(r *result) int64 { return r.SizeChurn }))
	row("live data after churn (MiB)", func(rs []*result) string {
		return fmt.Sprintf("%.1f", med(rs, func(r *result) float64 { return float64(r.LiveBytes) / (1 << 20) }))
	})
	row("size once settled (MiB)", mib(func(r *result) int64 { return r.SizeSettled }))
	row("settled after (s)", func(rs []*result) string {
		return fmt.Sprintf("%.0f", med(rs, func(r *result) float64 { return r.SettleSeconds }))
	})
	row("size after churn ÷ live data", func(rs []*result) string {
		return fmt.Sprintf("%.2f", med(rs, func(r *result) float64 { return float64(r.SizeChurn) / float64(r.LiveBytes) }))
	})
	row("size once settled ÷ live data", func(rs []*result) string {
		return fmt.Sprintf("%.2f", med(rs, func(r *result) float64 { return float64(r.SizeSettled) / float64(r.LiveBytes) }))
	})
	storeOnly := func(f func(rs []*result) string) func(rs []*result) string {
		return func(rs []*result) string {
			if !strings.HasPrefix(rs[0].Engine, "store") {
				return "–"
			}
			return f(rs)
		}
	}
	row("online compactions in the churn", storeOnly(func(rs []*result) string {
		return fmt.Sprintf("%.0f", med(rs, func(r *result) float64 { return float64(r.Compactions) }))
	}))
	row("online compactions once the churn ended, until settled", storeOnly(func(rs []*result) string {
		return fmt.Sprintf("%.0f", med(rs, func(r *result) float64 { return float64(r.SettleCompactions) }))
	}))
	row("longest compaction (s)", storeOnly(func(rs []*result) string {
		return fmt.Sprintf("%.2f", med(rs, func(r *result) float64 { return r.CompactMaxS }))
	}))
	row("longest swap pause (ms)", storeOnly(func(rs []*result) string {
		return fmt.Sprintf("%.1f", med(rs, func(r *result) float64 { return r.PauseMaxMS }))
	}))
	row("queue probe beside the churn: p99 / max (ms)", storeOnly(func(rs []*result) string {
		return fmt.Sprintf("%.1f / %.0f", med(rs, func(r *result) float64 { return r.ProbeP99MS }),
			med(rs, func(r *result) float64 { return r.ProbeMaxMS }))
	}))
	row("RSS after churn (MiB)", mib(func(r *result) int64 { return r.RSSChurn }))
	row("peak RSS (MiB)", mib(func(r *result) int64 { return r.PeakRSS }))
	row("Go heap after churn (MiB)", mib(func(r *result) int64 { return r.HeapChurn }))
	row("churn phase wall time (s)", func(rs []*result) string {
		return fmt.Sprintf("%.1f", med(rs, func(r *result) float64 { return r.ChurnSeconds }))
	})
}

// --- the engines, behind the same key layout the store uses --------------

// mut is one mutation: put rec, or delete id.
type mut struct {
	put *messages.StoredAction
	del string
}

type engine interface {
	apply(queue string, batch []mut) error // atomic, fsync'd
	load(queue string, fn func(*messages.StoredAction) error) error
	close() error
}

func openEngine(name, dir string) (engine, error) {
	switch name {
	case "bbolt":
		return openBolt(dir, false)
	case "bbolt-nofreelistsync":
		return openBolt(dir, true)
	case "pebble":
		return openPebble(dir)
	case "store":
		return openStore(dir, true)
	case "store-nocompact":
		return openStore(dir, false)
	}
	return nil, fmt.Errorf("unknown engine %q", name)
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// frame prefixes a CRC-32C to v, as the store does for every value.
func frame(v []byte) []byte {
	out := make([]byte, 4+len(v))
	binary.BigEndian.PutUint32(out, crc32.Checksum(v, crcTable))
	copy(out[4:], v)
	return out
}

func unframe(v []byte) ([]byte, error) {
	if len(v) < 4 || binary.BigEndian.Uint32(v) != crc32.Checksum(v[4:], crcTable) {
		return nil, errors.New("checksum mismatch")
	}
	return v[4:], nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// bbolt: bucket queues/<q>/{seq: seq→record, ids: id→seq}.
type boltEngine struct{ db *bolt.DB }

func openBolt(dir string, noFreelistSync bool) (*boltEngine, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	db, err := bolt.Open(filepath.Join(dir, "connector.db"), 0o600, &bolt.Options{
		Timeout: time.Second, NoFreelistSync: noFreelistSync, FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		return nil, err
	}
	return &boltEngine{db: db}, nil
}

func (e *boltEngine) apply(queue string, batch []mut) error {
	return e.db.Update(func(tx *bolt.Tx) error {
		qs, err := tx.CreateBucketIfNotExists([]byte("queues"))
		if err != nil {
			return err
		}
		q, err := qs.CreateBucketIfNotExists([]byte(queue))
		if err != nil {
			return err
		}
		seqs, err := q.CreateBucketIfNotExists([]byte("seq"))
		if err != nil {
			return err
		}
		ids, err := q.CreateBucketIfNotExists([]byte("ids"))
		if err != nil {
			return err
		}
		for _, m := range batch {
			if m.put != nil {
				b, err := proto.Marshal(m.put)
				if err != nil {
					return err
				}
				sk := seqKey(m.put.GetStatus().GetSeq())
				if old := ids.Get([]byte(m.put.Id)); old != nil && !bytes.Equal(old, sk) {
					if err := seqs.Delete(old); err != nil {
						return err
					}
				}
				if err := seqs.Put(sk, frame(b)); err != nil {
					return err
				}
				if err := ids.Put([]byte(m.put.Id), sk); err != nil {
					return err
				}
				continue
			}
			if old := ids.Get([]byte(m.del)); old != nil {
				if err := seqs.Delete(old); err != nil {
					return err
				}
				if err := ids.Delete([]byte(m.del)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func (e *boltEngine) load(queue string, fn func(*messages.StoredAction) error) error {
	return e.db.View(func(tx *bolt.Tx) error {
		qs := tx.Bucket([]byte("queues"))
		if qs == nil {
			return nil
		}
		q := qs.Bucket([]byte(queue))
		if q == nil {
			return nil
		}
		return q.Bucket([]byte("seq")).ForEach(func(_, v []byte) error {
			b, err := unframe(v)
			if err != nil {
				return err
			}
			var a messages.StoredAction
			if err := proto.Unmarshal(b, &a); err != nil {
				return err
			}
			return fn(&a)
		})
	})
}

func (e *boltEngine) close() error { return e.db.Close() }

// pebble: keys q/<queue>/s/<seq> → record and q/<queue>/i/<id> → seq.
type pebbleEngine struct{ db *pebble.DB }

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)      {}
func (quietLogger) Errorf(f string, a ...any) { fmt.Fprintf(os.Stderr, "pebble: "+f+"\n", a...) }
func (quietLogger) Fatalf(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "pebble: "+f+"\n", a...)
	os.Exit(2)
}
func openPebble(dir string) (*pebbleEngine, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		return nil, err
	}
	return &pebbleEngine{db: db}, nil
}

func pkey(queue, kind string, k []byte) []byte {
	out := make([]byte, 0, len(queue)+4+len(k))
	out = append(out, 'q', '/')
	out = append(out, queue...)
	out = append(out, '/')
	out = append(out, kind...)
	out = append(out, '/')
	return append(out, k...)
}

func (e *pebbleEngine) apply(queue string, batch []mut) error {
	b := e.db.NewIndexedBatch() // reads see the batch's own writes
	defer b.Close()
	get := func(k []byte) ([]byte, error) {
		v, c, err := b.Get(k)
		if errors.Is(err, pebble.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		out := append([]byte(nil), v...)
		return out, c.Close()
	}
	for _, m := range batch {
		if m.put != nil {
			raw, err := proto.Marshal(m.put)
			if err != nil {
				return err
			}
			sk := seqKey(m.put.GetStatus().GetSeq())
			ik := pkey(queue, "i", []byte(m.put.Id))
			old, err := get(ik)
			if err != nil {
				return err
			}
			if old != nil && !bytes.Equal(old, sk) {
				if err := b.Delete(pkey(queue, "s", old), nil); err != nil {
					return err
				}
			}
			if err := b.Set(pkey(queue, "s", sk), frame(raw), nil); err != nil {
				return err
			}
			if err := b.Set(ik, sk, nil); err != nil {
				return err
			}
			continue
		}
		ik := pkey(queue, "i", []byte(m.del))
		old, err := get(ik)
		if err != nil {
			return err
		}
		if old != nil {
			if err := b.Delete(pkey(queue, "s", old), nil); err != nil {
				return err
			}
			if err := b.Delete(ik, nil); err != nil {
				return err
			}
		}
	}
	return b.Commit(pebble.Sync)
}

func (e *pebbleEngine) load(queue string, fn func(*messages.StoredAction) error) error {
	lo := pkey(queue, "s", nil)
	hi := append(append([]byte(nil), lo[:len(lo)-1]...), '/'+1)
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		b, err := unframe(it.Value())
		if err != nil {
			it.Close()
			return err
		}
		var a messages.StoredAction
		if err := proto.Unmarshal(b, &a); err != nil {
			it.Close()
			return err
		}
		if err := fn(&a); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

func (e *pebbleEngine) close() error { return e.db.Close() }

// The product's store (package store): the journal, its checkpoints into
// bbolt, and (engine "store") the compaction of the file, with the
// defaults the server uses.
type storeEngine struct {
	st  store.Store
	log *compactLog
}

func openStore(dir string, compact bool) (*storeEngine, error) {
	cl := &compactLog{}
	cfg := store.Config{Dir: dir, Logger: slog.New(cl)}
	if !compact {
		cfg.CompactFreeFraction = -1
	}
	st, err := store.Open(cfg)
	if err != nil {
		return nil, err
	}
	return &storeEngine{st: st, log: cl}, nil
}

func (e *storeEngine) apply(queue string, batch []mut) error {
	ms := make([]store.ActionMutation, len(batch))
	for i, m := range batch {
		if m.put != nil {
			ms[i] = store.ActionMutation{Put: m.put}
		} else {
			ms[i] = store.ActionMutation{Delete: m.del}
		}
	}
	return e.st.ApplyActions(queue, ms)
}

func (e *storeEngine) load(queue string, fn func(*messages.StoredAction) error) error {
	return e.st.LoadActions(queue, fn)
}

func (e *storeEngine) close() error { return e.st.Close() }

// compactLog is a slog handler that keeps the figures of the store's
// "store compacted" records.
type compactLog struct {
	mu          sync.Mutex
	n           int
	took, pause time.Duration
}

func (*compactLog) Enabled(context.Context, slog.Level) bool { return true }

func (c *compactLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "store compacted" {
		if r.Level >= slog.LevelWarn {
			fmt.Fprintln(os.Stderr, "storeengine: store:", r.Message)
		}
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "took":
			c.took = max(c.took, a.Value.Duration())
		case "pause":
			c.pause = max(c.pause, a.Value.Duration())
		}
		return true
	})
	return nil
}

func (c *compactLog) WithAttrs([]slog.Attr) slog.Handler { return c }

func (c *compactLog) WithGroup(string) slog.Handler { return c }

func (c *compactLog) stats() (n int, maxS, pauseMS float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, c.took.Seconds(), float64(c.pause.Microseconds()) / 1000
}

// --- workload -------------------------------------------------------------

// record returns a StoredAction of about 400 bytes marshalled, shaped like a
// queued Synchronize action.
func record(seq uint64) *messages.StoredAction {
	id := fmt.Sprintf("0190f3a2-%04x-7%03x-8%03x-%012x", seq>>48&0xffff, seq>>36&0xfff, seq>>24&0xfff, seq&0xffffffffffff)
	return &messages.StoredAction{
		Id: id,
		Spec: &messages.ActionSpec{
			Action: "FETCH", FetchAction: "SYNCHRONIZE", Priority: 0,
			Params: []*messages.Param{
				{Name: "FetchAction", Value: "Synchronize"},
				{Name: "Config", Value: "W0ZldGNoVGFza3NdCk51bWJlcj0xCjA9TXlUYXNrCltNeVRhc2tdClVybD1odHRwOi8vZXhhbXBsZS5jb20vCkRlcHRoPTM="},
				{Name: "TaskSections", Value: "MyTask"},
				{Name: "IngestActions", Value: "META:SOURCE=web,META:COLLECTION=intranet"},
			},
		},
		Status: &messages.ActionStatus{
			Token:        "MTAuMTUuNzUuMjM5OjcwMzA6RkVUQ0g6MTY2NzUwMzE3Nzg4NjAxODk2MjI0MDcx",
			State:        messages.State_STATE_QUEUED,
			QueuedUnixMs: 1_752_578_074_000 + int64(seq),
			FetchAction:  "SYNCHRONIZE",
			Counts:       []*messages.DocumentCount{{Task: "MYTASK", Seen: 120, Added: 100, Updated: 12, Unchanged: 8}},
			Seq:          seq,
		},
	}
}

func recordID(seq uint64) string { return record(seq).Id }

func measure(name, dir string, dur time.Duration, recN, churnN int) (*result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	raw, _ := proto.Marshal(record(1 << 40))
	res := &result{Engine: name, Commits: map[string]float64{}, Records: map[string]float64{}, RecordBytes: len(raw)}
	var err error
	if res.FloorAppend, res.FloorInPlace, err = fsyncFloor(dir, dur/2); err != nil {
		return nil, err
	}

	// Group-commit throughput, a fresh store per batch size.
	for _, bs := range batchSizes {
		sub := filepath.Join(dir, "tp"+strconv.Itoa(bs))
		e, err := openEngine(name, sub)
		if err != nil {
			return nil, err
		}
		var seq uint64
		batch := make([]mut, bs)
		commits := 0
		t0 := time.Now()
		for time.Since(t0) < dur {
			for i := range batch {
				seq++
				batch[i] = mut{put: record(seq)}
			}
			if err := e.apply("fetch", batch); err != nil {
				return nil, err
			}
			commits++
		}
		el := time.Since(t0).Seconds()
		res.Commits[strconv.Itoa(bs)] = float64(commits) / el
		res.Records[strconv.Itoa(bs)] = float64(commits*bs) / el
		if err := e.close(); err != nil {
			return nil, err
		}
		os.RemoveAll(sub)
	}

	// Recovery: recN records, close, reopen, load them all.
	{
		sub := filepath.Join(dir, "rec")
		e, err := openEngine(name, sub)
		if err != nil {
			return nil, err
		}
		if err := fill(e, 0, recN, 256); err != nil {
			return nil, err
		}
		if err := e.close(); err != nil {
			return nil, err
		}
		runtime.GC()
		t0 := time.Now()
		e, err = openEngine(name, sub)
		if err != nil {
			return nil, err
		}
		n := 0
		if err := e.load("fetch", func(*messages.StoredAction) error { n++; return nil }); err != nil {
			return nil, err
		}
		res.RecoveryMS = float64(time.Since(t0).Microseconds()) / 1000
		res.RecoveryN = n
		if n != recN {
			return nil, fmt.Errorf("recovery loaded %d of %d", n, recN)
		}
		if err := e.close(); err != nil {
			return nil, err
		}
		os.RemoveAll(sub)
	}

	// Churn: churnN puts, delete every other one, then two rounds of
	// put churnN/4 new + delete the churnN/4 oldest live ones.
	{
		sub := filepath.Join(dir, "churn")
		e, err := openEngine(name, sub)
		if err != nil {
			return nil, err
		}
		stopProbe := probe(e)
		t0 := time.Now()
		if err := fill(e, 0, churnN, 256); err != nil {
			return nil, err
		}
		if res.SizeAfterPut, err = dirSize(sub); err != nil {
			return nil, err
		}
		var dels []string
		live := make([]uint64, 0, churnN/2)
		for s := 0; s < churnN; s++ {
			if s%2 == 0 {
				dels = append(dels, recordID(uint64(s)))
			} else {
				live = append(live, uint64(s))
			}
		}
		if err := deleteAll(e, dels, 256); err != nil {
			return nil, err
		}
		if res.SizeAfterDel, err = dirSize(sub); err != nil {
			return nil, err
		}
		next := uint64(churnN)
		for round := 0; round < 2; round++ {
			q := churnN / 4
			if err := fill(e, int(next), q, 256); err != nil {
				return nil, err
			}
			for i := 0; i < q; i++ {
				live = append(live, next)
				next++
			}
			dels = dels[:0]
			for _, s := range live[:q] {
				dels = append(dels, recordID(s))
			}
			live = live[q:]
			if err := deleteAll(e, dels, 256); err != nil {
				return nil, err
			}
		}
		res.ChurnSeconds = time.Since(t0).Seconds()
		if res.SizeChurn, err = dirSize(sub); err != nil {
			return nil, err
		}
		if se, ok := e.(*storeEngine); ok {
			res.Compactions, _, _ = se.log.stats()
		}
		lat := stopProbe()
		if len(lat) > 0 {
			sort.Float64s(lat)
			res.ProbeN, res.ProbeMaxMS = len(lat), lat[len(lat)-1]
			res.ProbeP99MS = lat[len(lat)*99/100]
		}
		for _, s := range live {
			res.LiveBytes += liveBytes(s)
		}
		// Settled: the product's store compacts a file whose pages could
		// give back a quarter, at most a quarter of the time (the next
		// compaction waits three times as long as the last took), so it
		// is given up to 3 minutes idle for it; the others 3 s.
		settle := time.Now()
		wait := 3 * time.Second
		if _, ok := e.(*storeEngine); ok {
			wait = 3 * time.Minute
		}
		for {
			time.Sleep(time.Second)
			if res.SizeSettled, err = dirSize(sub); err != nil {
				return nil, err
			}
			if time.Since(settle) >= wait || res.SizeSettled < res.SizeChurn*9/10 {
				break
			}
		}
		res.SettleSeconds = time.Since(settle).Seconds()
		if se, ok := e.(*storeEngine); ok {
			// The store logs a compaction once it closed the old file,
			// a moment after the new one is in place.
			for i := 0; i < 50 && res.SizeSettled < res.SizeChurn*9/10; i++ {
				if n, _, _ := se.log.stats(); n > res.Compactions {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			var n int
			n, res.CompactMaxS, res.PauseMaxMS = se.log.stats()
			res.SettleCompactions = n - res.Compactions
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		res.HeapChurn = int64(ms.HeapInuse)
		res.RSSChurn, res.PeakRSS = rss()
		if err := e.close(); err != nil {
			return nil, err
		}
		os.RemoveAll(sub)
	}
	return res, nil
}

// liveBytes is what the live record seq takes in the store's layout: the
// seq key and the framed record, the id key and the framed seq.
func liveBytes(seq uint64) int64 {
	b, _ := proto.Marshal(record(seq))
	return int64(8 + 4 + len(b) + len(recordID(seq)) + 4 + 8)
}

// probe submits and removes one action at a time in queue "probe", as a
// client of the queue would, beside the churn, on the product's store
// only; the returned function stops it and returns the latencies (ms).
func probe(e engine) (stop func() []float64) {
	if _, ok := e.(*storeEngine); !ok {
		return func() []float64 { return nil }
	}
	done := make(chan struct{})
	out := make(chan []float64)
	go func() {
		var lat []float64
		for i := uint64(1 << 50); ; i++ {
			select {
			case <-done:
				out <- lat
				return
			default:
			}
			m := mut{put: record(i)}
			if i%2 == 1 {
				m = mut{del: recordID(i - 1)}
			}
			t0 := time.Now()
			if err := e.apply("probe", []mut{m}); err != nil {
				fmt.Fprintln(os.Stderr, "storeengine: probe:", err)
				out <- lat
				<-done
				return
			}
			lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
		}
	}()
	return func() []float64 { close(done); return <-out }
}

func fill(e engine, from, n, bs int) error {
	batch := make([]mut, 0, bs)
	for i := 0; i < n; i++ {
		batch = append(batch, mut{put: record(uint64(from + i))})
		if len(batch) == bs || i == n-1 {
			if err := e.apply("fetch", batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return nil
}

func deleteAll(e engine, ids []string, bs int) error {
	batch := make([]mut, 0, bs)
	for i, id := range ids {
		batch = append(batch, mut{del: id})
		if len(batch) == bs || i == len(ids)-1 {
			if err := e.apply("fetch", batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return nil
}

// fsyncFloor measures the disk: 400-byte appends each followed by
// fdatasync, then 400-byte overwrites at offset 0 each followed by
// fdatasync (no size change, so no metadata to flush).
func fsyncFloor(dir string, d time.Duration) (appendRate, inPlaceRate float64, err error) {
	f, err := os.Create(filepath.Join(dir, "floor"))
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := bytes.Repeat([]byte{'x'}, 400)
	rate := func(write func() error) (float64, error) {
		n := 0
		t0 := time.Now()
		for time.Since(t0) < d {
			if err := write(); err != nil {
				return 0, err
			}
			if err := unix.Fdatasync(int(f.Fd())); err != nil {
				return 0, err
			}
			n++
		}
		return float64(n) / time.Since(t0).Seconds(), nil
	}
	if appendRate, err = rate(func() error { _, err := f.Write(buf); return err }); err != nil {
		return 0, 0, err
	}
	inPlaceRate, err = rate(func() error { _, err := f.WriteAt(buf, 0); return err })
	return appendRate, inPlaceRate, err
}

func dirSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		return nil
	})
	return total, err
}

// rss returns VmRSS and VmHWM of this process in bytes.
func rss() (cur, peak int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			cur = v << 10
		case "VmHWM:":
			peak = v << 10
		}
	}
	return cur, peak
}
