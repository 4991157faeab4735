package queue

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// TestLogEndOnlyWhenInfoIsLogged: an action's end line is written at
// INFO, with its fields; when the log level drops INFO lines (the
// server's warn, as under load), logEnd builds nothing: it runs for every
// action that ends.
func TestLogEndOnlyWhenInfoIsLogged(t *testing.T) {
	spec := &messages.ActionSpec{FetchAction: "IDENTIFIERS", Tasks: []string{"EMPTY"}, Client: "127.0.0.1", Role: "admin"}
	st := &messages.ActionStatus{Token: "tok", State: messages.State_STATE_FINISHED, QueuedUnixMs: 1000, StartedUnixMs: 1500, EndedUnixMs: 3000,
		Counts: []*messages.DocumentCount{{Seen: 3}}}
	var buf bytes.Buffer
	sh := &shared{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	sh.logEnd(spec, st)
	require.Contains(t, buf.String(), "action ended")
	require.Contains(t, buf.String(), "token=tok action=IDENTIFIERS tasks=EMPTY")
	require.Contains(t, buf.String(), "counts.seen=3")

	buf.Reset()
	sh.log = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	allocs := testing.AllocsPerRun(100, func() { sh.logEnd(spec, st) })
	require.Zero(t, allocs, "nothing built for a line that is not written")
	require.Empty(t, buf.String())
}
