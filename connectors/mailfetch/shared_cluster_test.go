package mailfetch

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/mailfetch/imapbox"
	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/pgstore"
)

// Two tasks letting one message go at the same time on two nodes of a
// cluster (two processes on one shared store): the second removes it.
// The repository's turn (sharedMu) is a mutex of one process: task A, on
// one node, found B's record holding the message and kept it; B, on the
// other node, looked before A forgot its record, found it holding the
// message and kept it too, and the message stayed in the index with no
// task left to remove it. The test holds A between its look and its
// forgetting (sharedKeepChecked) while B lets the message go.
func TestSharedKeepTakesTurnsAcrossNodes(t *testing.T) {
	srv := pgtest.StartT(t, pgtest.Options{})
	url := srv.DatabaseT(t)
	cfg, err := config.Parse("test.cfg", []byte("[FetchTasks]\n0=A\n1=B\n[A]\nTransport=GMAILAPI\nUsername="+user+"\nServiceAccountKeyFile=/nonexistent\n"+
		"[B]\nTransport=GMAILAPI\nUsername="+user+"\nServiceAccountKeyFile=/nonexistent\n"), TaskKeys)
	require.NoError(t, err)
	ref := imapbox.GmailReference(user, "18c1")
	rec := &record{Version: "INBOX", Ref: ref, Kids: []string{"2"}}
	// Each keep is given a copy: it takes the kept references out of
	// the slice it is given, in place.
	refs := append([]string{ref}, kidRefs(ref, rec.Kids)...)
	key := recordKey("", "18c1")
	log := slog.New(slog.DiscardHandler)
	node := func(task string) *shared {
		st, err := pgstore.Open(context.Background(), pgstore.Config{URL: url})
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		repo, err := New(Options{Config: cfg, Store: st, Target: resttest.NewTarget()})
		require.NoError(t, err)
		ds, err := st.Datastore(task)
		require.NoError(t, err)
		require.NoError(t, ds.Update(func(w store.Writer) error { return w.Put(key, rec.encode()) }))
		return repo.shared(task, ds, log)
	}
	shA, shB := node("A"), node("B")

	checked, resume := make(chan struct{}), make(chan struct{})
	sharedKeepChecked = func(task string) {
		if task == "A" {
			close(checked)
			<-resume
		}
	}
	t.Cleanup(func() { sharedKeepChecked = nil })
	keep := func(sh *shared, left chan<- []string) {
		l, err := sh.keep(ref, slices.Clone(refs), key)
		if err != nil {
			l = []string{"error: " + err.Error()}
		}
		left <- l
	}
	aLeft := make(chan []string, 1)
	go keep(shA, aLeft)
	testwait.Recv(t, checked, 20*time.Second, "A kept the message (B's record holds it)")
	bLeft := make(chan []string, 1)
	go keep(shB, bLeft)
	// B either ends (nothing orders it after A) or waits for its turn.
	pool := shA.r.st.(*pgstore.Store).Pool()
	testwait.For(t, 20*time.Second, func() bool {
		return len(bLeft) > 0 || pgtest.AdvisoryWaiters(context.Background(), pool) > 0
	}, "B to end or wait for its turn")
	close(resume)
	require.Empty(t, testwait.Recv(t, aLeft, 20*time.Second, "A's keep"), "B holds it: A keeps it")
	require.Equal(t, refs, testwait.Recv(t, bLeft, 20*time.Second, "B's keep"), "A holds it no longer: B removes it")
}

// A task that cannot have the store's turn (another node holds it for
// longer than the store's Timeout) does not decide without it: deciding
// alone is the very race the turn is there to prevent (two nodes each
// keeping the message, leaving it in the index with no task to remove
// it). Its keep fails, as httpfetch's and restsync's fail their batch:
// nothing is kept, no other task's record is marked, its own record
// stays, and the run that asked ends in error, to be run again. Before,
// keep went ahead without the turn once the wait timed out.
func TestSharedKeepWithoutTheStoreTurnFails(t *testing.T) {
	srv := pgtest.StartT(t, pgtest.Options{})
	url := srv.DatabaseT(t)
	cfg, err := config.Parse("test.cfg", []byte("[FetchTasks]\n0=A\n1=B\n[A]\nTransport=GMAILAPI\nUsername="+user+"\nServiceAccountKeyFile=/nonexistent\n"+
		"[B]\nTransport=GMAILAPI\nUsername="+user+"\nServiceAccountKeyFile=/nonexistent\n"), TaskKeys)
	require.NoError(t, err)
	ref := imapbox.GmailReference(user, "18c1")
	rec := &record{Version: "INBOX", Ref: ref}
	key := recordKey("", "18c1")
	st, err := pgstore.Open(context.Background(), pgstore.Config{URL: url, Timeout: 500 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	repo, err := New(Options{Config: cfg, Store: st, Target: resttest.NewTarget()})
	require.NoError(t, err)
	// Another node, with the default Timeout: it writes the records and
	// reads them back (st's 500 ms Timeout is for the turn's wait; a read
	// through st on a loaded CI outlived it), and holds the turn.
	ctx := context.Background()
	other, err := pgstore.Open(ctx, pgstore.Config{URL: url})
	require.NoError(t, err)
	t.Cleanup(func() { other.Close() })
	tasks := []string{"A", "B"}
	for _, task := range tasks {
		ds, err := other.Datastore(task)
		require.NoError(t, err)
		require.NoError(t, ds.Update(func(w store.Writer) error { return w.Put(key, rec.encode()) }))
	}
	dsA, err := st.Datastore("A")
	require.NoError(t, err)
	sh := repo.shared("A", dsA, slog.New(slog.DiscardHandler))

	// The other node holds the turn, in a transaction of its own.
	tx, err := other.Pool().Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	_, err = tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, 0x7475726e, sharedTurn)
	require.NoError(t, err)

	left, err := sh.keep(ref, []string{ref}, key)
	require.Error(t, err, "the turn could not be had")
	require.Nil(t, left)
	// The batch's Keep, where a run's removals are decided, fails the
	// batch the same way.
	d := &restsync.Dropping{Key: string(key), Rec: &restsync.Record{Ref: ref}, Refs: []string{ref}, Forget: true}
	require.Error(t, sh.keepBatch([]*restsync.Dropping{d}), "the turn could not be had")
	require.Equal(t, []string{ref}, d.Refs, "nothing decided")
	for _, task := range tasks {
		ds, err := other.Datastore(task)
		require.NoError(t, err)
		v, err := ds.Get(key)
		require.NoError(t, err)
		require.Equal(t, rec.encode(), v, "task %s's record is as it was: nothing decided without the turn", task)
	}
}
