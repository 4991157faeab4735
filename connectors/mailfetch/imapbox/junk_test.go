package imapbox

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
)

// Servers that keep every folder under INBOX (Courier-IMAP's and older
// Cyrus's "INBOX." namespace) name their trash and spam folders
// INBOX.Trash and INBOX.Spam, and those without SPECIAL-USE mark them by
// name alone: such folders were indexed by default, so that the mail a
// person deleted or that was spam was found in searches, though the
// default is every folder but spam and trash.
func TestSpamAndTrashUnderInboxAreLeftOut(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{"alice": "pw"}})
	for _, f := range []string{"INBOX", "INBOX.Trash", "INBOX.Junk", "INBOX.spam", "INBOX.Deleted Items", "INBOX.Projects", "Archive.Trash"} {
		d.MustDeliver(t, "alice", f, mailtest.Message{From: "a@example.com", Subject: "in " + f, Text: "x"}.Raw(), "")
	}
	ctx := context.Background()
	for _, all := range []bool{false, true} {
		b, err := Dial(ctx, Config{Addr: d.Addr, Security: SecurityNone, Username: "alice", Password: "pw", IncludeSpamTrash: all})
		require.NoError(t, err)
		cols, err := b.Collections(ctx)
		require.NoError(t, err)
		require.NoError(t, b.Close())
		var names []string
		for _, c := range cols {
			names = append(names, c.Name)
		}
		want := []string{"INBOX", "INBOX.Projects", "Archive.Trash"}
		if all {
			want = append(want, "INBOX.Trash", "INBOX.Junk", "INBOX.spam", "INBOX.Deleted Items")
		}
		require.ElementsMatch(t, want, names, "IncludeSpamTrash=%t", all)
	}
}
