package restsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/store"
)

// recTarget records what it was given and refuses the calls refuse says.
type recTarget struct {
	mu      sync.Mutex
	added   []string
	removed []string
	calls   int
	sizes   []int // documents per Add
	refuse  func(call int) bool
	// noCommas refuses a Remove with a reference containing a comma,
	// whole, as the CFS target does (ingest/cfs.go).
	noCommas bool
}

func (t *recTarget) Add(_ context.Context, docs []*ingest.Document) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls++
	t.sizes = append(t.sizes, len(docs))
	if t.refuse != nil && t.refuse(t.calls) {
		return fmt.Errorf("refused: %w", ingest.ErrDelivery)
	}
	for _, d := range docs {
		t.added = append(t.added, d.Reference)
	}
	return nil
}

func (t *recTarget) Remove(_ context.Context, refs []string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls++
	if t.refuse != nil && t.refuse(t.calls) {
		return fmt.Errorf("refused: %w", ingest.ErrDelivery)
	}
	for _, r := range refs {
		if t.noCommas && strings.Contains(r, ",") {
			return fmt.Errorf("%w: %w: reference %q contains a comma", ingest.ErrDelivery, ingest.ErrInvalidDocument, r)
		}
	}
	t.removed = append(t.removed, refs...)
	return nil
}

func (t *recTarget) Close() error     { return nil }
func (t *recTarget) Describe() string { return "test target" }

func memDatastore(t *testing.T) store.Datastore {
	t.Helper()
	st, err := store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	ds, err := st.Datastore("T")
	require.NoError(t, err)
	return ds
}

func doc(ref string) []*ingest.Document {
	return []*ingest.Document{{Reference: ref, Content: "text of " + ref}}
}

// The batches handed over are delivered in order, each recorded after its
// delivery; Flush waits for all of them.
func TestBatchDeliversInOrderAndRecords(t *testing.T) {
	ds := memDatastore(t)
	tgt := &recTarget{}
	job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"T"})
	var wrote atomic.Int64
	b := &Batch{DS: ds, Target: tgt, Counts: job.Counts("T"), Size: 3, Wrote: func() { wrote.Add(1) }}
	defer b.Close()
	var want []string
	for i := range 10 {
		key := fmt.Sprintf("k%02d", i)
		b.Deliver(key, &Record{Version: "1", Ref: "ref-" + key}, doc("ref-"+key), nil)
		want = append(want, "ref-"+key)
		require.NoError(t, b.MaybeFlush(context.Background()))
	}
	require.NoError(t, b.Flush(context.Background()))
	require.Equal(t, want, tgt.added)
	for i := range 10 {
		rec, err := GetRecord(ds, fmt.Sprintf("k%02d", i))
		require.NoError(t, err)
		require.NotNil(t, rec)
	}
	c := job.Counts("T").Snapshot()
	require.EqualValues(t, 10, c.Added)
	require.EqualValues(t, 10, c.Ingestadded)
	require.Equal(t, 0, b.Failures())
	require.EqualValues(t, 4, wrote.Load(), "Wrote after each batch's records: 3+3+3+1")
}

// A refused delivery records nothing of its batch, and makes every item
// added after a mark taken before it be dropped: not delivered, not
// recorded, not counted; items without a mark in later batches go on.
func TestBatchRefusedDeliveryDropsWhatDependsOnIt(t *testing.T) {
	ds := memDatastore(t)
	tgt := &recTarget{refuse: func(call int) bool { return call == 2 }}
	job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"T"})
	b := &Batch{DS: ds, Target: tgt, Counts: job.Counts("T"), Size: 2}
	defer b.Close()
	ctx := context.Background()
	mark := b.Mark()
	for _, k := range []string{"a", "b", "c", "d"} { // batches {a,b} and {c,d}: the second is refused
		b.Deliver(k, &Record{Version: "1", Ref: k}, doc(k), nil)
		require.NoError(t, b.MaybeFlush(ctx))
	}
	b.DeliverAfter(mark, "room", &Record{Version: "1", Ref: "room"}, doc("room"), nil)
	b.PutAfter(mark, []byte("c:cursor"), []byte("1"))
	later := b.Mark()
	b.Deliver("e", &Record{Version: "1", Ref: "e"}, doc("e"), nil)
	b.PutAfter(later, []byte("c:later"), []byte("1"))
	require.NoError(t, b.Flush(ctx))

	require.Equal(t, []string{"a", "b", "e"}, tgt.added, "the room's document depends on c and d")
	for k, want := range map[string]bool{"a": true, "b": true, "c": false, "d": false, "room": false, "e": true} {
		rec, err := GetRecord(ds, k)
		require.NoError(t, err)
		require.Equal(t, want, rec != nil, k)
	}
	v, err := ds.Get([]byte("c:cursor"))
	require.NoError(t, err)
	require.Nil(t, v, "the cursor passes a refused delivery")
	v, err = ds.Get([]byte("c:later"))
	require.NoError(t, err)
	require.Equal(t, []byte("1"), v, "a mark taken after the refusal does not see it")
	require.Equal(t, 1, b.Failures())
	c := job.Counts("T").Snapshot()
	require.EqualValues(t, 3, c.Added)
	require.EqualValues(t, 2, c.Ingestfailed)
}

// A removal is forgotten only once removed.
func TestBatchRefusedRemovalKeepsTheRecord(t *testing.T) {
	ds := memDatastore(t)
	require.NoError(t, ds.Update(func(w store.Writer) error { return w.Put(RecordKey("x"), []byte(`{"v":"1","r":"x"}`)) }))
	tgt := &recTarget{refuse: func(int) bool { return true }}
	job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"T"})
	b := &Batch{DS: ds, Target: tgt, Counts: job.Counts("T")}
	defer b.Close()
	b.Forget("x", &Record{Version: "1", Ref: "x"})
	require.NoError(t, b.Flush(context.Background()))
	rec, err := GetRecord(ds, "x")
	require.NoError(t, err)
	require.NotNil(t, rec)
	require.EqualValues(t, 0, job.Counts("T").Snapshot().Deleted)
}

// A removal the target refuses for one reference it cannot take (CFS and
// a reference with a comma) is refused for that item alone: the other
// items of the batch are removed and forgotten. The target can never
// remove that reference, so the item is not kept to be tried again, run
// after run: the refusal is reported (Report, counted ingestfailed) and
// the item forgotten, and it does not hold back what depends on the
// batch (a cursor).
func TestBatchRemovalRefusedAloneForOneReference(t *testing.T) {
	ds := memDatastore(t)
	require.NoError(t, ds.Update(func(w store.Writer) error {
		if err := w.Put(RecordKey("x"), []byte(`{"v":"1","r":"x"}`)); err != nil {
			return err
		}
		return w.Put(RecordKey("y"), []byte(`{"v":"1","r":"a,b"}`))
	}))
	tgt := &recTarget{noCommas: true}
	job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"T"})
	var reported []string
	b := &Batch{DS: ds, Target: tgt, Counts: job.Counts("T"), Report: func(ref string, err error) {
		require.ErrorIs(t, err, ingest.ErrInvalidDocument)
		reported = append(reported, ref)
	}}
	defer b.Close()
	m := b.Mark()
	b.Forget("y", &Record{Version: "1", Ref: "a,b"})
	b.Forget("x", &Record{Version: "1", Ref: "x"})
	b.PutAfter(m, []byte("cursor"), []byte("1"))
	require.NoError(t, b.Flush(context.Background()))
	require.Equal(t, []string{"x"}, tgt.removed)
	require.Equal(t, []string{"a,b"}, reported)
	rec, err := GetRecord(ds, "x")
	require.NoError(t, err)
	require.Nil(t, rec, "removed, so forgotten")
	rec, err = GetRecord(ds, "y")
	require.NoError(t, err)
	require.Nil(t, rec, "never removable: reported and forgotten, not tried run after run")
	require.Zero(t, b.Failures())
	v, err := ds.Get([]byte("cursor"))
	require.NoError(t, err)
	require.Equal(t, "1", string(v), "the cursor is not held back")
	c := job.Counts("T").Snapshot()
	require.EqualValues(t, 1, c.Ingestdeleted)
	require.EqualValues(t, 1, c.Ingestfailed)
}

// An item delivered again without a child whose reference the target can
// never remove (a comma, with CFS) was not recorded: its old record made
// the next run deliver it again, and the next, for ever. It is recorded
// now, with the child's removal reported.
func TestBatchChildNeverRemovableDoesNotRedeliverItsParent(t *testing.T) {
	ds := memDatastore(t)
	tgt := &recTarget{noCommas: true}
	job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"T"})
	var reported []string
	b := &Batch{DS: ds, Target: tgt, Counts: job.Counts("T"), Report: func(ref string, _ error) { reported = append(reported, ref) }}
	defer b.Close()
	old := &Record{Version: "1", Ref: "p", Kids: []string{"p/a,b", "p/c"}}
	b.Deliver("p", &Record{Version: "2", Ref: "p"}, doc("p"), old)
	require.NoError(t, b.Flush(context.Background()))
	require.Equal(t, []string{"p/c"}, tgt.removed)
	require.Equal(t, []string{"p/a,b"}, reported)
	rec, err := GetRecord(ds, "p")
	require.NoError(t, err)
	require.Equal(t, &Record{Version: "2", Ref: "p"}, rec, "recorded: the next run does not deliver it again")
	c := job.Counts("T").Snapshot()
	require.EqualValues(t, 1, c.Updated)
	require.EqualValues(t, 1, c.Ingestfailed)
}

// A reference removed by one item and added again by a later item of the
// same batch (a Gmail message moved between folders: two keys, one
// reference) stays in the target; one added and then removed is removed.
func TestBatchLaterItemWinsForAReference(t *testing.T) {
	ds := memDatastore(t)
	tgt := &recTarget{}
	job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"T"})
	b := &Batch{DS: ds, Target: tgt, Counts: job.Counts("T")}
	defer b.Close()
	b.Forget("INBOX/1", &Record{Version: "1", Ref: "moved", Kids: []string{"moved#2"}})
	b.Deliver("Archive/7", &Record{Version: "1", Ref: "moved", Kids: []string{"moved#2"}},
		append(doc("moved"), doc("moved#2")...), nil)
	b.Deliver("INBOX/2", &Record{Version: "1", Ref: "gone"}, doc("gone"), nil)
	b.Forget("INBOX/2", &Record{Version: "1", Ref: "gone"})
	require.NoError(t, b.Flush(context.Background()))
	// The target applies the adds, then the removals.
	in := map[string]bool{}
	for _, r := range tgt.added {
		in[r] = true
	}
	for _, r := range tgt.removed {
		delete(in, r)
	}
	require.Equal(t, map[string]bool{"moved": true, "moved#2": true}, in)
	require.Equal(t, []string{"gone"}, tgt.removed)
	rec, err := GetRecord(ds, "Archive/7")
	require.NoError(t, err)
	require.NotNil(t, rec)
	rec, err = GetRecord(ds, "INBOX/1")
	require.NoError(t, err)
	require.Nil(t, rec)
}

// failingDS refuses every Update.
type failingDS struct{ store.Datastore }

var errDisk = errors.New("disk on fire")

func (failingDS) Update(func(store.Writer) error) error { return errDisk }

// A store that cannot be written stops the deliveries: the error comes
// back from the next MaybeFlush or Flush, and nothing more is delivered.
func TestBatchStoreErrorStopsDeliveries(t *testing.T) {
	tgt := &recTarget{}
	job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"T"})
	b := &Batch{DS: failingDS{memDatastore(t)}, Target: tgt, Counts: job.Counts("T"), Size: 1}
	defer b.Close()
	ctx := context.Background()
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		b.Deliver(fmt.Sprint(i), &Record{Ref: fmt.Sprint(i)}, doc(fmt.Sprint(i)), nil)
		err = b.MaybeFlush(ctx)
	}
	require.ErrorIs(t, err, errDisk)
	require.ErrorIs(t, b.Flush(ctx), errDisk)
	require.LessOrEqual(t, len(tgt.added), 2, "at most the batch that failed to be recorded and the one handed over meanwhile")
	require.EqualValues(t, 0, job.Counts("T").Snapshot().Added)
}

// Close drops what was not handed over and leaves no goroutine: a Batch
// can be flushed again afterwards.
func TestBatchCloseDropsWhatWasNotHandedOver(t *testing.T) {
	ds := memDatastore(t)
	tgt := &recTarget{}
	job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"T"})
	b := &Batch{DS: ds, Target: tgt, Counts: job.Counts("T")}
	b.Deliver("a", &Record{Ref: "a"}, doc("a"), nil)
	b.Close()
	b.Close()
	require.Empty(t, tgt.added)
	b.Deliver("b", &Record{Ref: "b"}, doc("b"), nil)
	require.NoError(t, b.Flush(context.Background()))
	require.Equal(t, []string{"b"}, tgt.added)
	b.Close()
}

// addedCount is how many documents t took.
func (t *recTarget) addedCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.added)
}

// earlyCalled polls MaybeFlush until the target was called, within a
// deadline.
func earlyCalled(t *testing.T, b *Batch, tgt *recTarget) bool {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		require.NoError(t, b.MaybeFlush(context.Background()))
		tgt.mu.Lock()
		calls := tgt.calls
		tgt.mu.Unlock()
		if calls > 0 {
			return true
		}
	}
	return false
}

// fileStarts returns where the files of a target that writes files of
// size documents per call start, for calls of the given sizes.
func fileStarts(calls []int, size int) []int {
	var starts []int
	at := 0
	for _, n := range calls {
		for lo := 0; lo < n; lo += size {
			starts = append(starts, at+lo)
		}
		at += n
	}
	return starts
}

// With FileSize, the documents of the batch being gathered go to the
// target while it is idle, in multiples of FileSize, so the target writes
// the files one call per batch would have; the records wait for the whole
// batch.
func TestBatchDeliversEarlyInMultiplesOfFileSize(t *testing.T) {
	ds := memDatastore(t)
	tgt := &recTarget{}
	job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"T"})
	b := &Batch{DS: ds, Target: tgt, Counts: job.Counts("T"), Size: 100, FileSize: 10}
	defer b.Close()
	ctx := context.Background()
	var want []string
	var units []int // documents per batch handed over, as Size cuts them
	inUnit := 0
	item := func(i int) {
		key := fmt.Sprintf("k%03d", i)
		docs := doc("ref-" + key)
		if i%5 == 0 { // a message and its attachment
			docs = append(docs, doc("ref-"+key+"/a")...)
		}
		for _, d := range docs {
			want = append(want, d.Reference)
		}
		b.Deliver(key, &Record{Version: "1", Ref: "ref-" + key}, docs, nil)
		if inUnit += len(docs); inUnit >= 100 {
			units, inUnit = append(units, inUnit), 0
		}
	}
	i := 0
	for ; len(want) < 60; i++ {
		item(i)
		require.NoError(t, b.MaybeFlush(ctx))
	}
	require.True(t, earlyCalled(t, b, tgt), "nothing delivered before the batch was full")
	require.Positive(t, tgt.addedCount())
	rec, err := GetRecord(ds, "k000")
	require.NoError(t, err)
	require.Nil(t, rec, "recorded before its batch was delivered whole")
	for ; len(want) < 250; i++ {
		item(i)
		require.NoError(t, b.MaybeFlush(ctx))
	}
	units = append(units, inUnit)
	require.NoError(t, b.Flush(ctx))

	require.Equal(t, want, tgt.added)
	require.Equal(t, fileStarts(units, 10), fileStarts(tgt.sizes, 10), "files cut where one call per batch cuts them (calls %v)", tgt.sizes)
	require.Greater(t, len(tgt.sizes), len(units))
	for k := range i {
		rec, err := GetRecord(ds, fmt.Sprintf("k%03d", k))
		require.NoError(t, err)
		require.NotNil(t, rec, k)
	}
	c := job.Counts("T").Snapshot()
	require.EqualValues(t, len(want), c.Added)
	require.EqualValues(t, len(want), c.Ingestadded)
	require.Equal(t, 0, b.Failures())
}

// An early call refused: the rest of its batch is not delivered, nothing
// of it is recorded, and the whole batch counts as refused.
func TestBatchEarlyRefusalRefusesTheBatch(t *testing.T) {
	ds := memDatastore(t)
	tgt := &recTarget{refuse: func(call int) bool { return call == 1 }}
	job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"T"})
	b := &Batch{DS: ds, Target: tgt, Counts: job.Counts("T"), Size: 100, FileSize: 10}
	defer b.Close()
	ctx := context.Background()
	mark := b.Mark()
	for i := range 60 {
		b.Deliver(fmt.Sprint(i), &Record{Ref: fmt.Sprint(i)}, doc(fmt.Sprint(i)), nil)
		require.NoError(t, b.MaybeFlush(ctx))
	}
	require.True(t, earlyCalled(t, b, tgt))
	for i := 60; i < 80; i++ {
		b.Deliver(fmt.Sprint(i), &Record{Ref: fmt.Sprint(i)}, doc(fmt.Sprint(i)), nil)
		require.NoError(t, b.MaybeFlush(ctx))
	}
	b.PutAfter(mark, []byte("c:cursor"), []byte("1"))
	require.NoError(t, b.Flush(ctx))
	require.Empty(t, tgt.added)
	require.Equal(t, 1, tgt.calls, "nothing more of a batch after a refusal")
	for i := range 80 {
		rec, err := GetRecord(ds, fmt.Sprint(i))
		require.NoError(t, err)
		require.Nil(t, rec, i)
	}
	v, err := ds.Get([]byte("c:cursor"))
	require.NoError(t, err)
	require.Nil(t, v)
	require.Equal(t, 1, b.Failures())
	c := job.Counts("T").Snapshot()
	require.EqualValues(t, 0, c.Added)
	require.EqualValues(t, 80, c.Ingestfailed)
}

// Documents after a conditional item with documents are not delivered
// early (the item may yet be dropped): a batch that starts with one is
// delivered in one call.
func TestBatchNoEarlyDeliveryAfterAConditionalItem(t *testing.T) {
	ds := memDatastore(t)
	tgt := &recTarget{}
	job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"T"})
	b := &Batch{DS: ds, Target: tgt, Counts: job.Counts("T"), Size: 100, FileSize: 10}
	defer b.Close()
	ctx := context.Background()
	b.DeliverAfter(b.Mark(), "room", &Record{Ref: "room"}, doc("room"), nil)
	want := []string{"room"}
	for i := range 60 {
		b.Deliver(fmt.Sprint(i), &Record{Ref: fmt.Sprint(i)}, doc(fmt.Sprint(i)), nil)
		want = append(want, fmt.Sprint(i))
		require.NoError(t, b.MaybeFlush(ctx))
	}
	require.NoError(t, b.Flush(ctx))
	require.Equal(t, want, tgt.added)
	require.Equal(t, []int{61}, tgt.sizes)
}

// An item delivered again without a child it had (a file taken off a
// message, a version gone) is recorded only once the child's document was
// removed: when the target refuses the removal, the old record stays, so
// the next run delivers the item again and removes the child then,
// instead of forgetting a document that is still in the index.
func TestBatchRefusedRemovalOfAChildKeepsTheOldRecord(t *testing.T) {
	ds := memDatastore(t)
	old := &Record{Version: "1", Ref: "m", Kids: []string{"m#file"}}
	require.NoError(t, ds.Update(func(w store.Writer) error {
		return w.Put(RecordKey("m"), []byte(`{"v":"1","r":"m","k":["m#file"]}`))
	}))
	// The Add goes through, the Remove after it is refused.
	tgt := &recTarget{refuse: func(call int) bool { return call == 2 }}
	job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"T"})
	b := &Batch{DS: ds, Target: tgt, Counts: job.Counts("T")}
	defer b.Close()
	b.Deliver("m", &Record{Version: "2", Ref: "m"}, doc("m"), old)
	require.NoError(t, b.Flush(context.Background()))
	require.Equal(t, []string{"m"}, tgt.added)
	require.Empty(t, tgt.removed)
	rec, err := GetRecord(ds, "m")
	require.NoError(t, err)
	require.Equal(t, old, rec, "the child's removal was refused: the record still names it")
	c := job.Counts("T").Snapshot()
	require.EqualValues(t, 0, c.Updated)
	require.EqualValues(t, 0, c.Deleted)
	require.EqualValues(t, 1, c.Ingestfailed)
	require.Equal(t, 1, b.Failures())

	// The next run: both go through.
	tgt.refuse = nil
	b.Deliver("m", &Record{Version: "2", Ref: "m"}, doc("m"), rec)
	require.NoError(t, b.Flush(context.Background()))
	require.Equal(t, []string{"m#file"}, tgt.removed)
	rec, err = GetRecord(ds, "m")
	require.NoError(t, err)
	require.Equal(t, &Record{Version: "2", Ref: "m"}, rec)
}

// ctxTarget records, for each call, whether its context had a deadline
// and was done when the call began; block, when set, makes Add wait for
// the context's end and return its cause.
type ctxTarget struct {
	recTarget
	mu2       sync.Mutex
	deadlines []bool
	done      []bool
	block     bool
}

func (t *ctxTarget) note(ctx context.Context) {
	_, ok := ctx.Deadline()
	t.mu2.Lock()
	defer t.mu2.Unlock()
	t.deadlines = append(t.deadlines, ok)
	t.done = append(t.done, ctx.Err() != nil)
}

func (t *ctxTarget) Add(ctx context.Context, docs []*ingest.Document) error {
	t.note(ctx)
	if t.block {
		<-ctx.Done()
		return fmt.Errorf("%w: %w", ingest.ErrDelivery, context.Cause(ctx))
	}
	return t.recTarget.Add(ctx, docs)
}

func (t *ctxTarget) Remove(ctx context.Context, refs []string) error {
	t.note(ctx)
	return t.recTarget.Remove(ctx, refs)
}

// A delivery has no deadline of its own while its action runs: the
// target bounds its requests ([Ingestion] IngestTimeout, per CFS
// request). Before, every call had DeliveryTimeout (30 s) from its start
// for all of its requests: a batch of 1000 documents is ten CFS requests
// of IngestBatchSize=100, which a CFS taking 4 s each could never take in
// time, so the batch was refused by every run (context deadline exceeded)
// however long IngestTimeout was set.
func TestBatchDeliveryHasNoDeadlineWhileTheActionRuns(t *testing.T) {
	ds := memDatastore(t)
	tgt := &ctxTarget{}
	job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"T"})
	b := &Batch{DS: ds, Target: tgt, Counts: job.Counts("T"), Size: 20, FileSize: 5}
	defer b.Close()
	ctx := context.Background()
	for i := range 10 {
		key := fmt.Sprintf("k%02d", i)
		b.Deliver(key, &Record{Version: "1", Ref: "ref-" + key}, doc("ref-"+key), nil)
		require.NoError(t, b.MaybeFlush(ctx))
	}
	require.True(t, earlyCalled(t, b, &tgt.recTarget), "no early delivery")
	for i := 10; i < 12; i++ {
		key := fmt.Sprintf("k%02d", i)
		b.Deliver(key, &Record{Version: "1", Ref: "ref-" + key}, doc("ref-"+key), nil)
	}
	b.Forget("k00", &Record{Version: "1", Ref: "ref-k00"})
	require.NoError(t, b.Flush(ctx))
	tgt.mu2.Lock()
	defer tgt.mu2.Unlock()
	require.GreaterOrEqual(t, len(tgt.deadlines), 3, "an early Add, the rest, the removal")
	for i, d := range tgt.deadlines {
		require.False(t, d, "call %d of %d had a deadline while the action ran", i+1, len(tgt.deadlines))
	}
}

// Stopped (its context done), an action still delivers what is under way
// (the target sees a live context), but a delivery that does not end is
// cut short within the grace, so the action ends.
func TestBatchStoppedDeliveryEndsWithinTheGrace(t *testing.T) {
	ds := memDatastore(t)
	job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"T"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // stopped before the batch is handed over

	tgt := &ctxTarget{}
	b := &Batch{DS: ds, Target: tgt, Counts: job.Counts("T")}
	b.Deliver("k", &Record{Version: "1", Ref: "ref-k"}, doc("ref-k"), nil)
	require.NoError(t, b.Flush(ctx))
	b.Close()
	require.Equal(t, []bool{false}, tgt.done, "the delivery under way at Stop is made")
	require.Equal(t, []string{"ref-k"}, tgt.added)

	hung := &ctxTarget{block: true}
	b = &Batch{DS: ds, Target: hung, Counts: job.Counts("T"), grace: 20 * time.Millisecond}
	defer b.Close()
	b.Deliver("h", &Record{Version: "1", Ref: "ref-h"}, doc("ref-h"), nil)
	flushed := make(chan error, 1)
	go func() { flushed <- b.Flush(ctx) }()
	select {
	case err := <-flushed:
		require.NoError(t, err, "a refused delivery is not a store error")
	case <-time.After(10 * time.Second):
		t.Fatal("a delivery that hangs after Stop was not cut short")
	}
	require.Equal(t, 1, b.Failures())
	rec, err := GetRecord(ds, "h")
	require.NoError(t, err)
	require.Nil(t, rec, "recorded without its document")
}

// A group's items split by batches (a message's files handed over as
// they were read, then the message with its record): a refused file
// keeps the message's record from being written (it would name a file
// the target lacks), wherever the batches split them, while another
// group's record, and an item of no group, delivered after the refusal
// are written.
func TestBatchGroupRefusedItemHoldsItsRecord(t *testing.T) {
	ds := memDatastore(t)
	tgt := &recTarget{refuse: func(call int) bool { return call == 1 }}
	job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"T"})
	b := &Batch{DS: ds, Target: tgt, Counts: job.Counts("T"), Size: 2}
	defer b.Close()
	ctx := context.Background()
	g1, g2 := &Group{}, &Group{}
	// Batch 1 {file1a, file1b}: refused. Batch 2 {msg1, file2}. Batch 3
	// {msg2, other}.
	b.Add(Item{Docs: doc("file1a"), Added: 1, Group: g1})
	b.Add(Item{Docs: doc("file1b"), Added: 1, Group: g1})
	require.NoError(t, b.MaybeFlush(ctx))
	b.DeliverIn(g1, "msg1", &Record{Version: "1", Ref: "msg1", Kids: []string{"file1a", "file1b"}}, doc("msg1"), nil)
	b.Add(Item{Docs: doc("file2"), Added: 1, Group: g2})
	require.NoError(t, b.MaybeFlush(ctx))
	b.DeliverIn(g2, "msg2", &Record{Version: "1", Ref: "msg2", Kids: []string{"file2"}}, doc("msg2"), nil)
	b.Deliver("other", &Record{Version: "1", Ref: "other"}, doc("other"), nil)
	require.NoError(t, b.Flush(ctx))

	require.Equal(t, []string{"msg1", "file2", "msg2", "other"}, tgt.added)
	for k, want := range map[string]bool{"msg1": false, "msg2": true, "other": true} {
		rec, err := GetRecord(ds, k)
		require.NoError(t, err)
		require.Equal(t, want, rec != nil, k)
	}
	c := job.Counts("T").Snapshot()
	require.EqualValues(t, 3, c.Added, "file2, msg2 and other, not msg1: %+v", c)
	require.EqualValues(t, 2, c.Ingestfailed)
}

// A delivery or removal the target refused whole (CFS down, or answering
// an error) was only counted (ingestfailed) and logged, once for the
// batch, by the mail, Objective and Webex connectors: their action's
// failures listed none of its items, so GetStatus said the action had no
// failures while none of its documents reached the index. docs/protocol.md
// says the failures list what could not be delivered to or removed from
// the ingestion target, and the HTTP connector lists each such page. Now
// each reference of a refused call is reported (FailOf lists it, within
// the list's bound; the total counts them all), with the target's error.
func TestBatchRefusedCallsAreListedAmongTheFailures(t *testing.T) {
	ds := memDatastore(t)
	tgt := &recTarget{refuse: func(call int) bool { return call == 2 || call == 3 }}
	job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"T"})
	b := &Batch{DS: ds, Target: tgt, Counts: job.Counts("T"), Size: 2, Report: FailOf(job, "T")}
	defer b.Close()
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c", "d"} { // batches {a,b} and {c,d}: the second is refused
		b.Deliver(k, &Record{Version: "1", Ref: "ref-" + k}, doc("ref-"+k), nil)
		require.NoError(t, b.MaybeFlush(ctx))
	}
	require.NoError(t, b.Flush(ctx))
	for _, k := range []string{"a", "b"} { // one call of two removals, refused (call 3)
		b.Forget(k, &Record{Version: "1", Ref: "ref-" + k})
	}
	require.NoError(t, b.Flush(ctx))
	require.Equal(t, []string{"ref-a", "ref-b"}, tgt.added)
	require.Empty(t, tgt.removed)

	fl := job.Failures()
	require.NotNil(t, fl, "GetStatus lists them")
	require.EqualValues(t, 4, fl.Total)
	var urls []string
	for _, f := range fl.Items {
		urls = append(urls, f.Url)
		require.Equal(t, "T", f.Task)
		require.Contains(t, f.Reason, "refused", f.Url)
	}
	require.Equal(t, []string{"ref-c", "ref-d", "ref-a", "ref-b"}, urls)
	require.Contains(t, fl.Items[0].Reason, "sent again")
	require.Contains(t, fl.Items[2].Reason, "removed again")
	c := job.Counts("T").Snapshot()
	require.EqualValues(t, 4, c.Ingestfailed, "%+v", c)
}

// A document the target cannot take at all (Document.Validate: a
// service's value that cannot be a reference) was refused alone when
// added, counted (ingestfailed) and logged, but not listed among the
// action's failures: GetStatus said the action had no failures while the
// document never reached the index, against docs/protocol.md. It is
// listed now, its reference quoted (it may hold control characters or
// bytes that are not UTF-8, which a failure's <url> cannot carry as they
// are) with a URL password hidden.
func TestBatchInvalidDocumentIsListedAmongTheFailures(t *testing.T) {
	ds := memDatastore(t)
	tgt := &recTarget{}
	job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"T"})
	b := &Batch{DS: ds, Target: tgt, Counts: job.Counts("T"), Report: FailOf(job, "T")}
	defer b.Close()
	ctx := context.Background()
	b.Deliver("a", &Record{Version: "1", Ref: "ref-a"}, doc("ref-a"), nil)
	b.Deliver("b", &Record{Version: "1", Ref: "ref\x01b\xff"}, doc("ref\x01b\xff"), nil)
	b.Deliver("c", &Record{Version: "1", Ref: "https://u:hunter2@h/c"}, doc("https://u:hunter2@h/c"), nil)
	require.NoError(t, b.Flush(ctx))
	require.Equal(t, []string{"ref-a"}, tgt.added)

	fl := job.Failures()
	require.NotNil(t, fl, "GetStatus lists them")
	require.EqualValues(t, 2, fl.Total)
	require.Len(t, fl.Items, 2)
	require.Equal(t, `"ref\x01b\xff"`, fl.Items[0].Url)
	require.Contains(t, fl.Items[0].Reason, "not valid UTF-8")
	require.NotContains(t, fl.Items[1].Url+fl.Items[1].Reason, "hunter2")
	require.Contains(t, fl.Items[1].Url, "https://u:")
	for _, f := range fl.Items {
		require.True(t, utf8.ValidString(f.Url) && utf8.ValidString(f.Reason), "%q", f)
		require.Equal(t, "T", f.Task)
	}
	c := job.Counts("T").Snapshot()
	require.EqualValues(t, 2, c.Ingestfailed, "%+v", c)
	require.EqualValues(t, 1, c.Ingestadded, "%+v", c)
}

// A document the target cannot take for a reason other than its
// reference (a field name with a space) is listed under its reference as
// it is, as every other failure of the action is (a document or a removal
// the target refused): it was listed quoted, and cut at 100 bytes, so
// that a Webex file's or message's reference (a URL of some 120 bytes)
// showed as `"https://webexapis.com/v1/contents/Y2lz…"… (121 bytes)`, no
// reference a client could match or give as Identifiers. Only a
// reference that cannot be carried as it is (not UTF-8, control
// characters) is quoted.
func TestBatchInvalidDocumentIsListedUnderItsReference(t *testing.T) {
	ds := memDatastore(t)
	job := fetch.NewJob("t", "SYNCHRONIZE", nil, []string{"T"})
	b := &Batch{DS: ds, Target: &recTarget{}, Counts: job.Counts("T"), Report: FailOf(job, "T")}
	defer b.Close()
	ref := "https://webexapis.com/v1/contents/" + strings.Repeat("Y2lzY29zcGFyazovL3Vz", 5)
	b.Deliver("a", &Record{Version: "1", Ref: ref}, []*ingest.Document{{Reference: ref, Fields: []ingest.Field{{Name: "A B", Value: "v"}}}}, nil)
	require.NoError(t, b.Flush(context.Background()))
	fl := job.Failures()
	require.NotNil(t, fl)
	require.Len(t, fl.Items, 1)
	require.Equal(t, ref, fl.Items[0].Url)
}
