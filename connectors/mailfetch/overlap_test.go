package mailfetch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/store"
)

// eventually polls cond until it holds or 10 seconds passed.
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// loginFirstStore hands out the task's datastore once the connector has
// logged in to the server (or 10 s passed): it does when the connection
// is made while the datastore is read.
type loginFirstStore struct {
	store.Store
	p        *mailtest.Proxy
	armed    atomic.Bool
	loggedIn atomic.Bool
}

func (s *loginFirstStore) Datastore(task string) (store.Datastore, error) {
	if s.armed.Load() {
		s.loggedIn.Store(eventually(func() bool { return len(s.p.Commands()) > 0 }))
	}
	return s.Store.Datastore(task)
}

// logoutFirstTarget delivers once the connector has sent LOGOUT (or 10 s
// passed): it does when the connection is closed while the last
// deliveries are written.
type logoutFirstTarget struct {
	ingest.Target
	p         *mailtest.Proxy
	adds      atomic.Int64
	loggedOut atomic.Bool
}

func (t *logoutFirstTarget) Add(ctx context.Context, docs []*ingest.Document) error {
	t.adds.Add(1)
	t.loggedOut.Store(eventually(func() bool { return slices.Contains(t.p.Commands(), "LOGOUT") }))
	return t.Target.Add(ctx, docs)
}

// A Synchronize connects and logs in while it reads the datastore, and
// logs out while it writes its last deliveries; every document is still
// delivered before it ends, and an unchanged re-sync delivers nothing.
func TestSynchronizeOverlapsTheConnectionWithTheDatastore(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{user: "pw"}})
	_, nDocs := corpus(t, d)
	p := mailtest.StartProxy(t, d.Addr, nil)
	host, port, _ := strings.Cut(p.Addr, ":")
	dir := t.TempDir()
	cfg, err := config.Parse("test.cfg", []byte(fmt.Sprintf("[Server]\nDataDirectory=%s/data\n[FetchTasks]\n0=Mail\n[Mail]\nImapServer=%s\nImapPort=%s\nImapSecurity=NONE\nUsername=%s\nPassword=pw\n",
		dir, host, port, user)), TaskKeys)
	require.NoError(t, err)
	mem, err := store.Open(store.Config{Driver: store.DriverMemory})
	require.NoError(t, err)
	t.Cleanup(func() { _ = mem.Close() })
	st := &loginFirstStore{Store: mem, p: p}
	inner := resttest.NewTarget()
	target := &logoutFirstTarget{Target: inner, p: p}
	repo, err := New(Options{Config: cfg, Store: st, Target: target})
	require.NoError(t, err)
	run := func() *fetch.Job {
		tasks, err := repo.Validate("SYNCHRONIZE", nil)
		require.NoError(t, err)
		job := fetch.NewJob("tok", "SYNCHRONIZE", nil, tasks)
		_, err = repo.Run(context.Background(), job)
		require.NoError(t, err)
		return job
	}

	st.armed.Store(true)
	job := run()
	require.True(t, st.loggedIn.Load(), "logged in while the datastore was read")
	require.Equal(t, int64(1), target.adds.Load(), "one delivery, at the end")
	require.True(t, target.loggedOut.Load(), "LOGOUT sent while the last delivery was written")
	require.Equal(t, nDocs, inner.Len())
	require.Equal(t, uint64(nDocs), countsOf(job, "MAIL").Added)
	require.Equal(t, "LOGOUT", p.Commands()[len(p.Commands())-1])

	// The records were written: nothing to deliver the second time.
	job = run()
	require.Equal(t, int64(1), target.adds.Load())
	require.Equal(t, uint64(nDocs), countsOf(job, "MAIL").Unchanged)
}
