package httpfetch

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/store"
)

// BenchmarkForgetAcrossTasks is one task's Synchronize batches (of
// [Ingestion] BatchSize, 100) forgetting 10,000 pages, in a repository of
// 1 or 20 tasks (on a durable store; every other task with a datastore
// of 10,000 records of its own pages, none of these): what the check of
// the other tasks' records (keepShared) costs. The target is an IDX
// folder.
func BenchmarkForgetAcrossTasks(b *testing.B) {
	const n = 10000
	for _, tasks := range []int{1, 20} {
		b.Run(fmt.Sprintf("tasks=%d", tasks), func(b *testing.B) {
			var text strings.Builder
			fmt.Fprintf(&text, "[FetchTasks]\nNumber=%d\n", tasks)
			for i := range tasks {
				fmt.Fprintf(&text, "%d=T%d\n", i, i)
			}
			for i := range tasks {
				fmt.Fprintf(&text, "[T%d]\nUrl=http://127.0.0.1:1/t%d/\n", i, i)
			}
			st, err := store.Open(store.Config{Dir: b.TempDir()})
			require.NoError(b, err)
			b.Cleanup(func() { _ = st.Close() })
			bu := setup(b, text.String(), setupOpts{store: st})
			fill := func(task string) []string {
				ds, err := st.Datastore(task)
				require.NoError(b, err)
				urls := make([]string, n)
				require.NoError(b, ds.Update(func(w store.Writer) error {
					for i := range n {
						urls[i] = fmt.Sprintf("http://127.0.0.1:1/%s/p%07d", strings.ToLower(task), i)
						if err := w.Put(urlKey(urls[i]), encodeRecord(&record{Hash: []byte("h"), Delivered: []byte("h"), Run: 1})); err != nil {
							return err
						}
					}
					return nil
				}))
				return urls
			}
			for i := 1; i < tasks; i++ {
				fill(fmt.Sprintf("T%d", i))
			}
			ds, err := st.Datastore("T0")
			require.NoError(b, err)
			log := quietLogger()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				urls := fill("T0")
				job := fetch.NewJob("tok", fetch.ActionSynchronize, nil, []string{"T0"})
				cnt := counts(job, "T0")
				b.StartTimer()
				for lo := 0; lo < n; lo += bu.repo.batchSize {
					var batch []*change
					for _, u := range urls[lo:min(lo+bu.repo.batchSize, n)] {
						old := &record{Hash: []byte("h"), Delivered: []byte("h"), Run: 1}
						batch = append(batch, &change{key: u, prev: old.Delivered, old: old, kind: kindDeleted, removeRef: u})
					}
					require.NoError(b, bu.repo.apply(context.Background(), ds, cnt, batch, log, nil))
				}
			}
		})
	}
}
