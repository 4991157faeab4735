package server

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/etcdtest"
	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/internal/testwait"
)

// stopBound is how soon a cluster node's start-up must end once asked to
// stop (SIGTERM, Ctrl-C: StartContext's context), wherever it waits:
// far below the waits it stopped only after (the shared store's 30 s,
// the etcd client's 5 s per request), with room for a loaded machine.
const stopBound = 4 * time.Second

// startClusterUntil starts a cluster node on etcd and the shared store
// at storeURL, waits until waiting says the start-up waits where the test
// holds it, asks it to stop (cancels StartContext's context), and returns
// StartContext's error and how long it took to return after the request.
func startClusterUntil(t *testing.T, etcd, storeURL string, waiting func() bool) (time.Duration, error) {
	t.Helper()
	cfg := clusterConfig(t, t.TempDir(), etcd, "Store="+storeURL+"\nRemoteHost=127.0.0.1\n")
	type started struct {
		s   *Server
		err error
		at  time.Time
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan started, 1)
	go func() {
		s, err := StartContext(ctx, cfg, Options{Port: -1, LogOutput: io.Discard,
			Repository: func(Deps) (fetch.Repository, error) { return newTestRepo(), nil }})
		done <- started{s, err, time.Now()}
	}()
	testwait.For(t, 60*time.Second, func() bool {
		select {
		case r := <-done:
			if r.s != nil {
				stop(t, r.s)
			}
			t.Fatalf("the start-up ended before the test held it: %v", r.err)
		default:
		}
		return waiting()
	}, "the start-up to wait where the test holds it")
	asked := time.Now()
	cancel()
	r := testwait.Recv(t, done, 60*time.Second, "the start-up to end after the request to stop")
	if r.s != nil {
		stop(t, r.s)
	}
	t.Logf("the start-up ended %s after the request to stop", r.at.Sub(asked))
	require.Error(t, r.err, "the start-up succeeded")
	require.ErrorIs(t, r.err, ErrStartStopped)
	return r.at.Sub(asked), r.err
}

// A request to stop (SIGTERM, Ctrl-C) while a cluster node starts stops
// the start-up at once wherever it waits: for the shared store (here its
// key check, behind another node's turn held long: a database that
// answers slowly, or a statement stuck on a lock), or for etcd (here a
// listener that accepts connections and never answers: etcd frozen or
// cut off). It was checked only between the server's components, and the
// cluster's (membership, shared store, key check) waited out its own
// deadlines first: up to 30 s for each store call, 5 s for each etcd
// request, while systemd's stop timeout ran and a user's Ctrl-C looked
// ignored.
func TestStopDuringAClusterStartUp(t *testing.T) {
	t.Parallel()
	etcd := etcdtest.StartT(t, etcdtest.Options{Members: 1})
	pg := pgtest.StartT(t, pgtest.Options{})
	url := pg.DatabaseT(t)

	// The key checks' turn (pgstore's lockKeyCheck, "ckey"), held by
	// another session.
	holder, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	defer holder.Close(context.Background())
	_, err = holder.Exec(context.Background(), `SELECT pg_advisory_lock($1)`, 0x636b6579)
	require.NoError(t, err)
	took, err := startClusterUntil(t, etcd.Members[0].ClientURL, url, func() bool {
		var n int
		require.NoError(t, holder.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'`).Scan(&n))
		return n > 0
	})
	require.Less(t, took, stopBound, "the start-up waiting on the shared store ended %s after the request to stop: %v", took, err)

	// etcd that accepts and never answers.
	silent, accepted := silentListener(t)
	took, err = startClusterUntil(t, "http://"+silent, url, func() bool { return accepted() > 0 })
	require.Less(t, took, stopBound, "the start-up waiting on etcd ended %s after the request to stop: %v", took, err)
}
