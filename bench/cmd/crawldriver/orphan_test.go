package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/connectorhq/connector/internal/testchild"
)

// The test binary plays crawlsite: with CRAWLDRIVER_TEST_ROLE=site it says
// where it listens and then serves until killed.
func TestMain(m *testing.M) {
	testchild.PlayServer("CRAWLDRIVER_TEST_ROLE", "site")
	os.Exit(m.Run())
}

// The site crawldriver serves (crawlsite) dies with crawldriver, however
// that one ends. SIGINT and SIGTERM stopped it, but a crawldriver killed
// otherwise (SIGKILL, the OOM killer, a panic) left it serving, orphaned,
// on its port and its CPU share of the next benchmark.
func TestSiteDiesWithTheDriver(t *testing.T) {
	if os.Getenv("CRAWLDRIVER_TEST_ROLE") == "driver" {
		os.Setenv("CRAWLDRIVER_TEST_ROLE", "site")
		testchild.Owner(func() (int, string, error) {
			dir, err := os.MkdirTemp("", "crawldriver-orphan-")
			if err != nil {
				return 0, "", err
			}
			s, err := startServer(os.Args[0], filepath.Join(dir, "site.log"))
			if err != nil {
				return 0, "", err
			}
			return s.pid, dir, nil
		})
	}
	testchild.KilledOwner(t, "TestSiteDiesWithTheDriver", "CRAWLDRIVER_TEST_ROLE=driver", syscall.SIGKILL, testchild.Running)
}
