package etcdtest

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/connectorhq/connector/internal/testport"
	"github.com/stretchr/testify/require"
)

// Three members elect a leader; killing it leaves a working cluster, and
// the killed member rejoins with its data.
func TestClusterSurvivesItsLeader(t *testing.T) {
	c := StartT(t, Options{Dir: t.TempDir()})
	require.Len(t, c.Members, 3)
	cli, err := c.Client()
	require.NoError(t, err)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = cli.Put(ctx, "k", "before")
	require.NoError(t, err)

	leader, err := c.Leader()
	require.NoError(t, err)
	c.Kill(leader)
	require.Zero(t, c.Members[leader].PID())
	require.NoError(t, c.WaitReady(60*time.Second))
	_, err = cli.Put(ctx, "k", "after")
	require.NoError(t, err)

	require.NoError(t, c.Restart(leader))
	require.NoError(t, c.WaitReady(60*time.Second))
	resp, err := cli.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "after", string(resp.Kvs[0].Value))
}

// A member that exits is not counted out: the cluster is not ready while a
// member that should run does not, and the error says which and why.
func TestWaitReadyNamesAMemberThatExited(t *testing.T) {
	c := StartT(t, Options{Dir: t.TempDir()})
	m := c.Members[1]
	require.NoError(t, syscall.Kill(m.PID(), syscall.SIGKILL)) // not through Kill: unexpected
	require.Eventually(t, func() bool { return !m.Running() }, 30*time.Second, 10*time.Millisecond)
	start := time.Now()
	err := c.WaitReady(60 * time.Second)
	require.ErrorContains(t, err, "etcd2 exited")
	require.Less(t, time.Since(start), 30*time.Second, "an exited member must fail WaitReady at once")
}

// A member whose port is taken before it binds it exits; Start picks new
// ports and starts the cluster again instead of running two of three.
func TestStartRetriesWhenAPortIsTaken(t *testing.T) {
	var calls *int
	pickPorts, calls = testport.TakenFirst(testport.Held(t)) // the last member's peer port
	defer func() { pickPorts = testport.PickN }()
	c := StartT(t, Options{Dir: t.TempDir()})
	require.Equal(t, 2, *calls)
	for _, m := range c.Members {
		require.True(t, m.Running(), m.Name)
	}
	_, err := c.Leader()
	require.NoError(t, err)
}
