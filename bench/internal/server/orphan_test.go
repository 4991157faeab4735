package server

import (
	"os"
	"syscall"
	"testing"

	"github.com/connectorhq/connector/internal/testchild"
)

// The test binary plays the servers this package starts: with
// SERVER_TEST_ROLE=ceiling it is a ceiling that says where it listens and
// then serves until killed.
func TestMain(m *testing.M) {
	testchild.PlayServer("SERVER_TEST_ROLE", "ceiling")
	os.Exit(m.Run())
}

// A server a benchmark program started dies with the program: killed
// (SIGKILL, or SIGTERM and SIGINT, which the programs do not catch) it
// used to leave the connector or the ceiling it had started running,
// orphaned, on its port and data folder, with nothing left to stop it
// (httpbench -mode submitonly killed with SIGTERM: its connector ran on).
func TestServersDieWithTheProgram(t *testing.T) {
	if os.Getenv("SERVER_TEST_ROLE") == "program" {
		os.Setenv("SERVER_TEST_ROLE", "ceiling")
		testchild.Owner(func() (int, string, error) {
			p, err := StartCeiling(os.Args[0])
			if err != nil {
				return 0, "", err
			}
			return p.Pid(), "", nil
		})
	}
	testchild.KilledOwner(t, "TestServersDieWithTheProgram", "SERVER_TEST_ROLE=program", syscall.SIGTERM, testchild.Running)
}
