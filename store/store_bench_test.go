package store_test

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/storetest"
)

// benchRecord is a queued action of about 400 bytes encoded.
func benchRecord(seq uint64) *messages.StoredAction {
	a := storetest.Record(fmt.Sprintf("0190f3a2-7c1e-7000-8000-%012x", seq), seq, messages.State_STATE_QUEUED)
	a.Spec.Params = append(a.Spec.Params,
		&messages.Param{Name: "Config", Value: "W0ZldGNoVGFza3NdCk51bWJlcj0xCjA9TXlUYXNrCltNeVRhc2tdClVybD1odHRwOi8vZXhhbXBsZS5jb20vCkRlcHRoPTM="},
		&messages.Param{Name: "IngestActions", Value: "META:SOURCE=web,META:COLLECTION=intranet"})
	a.Status.Token = "MTAuMTUuNzUuMjM5OjcwMzA6RkVUQ0g6MTY2NzUwMzE3Nzg4NjAxODk2MjI0MDcx"
	a.Status.Counts = []*messages.DocumentCount{{Task: "MYTASK", Seen: 120, Added: 100, Updated: 12, Unchanged: 8}}
	return a
}

func benchOpen(b *testing.B, dir string, inMemory bool) store.Store {
	b.Helper()
	s, err := store.Open(store.Config{Dir: dir, Driver: map[bool]string{true: store.DriverMemory, false: store.DriverBolt}[inMemory]})
	require.NoError(b, err)
	b.Cleanup(func() { _ = s.Close() })
	return s
}

var engines = []struct {
	name     string
	inMemory bool
}{{"bbolt", false}, {"memory", true}}

// BenchmarkApplyActions measures group commits: one fsync'd ApplyActions
// per iteration with a batch of new ~400-byte records (submissions: the
// next seqs, time-ordered ids), the checkpoints they wake included.
// cpu-ns/record is the process's CPU time per record (the records are
// made outside it), the figure to compare on a shared machine.
func BenchmarkApplyActions(b *testing.B) {
	for _, e := range engines {
		for _, n := range []int{1, 8, 16, 64, 256} {
			b.Run(fmt.Sprintf("%s/batch=%d", e.name, n), func(b *testing.B) {
				s := benchOpen(b, b.TempDir(), e.inMemory)
				var seq uint64
				var cpu time.Duration
				batch := make([]store.ActionMutation, n)
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					for i := range batch {
						seq++
						batch[i] = storetest.Put(benchRecord(seq))
					}
					c0 := processCPU(b)
					b.StartTimer()
					if err := s.ApplyActions("fetch", batch); err != nil {
						b.Fatal(err)
					}
					cpu += processCPU(b) - c0
				}
				b.ReportMetric(float64(seq)/b.Elapsed().Seconds(), "records/s")
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(seq), "cpu-ns/record")
			})
		}
	}
}

func fill(b *testing.B, s store.Store, n int) {
	b.Helper()
	batch := make([]store.ActionMutation, 0, 1024)
	for i := 0; i < n; i++ {
		batch = append(batch, storetest.Put(benchRecord(uint64(i))))
		if len(batch) == cap(batch) || i == n-1 {
			require.NoError(b, s.ApplyActions("fetch", batch))
			batch = batch[:0]
		}
	}
}

// BenchmarkLoadActions100k measures recovery: opening a store of 100k
// actions and loading them all (reopen), or loading them from an open store.
func BenchmarkLoadActions100k(b *testing.B) {
	const n = 100_000
	b.Run("bbolt/reopen", func(b *testing.B) {
		dir := b.TempDir()
		s, err := store.Open(store.Config{Dir: dir})
		require.NoError(b, err)
		fill(b, s, n)
		require.NoError(b, s.Close())
		b.ReportAllocs()
		for b.Loop() {
			s, err := store.Open(store.Config{Dir: dir})
			if err != nil {
				b.Fatal(err)
			}
			got := 0
			if err := s.LoadActions("fetch", func(*messages.StoredAction) error { got++; return nil }); err != nil {
				b.Fatal(err)
			}
			if got != n {
				b.Fatalf("loaded %d of %d", got, n)
			}
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, e := range engines {
		b.Run(e.name+"/open", func(b *testing.B) {
			s := benchOpen(b, filepath.Join(b.TempDir(), "d"), e.inMemory)
			fill(b, s, n)
			b.ReportAllocs()
			for b.Loop() {
				got := 0
				if err := s.LoadActions("fetch", func(*messages.StoredAction) error { got++; return nil }); err != nil {
					b.Fatal(err)
				}
				if got != n {
					b.Fatalf("loaded %d of %d", got, n)
				}
			}
		})
	}
}

func BenchmarkDatastore(b *testing.B) {
	for _, e := range engines {
		s := benchOpen(b, b.TempDir(), e.inMemory)
		d, err := s.Datastore("MYTASK")
		require.NoError(b, err)
		const keys = 10_000
		require.NoError(b, d.Update(func(w store.Writer) error {
			for i := 0; i < keys; i++ {
				if err := w.Put(fmt.Appendf(nil, "http://example.com/page/%06d", i), make([]byte, 120)); err != nil {
					return err
				}
			}
			return nil
		}))
		b.Run(e.name+"/Get", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				v, err := d.Get(fmt.Appendf(nil, "http://example.com/page/%06d", i%keys))
				if err != nil || v == nil {
					b.Fatal(v, err)
				}
				i++
			}
		})
		for _, per := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/Update/keys=%d", e.name, per), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if err := d.Update(func(w store.Writer) error {
						for j := 0; j < per; j++ {
							i++
							if err := w.Put(fmt.Appendf(nil, "http://example.com/page/%06d", i%keys), make([]byte, 120)); err != nil {
								return err
							}
						}
						return nil
					}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkCheckpoint measures what a checkpoint costs per record folded:
// 4080 journaled mutations (16 group commits of 255, not timed; fewer than
// wake the checkpointer, whose tick is an hour here), then the
// checkpoint that folds them into bbolt (timed). new: submissions (new
// ids, the next seqs); update: the same actions again at the same seq (a
// state change).
func BenchmarkCheckpoint(b *testing.B) {
	const perCkpt = 16 * 255
	for _, kind := range []string{"new", "update"} {
		b.Run(kind, func(b *testing.B) {
			s, err := store.Open(store.Config{Dir: b.TempDir(), CheckpointInterval: time.Hour})
			require.NoError(b, err)
			b.Cleanup(func() { _ = s.Close() })
			var seq uint64
			var cpu time.Duration // the process's CPU time in the timed parts
			batch := make([]store.ActionMutation, 255)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				if kind == "update" {
					seq = 0
				}
				for range perCkpt / len(batch) {
					for i := range batch {
						seq++
						batch[i] = storetest.Put(benchRecord(seq))
					}
					if err := s.ApplyActions("fetch", batch); err != nil {
						b.Fatal(err)
					}
				}
				c0 := processCPU(b)
				b.StartTimer()
				if err := store.Checkpoint(s); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				cpu += processCPU(b) - c0
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perCkpt), "ns/record")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*perCkpt), "cpu-ns/record")
		})
	}
}

// processCPU returns the CPU time (user and system) the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkUpdateDeferred measures a crawl's deferred per-URL records:
// b.N UpdateDeferred calls of 16 records of ~120 bytes each, folded into
// the file by the checkpointer as it runs (its tick) and, for what is
// left, by Close, which is timed too: the cost per call includes its
// share of the fold, whoever makes it.
func BenchmarkUpdateDeferred(b *testing.B) {
	s := benchOpen(b, b.TempDir(), false)
	d, err := s.Datastore("MYTASK")
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for range b.N {
		if err := store.UpdateDeferred(d, func(w store.Writer) error {
			for range 16 {
				i++
				if err := w.Put(fmt.Appendf(nil, "http://example.com/page/%07d", i), make([]byte, 120)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	require.NoError(b, s.Close())
}
