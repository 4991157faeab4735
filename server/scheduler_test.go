package server

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/etcdtest"
	"github.com/connectorhq/connector/internal/pgtest"
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

// gatedRepo is a test repository whose schedule is known only once the
// test opens its gate: its server's Start waits there (the scheduler
// starts last but for the ACI port), so that the test can give every
// node the same start time once all of them are up.
type gatedRepo struct {
	*testRepo
	gate    chan struct{}
	asked   *atomic.Int32
	startAt *atomic.Pointer[time.Time]
}

func (r gatedRepo) Schedules() []fetch.Schedule {
	r.asked.Add(1)
	<-r.gate
	return []fetch.Schedule{{Task: "Nightly", Start: *r.startAt.Load()}}
}

// The nodes of a cluster share one configuration, so each has the task's
// schedule; one of them submits each scheduled run, not every one. On
// main each node's scheduler submitted its own Synchronize at the
// scheduled time: a cluster of three crawled the site three times a
// night, one run after the other.
func TestClusterSubmitsAScheduledRunOnce(t *testing.T) {
	t.Parallel()
	e := etcdtest.StartT(t, etcdtest.Options{Dir: t.TempDir(), Members: 1})
	pg := pgtest.StartT(t, pgtest.Options{})
	store := pg.DatabaseT(t)
	key := filepath.Join(t.TempDir(), "aes.ky")
	var asked atomic.Int32
	var startAt atomic.Pointer[time.Time]
	gate := make(chan struct{})
	const nodes = 2
	type started struct {
		s   *Server
		err error
	}
	done := make(chan started, nodes)
	logs := make([]*testlog.Buffer, nodes)
	for i := range nodes {
		logs[i] = &testlog.Buffer{}
		cfg := testConfig(t, fmt.Sprintf(`[Security]
AESKeyFile=%s
[Cluster]
Enabled=true
Name=sched
Etcd=%s
Store=%s
RemoteHost=127.0.0.1
LeaseTTL=5s
`, key, e.Members[0].ClientURL, store))
		repo := gatedRepo{testRepo: newTestRepo(), gate: gate, asked: &asked, startAt: &startAt}
		go func() {
			s, err := Start(cfg, Options{Port: -1, LogOutput: logs[i], Repository: func(Deps) (fetch.Repository, error) { return repo, nil }})
			done <- started{s, err}
		}()
	}
	testwait.For(t, 60*time.Second, func() bool { return asked.Load() == nodes }, "every node to start its scheduler")
	at := time.Now().Add(3 * time.Second) // ahead of every scheduler's start, on a loaded machine too
	startAt.Store(&at)
	close(gate)
	var servers []*Server
	for range nodes {
		st := <-done
		require.NoError(t, st.err)
		servers = append(servers, st.s)
		t.Cleanup(func() { stop(t, st.s) })
	}
	testwait.For(t, 30*time.Second, func() bool {
		for _, l := range logs {
			if !strings.Contains(l.String(), "scheduled run") {
				return false
			}
		}
		return true
	}, "every node's scheduler to submit the run or leave it to another node")
	body := aci(t, servers[0], "action=QueueInfo&QueueName=fetch&QueueAction=GetStatus")
	require.Equal(t, 1, strings.Count(body, `task="NIGHTLY"`), "Synchronizes of NIGHTLY: %s", body)
}

// lateRepo is a test repository whose schedule's start is worked out
// when the repository is made (as a time of day in the configuration
// is, for its next occurrence) and whose server starts its scheduler
// only once that start has passed: a queue restored from a big store
// takes that long.
type lateRepo struct {
	*testRepo
	start time.Time
}

func (r lateRepo) Schedules() []fetch.Schedule {
	for !time.Now().After(r.start.Add(10 * time.Millisecond)) { // the restore lasts past the start
		time.Sleep(time.Millisecond)
	}
	return []fetch.Schedule{{Task: "Nightly", Start: r.start}}
}

// A scheduled run that falls due while the server is starting (after it
// read its schedules, before its queue is restored) runs once the server
// is up. On main the scheduler, started after the restore, found the
// start past: a one-off schedule ("ScheduleStartTime=02:00" for a server
// restarted at 01:59) never ran, "its one start time is past", and a
// daily one skipped that day's run.
func TestScheduledRunThatFallsDueDuringTheStartRuns(t *testing.T) {
	t.Parallel()
	var log testlog.Buffer
	cfg := testConfig(t, "")
	s, err := Start(cfg, Options{Port: -1, LogOutput: &log, Repository: func(Deps) (fetch.Repository, error) {
		return lateRepo{testRepo: newTestRepo(), start: time.Now().Add(50 * time.Millisecond)}, nil
	}})
	require.NoError(t, err)
	defer stop(t, s)
	testwait.For(t, 10*time.Second, func() bool {
		return strings.Contains(log.String(), "scheduled run submitted") || strings.Contains(log.String(), "not scheduled")
	}, "the scheduled run to be submitted or dropped")
	require.Contains(t, log.String(), "scheduled run submitted")
	body := aci(t, s, "action=QueueInfo&QueueName=fetch&QueueAction=GetStatus")
	require.Equal(t, 1, strings.Count(body, `task="NIGHTLY"`), "Synchronizes of NIGHTLY: %s", body)
}
