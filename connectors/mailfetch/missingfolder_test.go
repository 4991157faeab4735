package mailfetch

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/mailfetch/imapbox"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
)

// A folder named in Folders that its owner deletes (a Gmail label
// deleted, an IMAP folder removed) made every Synchronize of the task
// fail at once: the other folders were no longer indexed (new mail in
// INBOX never came), and the deleted folder's documents stayed in the
// index. The other folders are synchronized, the deleted folder's
// messages go, and the task still ends as Error naming the folder, so
// that Folders is corrected.
func TestDeletedIMAPFolderInFoldersLeavesTheOthersIndexed(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{user: "pw"}})
	d.MustDeliver(t, user, "INBOX", mailtest.Message{From: "bob@example.com", To: user, Subject: "in inbox", Text: "x"}.Raw(), "")
	d.MustDeliver(t, user, "Projects", mailtest.Message{From: "bob@example.com", To: user, Subject: "in projects", Text: "y"}.Raw(), "")
	host, port, _ := strings.Cut(d.Addr, ":")
	g := newRig(t, fmt.Sprintf("[Server]\nDataDirectory=$DIR/data\n[FetchTasks]\n0=Mail\n[Mail]\nImapServer=%s\nImapPort=%s\nImapSecurity=NONE\nUsername=%s\nPassword=pw\nFolders=INBOX,Projects\n",
		host, port, user))
	g.mustRun("Synchronize")
	require.Len(t, g.target.Find("SUBJECT", "in projects"), 1)

	c, err := imapclient.DialInsecure(d.Addr, nil)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Login(user, "pw").Wait())
	require.NoError(t, c.Delete("Projects").Wait())
	d.MustDeliver(t, user, "INBOX", mailtest.Message{From: "bob@example.com", To: user, Subject: "new in inbox", Text: "z"}.Raw(), "")

	_, job, err := g.run("Synchronize")
	require.ErrorContains(t, err, `folder "Projects" does not exist`)
	require.Len(t, g.target.Find("SUBJECT", "new in inbox"), 1, "INBOX is still synchronized")
	require.Empty(t, g.target.Find("SUBJECT", "in projects"), "the deleted folder's messages go")
	require.Len(t, g.target.Find("SUBJECT", "in inbox"), 1)
	require.Equal(t, uint64(1), countsOf(job, "MAIL").Deleted)
}

// The same with the Gmail API: a label of Folders deleted made Open fail,
// so every action of the task failed.
func TestDeletedGmailLabelInFoldersLeavesTheOthersIndexed(t *testing.T) {
	g, api := twoGmailTasks(t, "INBOX,Projects", "INBOX")
	projects := api.AddLabel("Projects")
	api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "in inbox", Text: "x"}.Raw(), "INBOX")
	p := api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "in projects", Text: "y"}.Raw(), projects)
	g.mustRun("Synchronize", "TaskSections", "A")
	require.NotNil(t, g.target.Get(imapbox.GmailReference(user, p)))

	api.DeleteLabel(projects)
	n := api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "new in inbox", Text: "z"}.Raw(), "INBOX")
	_, _, err := g.run("Synchronize", "TaskSections", "A")
	require.ErrorContains(t, err, `label "Projects" does not exist`)
	require.NotNil(t, g.target.Get(imapbox.GmailReference(user, n)), "INBOX is still synchronized")
	require.Nil(t, g.target.Get(imapbox.GmailReference(user, p)), "the message of the deleted label goes")

	// Every run says so until Folders is corrected.
	_, _, err = g.run("Synchronize", "TaskSections", "A")
	require.ErrorContains(t, err, `label "Projects" does not exist`)
	require.NotNil(t, g.target.Get(imapbox.GmailReference(user, n)))
}
