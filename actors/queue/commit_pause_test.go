package queue

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// pauseFailStore fails the queue's pause-flag write (its meta datastore's
// Update) while failPause is set, as a bbolt commit does on a disk too
// full for the file to grow while the journal's segment still has room.
type pauseFailStore struct {
	store.Store
	failPause atomic.Bool
}

func (s *pauseFailStore) Datastore(name string) (store.Datastore, error) {
	ds, err := s.Store.Datastore(name)
	if err != nil || name != metaDatastore("fetch") {
		return ds, err
	}
	return &pauseFailDS{Datastore: ds, s: s}, nil
}

type pauseFailDS struct {
	store.Datastore
	s *pauseFailStore
}

func (d *pauseFailDS) Update(fn func(store.Writer) error) error {
	if d.s.failPause.Load() {
		return fmt.Errorf("store: update: %w: %w", store.ErrNoSpace, syscall.ENOSPC)
	}
	return d.Datastore.Update(fn)
}

// A group commit carries a new submission and the queue's pause flag.
// When the submission's ApplyActions succeeded and the flag's write then
// failed, the whole commit was reported failed: the submitter was told
// its action "was not accepted and is not queued" while it was on disk
// (and ran after the next restart: a client that submitted again got it
// done twice). A submitter told that its action is not queued must not
// find it in the store.
func TestSubmitRefusedOnlyWhenNotWritten(t *testing.T) {
	t.Parallel()
	var st *pauseFailStore
	g := startGated(t, func(c *Config) {
		st = &pauseFailStore{Store: c.Store}
		c.Store, c.CommitDelay = st, -1
	})
	g.submit(1)
	require.Equal(t, 1, g.nextCommit(t), "the first commit is being written")
	g.submit(1)
	paused := make(chan error, 1)
	go func() {
		_, err := g.b.q.Pause(context.Background())
		paused <- err
	}()
	testwait.For(t, 10*time.Second, func() bool {
		ok := false
		g.b.inspectManager(t, func(m *manager) {
			ok = m.pending != nil && len(m.pending.submits) == 1 && m.pausedDirty
		})
		return ok
	}, "the second submission and the pause flag wait for the next commit")
	st.failPause.Store(true)
	g.st.gate <- struct{}{} // the first commit goes through

	tokens, refused := 0, 0
	for tokens+refused < 2 {
		select {
		case <-g.toks:
			tokens++
		case <-g.errs:
			refused++
		case <-g.st.calls: // the second commit's actions
			g.st.gate <- struct{}{}
		case <-time.After(10 * time.Second):
			t.Fatal("a submission got no reply within 10 s")
		}
	}
	require.Error(t, <-paused, "the pause flag is not on disk")
	require.Equal(t, 1, refused, "the commit of the second submission failed")
	n := 0
	require.NoError(t, g.st.Store.LoadActions("fetch", func(*messages.StoredAction) error { n++; return nil }))
	require.Equal(t, tokens, n, "every action on disk got its token, and only those")
}
