package imapbox

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
)

// searchServer answers LOGIN, SELECT (exists messages) and UID SEARCH
// (with the ESEARCH reply "ALL <all>"), on 127.0.0.1.
func searchServer(t *testing.T, exists int, all string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r, w := bufio.NewReader(c), bufio.NewWriter(c)
		_, _ = w.WriteString("* OK [CAPABILITY IMAP4rev1 ESEARCH] ready\r\n")
		_ = w.Flush()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			tag, cmd, _ := strings.Cut(strings.TrimSpace(line), " ")
			verb := strings.ToUpper(cmd)
			switch {
			case strings.HasPrefix(verb, "LOGIN"):
				fmt.Fprintf(w, "%s OK [CAPABILITY IMAP4rev1 ESEARCH] logged in\r\n", tag)
			case strings.HasPrefix(verb, "SELECT"):
				fmt.Fprintf(w, "* %d EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT %d] n\r\n%s OK [READ-WRITE] selected\r\n", exists, exists+1, tag)
			case strings.HasPrefix(verb, "UID SEARCH"):
				fmt.Fprintf(w, "* ESEARCH (TAG %q) UID ALL %s\r\n%s OK searched\r\n", tag, all, tag)
			case strings.HasPrefix(verb, "LOGOUT"):
				fmt.Fprintf(w, "* BYE\r\n%s OK bye\r\n", tag)
				_ = w.Flush()
				return
			default:
				fmt.Fprintf(w, "%s BAD unexpected\r\n", tag)
			}
			_ = w.Flush()
		}
	}()
	return ln.Addr().String()
}

// A server's reply to UID SEARCH is a few bytes whatever it names: a
// set far larger than the folder is an error of that folder's listing,
// not gigabytes of UIDs. An open-ended set ("1:*"), on which
// SearchData.AllUIDs panics, is refused by go-imap v2.0.0-beta.9's
// decoder already: those cases guard that.
func TestPlanRefusesAUIDSetLargerThanTheFolder(t *testing.T) {
	for _, tc := range []struct {
		exists int
		all    string
		want   string
	}{
		{3, "1:3", ""},
		{3, "1,3,5", ""},
		{3, "1:5000000", "5000000 UIDs"},
		{3, "1:4294967295", "4294967295 UIDs"},
		{3, "1:*", "dynamic"},
		{3, "2,*", "dynamic"},
		{maxFolderMessages + 1, "1:4294967295", "4294967295 UIDs"},
	} {
		t.Run(tc.all, func(t *testing.T) {
			addr := searchServer(t, tc.exists, tc.all)
			ctx := context.Background()
			b, err := Dial(ctx, Config{Addr: addr, Security: SecurityNone, Username: "u", Password: "p", Timeout: 30 * time.Second})
			require.NoError(t, err)
			defer b.Close()
			plan, err := b.Plan(ctx, mailbox.Collection{Name: "INBOX"}, &known{versions: map[string]string{}})
			if tc.want == "" {
				require.NoError(t, err)
				require.Len(t, plan.Fetch, 3)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.Contains(t, err.Error(), `"INBOX"`)
		})
	}
}

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
