package queue

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/fetch/fetchtest"
	"github.com/connectorhq/connector/messages"
)

// TestErrorsNeverShowAURLPassword: an action whose connector fails, or
// panics, with a message quoting a URL and its password ends as Error
// with the password redacted, in its status (which the store keeps and
// every GetStatus shows) and in the log. Before, the error's and the
// panic's text were kept as the connector gave them: the house rule
// (secrets never in clear in replies, logs or the store) held only where
// each connector remembered it.
func TestErrorsNeverShowAURLPassword(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	b := setup(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	for _, mode := range []string{"failurl", "panicurl"} {
		tok := b.submit(t, mode, 0)
		s := b.waitState(t, tok, messages.State_STATE_ERROR)
		require.NotContains(t, s.Error, fetchtest.PasswordInURL, mode)
		require.Contains(t, s.Error, "http://crawler:[REDACTED]@site.example/private", mode)
	}
	require.Contains(t, logs.String(), "action panicked")
	require.False(t, strings.Contains(logs.String(), fetchtest.PasswordInURL), "the log: %s", logs.String())
}
