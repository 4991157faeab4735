package pgstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/storetest"
)

func put(k, v string) func(w store.Writer) error {
	return func(w store.Writer) error { return w.Put([]byte(k), []byte(v)) }
}

func getS(t *testing.T, ds store.Datastore, k string) string {
	t.Helper()
	v, err := ds.Get([]byte(k))
	require.NoError(t, err)
	if v == nil {
		return "<absent>"
	}
	return string(v)
}

func dsOf(t *testing.T, s *Store, task string) store.Datastore {
	t.Helper()
	ds, err := s.Datastore(task)
	require.NoError(t, err)
	return ds
}

func entries(t *testing.T, ds store.Datastore) string {
	t.Helper()
	var out []string
	require.NoError(t, ds.ForEach(func(k, v []byte) error {
		out = append(out, string(k)+"="+string(v))
		return nil
	}))
	n, err := ds.Len()
	require.NoError(t, err)
	require.Equal(t, len(out), n, "Len agrees with ForEach")
	return strings.Join(out, " ")
}

// A deferred write is seen at once by this node's reads (Get, ForEach,
// Len, an Update's Get), by nobody else, and reaches PostgreSQL with the
// node's next group commit, in its transaction.
func TestDeferredWritesRideTheGroupCommit(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a", "b")
	a, b := ns[0], ns[1]
	da, db := dsOf(t, a, "T"), dsOf(t, b, "T")
	require.NoError(t, da.Update(func(w store.Writer) error {
		for _, k := range []string{"k1", "k3", "k5"} {
			if err := w.Put([]byte(k), []byte("old")); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, store.UpdateBookkeeping(da, func(w store.Writer) error {
		v, err := w.Get([]byte("k1"))
		if err != nil {
			return err
		}
		require.Equal(t, "old", string(v))
		for _, kv := range [][2]string{{"k0", "new"}, {"k3", "new"}, {"k4", "new"}, {"k9", "new"}} {
			if err := w.Put([]byte(kv[0]), []byte(kv[1])); err != nil {
				return err
			}
		}
		return w.Delete([]byte("k5"))
	}))
	want := "k0=new k1=old k3=new k4=new k9=new"
	require.Equal(t, want, entries(t, da), "this node sees its deferred writes")
	require.Equal(t, "k1=old k3=old k5=old", entries(t, db), "the others do not, yet")
	require.NoError(t, da.Update(func(w store.Writer) error {
		v, err := w.Get([]byte("k4"))
		require.NoError(t, err)
		require.Equal(t, "new", string(v), "an Update reads the deferred writes")
		return nil
	}))

	_, err := a.Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction("x", 0)}, 100)
	require.NoError(t, err)
	require.Zero(t, a.deferredLen())
	require.Equal(t, want, entries(t, db), "committed with the submission")
	require.Equal(t, want, entries(t, da))

	// Each kind of group commit carries them: WriteOwned, ApplyActions.
	require.NoError(t, store.UpdateBookkeeping(da, put("k1", "w")))
	_, err = a.WriteOwned(ctx, "fetch", "a", []OwnedWrite{{Epoch: 1, Record: newAction("x", 0).Record}})
	require.NoError(t, err)
	require.Equal(t, "w", getS(t, db, "k1"))
	require.NoError(t, store.UpdateBookkeeping(da, put("k1", "apply")))
	require.NoError(t, a.ApplyActions("other", []store.ActionMutation{{Put: newAction("y", 0).Record}}))
	require.Equal(t, "apply", getS(t, db, "k1"))
}

// Only bookkeeping is deferred: UpdateDeferred (a crawl's records of what
// it delivered) is durable when it returns, because another node takes an
// action over at once and must find them.
func TestCrawlRecordsAreNotDeferred(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a", "b")
	da, db := dsOf(t, ns[0], "T"), dsOf(t, ns[1], "T")
	_, isDeferrer := da.(store.Deferrer)
	require.False(t, isDeferrer)
	require.NoError(t, store.UpdateDeferred(da, put("u:page", "delivered")))
	require.Equal(t, "delivered", getS(t, db, "u:page"))
	require.Zero(t, ns[0].deferredLen())
}

// Deferred writes that no group commit carries are written on their own
// within DeferInterval, and at Close.
func TestDeferredWritesWithoutACommit(t *testing.T) {
	t.Parallel()
	url := server.DatabaseT(t)
	a, err := Open(ctx, Config{URL: url, DeferInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	b := openT(t, url, nil)
	t.Cleanup(func() { b.Close() })
	da, db := dsOf(t, a, "T"), dsOf(t, b, "T")
	require.NoError(t, store.UpdateBookkeeping(da, put("k", "timer")))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		v, err := db.Get([]byte("k"))
		assert.NoError(c, err)
		assert.Equal(c, "timer", string(v))
	}, 10*time.Second, 10*time.Millisecond)

	a.cfg.DeferInterval = time.Hour
	require.NoError(t, store.UpdateBookkeeping(da, put("k", "close")))
	require.NoError(t, a.Close())
	require.Equal(t, "close", getS(t, db, "k"))
}

// A direct Update (or Clear) of a task with deferred writes waiting
// carries them before its own: an older deferred value never lands over
// a newer direct one.
func TestDeferredThenDirectWriteOrder(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a", "b")
	a, b := ns[0], ns[1]
	da, db := dsOf(t, a, "T"), dsOf(t, b, "T")
	require.NoError(t, store.UpdateBookkeeping(da, func(w store.Writer) error {
		if err := w.Put([]byte("k"), []byte("deferred")); err != nil {
			return err
		}
		return w.Put([]byte("other"), []byte("deferred"))
	}))
	require.NoError(t, da.Update(put("k", "direct")))
	require.Equal(t, "k=direct other=deferred", entries(t, db), "both written, the direct one last")
	require.Zero(t, a.deferredLen())
	_, err := a.Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction("x", 0)}, 100)
	require.NoError(t, err)
	require.Equal(t, "direct", getS(t, db, "k"))

	require.NoError(t, store.UpdateBookkeeping(da, put("k", "deferred")))
	require.NoError(t, da.Clear())
	require.Equal(t, "", entries(t, db))
	require.Equal(t, "", entries(t, da))
}

// failCommits fails the next n commits before they are sent.
type failCommits struct{ n atomic.Int32 }

func (f *failCommits) Write() error { return nil }
func (f *failCommits) Commit() error {
	if f.n.Add(-1) >= 0 {
		return errors.New("injected: connection lost")
	}
	return nil
}
func (f *failCommits) Synced() error { return nil }

// failingNode opens node a, whose commits f fails on demand, and a
// store b beside it on the same database.
func failingNode(t *testing.T) (a, b *Store, f *failCommits) {
	t.Helper()
	url := server.DatabaseT(t)
	f = &failCommits{}
	a, err := Open(ctx, Config{URL: url, Node: "a", Faults: f, DeferInterval: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	require.NoError(t, a.RegisterNode(ctx, "a", "a:1", 4))
	b = openT(t, url, nil)
	t.Cleanup(func() { b.Close() })
	return a, b, f
}

// A group commit that fails keeps its deferred writes for the next one
// (newer writes of the same keys win); they stay visible meanwhile.
func TestDeferredWritesSurviveAFailedCommit(t *testing.T) {
	t.Parallel()
	a, b, f := failingNode(t)
	da, db := dsOf(t, a, "T"), dsOf(t, b, "T")
	require.NoError(t, store.UpdateBookkeeping(da, put("k1", "v1")))
	require.NoError(t, store.UpdateBookkeeping(da, put("k2", "v2")))
	f.n.Store(1)
	_, err := a.Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction("x", 0)}, 100)
	require.Error(t, err)
	require.Equal(t, "v1", getS(t, da, "k1"))
	require.Equal(t, "<absent>", getS(t, db, "k1"))
	require.NoError(t, store.UpdateBookkeeping(da, put("k2", "newer")))
	_, err = a.Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction("x", 0)}, 100)
	require.NoError(t, err)
	require.Equal(t, "k1=v1 k2=newer", entries(t, db))
	require.Zero(t, a.deferredLen())
}

// Fencing: a write fenced by its epoch (another node claimed that action)
// leaves the rest of the group to commit, deferred writes included; a
// node declared dead has its whole group refused, deferred writes with
// it, and they are dropped, never written later.
func TestDeferredWritesOfAFencedOwner(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a", "b")
	a, b := ns[0], ns[1]
	da, db := dsOf(t, a, "T"), dsOf(t, b, "T")
	_, err := a.Submit(ctx, "fetch", "a", "a:1", []NewAction{newAction("p", 0), newAction("q", 0)}, 100)
	require.NoError(t, err)
	got, err := b.Claim(ctx, "fetch", "b", "b:1", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"p"}, claimIDs(got))
	rec := func(id string, state messages.State) *messages.StoredAction {
		r := newAction(id, 0).Record
		r.Status.State = state
		return r
	}

	require.NoError(t, store.UpdateBookkeeping(da, put("k", "with-q")))
	fenced, err := a.WriteOwned(ctx, "fetch", "a", []OwnedWrite{
		{Epoch: 1, Record: rec("p", messages.State_STATE_CANCELLED)},
		{Epoch: 1, Record: rec("q", messages.State_STATE_CANCELLED)},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"p"}, fenced)
	r, _, err := b.Action(ctx, "fetch", "p")
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_PROCESSING, r.Record.Status.State, "the fenced row is not written")
	r, _, err = b.Action(ctx, "fetch", "q")
	require.NoError(t, err)
	require.Equal(t, messages.State_STATE_CANCELLED, r.Record.Status.State, "the rest of the group is")
	require.Equal(t, "with-q", getS(t, db, "k"), "and so are the deferred writes")

	// b declares a dead (a's lease lapsed) and takes its actions over.
	_, err = b.Adopt(ctx, "fetch", "b", "b:1", []string{"a"}, 0, func(*messages.StoredAction) {})
	require.NoError(t, err)
	require.NoError(t, store.UpdateBookkeeping(da, put("k", "zombie")))
	require.NoError(t, store.UpdateBookkeeping(da, put("z", "zombie")))
	_, err = a.WriteOwned(ctx, "fetch", "a", []OwnedWrite{{Epoch: 1, Record: rec("q", messages.State_STATE_FINISHED)}})
	require.ErrorIs(t, err, ErrFenced)
	require.Zero(t, a.deferredLen(), "a fenced-out node's deferred writes are dropped")
	require.Equal(t, "k=with-q", entries(t, db), "nothing of the zombie's group was written")
	require.Equal(t, "with-q", getS(t, da, "k"))
	// Nor later, on their own or with a direct write.
	require.NoError(t, store.UpdateBookkeeping(da, put("z", "zombie")))
	require.ErrorIs(t, a.flushDeferred(), ErrFenced)
	require.ErrorIs(t, da.Update(put("y", "zombie")), ErrFenced)
	require.Equal(t, "k=with-q", entries(t, db))
	require.NoError(t, store.UpdateBookkeeping(da, put("z", "zombie")))
	require.NoError(t, a.Close(), "dropping a dead node's deferred writes is not a failure of Close")
	require.Equal(t, "k=with-q", entries(t, db))
}

// Crash safety: the test binary, run again as a child node, makes a
// deferred write and is killed with SIGKILL before any commit (the write
// is lost with the action's end, which was never written), or after the
// group commit that wrote its action's end (both are there).
func TestDeferredWritesKill9(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"applied", "committed"} {
		t.Run(mode, func(t *testing.T) {
			ns := nodes(t, "a", "b")
			b := ns[1]
			url := b.cfg.URL
			_, err := b.Submit(ctx, "fetch", "b", "b:1", []NewAction{newAction("p", 0)}, 100)
			require.NoError(t, err)
			got, err := ns[0].Claim(ctx, "fetch", "a", "a:1", 1)
			require.NoError(t, err)
			require.Len(t, got, 1)
			ns[0].Close()

			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "PGSTORE_CRASH_CHILD="+strings.Join([]string{mode, url, fmt.Sprint(got[0].Epoch)}, "\t"))
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			line := make(chan string, 1)
			go func() {
				l, _ := bufio.NewReader(out).ReadString('\n')
				line <- strings.TrimSpace(l)
			}()
			select {
			case l := <-line:
				require.Equal(t, mode, l)
			case <-time.After(time.Minute):
				_ = cmd.Process.Kill()
				t.Fatal("the child did not report")
			}
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			_ = cmd.Wait()

			db := dsOf(t, b, "T")
			r, _, err := b.Action(ctx, "fetch", "p")
			require.NoError(t, err)
			if mode == "applied" {
				require.Equal(t, "<absent>", getS(t, db, "m:task"), "a deferred write dies with its process")
				require.Equal(t, messages.State_STATE_PROCESSING, r.Record.Status.State)
			} else {
				require.Equal(t, messages.State_STATE_FINISHED, r.Record.Status.State)
				require.Equal(t, "calls=1", getS(t, db, "m:task"), "the action's end is never durable without its task's record")
			}
		})
	}
}

// crashChild is the child of TestDeferredWritesKill9: node a, owner of
// action p at the given epoch.
func crashChild(arg string) int {
	parts := strings.Split(arg, "\t")
	mode, url := parts[0], parts[1]
	var epoch int64
	fmt.Sscan(parts[2], &epoch)
	s, err := Open(context.Background(), Config{URL: url, Node: "a", DeferInterval: time.Hour})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ds, err := s.Datastore("T")
	if err == nil {
		err = store.UpdateBookkeeping(ds, func(w store.Writer) error { return w.Put([]byte("m:task"), []byte("calls=1")) })
	}
	if err == nil && mode == "committed" {
		r := newAction("p", 0).Record
		r.Status.State = messages.State_STATE_FINISHED
		var fenced []string
		fenced, err = s.WriteOwned(context.Background(), "fetch", "a", []OwnedWrite{{Epoch: epoch, Record: r}})
		if err == nil && len(fenced) > 0 {
			err = fmt.Errorf("fenced: %v", fenced)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(mode)
	time.Sleep(time.Hour) // until SIGKILL
	return 0
}

// A node's group commit is one transaction: its owned writes, its
// submissions, a claim for its free threads (which may take those very
// submissions, in priority order with the rest of the queue) and its
// deferred datastore writes.
func TestCommitGroupWithClaim(t *testing.T) {
	t.Parallel()
	ns := nodes(t, "a", "b")
	a, b := ns[0], ns[1]
	_, err := b.Submit(ctx, "fetch", "b", "b:1", []NewAction{newAction("old", 0)}, 100)
	require.NoError(t, err)
	require.NoError(t, store.UpdateBookkeeping(dsOf(t, a, "T"), put("k", "v")))
	r, err := a.Commit(ctx, "fetch", "a", "a:1", Group{
		Submits: []NewAction{newAction("n1", 5), newAction("n2", 0)}, MaxWaiting: 100, Claim: 2,
	})
	require.NoError(t, err)
	require.Len(t, r.Seqs, 2)
	require.NotZero(t, r.Seqs[0])
	require.Equal(t, []string{"n1", "old"}, claimIDs(r.Claimed), "priority, then arrival, the group's own submissions included")
	require.Equal(t, "a", r.Claimed[0].PrevOwner)
	require.Equal(t, "b", r.Claimed[1].PrevOwner)
	require.Equal(t, r.Seqs[0], r.Claimed[0].Record.Status.Seq)
	require.EqualValues(t, 2, r.Claimed[0].Epoch)
	require.Equal(t, "v", getS(t, dsOf(t, b, "T"), "k"))

	done := r.Claimed[0].Record
	done.Status.State = messages.State_STATE_FINISHED
	r, err = a.Commit(ctx, "fetch", "a", "a:1", Group{
		Writes: []OwnedWrite{{Epoch: r.Claimed[0].Epoch, Record: done}}, Claim: 4,
	})
	require.NoError(t, err)
	require.Empty(t, r.Fenced)
	require.Equal(t, []string{"n2"}, claimIDs(r.Claimed))
}

// A steady stream of deferred writes with no group commit does not push
// their flush back: each is written within DeferInterval or so.
func TestDeferredFlushIsNotPushedBack(t *testing.T) {
	t.Parallel()
	url := server.DatabaseT(t)
	a, err := Open(ctx, Config{URL: url, DeferInterval: 200 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	b := openT(t, url, nil)
	t.Cleanup(func() { b.Close() })
	da, db := dsOf(t, a, "T"), dsOf(t, b, "T")
	require.NoError(t, store.UpdateBookkeeping(da, put("first", "1")))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if err := store.UpdateBookkeeping(da, put("k", fmt.Sprint(i))); err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		v, err := db.Get([]byte("first"))
		assert.NoError(c, err)
		assert.Equal(c, "1", string(v))
	}, 20*time.Second, 20*time.Millisecond)
}

// A bookkeeping write made while Close writes the deferred ones for the
// last time (its transaction is in flight) went into the overlay after
// Close had taken what it held, and returned nil: nothing wrote it, and
// it was lost though the store's contract says an update that returned
// nil is durable at Close. It is refused (ErrClosed) or written.
func TestCloseRefusesOrWritesBookkeepingDuringFinalFlush(t *testing.T) {
	t.Parallel()
	url := server.DatabaseT(t)
	f := &storetest.Faults{}
	a, err := Open(ctx, Config{URL: url, DeferInterval: time.Hour, Faults: f})
	require.NoError(t, err)
	b := openT(t, url, nil)
	t.Cleanup(func() { b.Close() })
	da, db := dsOf(t, a, "T"), dsOf(t, b, "T")
	require.NoError(t, store.UpdateBookkeeping(da, put("before", "1")))

	held, release := f.HoldSync()
	closed := make(chan error, 1)
	go func() { closed <- a.Close() }()
	select {
	case <-held: // Close's flush is committed, its outcome not yet seen
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not write the deferred writes")
	}
	err = store.UpdateBookkeeping(da, put("late", "2"))
	mergeErr := da.(store.MergeBookkeeper).MergeBookkeeping([]byte("merged"), store.Merge{Add: map[string]int64{"n": 1}})
	release()
	require.NoError(t, <-closed)

	require.Equal(t, "1", getS(t, db, "before"))
	if err == nil {
		require.Equal(t, "2", getS(t, db, "late"), "UpdateBookkeeping returned nil during Close, but its write is lost")
	}
	if mergeErr == nil {
		require.NotEqual(t, "<absent>", getS(t, db, "merged"), "MergeBookkeeping returned nil during Close, but its write is lost")
	}
	require.ErrorIs(t, err, store.ErrClosed)
	require.ErrorIs(t, mergeErr, store.ErrClosed)
}
