package imapbox

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// echoServer refuses every LOGIN and AUTHENTICATE quoting what it was
// sent (some servers and proxies echo the command they refuse), on
// 127.0.0.1; but those of the first connection when acceptFirst. sasl
// says which mechanisms it offers.
func echoServer(t *testing.T, sasl string, acceptFirst bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accept := acceptFirst && n == 0
			go func() {
				defer c.Close()
				r, w := bufio.NewReader(c), bufio.NewWriter(c)
				fmt.Fprintf(w, "* OK [CAPABILITY %s] ready\r\n", strings.TrimSpace("IMAP4rev1 SASL-IR "+sasl))
				_ = w.Flush()
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					line = strings.TrimRight(line, "\r\n")
					tag, cmd, _ := strings.Cut(line, " ")
					switch verb := strings.ToUpper(cmd); {
					case accept && (strings.HasPrefix(verb, "LOGIN") || strings.HasPrefix(verb, "AUTHENTICATE")):
						fmt.Fprintf(w, "%s OK [CAPABILITY IMAP4rev1 X-GM-EXT-1] in\r\n", tag)
					case strings.HasPrefix(verb, "CAPABILITY"):
						fmt.Fprintf(w, "* CAPABILITY %s\r\n%s OK done\r\n", strings.TrimSpace("IMAP4rev1 SASL-IR "+sasl), tag)
					case strings.HasPrefix(verb, "LOGIN"), strings.HasPrefix(verb, "AUTHENTICATE"):
						fmt.Fprintf(w, "%s NO [AUTHENTICATIONFAILED] refused: %s\r\n", tag, cmd)
					case strings.HasPrefix(verb, "LOGOUT"):
						fmt.Fprintf(w, "* BYE\r\n%s OK bye\r\n", tag)
					default:
						fmt.Fprintf(w, "%s BAD unexpected\r\n", tag)
					}
					_ = w.Flush()
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// A server that quotes the refused LOGIN or AUTHENTICATE in its answer
// put the password (or the access token, or the base64 of either) into
// the task's error: GetStatus, the log and the store. The server's words
// are kept, scrubbed of the credentials sent.
func TestLoginRefusalQuotingTheCredentialsIsScrubbed(t *testing.T) {
	const pw, tok = "pw-Secret-4711", "ya29.tok-Secret-4711"
	for _, c := range []struct {
		auth Auth
		sasl string
	}{{AuthLogin, ""}, {AuthPlain, "AUTH=PLAIN"}, {AuthXOAuth2, "AUTH=XOAUTH2"}, {AuthOAuthBearer, "AUTH=OAUTHBEARER"}} {
		t.Run(string(c.auth), func(t *testing.T) {
			cfg := Config{Addr: echoServer(t, c.sasl, false), Security: SecurityNone, Auth: c.auth, Username: "alice@example.com", Password: pw,
				Tokens: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok})}
			_, err := Dial(context.Background(), cfg)
			requireScrubbed(t, err)

			// Gmail's data connection logs in the same way.
			cfg.Addr = echoServer(t, c.sasl, true)
			b, err := Dial(context.Background(), cfg)
			require.NoError(t, err)
			defer b.Close()
			require.True(t, b.Gmail())
			_, err = b.dialGM(context.Background())
			requireScrubbed(t, err)
		})
	}
}

func requireScrubbed(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	require.Contains(t, err.Error(), "refused")
	require.NotContains(t, err.Error(), "Secret")
	// Nor in base64 (the SASL responses).
	for _, w := range strings.Fields(err.Error()) {
		if d, err := base64.StdEncoding.DecodeString(strings.Trim(w, `"()`)); err == nil {
			require.NotContains(t, string(d), "Secret", w)
		}
	}
}
