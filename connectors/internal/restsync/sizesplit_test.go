package restsync

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
)

// A document too large for CFS on its own failed its whole batch: CFS
// took the others (its request split in halves), but the Batch counted
// every item as refused and recorded none, so every run delivered the
// same thousand documents again (and a Webex or mail cursor never moved
// past them), for one large attachment. Only the item with that document
// is refused now; the others are recorded and counted as delivered.
func TestBatchOnlyTheItemTooLargeForCFSIsRefused(t *testing.T) {
	for _, early := range []bool{false, true} {
		t.Run(fmt.Sprintf("early=%v", early), func(t *testing.T) {
			ds := memDatastore(t)
			tgt, took := resttest.SizeLimitedCFS(t, 4000, 10)
			job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"T"})
			b := &Batch{DS: ds, Target: tgt, Counts: job.Counts("T"), Size: 40, Report: FailOf(job, "T")}
			if early {
				b.FileSize = 10
			}
			defer b.Close()
			ctx := context.Background()
			mark := b.Mark()
			var want []string
			for i := range 40 {
				key := fmt.Sprintf("k%02d", i)
				docs := doc("ref-" + key)
				if i == 3 || i == 27 {
					docs = append(docs, &ingest.Document{Reference: "ref-" + key + "/big", Content: strings.Repeat("big ", 2000)})
				} else {
					want = append(want, "ref-"+key)
				}
				b.Deliver(key, &Record{Version: "1", Ref: "ref-" + key}, docs, nil)
				require.NoError(t, b.MaybeFlush(ctx))
			}
			b.PutAfter(mark, []byte("c:cursor"), []byte("1"))
			require.NoError(t, b.Flush(ctx))

			require.Equal(t, want, removeStrings(took(), "ref-k03", "ref-k27"))
			for i := range 40 {
				rec, err := GetRecord(ds, fmt.Sprintf("k%02d", i))
				require.NoError(t, err)
				require.Equal(t, i != 3 && i != 27, rec != nil, i)
			}
			v, err := ds.Get([]byte("c:cursor"))
			require.NoError(t, err)
			require.Nil(t, v, "the cursor waits for the refused items")
			c := job.Counts("T").Snapshot()
			require.EqualValues(t, 38, c.Added, "%+v", c)
			require.EqualValues(t, 38, c.Ingestadded, "%+v", c)
			require.EqualValues(t, 4, c.Ingestfailed, "the two items' documents: %+v", c)
			require.Equal(t, 1, b.Failures())
			// Listed among the action's failures, as the HTTP connector
			// lists a page refused so: a warning in the log was all an
			// operator had, GetStatus showing nothing.
			fails := job.Failures()
			require.NotNil(t, fails)
			require.Len(t, fails.Items, 2)
			for i, ref := range []string{"ref-k03/big", "ref-k27/big"} {
				require.Equal(t, ref, fails.Items[i].Url)
				require.Contains(t, fails.Items[i].Reason, "too large for CFS on its own")
			}
		})
	}
}

// removeStrings returns s without the strings drop.
func removeStrings(s []string, drop ...string) []string {
	return slices.DeleteFunc(s, func(x string) bool { return slices.Contains(drop, x) })
}

// The same for removals: a reference too large for CFS on its own (a
// very long URL) failed the removal of every reference of its batch, so
// none of their records was forgotten and every run removed them again.
func TestBatchOnlyTheRemovalTooLargeForCFSIsRefused(t *testing.T) {
	ds := memDatastore(t)
	tgt, _ := resttest.SizeLimitedCFS(t, 2000, 100)
	job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"T"})
	b := &Batch{DS: ds, Target: tgt, Counts: job.Counts("T")}
	defer b.Close()
	ctx := context.Background()
	long := "https://site/" + strings.Repeat("p", 3000)
	for i := range 20 {
		key := fmt.Sprintf("k%02d", i)
		ref := "https://site/" + key
		if i == 7 {
			ref = long
		}
		b.Deliver(key, &Record{Version: "1", Ref: ref}, nil, nil)
	}
	require.NoError(t, b.Flush(ctx))
	for i := range 20 {
		key := fmt.Sprintf("k%02d", i)
		rec, err := GetRecord(ds, key)
		require.NoError(t, err)
		b.Forget(key, rec)
	}
	require.NoError(t, b.Flush(ctx))
	for i := range 20 {
		rec, err := GetRecord(ds, fmt.Sprintf("k%02d", i))
		require.NoError(t, err)
		require.Equal(t, i == 7, rec != nil, "only the record whose removal was refused stays: %d", i)
	}
	c := job.Counts("T").Snapshot()
	require.EqualValues(t, 19, c.Ingestdeleted, "%+v", c)
	require.EqualValues(t, 1, c.Ingestfailed, "%+v", c)
}
