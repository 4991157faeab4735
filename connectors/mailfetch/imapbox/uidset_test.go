package imapbox

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
