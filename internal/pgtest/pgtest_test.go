package pgtest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/testport"
	"github.com/connectorhq/connector/internal/testwait"
)

// A server starts, keeps committed rows across a clean restart and across
// a crash (SIGKILL of the whole server), and is gone after Stop.
func TestServerLifecycle(t *testing.T) {
	s := StartT(t, Options{Dir: t.TempDir()})
	url := s.DatabaseT(t)
	ctx := context.Background()
	exec := func(sql string) {
		t.Helper()
		c, err := pgx.Connect(ctx, url)
		require.NoError(t, err)
		defer c.Close(ctx)
		_, err = c.Exec(ctx, sql)
		require.NoError(t, err)
	}
	count := func() int {
		t.Helper()
		c, err := pgx.Connect(ctx, url)
		require.NoError(t, err)
		defer c.Close(ctx)
		var n int
		require.NoError(t, c.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n))
		return n
	}
	exec("CREATE TABLE t (x int)")
	exec("INSERT INTO t VALUES (1)")
	require.NoError(t, s.Restart())
	require.Equal(t, 1, count())
	exec("INSERT INTO t VALUES (2)")
	pid := s.PID()
	require.NoError(t, s.Crash())
	if err := s.StartAgain(); err != nil {
		b, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
		t.Fatalf("%v\nserver log:\n%s", err, b)
	}
	require.NotEqual(t, pid, s.PID())
	require.Equal(t, 2, count(), "a committed row survives a crash")
	require.NoError(t, s.Stop())
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := pgx.Connect(cctx, url)
	require.Error(t, err, "stopped")
}

// A picked port taken before postgres binds it (here by another test
// server) makes postgres exit at start; Start does not take the other
// server's answers for its own, and tries another port.
func TestStartTriesAnotherPortWhenItsIsTaken(t *testing.T) {
	other := StartT(t, Options{Dir: t.TempDir()})
	pickN, calls := testport.TakenFirst(other.Port)
	pickPort = testport.First(pickN)
	defer func() { pickPort = testport.Pick }()
	s := StartT(t, Options{Dir: t.TempDir()})
	require.Equal(t, 2, *calls)
	require.NotEqual(t, other.Port, s.Port)
	c, err := pgx.Connect(context.Background(), s.URL("postgres"))
	require.NoError(t, err)
	defer c.Close(context.Background())
	var dir string
	require.NoError(t, c.QueryRow(context.Background(), "SHOW data_directory").Scan(&dir))
	require.Equal(t, filepath.Join(s.Dir, "data"), dir)
}

// Signal(SIGSTOP) leaves no process of the server running, also while
// clients keep opening connections (each a backend the postmaster forks):
// a backend forked while the children were being listed was left running
// and answered a test's query on a "frozen" server.
func TestSignalStopsEveryBackend(t *testing.T) {
	s := StartT(t, Options{})
	url := s.DatabaseT(t)
	t.Cleanup(func() { _ = s.Signal(syscall.SIGCONT) })
	for round := 0; round < 20; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		opened := make(chan struct{}, 1)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					c, err := pgx.Connect(ctx, url)
					if err == nil {
						select {
						case opened <- struct{}{}:
						default:
						}
						_ = c.Close(context.Background())
					}
				}
			}()
		}
		select {
		case <-opened:
		case <-time.After(30 * time.Second):
			t.Fatal("no connection opened")
		}
		require.NoError(t, s.Signal(syscall.SIGSTOP))
		for _, c := range append(children(s.PID()), s.PID()) {
			// A signal takes effect when the process next runs: wait
			// for each to show stopped (or gone); one never signalled
			// keeps running or sleeping.
			testwait.For(t, 10*time.Second, func() bool {
				b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(c), "stat"))
				if err != nil {
					return true // exited
				}
				stat := string(b)
				state := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])[0]
				return slices.Contains([]string{"T", "t", "Z", "X"}, state)
			}, "round %d: process %d of the server stopped by SIGSTOP", round, c)
		}
		require.NoError(t, s.Signal(syscall.SIGCONT))
		cancel()
		wg.Wait()
	}
}

// A server left frozen (a test failed between Signal(SIGSTOP) and
// Signal(SIGCONT)) stops cleanly: none of its processes outlives Stop (its
// stopped children were left behind, orphaned, for good).
func TestStopEndsAFrozenServer(t *testing.T) {
	s, err := Start(Options{})
	require.NoError(t, err)
	url, err := s.CreateDatabase("frozen")
	require.NoError(t, err)
	c, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	defer c.Close(context.Background())
	pids := append(children(s.PID()), s.PID())
	require.NoError(t, s.Signal(syscall.SIGSTOP))
	require.NoError(t, s.Stop())
	for _, p := range pids {
		testwait.For(t, 30*time.Second, func() bool {
			b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "stat"))
			if err != nil {
				return true
			}
			stat := string(b)
			return strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])[0] == "Z" // reaped by init soon
		}, "process %d of the stopped server is gone", p)
	}
}
