package mailfetch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/mailfetch/imapbox"
	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
)

// hoodiecrowRig starts hoodiecrow with INBOX and [Gmail]/All Mail, and a
// repository indexing the folders named.
func hoodiecrowRig(t *testing.T, folders string, inbox, all []mailtest.GmailMessage) (*rig, *mailtest.Hoodiecrow) {
	t.Helper()
	h := mailtest.StartHoodiecrow(t, mailtest.HoodiecrowOptions{User: user, Password: "pw", Inbox: inbox, AllMail: all})
	host, port, _ := strings.Cut(h.Addr, ":")
	return newRig(t, fmt.Sprintf("[Server]\nDataDirectory=$DIR/data\n[FetchTasks]\n0=Mail\n[Mail]\nImapServer=%s\nImapPort=%s\nImapSecurity=NONE\nUsername=%s\nPassword=pw\nFolders=%s\n",
		host, port, user, folders)), h
}

// expunge removes the messages of a folder with the given subjects, as a
// person's client would (on Gmail: the folder's label is taken off).
func expunge(t *testing.T, h *mailtest.Hoodiecrow, folder string, subjects ...string) {
	t.Helper()
	ctx := context.Background()
	b, err := imapbox.Dial(ctx, imapbox.Config{Addr: h.Addr, Security: imapbox.SecurityNone, Username: user, Password: "pw"})
	require.NoError(t, err)
	defer b.Close()
	c := mailbox.Collection{Name: folder}
	plan, err := b.Plan(ctx, c, emptyKnown{})
	require.NoError(t, err)
	var keys []string
	require.NoError(t, b.Fetch(ctx, c, plan.Fetch, func(m *mailbox.Message) error {
		for _, s := range subjects {
			if strings.Contains(string(m.Raw), "Subject: "+s+"\r\n") {
				keys = append(keys, m.Key)
			}
		}
		return nil
	}))
	require.Len(t, keys, len(subjects))
	require.NoError(t, b.Delete(ctx, c, keys))
}

type emptyKnown struct{}

func (emptyKnown) Cursor() []byte                { return nil }
func (emptyKnown) Version(string) (string, bool) { return "", false }
func (emptyKnown) Keys(func(string))             {}
func (emptyKnown) Len() int                      { return 0 }

func gmailMsg(subject, id string, labels ...string) mailtest.GmailMessage {
	return mailtest.GmailMessage{Raw: string(mailtest.Message{From: "bob@example.com", To: user, Subject: subject, Text: "body of " + subject}.Raw()),
		MsgID: id, Labels: labels}
}

// On Gmail a message is in every folder of its labels, under one
// reference (its Gmail id). Indexing several folders, a message taken out
// of one of them (archived: out of INBOX, still in All Mail) stays
// indexed: its document is not removed while another folder holds it.
func TestGmailMessageLeavingOneOfItsFoldersStaysIndexed(t *testing.T) {
	both := gmailMsg("in both", "1278455344230334866", `\Inbox`)
	g, h := hoodiecrowRig(t, "INBOX,[Gmail]/All Mail",
		[]mailtest.GmailMessage{both},
		[]mailtest.GmailMessage{both, gmailMsg("archived", "1278455344230334867")})
	g.mustRun("Synchronize")
	require.Equal(t, 2, g.target.Len(), "two messages, one reference each")
	ref := imapbox.GmailReference(user, "11bdfc5cae0c8192")
	require.NotNil(t, g.target.Get(ref))

	expunge(t, h, "INBOX", "in both")
	g.mustRun("Synchronize")
	require.NotNil(t, g.target.Get(ref), "the message is still in [Gmail]/All Mail: its document stays")
	require.Equal(t, 2, g.target.Len())

	// Out of its last folder, it goes.
	expunge(t, h, "[Gmail]/All Mail", "in both")
	_, job := g.mustRun("Synchronize")
	require.Nil(t, g.target.Get(ref), "in no folder indexed any more: removed")
	require.Equal(t, 1, g.target.Len())
	require.Equal(t, uint64(1), countsOf(job, "MAIL").Ingestdeleted)
}

// movingRig indexes INBOX and [Gmail]/All Mail through a proxy to a
// hoodiecrow whose one message (reference ref) is in All Mail, and runs a
// Synchronize; after is the same account once the message moved to INBOX
// (out of All Mail), for p.Redirect.
func movingRig(t *testing.T) (g *rig, p *mailtest.Proxy, after *mailtest.Hoodiecrow, ref string) {
	t.Helper()
	msg := gmailMsg("moving", "1278455344230334866")
	before := mailtest.StartHoodiecrow(t, mailtest.HoodiecrowOptions{User: user, Password: "pw", AllMail: []mailtest.GmailMessage{msg}})
	after = mailtest.StartHoodiecrow(t, mailtest.HoodiecrowOptions{User: user, Password: "pw", Inbox: []mailtest.GmailMessage{msg}})
	p = mailtest.StartProxy(t, before.Addr, nil)
	host, port, _ := strings.Cut(p.Addr, ":")
	g = newRig(t, fmt.Sprintf("[Server]\nDataDirectory=$DIR/data\n[FetchTasks]\n0=Mail\n[Mail]\nImapServer=%s\nImapPort=%s\nImapSecurity=NONE\nUsername=%s\nPassword=pw\nFolders=INBOX,[Gmail]/All Mail\n",
		host, port, user))
	ref = imapbox.GmailReference(user, "11bdfc5cae0c8192")
	g.mustRun("Synchronize")
	require.Equal(t, "[Gmail]/All Mail", resttest.Field1(g.target.Get(ref), "FOLDER"))
	return g, p, after, ref
}

// A Gmail message moved from one folder indexed to another (a label
// replaced by another) between two runs, when the folder it arrives in is
// read first: its document stays.
func TestGmailMessageMovedToAFolderReadFirstStaysIndexed(t *testing.T) {
	g, p, after, ref := movingRig(t)
	p.Redirect(after.Addr)
	_, job := g.mustRun("Synchronize")
	doc := g.target.Get(ref)
	require.NotNil(t, doc, "the message is in INBOX now: its document stays")
	require.Equal(t, "INBOX", resttest.Field1(doc, "FOLDER"))
	require.Equal(t, uint64(0), countsOf(job, "MAIL").Ingestdeleted)

	// Nothing changed: nothing delivered or removed.
	_, job = g.mustRun("Synchronize")
	require.Equal(t, "seen=1 added=0 updated=0 deleted=0 unchanged=1 ingestadded=0 ingestupdated=0 ingestdeleted=0 ingestfailed=0 errors=0", summary(countsOf(job, "MAIL")))
	require.NotNil(t, g.target.Get(ref))
}

// The Delete action, on a Gmail message indexed from two folders, deletes
// it from the folder its identifier names (on Gmail: takes that label
// off); the message is still in the other folder, so its document stays,
// and a Synchronize keeps it.
func TestGmailDeleteFromOneOfItsFoldersKeepsTheDocument(t *testing.T) {
	both := gmailMsg("in both", "1278455344230334866", `\Inbox`)
	g, _ := hoodiecrowRig(t, "INBOX,[Gmail]/All Mail", []mailtest.GmailMessage{both}, []mailtest.GmailMessage{both})
	g.mustRun("Synchronize")
	ref := imapbox.GmailReference(user, "11bdfc5cae0c8192")
	require.NotNil(t, g.target.Get(ref))
	var inInbox string
	for _, rec := range g.records("INBOX") {
		inInbox = rec
	}
	require.NotEmpty(t, inInbox)
	g.mustRun("Delete", "Identifiers", inInbox)
	require.NotNil(t, g.target.Get(ref), "still in [Gmail]/All Mail")
	g.mustRun("Synchronize")
	require.NotNil(t, g.target.Get(ref), "still in [Gmail]/All Mail")
}

// An identifier given twice to Delete is one message deleted: the
// message was forgotten twice, which took its other folder's hold on its
// reference too (the document was removed while the message is still in
// [Gmail]/All Mail, and no Synchronize delivered it again).
func TestGmailDeleteOfAnIdentifierGivenTwiceKeepsTheDocument(t *testing.T) {
	both := gmailMsg("in both", "1278455344230334866", `\Inbox`)
	g, _ := hoodiecrowRig(t, "INBOX,[Gmail]/All Mail", []mailtest.GmailMessage{both}, []mailtest.GmailMessage{both})
	g.mustRun("Synchronize")
	ref := imapbox.GmailReference(user, "11bdfc5cae0c8192")
	inInbox := g.records("INBOX")
	require.Len(t, inInbox, 1)
	_, job := g.mustRun("Delete", "Identifiers", inInbox[0]+","+inInbox[0])
	require.NotNil(t, g.target.Get(ref), "still in [Gmail]/All Mail")
	require.Zero(t, countsOf(job, "MAIL").Deleted, "its document stays")
	g.mustRun("Synchronize")
	require.NotNil(t, g.target.Get(ref), "still in [Gmail]/All Mail")
}

// records returns the identifiers of a folder's records.
func (g *rig) records(folder string) []string {
	g.t.Helper()
	ds, err := g.st.Datastore("MAIL")
	require.NoError(g.t, err)
	st, err := loadState(ds)
	require.NoError(g.t, err)
	var ids []string
	for key := range st.records[folder] {
		ids = append(ids, Identifier{Task: "MAIL", Collection: folder, Key: key}.Encode())
	}
	return ids
}

// A Gmail message moved to a folder read first, whose delivery there the
// target refused: the record of the folder it left stays until a run
// delivers it in its new folder, so that the document is never in the
// index without a record. Before, the record was forgotten (the refused
// delivery counted as holding the reference), and a message then gone
// from the mailbox kept its document in the index for good.
func TestGmailMessageMovedWithItsDeliveryRefusedKeepsItsRecord(t *testing.T) {
	for _, then := range []string{"gone", "still moved"} {
		t.Run(then, func(t *testing.T) {
			g, p, after, ref := movingRig(t)

			// Moved to INBOX (read first); the target refuses everything.
			p.Redirect(after.Addr)
			g.target.SetFail(errors.New("target unavailable"))
			_, job, err := g.run("Synchronize")
			require.NoError(t, err)
			require.NotZero(t, countsOf(job, "MAIL").Ingestfailed)
			g.target.SetFail(nil)
			require.Empty(t, g.records("INBOX"), "its delivery was refused")
			require.Len(t, g.records("[Gmail]/All Mail"), 1, "the only record of the document in the index stays")

			if then == "gone" {
				p.Redirect(mailtest.StartHoodiecrow(t, mailtest.HoodiecrowOptions{User: user, Password: "pw"}).Addr)
				g.mustRun("Synchronize")
				require.Nil(t, g.target.Get(ref), "the message is in no folder: its document goes")
				require.Zero(t, g.target.Len())
				return
			}
			_, job = g.mustRun("Synchronize")
			doc := g.target.Get(ref)
			require.NotNil(t, doc)
			require.Equal(t, "INBOX", resttest.Field1(doc, "FOLDER"))
			require.Len(t, g.records("INBOX"), 1)
			require.Empty(t, g.records("[Gmail]/All Mail"))
			require.Equal(t, uint64(0), countsOf(job, "MAIL").Ingestdeleted)
		})
	}
}

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
