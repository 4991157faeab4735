package httpfetch

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
)

// A panic while a Synchronize's batch is applied (the applier, a
// goroutine of the Synchronize's: here the ingestion target panics) would
// end the process, outside the worker's recovery. The Synchronize ends
// with an error that names the panic instead, so the action ends as
// Error, and nothing of the batch is recorded.
func TestApplyPanicIsTheSynchronizeError(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]*page{
		"/":  htmlPage("home", "/a"),
		"/a": htmlPage("a"),
	})
	b := setup(t, siteConfig(s))
	msg := "target kaboom"
	b.target.panicWith.Store(&msg)
	tasks, err := b.repo.Validate(fetch.ActionSynchronize, nil)
	require.NoError(t, err)
	job := fetch.NewJob("token", fetch.ActionSynchronize, nil, tasks)
	_, err = b.repo.Run(context.Background(), job)
	require.Error(t, err)
	require.Contains(t, err.Error(), "panic: target kaboom")
	require.Empty(t, b.records(t, "MYTASK"))
}
