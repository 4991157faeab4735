package imapbox

import (
	"context"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
)

// Gmail's extensions, against hoodiecrow-imap (which speaks X-GM-EXT-1
// but has no X-GM-THRID).
func TestGmailExtensionsAgainstHoodiecrow(t *testing.T) {
	raw := func(subject string) string {
		return string(mailtest.Message{From: "a@example.com", To: "alice@example.com", Subject: subject, Text: "body of " + subject}.Raw())
	}
	h := mailtest.StartHoodiecrow(t, mailtest.HoodiecrowOptions{
		User: "alice@example.com", Password: "pw", AccessToken: "good-token",
		AllMail: []mailtest.GmailMessage{
			{Raw: raw("one"), Labels: []string{`\Inbox`, "Work"}, MsgID: "1278455344230334866"},
			{Raw: raw("two"), Labels: []string{`\Important`, "R&AOk-union"}, MsgID: "1278455344230334867", Flags: []string{`\Seen`}},
			{Raw: raw("three"), MsgID: "1278455344230334868"},
		},
	})
	ctx := context.Background()
	for i, cfg := range []Config{
		{Password: "pw"},
		{Auth: AuthXOAuth2, Tokens: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "good-token"})},
	} {
		cfg.Addr, cfg.Security, cfg.Username = h.Addr, SecurityNone, "alice@example.com"
		b, err := Dial(ctx, cfg)
		require.NoError(t, err)
		require.True(t, b.Gmail())
		cols, err := b.Collections(ctx)
		require.NoError(t, err)
		require.Equal(t, []mailbox.Collection{{Name: "[Gmail]/All Mail", Attributes: []string{`\All`}}}, cols, "on Gmail, All Mail alone by default")
		k := &known{versions: map[string]string{}}
		_, msgs := syncOnce(t, b, cols[0], k)
		require.Len(t, msgs, 3)
		m := msgs[0]
		require.Equal(t, "11bdfc5cae0c8192", m.GmailID, "X-GM-MSGID in hexadecimal, as the Gmail API writes ids")
		require.Equal(t, "https://mail.google.com/mail/u/alice@example.com/#all/11bdfc5cae0c8192", m.Reference)
		if i == 0 {
			require.ElementsMatch(t, []string{"INBOX", "Work"}, m.Labels)
		}
		require.ElementsMatch(t, []string{"IMPORTANT", "Réunion"}, msgs[1].Labels, "labels decoded from modified UTF-7")
		require.Empty(t, m.GmailThreadID, "hoodiecrow has no X-GM-THRID")

		// A flag change is a new version: the message is fetched again.
		op := imap.StoreFlagsAdd
		if i == 1 {
			op = imap.StoreFlagsDel
		}
		other, err := Dial(ctx, cfg)
		require.NoError(t, err)
		_, err = other.selectFolder(ctx, "[Gmail]/All Mail")
		require.NoError(t, err)
		g, err := other.dialGM(ctx)
		require.NoError(t, err)
		_, err = g.command(`SELECT "[Gmail]/All Mail"`)
		require.NoError(t, err)
		if i == 0 {
			// A label change too (X-GM-LABELS, which go-imap cannot store).
			_, err = g.command(`UID STORE 1 +X-GM-LABELS (Urgent)`)
			require.NoError(t, err)
		}
		g.close()
		require.NoError(t, other.c.Store(imap.UIDSetNum(imap.UID(msgs[2].UID)), &imap.StoreFlags{Op: op, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close())
		require.NoError(t, other.Close())
		plan, again := syncOnce(t, b, cols[0], k)
		if i == 0 {
			require.Equal(t, 1, plan.Unchanged)
			require.Len(t, again, 2)
			require.ElementsMatch(t, []string{"INBOX", "Work", "Urgent"}, again[0].Labels)
			require.Equal(t, msgs[2].GmailID, again[1].GmailID)
		} else {
			require.Equal(t, 2, plan.Unchanged)
			require.Len(t, again, 1)
			require.Equal(t, msgs[2].GmailID, again[0].GmailID)
		}
		require.NoError(t, b.Close())
	}
}
