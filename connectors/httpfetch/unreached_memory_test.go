package httpfetch

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/store"
)

// The deletion pass holds the records of one batch of deletions at a
// time, not every unreached record decoded at once: a site whose pages
// all moved (or a task narrowed to a part of it) leaves every record
// unreached, with its links, and a task of a million pages held them all
// (gigabytes: a page's links are most of its record). Here 2,000
// unreached records of 120 links each (about 30 MB decoded) are deleted
// while the heap is measured during the first batch's removal: on main
// they were all decoded and held then.
func TestDeletionPassHoldsOneBatchOfRecords(t *testing.T) {
	s := newSite(t, map[string]*page{"/": htmlPage("Home")})
	b := setup(t, "[FetchTasks]\n0=T\n[T]\nUrl="+s.URL+"/\n")
	b.sync(t) // run 1
	ds, err := b.st.Datastore("T")
	require.NoError(t, err)
	const n, links = 2000, 120
	require.NoError(t, ds.Update(func(w store.Writer) error {
		for i := range n {
			rec := &record{Hash: []byte("h"), Delivered: []byte("h"), Run: 1}
			for j := range links {
				rec.Links = append(rec.Links, fmt.Sprintf("%s/moved/section-%04d/a-page-with-a-long-name-%06d", s.URL, i, j))
			}
			if err := w.Put(urlKey(fmt.Sprintf("%s/moved/p%06d", s.URL, i)), encodeRecord(rec)); err != nil {
				return err
			}
		}
		return nil
	}))
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()

	gate, removing := make(chan struct{}), make(chan struct{}, 1)
	b.target.mu.Lock()
	b.target.removeGate, b.target.removing = gate, removing
	b.target.mu.Unlock()
	done := make(chan int)
	go func() {
		job := b.sync(t) // run 2 reaches / only
		done <- int(countsOf(job, "T").Deleted)
	}()
	testwait.Recv(t, removing, 20*time.Second, "the first batch of deletions removed")
	during := heap()
	b.target.mu.Lock()
	b.target.removeGate = nil
	b.target.mu.Unlock()
	close(gate)
	require.Equal(t, n, testwait.Recv(t, done, 60*time.Second, "the run to end"))
	grew := int64(during) - int64(before)
	t.Logf("the heap grew by %d KiB", grew>>10)
	require.Less(t, grew, int64(10<<20), "the heap grew by %d MiB during the deletions", grew>>20)
}
