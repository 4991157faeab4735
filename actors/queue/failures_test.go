package queue

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testlog"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
)

// failRepo is testRepo whose "failures" mode records two failures (one of
// them twice) and then blocks until released.
type failRepo struct{ *testRepo }

func (f failRepo) Run(ctx context.Context, job *fetch.Job) ([]*messages.Element, error) {
	if job.Params.Value("Mode") == "credentials" {
		job.Fail("MYTASK", "http://x/page?access_token=tok3n&x=1", "unexpected HTTP status: HTTP 404")
		job.Fail("MYTASK", "http://alice:hunter2@x/y", "request timed out")
		return nil, nil
	}
	if job.Params.Value("Mode") != "failures" {
		return f.testRepo.Run(ctx, job)
	}
	job.Fail("MYTASK", "http://x/gone", "unexpected HTTP status: HTTP 404")
	job.Fail("MYTASK", "http://x/slow", "request timed out")
	job.Fail("MYTASK", "http://x/slow", "request timed out")
	return f.Block(ctx, job, nil)
}

// waitFailures polls until the action has counted n failures.
func (b *bundle) waitFailures(t *testing.T, tok string, n uint64) *messages.ActionStatus {
	t.Helper()
	var st *messages.ActionStatus
	testwait.For(t, 10*time.Second, func() bool {
		var err error
		st, err = b.q.Status(context.Background(), tok)
		require.NoError(t, err)
		return st.FailuresTotal >= n
	}, "%d failures", n)
	return st
}

func withFailRepo(c *Config) { c.Repository = failRepo{c.Repository.(*testRepo)} }

// failSetup starts a queue on failRepo that logs at info level into the
// buffer it returns.
func failSetup(t *testing.T) (*bundle, *testlog.Buffer) {
	t.Helper()
	logs := &testlog.Buffer{}
	b := setup(t, func(c *Config) {
		withFailRepo(c)
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	return b, logs
}

var wantFailures = []*messages.Failure{
	{Task: "MYTASK", Url: "http://x/gone", Reason: "unexpected HTTP status: HTTP 404", Count: 1},
	{Task: "MYTASK", Url: "http://x/slow", Reason: "request timed out", Count: 2},
}

// GetStatus carries an action's failures while it runs and once it has
// ended, and the log says them once, at info level, when its work ends.
func TestFailuresInStatusAndLog(t *testing.T) {
	t.Parallel()
	b, logs := failSetup(t)
	tok := b.submit(t, "failures", 0)
	st := b.waitFailures(t, tok, 3)
	require.Equal(t, messages.State_STATE_PROCESSING, st.State)
	require.Equal(t, wantFailures, st.Failures, "live while it runs")
	require.NotContains(t, logs.String(), "action had failures", "said once, when the work ends")

	b.repo.Release(tok)
	st = b.waitState(t, tok, messages.State_STATE_FINISHED)
	require.Equal(t, wantFailures, st.Failures)
	require.EqualValues(t, 3, st.FailuresTotal)
	list, err := b.q.List(context.Background(), nil)
	require.NoError(t, err)
	require.Equal(t, wantFailures, list[0].Failures)

	log := logs.String()
	require.Equal(t, 1, strings.Count(log, "action had failures"), log)
	require.Contains(t, log, "failures_total=3 failures_listed=2")
	require.Contains(t, log, `[MYTASK] http://x/slow: request timed out (2 times)`)
	require.Contains(t, log, "token="+tok)

	// An action without failures says nothing of them.
	clean := b.submit(t, "instant", 0)
	st = b.waitState(t, clean, messages.State_STATE_FINISHED)
	require.Empty(t, st.Failures)
	require.Zero(t, st.FailuresTotal)
	require.Equal(t, 1, strings.Count(logs.String(), "action had failures"))
}

// The log's summary of an action's failures names each page as the
// crawl's own lines do (docs/security.md): the URL's query, which may
// carry a token, cut to "?…", and a password in it redacted. Before, a
// start URL or a link with ?access_token= that failed was written to the
// log whole by this line. GetStatus keeps the URL as it is: it is the
// page's reference, which a client needs to find it.
func TestFailuresLoggedWithoutCredentials(t *testing.T) {
	t.Parallel()
	b, logs := failSetup(t)
	tok := b.submit(t, "credentials", 0)
	st := b.waitState(t, tok, messages.State_STATE_FINISHED)
	require.Equal(t, "http://x/page?access_token=tok3n&x=1", st.Failures[0].Url)
	log := logs.String()
	require.Equal(t, 1, strings.Count(log, "action had failures"), log)
	require.Contains(t, log, `[MYTASK] http://x/page?…: unexpected HTTP status: HTTP 404`)
	require.Contains(t, log, `[MYTASK] http://alice:[REDACTED]@x/y: request timed out`)
	require.NotContains(t, log, "tok3n")
	require.NotContains(t, log, "hunter2")
}

// The failures are on disk with the action: an ended action keeps them
// across a restart, and one re-run after a crash continues them.
func TestFailuresSurviveRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openDurable(t, dir, nil, withFailRepo)
	b := d.bundle()
	ended := b.submit(t, "failures", 0)
	b.waitState(t, ended, messages.State_STATE_PROCESSING)
	d.repo.Release(ended)
	b.waitState(t, ended, messages.State_STATE_FINISHED)
	d.waitDurable(t, ended, func(s *messages.ActionStatus) bool { return s.FailuresTotal == 3 })
	interrupted := b.submit(t, "failures", 0)
	b.waitFailures(t, interrupted, 3)
	// A status with its failures reaches the disk when it is written next
	// (a Pause, here), as the counts do.
	_, err := b.q.PauseAction(context.Background(), interrupted)
	require.NoError(t, err)
	d.waitDurable(t, interrupted, func(s *messages.ActionStatus) bool { return s.FailuresTotal == 3 })
	_, err = b.q.ResumeAction(context.Background(), interrupted)
	require.NoError(t, err)
	d.crash(t)

	d2 := openDurable(t, dir, nil, withFailRepo)
	defer d2.shutdown(t)
	b2 := d2.bundle()
	st, err := b2.q.Status(context.Background(), ended)
	require.NoError(t, err)
	require.Equal(t, wantFailures, st.Failures)
	require.EqualValues(t, 3, st.FailuresTotal)

	st = b2.waitFailures(t, interrupted, 6)
	require.Equal(t, messages.State_STATE_PROCESSING, st.State)
	require.EqualValues(t, 1, st.Restarts)
	require.EqualValues(t, 6, st.FailuresTotal, "the re-run continues the count")
	require.Equal(t, []*messages.Failure{
		{Task: "MYTASK", Url: "http://x/gone", Reason: "unexpected HTTP status: HTTP 404", Count: 2},
		{Task: "MYTASK", Url: "http://x/slow", Reason: "request timed out", Count: 4},
	}, st.Failures)
}

// A task actor given a second taskInit (the cluster manager's renew, when
// this node takes again an action whose idle actor it still has) is the
// action as that status says, its failures included: a status with none
// leaves it none, not the failures of the status it was given before.
func TestTaskInitAgainReplacesFailures(t *testing.T) {
	t.Parallel()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond))
	defer sys.Shutdown()
	sh := &shared{repo: newTestRepo(), log: discard, now: time.Now, stopTimeout: time.Second}
	pid := sys.Root.Spawn(actor.PropsFromProducer(newTask))
	id := uuid.New()
	spec := &messages.ActionSpec{FetchAction: "SYNCHRONIZE", Tasks: []string{"MYTASK"}}
	status := func() *messages.ActionStatus {
		res, err := sys.Root.RequestFuture(pid, &messages.GetActionStatus{}, 10*time.Second).Result()
		require.NoError(t, err)
		return res.(*messages.ActionReply).Status
	}

	sys.Root.Send(pid, &taskInit{sh: sh, id: id, token: "tok", spec: spec, status: &messages.ActionStatus{
		Token: "tok", State: messages.State_STATE_QUEUED, Restarts: 1, Failures: wantFailures, FailuresTotal: 3,
	}})
	require.Equal(t, wantFailures, status().Failures)

	sys.Root.Send(pid, &taskInit{sh: sh, id: id, token: "tok", spec: spec, status: &messages.ActionStatus{
		Token: "tok", State: messages.State_STATE_QUEUED, Restarts: 2,
	}})
	st := status()
	require.EqualValues(t, 2, st.Restarts)
	require.Empty(t, st.Failures)
	require.Zero(t, st.FailuresTotal)
}
