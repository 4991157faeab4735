package objectivefetch

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/store"
)

// BenchmarkForgetAcrossTasks is one task's Synchronize batches forgetting
// 10,000 objects, in a repository of 1 or 20 tasks (on a durable store;
// every other task with a datastore of 10,000 records of its own objects,
// none of these): what the check of the other tasks' records (keepShared,
// one read per removal per other task) costs. The target is in memory, so
// the figure is the connector's and the store's work alone.
func BenchmarkForgetAcrossTasks(b *testing.B) {
	const n = 10000
	for _, tasks := range []int{1, 20} {
		b.Run(fmt.Sprintf("tasks=%d", tasks), func(b *testing.B) {
			dir := b.TempDir()
			var text strings.Builder
			fmt.Fprintf(&text, "[Server]\nDataDirectory=%[1]s/data\n[Security]\nAESKeyFile=%[1]s/aes.ky\n[FetchTasks]\nNumber=%[2]d\n", dir, tasks)
			for i := range tasks {
				fmt.Fprintf(&text, "%d=T%d\n", i, i)
			}
			for i := range tasks {
				fmt.Fprintf(&text, "[T%d]\nServerUrl=http://127.0.0.1:1\nUsername=u\nPassword=p\n", i)
			}
			cfg, err := config.Parse("bench.cfg", []byte(text.String()), TaskKeys)
			require.NoError(b, err)
			st, err := store.Open(store.Config{Dir: dir})
			require.NoError(b, err)
			b.Cleanup(func() { _ = st.Close() })
			repo, err := New(Options{Config: cfg, Store: st, Target: resttest.NewTarget()})
			require.NoError(b, err)
			fill := func(task, prefix string) map[string]*restsync.Record {
				ds, err := st.Datastore(task)
				require.NoError(b, err)
				recs := make(map[string]*restsync.Record, n)
				require.NoError(b, ds.Update(func(w store.Writer) error {
					for i := range n {
						id := fmt.Sprintf("%s%07d", prefix, i)
						rec := &restsync.Record{Version: "1", Ref: objectRef("http://127.0.0.1:1", kindDocument, id)}
						recs[objectKey(id)] = rec
						if err := restsync.StaleRecord(w, objectKey(id), &restsync.Record{Version: "1", Ref: rec.Ref}); err != nil {
							return err
						}
					}
					return nil
				}))
				return recs
			}
			for i := 1; i < tasks; i++ {
				fill(fmt.Sprintf("T%d", i), fmt.Sprintf("dB%d-", i))
			}
			open := func() (*restsync.Client, error) {
				return restsync.NewClient("http://127.0.0.1:1", http.DefaultClient, nil, restsync.Options{})
			}
			log := slog.New(slog.DiscardHandler)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				recs := fill("T0", "dA")
				job := fetch.NewJob("tok", "SYNCHRONIZE", nil, []string{"T0"})
				b.StartTimer()
				err := repo.SyncTask(job, "T0", log, open, func(t *restsync.TaskSync) error {
					for key, rec := range recs {
						t.Batch.Forget(key, rec)
						if err := t.Batch.MaybeFlush(b.Context()); err != nil {
							return err
						}
					}
					return t.Batch.Flush(b.Context())
				})
				require.NoError(b, err)
			}
		})
	}
}
