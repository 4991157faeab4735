package etcdtest

import (
	"context"
	"testing"
	"time"

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
