package queue

import (
	"context"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// TestShutdownStopsEveryTaskActor: task actors are the QueueManager's
// unlisted children (actor.WithUnlistedChild), which protoactor waits for
// but does not stop: the QueueManager stops them itself when it stops
// (stopTasks). After Shutdown no task actor is left in the process
// registry, whether its action was running, queued (and asked about, so
// that it has an actor: spawnAs) or finished, and the
// QueueManager itself has stopped (without stopTasks it waits for its
// children forever and Shutdown fails).
func TestShutdownStopsEveryTaskActor(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaximumThreads = 1 })
	done := b.submit(t, "instant", 0)
	b.waitState(t, done, messages.State_STATE_FINISHED)
	toks := []string{done, b.submit(t, "block", 0)}
	b.waitState(t, toks[1], messages.State_STATE_PROCESSING)
	for range 5 {
		toks = append(toks, b.submit(t, "instant", 0)) // queued behind the blocked one
	}
	pids := make([]*actor.PID, 0, len(toks))
	for _, tok := range toks {
		_, id, err := messages.ParseToken(tok)
		require.NoError(t, err)
		// A queued action's actor is spawned once it is asked about.
		_, err = b.q.Status(context.Background(), tok)
		require.NoError(t, err)
		pid := b.q.taskPIDOf(id)
		_, ok := b.sys.ProcessRegistry.Get(pid)
		require.True(t, ok, "task actor of %s before Shutdown", tok)
		pids = append(pids, pid)
	}
	b.repo.ReleaseAll()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, b.q.Shutdown(ctx))
	_, ok := b.sys.ProcessRegistry.Get(b.q.pid)
	require.False(t, ok, "the QueueManager after Shutdown")
	for i, pid := range pids {
		_, ok := b.sys.ProcessRegistry.Get(pid)
		require.False(t, ok, "task actor of %s after Shutdown", toks[i])
	}
}
