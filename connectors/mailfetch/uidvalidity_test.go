package mailfetch

import (
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
)

// A folder's new UIDVALIDITY (restored from a backup, moved to another
// server) gives each of its messages a new key and reference: the folder
// is read again. Its documents were removed before it was read: while it
// was, a search found none of its messages, and a run cut short
// (MaxUserMessages, Stop, a dropped connection) left those it had not
// read again out of the index until a later run read them. The old
// documents now go once the folder has been read again to the end.
func TestNewUIDValidityKeepsTheOldDocumentsUntilTheFolderIsReadAgain(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{user: "pw"}})
	subjects := []string{"archived 0", "archived 1", "archived 2"}
	for _, s := range subjects {
		d.MustDeliver(t, user, "Archive", mailtest.Message{From: "old@example.com", To: user, Subject: s, Text: "old"}.Raw(), "S")
	}
	g := newRig(t, mailConfig(d, "Folders=Archive\nMaxUserMessages=0\n"))
	g.mustRun("Synchronize")
	require.Equal(t, 3, g.target.Len())
	oldRefs := map[string]bool{}
	for _, doc := range g.target.All() {
		oldRefs[doc.Reference] = true
	}

	require.NoError(t, d.ResetUIDValidity(user, "Archive"))
	g.reconfigure("MaxUserMessages=0", "MaxUserMessages=1")
	for run := 1; run <= 3; run++ {
		_, job := g.mustRun("Synchronize")
		c := countsOf(job, "MAIL")
		for _, s := range subjects {
			require.NotEmpty(t, g.target.Find("SUBJECT", s), "run %d: %q is still found", run, s)
		}
		if run < 3 {
			require.Equal(t, fmt.Sprintf("seen=%d added=1 updated=0 deleted=0 unchanged=%d ingestadded=1 ingestupdated=0 ingestdeleted=0 ingestfailed=0 errors=0", run, run-1), summary(c), "run %d", run)
			require.Equal(t, 3+run, g.target.Len(), "run %d: the old documents and those read again", run)
		} else {
			require.Equal(t, "seen=3 added=1 updated=0 deleted=3 unchanged=2 ingestadded=1 ingestupdated=0 ingestdeleted=3 ingestfailed=0 errors=0", summary(c),
				"read to the end: the old documents go")
		}
	}
	require.Equal(t, 3, g.target.Len())
	for _, doc := range g.target.All() {
		require.False(t, oldRefs[doc.Reference], "%s is of the old UIDVALIDITY", doc.Reference)
		require.True(t, strings.HasPrefix(doc.Reference, "imap://"))
	}
	_, job := g.mustRun("Synchronize")
	require.Equal(t, "seen=3 added=0 updated=0 deleted=0 unchanged=3 ingestadded=0 ingestupdated=0 ingestdeleted=0 ingestfailed=0 errors=0", summary(countsOf(job, "MAIL")))
}

// On Gmail a message's reference is its Gmail id, which a new UIDVALIDITY
// does not change: the message read again under its new key replaces its
// own document, which the old key's record, forgotten after it, must not
// take out of the index. Indexing one folder (All Mail) and two.
func TestNewUIDValidityOnGmailKeepsTheMessagesReadAgain(t *testing.T) {
	for _, folders := range []string{"[Gmail]/All Mail", "INBOX,[Gmail]/All Mail"} {
		t.Run(folders, func(t *testing.T) {
			// One message (hoodiecrow sends an empty body for the second
			// message of a partial BODY[] fetch), in INBOX and All Mail.
			msg := gmailMsg("one", "1278455344230334866", `\Inbox`)
			h := mailtest.StartHoodiecrow(t, mailtest.HoodiecrowOptions{User: user, Password: "pw", Inbox: []mailtest.GmailMessage{msg}, AllMail: []mailtest.GmailMessage{msg}})
			var renumbered atomic.Bool
			uidValidity := regexp.MustCompile(`UIDVALIDITY (\d+)`)
			p := mailtest.StartProxy(t, h.Addr, func(line string) string {
				if renumbered.Load() {
					return uidValidity.ReplaceAllString(line, "UIDVALIDITY 7${1}")
				}
				return line
			})
			host, port, _ := strings.Cut(p.Addr, ":")
			g := newRig(t, fmt.Sprintf("[Server]\nDataDirectory=$DIR/data\n[FetchTasks]\n0=Mail\n[Mail]\nImapServer=%s\nImapPort=%s\nImapSecurity=NONE\nUsername=%s\nPassword=pw\nFolders=%s\n",
				host, port, user, folders))
			g.mustRun("Synchronize")
			require.Equal(t, 1, g.target.Len())

			renumbered.Store(true)
			_, job := g.mustRun("Synchronize")
			c := countsOf(job, "MAIL")
			require.Zero(t, c.Deleted, summary(c))
			require.Zero(t, c.Ingestfailed, summary(c))
			require.Len(t, g.target.Find("SUBJECT", "one"), 1, "the message read again, its document kept")
			_, job = g.mustRun("Synchronize")
			c = countsOf(job, "MAIL")
			require.Zero(t, c.Added+c.Updated+c.Deleted, "read again once: %s", summary(c))
			require.Len(t, g.target.Find("SUBJECT", "one"), 1)
		})
	}
}

// A folder's new UIDVALIDITY leaves the old keys naming no message until
// the folder is read again. Delete of such a key's document answered
// success and removed the document, but deleted nothing on the server
// (no message has that key): the next Synchronize indexed the message
// again. It now fails, saying so; the document stays until the folder is
// read again, and a Delete of the new one deletes the message.
func TestDeleteUnderAnOldUIDValidityFails(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{user: "pw"}})
	for _, s := range []string{"keep", "delete me"} {
		d.MustDeliver(t, user, "Archive", mailtest.Message{From: "old@example.com", To: user, Subject: s, Text: "old"}.Raw(), "S")
	}
	d.MustDeliver(t, user, "INBOX", mailtest.Message{From: "new@example.com", To: user, Subject: "inbox one", Text: "new"}.Raw(), "")
	g := newRig(t, mailConfig(d, ""))
	g.mustRun("Synchronize")
	oldID := resttest.Field1(g.target.Find("SUBJECT", "delete me")[0], "AUTN_IDENTIFIER")
	inboxID := resttest.Field1(g.target.Find("SUBJECT", "inbox one")[0], "AUTN_IDENTIFIER")

	require.NoError(t, d.ResetUIDValidity(user, "Archive"))
	res, job := g.mustRun("Delete", "Identifiers", oldID+","+inboxID)
	outcome := map[string]string{} // identifier: success, or failed and why
	for _, e := range res[0].Children {
		outcome[e.Text] = e.Name
		for _, a := range e.Attrs {
			outcome[e.Text] += ": " + a.Value
		}
	}
	require.Contains(t, outcome[oldID], "failed: ", "nothing deleted under the old UIDVALIDITY")
	require.Contains(t, outcome[oldID], "new UIDVALIDITY")
	require.Equal(t, "success", outcome[inboxID], "another folder's message is deleted")
	require.Equal(t, uint64(1), countsOf(job, "MAIL").Deleted)
	require.Len(t, g.target.Find("SUBJECT", "delete me"), 1, "its document stays")
	require.Empty(t, g.target.Find("SUBJECT", "inbox one"))

	g.mustRun("Synchronize")
	docs := g.target.Find("SUBJECT", "delete me")
	require.Len(t, docs, 1, "read again under the new UIDVALIDITY")
	newID := resttest.Field1(docs[0], "AUTN_IDENTIFIER")
	require.NotEqual(t, oldID, newID)
	res, _ = g.mustRun("Delete", "Identifiers", newID)
	require.Equal(t, "success", res[0].Children[0].Name)
	_, job = g.mustRun("Synchronize")
	require.Empty(t, g.target.Find("SUBJECT", "delete me"), "deleted on the server")
	require.Len(t, g.target.Find("SUBJECT", "keep"), 1)
	require.Zero(t, countsOf(job, "MAIL").Added)
}
