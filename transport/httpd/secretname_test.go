package httpd

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSecretsInParameterNamesNeverShown: a parameter whose name is a
// secret setting followed by its value (a client that wrote the = as :
// or a space, or percent-encoded it) is shown, queued and stored with the
// value redacted from its name. On main, Fetch&…&Password:hunter2 showed
// hunter2 in every Admin client's GetRequestLog, in the server log and in
// GetActionParameters: only values were redacted, and such a parameter
// has none.
func TestSecretsInParameterNamesNeverShown(t *testing.T) {
	t.Parallel()
	e := startWith(t, setup{})
	e.aci(t, "/action=QueueInfo&QueueName=fetch&QueueAction=Pause")
	names := []string{"Password:hunter1", "AuthPassword hunter2", "ProxyPassword=hunter3", "[MyTask]ClientSecret: hunter4", "X-Auth:hunter5"}
	var extra strings.Builder
	for _, n := range names {
		extra.WriteString("&" + url.QueryEscape(n))
	}
	tok := e.submit(t, "Synchronize", extra.String())
	_, params := e.get(t, "/action=QueueInfo&QueueName=fetch&QueueAction=GetActionParameters&Token="+url.QueryEscape(tok))
	require.Contains(t, string(params), `<parameter name="Password:[REDACTED]">`)
	require.Contains(t, string(params), `<parameter name="[MyTask]ClientSecret:[REDACTED]">`)
	entries := e.logEntries(t, "")
	require.NotEmpty(t, entries)
	for _, s := range []string{"hunter1", "hunter2", "hunter3", "hunter4", "hunter5"} {
		require.NotContains(t, string(params), s)
		for _, g := range entries {
			require.NotContains(t, g.Request, s)
		}
	}
}
