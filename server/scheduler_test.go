package server

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testlog"
	"github.com/connectorhq/connector/internal/testwait"
)

// A scheduled run that comes due while a Synchronize of its task is still
// queued or running is skipped, also when that Synchronize was queued
// before a restart: the scheduler of the new process knows no previous
// run of its own, and it submitted a second Synchronize at once, which
// crawled the whole site again right after the first (on main the task
// had two unended Synchronizes).
func TestScheduleSkipsASynchronizeRestoredFromBeforeARestart(t *testing.T) {
	t.Parallel()
	restartWithQueued(t, "", "scheduled run skipped", 1)
}

// A Synchronize of some identifiers of the task is no run of the schedule
// (it crawls nothing): restored queued, it does not take the place of the
// scheduled run, which is submitted beside it.
func TestScheduleRunsBesideARestoredSynchronizeOfIdentifiers(t *testing.T) {
	t.Parallel()
	restartWithQueued(t, "&Identifiers=abc", "scheduled run submitted", 2)
}

// restartWithQueued stops a server with a Synchronize of NIGHTLY (with
// extra parameters) queued, restarts it with NIGHTLY scheduled at once,
// and checks the scheduler's log line and the unended Synchronizes of
// NIGHTLY then.
func restartWithQueued(t *testing.T, extra, logged string, unended int) {
	t.Helper()
	cfg := testConfig(t, "")
	s := startServer(t, cfg, newTestRepo())
	blocker := between(aci(t, s, "action=Fetch&FetchAction=Synchronize&ConfigSection=Other"), "<token>", "</token>")
	testwait.For(t, 10*time.Second, func() bool {
		return strings.Contains(aci(t, s, "action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(blocker)), "<status>Processing</status>")
	}, "the blocker to run")
	queued := between(aci(t, s, "action=Fetch&FetchAction=Synchronize&TaskSections=Nightly"+extra), "<token>", "</token>")
	require.NotEmpty(t, queued)
	stop(t, s) // the blocker is Stopped, the Synchronize of NIGHTLY stays queued

	var log testlog.Buffer
	repo := newTestRepo(fetch.Schedule{Task: "Nightly", Every: time.Hour}) // first run at once
	s2, err := Start(cfg, Options{Port: -1, LogOutput: &log, Repository: func(Deps) (fetch.Repository, error) { return repo, nil }})
	require.NoError(t, err)
	defer stop(t, s2)
	testwait.For(t, 10*time.Second, func() bool {
		return strings.Contains(log.String(), "scheduled run")
	}, "the scheduled run to be submitted or skipped")
	body := aci(t, s2, "action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&State=queued,processing,paused")
	require.Equal(t, unended, strings.Count(body, `task="NIGHTLY"`), "unended Synchronizes of NIGHTLY: %s", body)
	require.Contains(t, body, queued)
	require.Contains(t, log.String(), logged)
}
