package restsync

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testlog"
	"github.com/connectorhq/connector/messages"
)

// TestLoggedWritesNoSecondActionEndedLine: an action's end is one
// "action ended" line, the queue's (docs/operations.md); the Google Mail,
// Objective and Webex connectors mark the end of their own run with a
// line of another name. On main they wrote "action ended" too, and every
// action had two such lines.
func TestLoggedWritesNoSecondActionEndedLine(t *testing.T) {
	t.Parallel()
	var log testlog.Buffer
	job := fetch.NewJob("token", fetch.ActionSynchronize, nil, []string{"MYTASK"})
	_, err := Logged(slog.New(slog.NewTextHandler(&log, nil)), time.Now, job, &Action{Action: fetch.ActionSynchronize, Tasks: []string{"MYTASK"}},
		func(*slog.Logger) ([]*messages.Element, error) { return nil, nil })
	require.NoError(t, err)
	require.Contains(t, log.String(), `msg="action started"`)
	require.Contains(t, log.String(), `msg="action run ended"`)
	require.NotContains(t, log.String(), `msg="action ended"`)
}
