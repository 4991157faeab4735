package pgstore

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/pgtest"
	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/storetest"
)

// server is the PostgreSQL the package's tests share; each test gets a
// database of its own.
var server *pgtest.Server

func TestMain(m *testing.M) {
	if arg := os.Getenv("PGSTORE_CRASH_CHILD"); arg != "" {
		os.Exit(crashChild(arg))
	}
	s, err := pgtest.Start(pgtest.Options{})
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	server = s
	code := m.Run()
	if err := s.Stop(); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		code = 1
	}
	os.Exit(code)
}

func openT(t *testing.T, url string, f store.FaultInjector) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{URL: url, Faults: f})
	require.NoError(t, err)
	return s
}

// conformanceTimeout bounds each call of the conformance suite's stores.
// The suite's subtests run in parallel, against one PostgreSQL server,
// and LargeValues writes 4 MiB at once (8 MiB of hex where parameters go
// in text format): under -race on two cores loaded by other packages'
// tests, that put took 35-42 s against the default Timeout of 30 s
// (TestQueryExecModes/*/conformance/LargeValues failed by its deadline;
// 0.7 s alone). The suite checks what the store does, not how fast.
const conformanceTimeout = 2 * time.Minute

// openConformanceT opens url for the conformance suite (Timeout:
// conformanceTimeout).
func openConformanceT(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{URL: url, Timeout: conformanceTimeout})
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openConformanceT(t, server.DatabaseT(t))
	}, func(t *testing.T, s store.Store) store.Store {
		url := s.(*Store).cfg.URL
		require.NoError(t, s.Close())
		return openConformanceT(t, url)
	})
}

func TestConformanceFaults(t *testing.T) {
	storetest.RunFaults(t, func(t *testing.T, f store.FaultInjector) store.Store {
		return openT(t, server.DatabaseT(t), f)
	}, func(t *testing.T, s store.Store) store.Store {
		url := s.(*Store).cfg.URL
		require.NoError(t, s.Close())
		return openT(t, url, nil)
	})
}

func startOwnServer(t *testing.T) *pgtest.Server {
	t.Helper()
	return pgtest.StartT(t, pgtest.Options{Dir: t.TempDir()})
}

// The suite again on a cluster node's store, whose listing cache
// (store.ForEachPrefix) is on.
func TestConformanceClusterNode(t *testing.T) {
	open := func(t *testing.T, url string) store.Store {
		s, err := Open(context.Background(), Config{URL: url, Node: "n", Timeout: conformanceTimeout})
		require.NoError(t, err)
		require.NoError(t, s.RegisterNode(context.Background(), "n", "n:1", 4))
		return s
	}
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, server.DatabaseT(t))
	}, func(t *testing.T, s store.Store) store.Store {
		url := s.(*Store).cfg.URL
		require.NoError(t, s.Close())
		return open(t, url)
	})
}
