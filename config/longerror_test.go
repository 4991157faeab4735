package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestErrorsQuoteLongTextShort: an error quotes at most the start of a
// long line, name or value, and still names the line and says what is
// wrong. On main it quoted the whole of it: a file with one bad line of a
// megabyte (a pasted certificate, a key missing its =) made a start-up
// error, and a log line, of a megabyte or more, and a request's Config
// fragment an error reply as large as the request.
func TestErrorsQuoteLongTextShort(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("A\x01", 1<<19) // 1 MiB; each \x01 is quoted as 4 bytes
	for _, tc := range []struct{ desc, cfg, want string }{
		{"no =", "[Server]\n" + long + "\n", "expected Key=Value"},
		{"header without ]", "[" + long + "\n", "a section header is [Name]"},
		{"text after header", "[Server] " + long + "\n", "after the section header"},
		{"empty key", "[Server]\n=" + long + "\n", "the key before = is empty"},
		{"unclosed quote", "[Server]\nHost=\"" + long + "\n", "no closing"},
		{"trailing comment", "[Server]\nHost=a " + long + " #x\n", "looks like a comment"},
		{"after closing quote", "[Server]\nHost=\"a\" " + long + "\n", "after the closing quote"},
		{"bad number", "[Server]\nPort=" + long + "\n", "is not a whole number"},
		{"bad Boolean", "[Actions]\nUseInMemoryDatastore=" + long + "\n", "is not a Boolean"},
		{"bad duration", "[Actions]\nFinishedActionMaxAge=" + long + "\n", "is not a duration"},
		{"bad host", "[Server]\nHost=a/" + long + "\n", "is not an address"},
		{"unknown key", "[Server]\n" + long + "=1\n", "unknown key"},
		{"long section name", "[" + long + "] x\n", "after the section header"},
		{"role key in a task section", "[" + long + "]\nStandardRoles=Admin\n", "is a key of a role section"},
		{"task listed twice", "[FetchTasks]\n1=" + long + "\n01=B\n", "is listed twice"},
		{"role listed twice", "[AuthorizationRoles]\n1=" + long + "\n01=B\n", "is listed twice"},
		{"missing role section", "[AuthorizationRoles]\n0=" + long + "\n", "does not exist"},
		{"missing TLS section", "[Server]\nSSLConfig=" + long + "\n", "does not exist"},
		{"TLS section without certificate", "[Server]\nSSLConfig=" + long + "\n[" + long + "]\nSSLMethod=TLSV1.2\n", "has no SSLCertificate"},
	} {
		_, err := Parse("c.cfg", []byte(tc.cfg), nil)
		require.Error(t, err, tc.desc)
		msg := err.Error()
		require.Less(t, len(msg), 2000, "%s: an error of %d bytes: %.300s", tc.desc, len(msg), msg)
		require.Contains(t, msg, "c.cfg:", tc.desc)
		require.Contains(t, msg, tc.want, tc.desc)
	}
}

// TestLongTextErrorsHideURLPasswords: a URL's password that runs past the
// cut of a long quoted text is not shown, in part or whole. The text used
// to be cut first and its URLs' passwords hidden after: once the cut fell
// inside the password, no @ was left to find it by, and the error (the
// start-up's last line, the log's, a Config fragment's reply) showed the
// password's first eighty-odd bytes.
func TestLongTextErrorsHideURLPasswords(t *testing.T) {
	t.Parallel()
	pw := strings.Repeat("s3cret", 20) // 120 bytes
	for _, tc := range []struct{ desc, cfg string }{
		{"unclosed quote", "[Server]\nHost=\"http://alice:" + pw + "@cfs/\n"},
		{"bad host", "[Server]\nHost=http://alice:" + pw + "@cfs/\n"},
		{"no =", "[Server]\nhttp://alice:" + pw + "@cfs/\n"},
		{"unknown key", "[Server]\nhttp://alice:" + pw + "@cfs/=1\n"},
	} {
		_, err := Parse("c.cfg", []byte(tc.cfg), nil)
		require.Error(t, err, tc.desc)
		require.NotContains(t, err.Error(), "s3cret", tc.desc)
		require.Contains(t, err.Error(), "alice", tc.desc)
	}
}
