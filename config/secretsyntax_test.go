package config

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSyntaxErrorsNeverQuoteSecrets: a value the syntax refuses (what
// looks like a trailing comment, a quote never closed, text after the
// closing quote) is quoted in the error to show what is wrong, except the
// value of a key that holds a secret (its name contains password or
// secret, secret.SensitiveName): that error goes to the log at start-up,
// and, for a request's Config fragment, into the error reply and the
// parameter error the request log may keep. The error still names the
// file, the line and the key.
func TestSyntaxErrorsNeverQuoteSecrets(t *testing.T) {
	t.Parallel()
	for name, line := range map[string]string{
		"trailing comment":    "BasicAuthPassword=hunter2 #x",
		"unclosed quote":      `BasicAuthPassword="hunter2`,
		"after closing quote": `LoginPassword="hun" ter2`,
		"client secret":       "OAuthClientSecret=hunter2 ;x",
		"tls key password":    "SSLPrivateKeyPassword='hunter2",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("x.cfg", []byte("[FetchTasks]\n0=T\n[T]\nUrl=http://127.0.0.1/\n"+line+"\n"), testTaskKeys)
			var ce *Error
			require.True(t, errors.As(err, &ce), "%v", err)
			require.Equal(t, "x.cfg", ce.File)
			require.Equal(t, 5, ce.Line)
			require.NotEmpty(t, ce.Key)
			require.NotContains(t, err.Error(), "hunter2")
			require.NotContains(t, err.Error(), "ter2")
		})
	}
	// Other values are still quoted: the error shows what is wrong.
	_, err := Parse("x.cfg", []byte("[T]\nUrl=http://127.0.0.1/ #docs\n"), testTaskKeys)
	require.ErrorContains(t, err, `"http://127.0.0.1/ #docs" ends in what looks like a comment`)
}

// TestLineWithoutEqualsNeverQuotesSecrets: a setting written without its =
// (BasicAuthPassword: hunter2, a habit of YAML, or a blank instead of =)
// is refused as a line that is no Key=Value, and the error showed the
// whole line, the password with it: at start-up in the log, and for a
// request's Config fragment in the error reply, which the action's client
// and the request log see. A line that names a secret (secret.SensitiveName
// of its text, or of the name it starts with) is named by its line number
// only; other lines are still quoted.
func TestLineWithoutEqualsNeverQuotesSecrets(t *testing.T) {
	t.Parallel()
	for _, line := range []string{
		"BasicAuthPassword: hunter2",
		"BasicAuthPassword hunter2",
		"OAuthClientSecret\thunter2",
		"password hunter2",
		// A secret-looking name (secret.SensitiveName) that a suffix
		// makes so: the whole line does not end in it. On main these
		// were quoted whole.
		"X-Auth: hunter2",
		"SigningKey hunter2",
		"ApiKey:hunter2",
		"AccessToken hunter2",
	} {
		_, err := Parse("x.cfg", []byte("[FetchTasks]\n0=T\n[T]\nUrl=http://127.0.0.1/\n"+line+"\n"), testTaskKeys)
		var ce *Error
		require.True(t, errors.As(err, &ce), "%v", err)
		require.Equal(t, 5, ce.Line)
		require.Equal(t, "T", ce.Section)
		require.ErrorContains(t, err, "expected Key=Value")
		require.NotContains(t, err.Error(), "hunter2", line)
	}
	_, err := Parse("x.cfg", []byte("[T]\nDepth 2\n"), testTaskKeys)
	require.ErrorContains(t, err, `"Depth 2": expected Key=Value`)
}
