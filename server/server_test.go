package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/fetch/fetchtest"
	"github.com/connectorhq/connector/internal/testlog"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/messages"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp/stackless.funcWorker"),
		// protoactor's dead-letter throttle: one goroutine per second at most
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
		// and gossip's, alike (a cluster start: clusterstart_test.go)
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/cluster.(*Gossiper).StartGossiping.NewThrottle.func3.1"),
		// and the gossip actor's, alike (differential_test.go)
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/cluster.NewGossipActor.NewThrottleWithLogger.func2.1"))
}

// testRepo is the shared Repository double (fetchtest.Repo) with
// schedules: SYNCHRONIZE blocks until stopped (Mode=instant ends at
// once), reporting on the task it names.
type testRepo struct {
	*fetchtest.Repo
	schedules []fetch.Schedule
}

func newTestRepo(schedules ...fetch.Schedule) *testRepo {
	return &testRepo{Repo: &fetchtest.Repo{DefaultMode: "untilstop",
		ValidateFunc: func(_ string, p messages.Params) ([]string, error) {
			return []string{strings.ToUpper(p.Value("TaskSections") + p.Value("ConfigSection"))}, nil
		}}, schedules: schedules}
}

func (r *testRepo) Schedules() []fetch.Schedule { return r.schedules }

func testConfig(t testing.TB, extra string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse("test.cfg", []byte(`
[Server]
Port=0
DataDirectory=`+dir+`
[Actions]
MaximumThreads=1
[Ingestion]
IngestDirectory=`+filepath.Join(dir, "out")+`
`+extra), func(string, string) error { return config.ErrUnknownKey })
	require.NoError(t, err)
	return cfg
}

func startServer(t *testing.T, cfg *config.Config, repo *testRepo) *Server {
	t.Helper()
	s, err := Start(cfg, Options{Port: -1, LogOutput: io.Discard, Repository: func(d Deps) (fetch.Repository, error) {
		require.NotNil(t, d.Store)
		require.NotNil(t, d.Target, "IDX ingestion is on by default")
		return repo, nil
	}})
	require.NoError(t, err)
	return s
}

func stop(t testing.TB, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.Shutdown(ctx))
	http.DefaultClient.CloseIdleConnections()
}

func aci(t *testing.T, s *Server, q string) string {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr().String() + "/" + q)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	j := strings.Index(s, b)
	if j < 0 {
		return ""
	}
	return s[:j]
}

func TestStartServeShutdownRestart(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "")
	repo := newTestRepo()
	s := startServer(t, cfg, repo)
	require.Equal(t, "127.0.0.1", s.Addr().(*net.TCPAddr).IP.String())
	body := aci(t, s, "action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask")
	run := between(body, "<token>", "</token>")
	require.NotEmpty(t, run, body)
	testwait.For(t, 10*time.Second, func() bool {
		return strings.Contains(aci(t, s, "action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(run)), "<status>Processing</status>")
	}, "the Synchronize to be Processing")
	queued := between(aci(t, s, "action=Fetch&FetchAction=Synchronize&ConfigSection=Other&Mode=instant"), "<token>", "</token>")
	stop(t, s)

	// Restart on the same data: the stopped one stays Stopped, the queued one runs.
	repo2 := newTestRepo()
	s2 := startServer(t, cfg, repo2)
	defer stop(t, s2)
	require.Contains(t, aci(t, s2, "action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(run)), "<status>Stopped</status>")
	testwait.For(t, 10*time.Second, func() bool {
		return strings.Contains(aci(t, s2, "action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(queued)), "<status>Finished</status>")
	}, "the queued action to finish after the restart")
	status := aci(t, s2, "action=GetStatus")
	require.Contains(t, status, "<aciport>"+strconv.Itoa(s2.Addr().(*net.TCPAddr).Port)+"</aciport>")
	require.Contains(t, status, "<configpath>")
}

func TestStartErrorsAreClearAndLeaveNothingRunning(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "")
	s := startServer(t, cfg, newTestRepo())
	defer stop(t, s)
	busy := s.Addr().(*net.TCPAddr).Port

	// port in use
	cfg2 := testConfig(t, "")
	_, err := Start(cfg2, Options{Port: busy, LogOutput: io.Discard, Repository: func(Deps) (fetch.Repository, error) { return newTestRepo(), nil }})
	require.Error(t, err)
	require.Contains(t, err.Error(), "([Server] Host and -port "+strconv.Itoa(busy)+")")

	// store locked by the running server
	_, err = Start(cfg, Options{Port: -1, LogOutput: io.Discard, Repository: func(Deps) (fetch.Repository, error) { return newTestRepo(), nil }})
	require.Error(t, err)
	require.Contains(t, err.Error(), "[Server] DataDirectory")

	// repository refuses the configuration
	cfg3 := testConfig(t, "")
	bad := errors.New("repository says no")
	_, err = Start(cfg3, Options{Port: -1, LogOutput: io.Discard, Repository: func(Deps) (fetch.Repository, error) { return nil, bad }})
	require.ErrorIs(t, err, bad)
	// and the failed start released the store: a new start works
	s3 := startServer(t, cfg3, newTestRepo())
	stop(t, s3)

	// a damaged store stops start-up
	cfg4 := testConfig(t, "")
	require.NoError(t, os.WriteFile(filepath.Join(cfg4.Server.DataDirectory, "connector.db"), bytes.Repeat([]byte("x"), 8192), 0o600))
	_, err = Start(cfg4, Options{Port: -1, LogOutput: io.Discard, Repository: func(Deps) (fetch.Repository, error) { return newTestRepo(), nil }})
	require.Error(t, err)
	require.Contains(t, err.Error(), "connector.db")
}

func TestInMemoryMode(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "")
	cfg.Actions.UseInMemoryDatastore = true
	s := startServer(t, cfg, newTestRepo())
	tok := between(aci(t, s, "action=Fetch&FetchAction=Synchronize&ConfigSection=X&Mode=instant"), "<token>", "</token>")
	require.NotEmpty(t, tok)
	stop(t, s)
	_, err := os.Stat(filepath.Join(cfg.Server.DataDirectory, "connector.db"))
	require.True(t, os.IsNotExist(err), "in-memory mode writes nothing")
}

// A data folder whose durable store holds queued actions, started in
// memory, says so in the log: the actions do not run and the tasks' records
// are not read until a durable run again (which then runs them). It was
// silent.
func TestInMemoryModeWarnsOfTheUnusedStore(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "")
	s := startServer(t, cfg, newTestRepo())
	stop(t, s) // connector.db now exists
	cfg.Actions.UseInMemoryDatastore = true
	var log testlog.Buffer
	s, err := Start(cfg, Options{Port: -1, LogOutput: &log, Repository: func(Deps) (fetch.Repository, error) { return newTestRepo(), nil }})
	require.NoError(t, err)
	stop(t, s)
	require.Contains(t, log.String(), `level=WARN msg="[Actions] UseInMemoryDatastore=true keeps everything in memory: the durable store in the data folder is not used`)
	require.Contains(t, log.String(), "file="+filepath.Join(cfg.Server.DataDirectory, "connector.db"))
}

func TestScheduledRunsAppearInQueueInfo(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "")
	repo := newTestRepo(fetch.Schedule{Task: "Nightly", Every: 50 * time.Millisecond, Cycles: 3})
	s := startServer(t, cfg, repo)
	defer stop(t, s)
	// Each run blocks until stopped; runs that come due meanwhile are skipped.
	var tok string
	testwait.For(t, 10*time.Second, func() bool {
		body := aci(t, s, "action=QueueInfo&QueueName=fetch&QueueAction=GetStatus")
		tok = between(body, "<token>", "</token>")
		return strings.Contains(body, "<documentcount") && strings.Contains(body, `task="NIGHTLY"`)
	}, "a scheduled run of NIGHTLY with counts")
	require.Contains(t, aci(t, s, "action=QueueInfo&QueueName=fetch&QueueAction=Stop&Token="+url.QueryEscape(tok)), "Stopped")
}

func TestNextSchedule(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	h := time.Hour
	for _, tc := range []struct {
		desc string
		sc   fetch.Schedule
		done int
		want time.Time
	}{
		{"no start: at once", fetch.Schedule{Every: h}, 0, now},
		{"no start: then every", fetch.Schedule{Every: h}, 1, now.Add(h)},
		{"start ahead", fetch.Schedule{Start: now.Add(3 * h), Every: h}, 0, now.Add(3 * h)},
		{"start past: next step ahead", fetch.Schedule{Start: now.Add(-150 * time.Minute), Every: h}, 0, now.Add(30 * time.Minute)},
		{"one-off past: never", fetch.Schedule{Start: now.Add(-h)}, 0, time.Time{}},
		{"one-off: once", fetch.Schedule{}, 1, time.Time{}},
		{"cycles used up", fetch.Schedule{Every: h, Cycles: 2}, 2, time.Time{}},
	} {
		require.Equal(t, tc.want, next(tc.sc, now, tc.done), tc.desc)
	}
}

// A port that cannot be listened on for a reason of its own is reported at
// its key; only an address that is not this machine's, or a name that does
// not resolve, at [Server] Host (or [Cluster] RemoteHost). A port below
// 1024 without the privilege to bind it (EACCES) was reported at Host,
// sending the operator to the wrong line.
func TestListenErrorsNameTheirKey(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("c.cfg", []byte("[Server]\nHost=0.0.0.0\nPort=80\n[Service]\nServicePort=81\n"), nil)
	require.NoError(t, err)
	listen := func(errno error) error {
		return &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", errno)}
	}
	dns := &net.OpError{Op: "listen", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "nohost.invalid", IsNotFound: true}}
	for _, c := range []struct {
		err          error
		section, key string
		line         int
		cluster      string
	}{
		{listen(syscall.EADDRINUSE), "Server", "Port", 3, "RemotePort"},
		{listen(syscall.EACCES), "Server", "Port", 3, "RemotePort"},
		{listen(syscall.EADDRNOTAVAIL), "Server", "Host", 2, "RemoteHost"},
		{dns, "Server", "Host", 2, "RemoteHost"},
	} {
		var ce *config.Error
		require.ErrorAs(t, listenError(cfg, "Server", "Port", "0.0.0.0:80", c.err), &ce)
		require.Equal(t, []any{c.section, c.key, c.line}, []any{ce.Section, ce.Key, ce.Line}, "%v", c.err)
		require.Equal(t, c.cluster, joinErrorKey(c.err), "%v", c.err)
	}
	var ce *config.Error
	require.ErrorAs(t, listenError(cfg, "Service", "ServicePort", "0.0.0.0:81", listen(syscall.EACCES)), &ce)
	require.Equal(t, []any{"Service", "ServicePort", 5}, []any{ce.Section, ce.Key, ce.Line})
}
