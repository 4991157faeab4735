package store_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/storetest"
)

// freshCheckpoint opens a new store in dir, journals n records (in
// batches of 255) and returns it with its checkpoint not yet run.
func freshCheckpoint(tb testing.TB, dir string, n int) store.Store {
	tb.Helper()
	s, err := store.Open(store.Config{Dir: dir, CheckpointInterval: time.Hour})
	require.NoError(tb, err)
	batch := make([]store.ActionMutation, 0, 255)
	for seq := uint64(1); seq <= uint64(n); seq++ {
		batch = append(batch, storetest.Put(benchRecord(seq)))
		if len(batch) == cap(batch) || seq == uint64(n) {
			require.NoError(tb, s.ApplyActions("fetch", batch))
			batch = batch[:0]
		}
	}
	return s
}

// BenchmarkCloseFreshDatastore measures a task's datastore of 10k
// records (16 per UpdateDeferred, keys ~40 bytes, values 300) in a new
// file, folded into it by Close (timed, with the writes): with the map
// reserved at open (reserve) and with bbolt's defaults (remap), where the
// map doubles from 32 KiB as the commit allocates pages and each remap
// copies every key and value of the transaction. Select one with -bench
// to interleave them.
func BenchmarkCloseFreshDatastore(b *testing.B) {
	const n = 625 * 16
	for _, c := range []struct {
		name               string
		reserve, allocStep int
	}{{"remap", 0, 16 << 20}, {"reserve", 256 << 20, 1 << 20}} {
		b.Run(c.name, func(b *testing.B) {
			defer store.SetBoltMapping(c.reserve, c.allocStep)()
			var cpu time.Duration
			val := make([]byte, 300)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				runtime.GC()
				s, err := store.Open(store.Config{Dir: b.TempDir(), CheckpointInterval: time.Hour})
				require.NoError(b, err)
				d, err := s.Datastore("MYTASK")
				require.NoError(b, err)
				c0 := processCPU(b)
				b.StartTimer()
				for i := 0; i < n; i += 16 {
					if err := store.UpdateDeferred(d, func(w store.Writer) error {
						for j := range 16 {
							if err := w.Put(fmt.Appendf(nil, "<msg-%07d@mail.example.com>", i+j), val); err != nil {
								return err
							}
						}
						return nil
					}); err != nil {
						b.Fatal(err)
					}
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				cpu += processCPU(b) - c0
				b.StartTimer()
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n), "cpu-ns/record")
		})
	}
}
