package httpfetch

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/actors/queue"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
)

// startQueue runs a real fetch queue over repo.
func startQueue(t *testing.T, repo *Repository) *queue.Queue {
	t.Helper()
	discard := quietLogger()
	sys := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond))
	q, err := queue.Start(sys, queue.Config{Name: "fetch", Repository: repo, Logger: discard, StopTimeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Shutdown(ctx)
		sys.Shutdown()
	})
	return q
}

func submitSync(t *testing.T, q *queue.Queue, repo *Repository, p messages.Params) string {
	t.Helper()
	tasks, err := repo.Validate(fetch.ActionSynchronize, p)
	require.NoError(t, err)
	tok, err := q.Submit(context.Background(), &messages.ActionSpec{Action: "FETCH", FetchAction: fetch.ActionSynchronize, Params: p, Tasks: tasks})
	require.NoError(t, err)
	return tok
}

func waitState(t *testing.T, q *queue.Queue, tok string, want messages.State) *messages.ActionStatus {
	t.Helper()
	var last *messages.ActionStatus
	waitFor(t, 20*time.Second, func() bool {
		s, err := q.Status(context.Background(), tok)
		require.NoError(t, err)
		last = s
		return s.State == want
	}, "action "+messages.StatusName(want))
	return last
}

func docCount(s *messages.ActionStatus) cnt {
	for _, c := range s.Counts {
		if c.Task == "MYTASK" {
			return cnt{
				Seen: c.Seen, Added: c.Added, Updated: c.Updated, Unchanged: c.Unchanged, Deleted: c.Deleted,
				IngestAdded: c.Ingestadded, IngestUpdated: c.Ingestupdated, IngestDeleted: c.Ingestdeleted,
				IngestFailed: c.Ingestfailed, Errors: c.Errors,
			}
		}
	}
	return cnt{}
}

// TestStopThroughQueue submits a Synchronize to a real queue, stops it
// while requests are in flight, checks that no request reaches the site
// after the Stop reply and that counts and datastore agree, then lets a
// second Synchronize finish the job without re-adding what was delivered.
func TestStopThroughQueue(t *testing.T) {
	t.Parallel()
	pages := map[string]*page{
		"/": htmlPage("Home", "/p1", "/p2", "/p3", "/p4", "/h1", "/h2", "/h3", "/h4"),
	}
	for _, p := range []string{"/p1", "/p2", "/p3", "/p4"} {
		pages[p] = htmlPage("fast " + p)
	}
	for _, p := range []string{"/h1", "/h2", "/h3", "/h4"} {
		pp := htmlPage("held " + p)
		pp.hold = true
		pages[p] = pp
	}
	s := newSite(t, pages)
	var stopped atomic.Bool
	var late atomic.Int32
	s.onHit = func(string) {
		if stopped.Load() {
			late.Add(1)
		}
	}
	// One page per batch, so each page is delivered and recorded as soon
	// as it is fetched.
	b := setup(t, siteConfig(s, "Concurrency=4")+"[Ingestion]\nIngestBatchSize=1\n")
	q := startQueue(t, b.repo)

	tok := submitSync(t, q, b.repo, nil)
	waitFor(t, 20*time.Second, func() bool {
		st, err := q.Status(context.Background(), tok)
		require.NoError(t, err)
		return st.State == messages.State_STATE_PROCESSING && s.held.Load() == 4 && docCount(st).Seen == 5
	}, "five pages recorded and four requests held")

	reply, err := q.Stop(context.Background(), tok)
	require.NoError(t, err)
	stopped.Store(true)
	stopAt := time.Now()
	require.Equal(t, messages.State_STATE_STOPPED, reply.Status.State)
	require.Equal(t, cnt{Seen: 5, Added: 5, IngestAdded: 5}, docCount(reply.Status), "final counts come with the Stop reply")

	// The held requests were aborted; nothing new started.
	waitFor(t, 10*time.Second, func() bool { return s.held.Load() == 0 && len(s.requests()) >= 10 }, "aborted handlers to finish")
	require.Zero(t, late.Load(), "a request arrived after the Stop reply")
	for _, h := range s.requests() {
		require.False(t, h.at.After(stopAt), "%s requested after the Stop reply", h.path)
	}
	// Counts and datastore agree: exactly the five delivered pages.
	recs := b.records(t, "MYTASK")
	require.Len(t, recs, 5)
	for u, r := range recs {
		require.True(t, r.deliveredCurrent(), u)
	}
	require.Len(t, b.target.refs(), 5)
	st := waitState(t, q, tok, messages.State_STATE_STOPPED)
	require.Equal(t, cnt{Seen: 5, Added: 5, IngestAdded: 5}, docCount(st))

	// The next Synchronize continues: what was delivered is unchanged, the
	// rest is added, nothing is deleted.
	stopped.Store(false)
	s.unhold()
	b.target.reset()
	tok = submitSync(t, q, b.repo, nil)
	st = waitState(t, q, tok, messages.State_STATE_FINISHED)
	require.Equal(t, cnt{Seen: 9, Added: 4, Unchanged: 5, IngestAdded: 4}, docCount(st))
	require.Equal(t, []string{s.URL + "/h1", s.URL + "/h2", s.URL + "/h3", s.URL + "/h4"}, b.target.refs())
	require.Empty(t, st.Results)

	// Progress of a finished Synchronize.
	r, err := q.Progress(context.Background(), tok)
	require.NoError(t, err)
	require.Equal(t, 100.0, r.Progress.Percent)
}

// TestConcurrentSynchronizeOfOneTask: two Synchronize actions of one task
// never run their crawls at the same time (they would both count and
// delete); the second waits, Queued and holding no thread, for the first.
func TestConcurrentSynchronizeOfOneTask(t *testing.T) {
	t.Parallel()
	held := htmlPage("held")
	held.hold = true
	s := newSite(t, map[string]*page{"/": htmlPage("Home", "/h"), "/h": held})
	b := setup(t, siteConfig(s))
	q := startQueue(t, b.repo)
	first := submitSync(t, q, b.repo, nil)
	waitFor(t, 20*time.Second, func() bool { return s.held.Load() == 1 }, "the first crawl to hold")
	second := submitSync(t, q, b.repo, nil)
	// The queue considered it on submission (ThreadStatus is answered
	// after): it was passed over, and holds no thread.
	threads, err := q.ThreadStatus(context.Background())
	require.NoError(t, err)
	var holding []string
	for _, th := range threads {
		if th.Action != nil {
			holding = append(holding, th.Action.Token)
		}
	}
	require.Equal(t, []string{first}, holding)
	require.Equal(t, messages.State_STATE_QUEUED, waitState(t, q, second, messages.State_STATE_QUEUED).State)
	require.Equal(t, 1, s.count("/"), "the second crawl has not started")
	s.unhold()
	st1 := waitState(t, q, first, messages.State_STATE_FINISHED)
	st2 := waitState(t, q, second, messages.State_STATE_FINISHED)
	require.Equal(t, cnt{Seen: 2, Added: 2, IngestAdded: 2}, docCount(st1))
	require.Equal(t, cnt{Seen: 2, Unchanged: 2}, docCount(st2))
}
