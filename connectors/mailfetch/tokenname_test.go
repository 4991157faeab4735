package mailfetch

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
)

// TestDefaultTokenFileStaysInOAuthFolder: the default OAuthTokenFile is
// DataDirectory/oauth/<task>.token; a task named with `..` and a path
// separator put it (written by `connector oauth`, read and rewritten by
// the server) outside the server's folders. Such a name is refused unless
// OAuthTokenFile names the file; a name inside the folder still works.
func TestDefaultTokenFileStaysInOAuthFolder(t *testing.T) {
	for _, name := range []string{"../../x", "a/../../x", `..\..\x`} {
		text := "[Server]\nDataDirectory=/d\n[FetchTasks]\n0=" + name + "\n[" + name + "]\nUsername=a\nOAuthClientID=c\n"
		cfg, err := config.Parse("test.cfg", []byte(text), TaskKeys)
		require.NoError(t, err, name)
		s, err := resolve(cfg, name, nil)
		if err == nil && filepath.Separator == '/' && strings.Contains(name, `\`) {
			continue // a file name on this system
		}
		require.ErrorContains(t, err, "OAuthTokenFile", "%s: %+v", name, s)
		require.ErrorContains(t, err, "outside", name)
		_, err = resolve(mustParse(t, text+"OAuthTokenFile=/d/t.token\n"), name, nil)
		require.NoError(t, err, name)
	}
	s, err := resolve(mustParse(t, "[Server]\nDataDirectory=/d\n[FetchTasks]\n0=Team/Mail\n[Team/Mail]\nUsername=a\nOAuthClientID=c\n"), "Team/Mail", nil)
	require.NoError(t, err)
	require.Equal(t, filepath.Join("/d", "oauth", "team", "mail.token"), s.TokenFile)
}

func mustParse(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.cfg", []byte(text), TaskKeys)
	require.NoError(t, err)
	return cfg
}
