package mailfetch

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/mailfetch/gmailtest"
	"github.com/connectorhq/connector/connectors/mailfetch/imapbox"
	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
	"github.com/connectorhq/connector/ingest"
)

// twoGmailTasks is a repository with tasks A and B on one Gmail mailbox
// (the API stand-in), read by one service account, indexing the labels
// named.
func twoGmailTasks(t *testing.T, foldersA, foldersB string, extraB ...string) (*rig, *gmailtest.Server) {
	t.Helper()
	srv := mailtest.StartOAuthServer(t)
	api := gmailtest.Start(t, user, srv.UserOf)
	key := srv.ServiceAccountKey(t, "indexer@project.iam.gserviceaccount.com")
	task := func(name, folders string) string {
		return "[" + name + "]\nTransport=GMAILAPI\nGmailApiUrl=" + api.URL + "\nUsername=" + user + "\nServiceAccountKeyFile=" + key + "\nFolders=" + folders + "\n"
	}
	return newRig(t, "[Server]\nDataDirectory=$DIR/data\n[FetchTasks]\n0=A\n1=B\n"+task("A", foldersA)+task("B", foldersB)+strings.Join(extraB, "\n")), api
}

// taskOf returns the task an indexed document's AUTN_IDENTIFIER names.
func taskOf(t *testing.T, g *rig, ref string) string {
	t.Helper()
	doc := g.target.Get(ref)
	require.NotNil(t, doc, ref)
	id, err := DecodeIdentifier(resttest.Field1(doc, fieldIdentifier))
	require.NoError(t, err)
	return id.Task
}

// Two tasks on one Gmail mailbox index a message under one reference (its
// Gmail id). A message that left the labels of one task, but is still in
// those of the other, was removed from the index by the first task's run
// (its forget never looked at the other task's records), and the other
// task, finding the message unchanged, never delivered it again: it was
// gone from the index for good. It now stays, the other task delivers its
// own document of it on its next run, and it goes once no task holds it.
func TestTwoGmailTasksKeepAMessageTheOtherStillIndexes(t *testing.T) {
	for _, how := range []string{"label taken off", "Folders changed"} {
		t.Run(how, func(t *testing.T) {
			g, api := twoGmailTasks(t, "INBOX", "Work")
			work := api.AddLabel("Work")
			api.AddLabel("Other")
			m := api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "both", Text: "x"}.Raw(), "INBOX", work)
			ref := imapbox.GmailReference(user, m)
			g.mustRun("Synchronize", "TaskSections", "B")
			g.mustRun("Synchronize", "TaskSections", "A")
			require.Equal(t, "A", taskOf(t, g, ref), "A delivered it last")

			if how == "label taken off" {
				api.Relabel(m, nil, []string{"INBOX"})
			} else {
				g.reconfigure("Folders=INBOX", "Folders=Other")
			}
			_, job := g.mustRun("Synchronize", "TaskSections", "A")
			require.NotNil(t, g.target.Get(ref), "B still indexes it: its document stays")
			require.Zero(t, countsOf(job, "A").Ingestdeleted)
			require.Zero(t, countsOf(job, "A").Deleted)

			// B delivers its own document of it (its identifier names B).
			_, job = g.mustRun("Synchronize", "TaskSections", "B")
			require.Equal(t, "B", taskOf(t, g, ref))
			require.Equal(t, uint64(1), countsOf(job, "B").Updated)

			// Out of Work too: no task holds it, it goes.
			api.Relabel(m, nil, []string{work})
			g.mustRun("Synchronize")
			require.Nil(t, g.target.Get(ref))
		})
	}
}

// The attachments the other task does not index (IngestAttachments=false)
// go with the task that lets the message go; the message's document stays.
func TestTwoGmailTasksRemoveTheAttachmentsOnlyOneIndexes(t *testing.T) {
	g, api := twoGmailTasks(t, "INBOX", "Work", "IngestAttachments=false")
	work := api.AddLabel("Work")
	m := api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "with notes", Text: "see attached",
		Attachments: []mailtest.Attachment{{Name: "notes.txt", ContentType: "text/plain", Data: []byte("the notes")}}}.Raw(), "INBOX", work)
	ref := imapbox.GmailReference(user, m)
	g.mustRun("Synchronize", "TaskSections", "B")
	g.mustRun("Synchronize", "TaskSections", "A")
	require.Equal(t, 2, g.target.Len(), "A indexed the attachment")

	api.Relabel(m, nil, []string{"INBOX"})
	_, job := g.mustRun("Synchronize", "TaskSections", "A")
	require.NotNil(t, g.target.Get(ref))
	require.Equal(t, 1, g.target.Len(), "the attachment only A indexed goes")
	require.Equal(t, uint64(1), countsOf(job, "A").Deleted)
}

// The same with IMAP: two tasks on one account index a folder's messages
// under the same IMAP URLs; a task that no longer indexes the folder
// removed them from the index although the other one still did.
func TestTwoIMAPTasksKeepAMessageTheOtherStillIndexes(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{user: "pw"}})
	d.MustDeliver(t, user, "INBOX", mailtest.Message{From: "bob@example.com", To: user, Subject: "shared", Text: "x"}.Raw(), "")
	d.MustDeliver(t, user, "Archive", mailtest.Message{From: "bob@example.com", To: user, Subject: "archived", Text: "y"}.Raw(), "")
	host, port, _ := strings.Cut(d.Addr, ":")
	task := func(name, folders string) string {
		return fmt.Sprintf("[%s]\nImapServer=%s\nImapPort=%s\nImapSecurity=STARTTLS\nSSLCACertificate=%s\nUsername=%s\nPassword=pw\nFolders=%s\n",
			name, host, port, d.CAFile, user, folders)
	}
	g := newRig(t, "[Server]\nDataDirectory=$DIR/data\n[FetchTasks]\n0=A\n1=B\n"+task("A", "INBOX,Archive")+task("B", "INBOX"))
	g.mustRun("Synchronize")
	shared := g.target.Find("SUBJECT", "shared")
	require.Len(t, shared, 1)
	ref := shared[0].Reference

	g.reconfigure("Folders=INBOX,Archive", "Folders=Archive")
	_, job := g.mustRun("Synchronize", "TaskSections", "A")
	require.NotNil(t, g.target.Get(ref), "B still indexes INBOX: its document stays")
	require.Zero(t, countsOf(job, "A").Ingestdeleted)
	g.mustRun("Synchronize", "TaskSections", "B")
	require.Equal(t, "B", taskOf(t, g, ref), "B delivered its own document")

	// Expunged: B removes it (A holds it no longer).
	o := otherClient(t, d)
	id, err := DecodeIdentifier(resttest.Field1(g.target.Get(ref), fieldIdentifier))
	require.NoError(t, err)
	require.NoError(t, o.Delete(context.Background(), mailbox.Collection{Name: "INBOX"}, []string{id.Key}))
	g.mustRun("Synchronize")
	require.Nil(t, g.target.Get(ref))
	require.Len(t, g.target.Find("SUBJECT", "archived"), 1)
}

// The Delete action of one task, on Gmail over IMAP, takes the folder's
// label off a message another task indexes through another of its
// folders: the document stays (before, it was removed, and the other
// task, finding the message unchanged, never delivered it again).
func TestGmailDeleteThroughOneTaskKeepsTheOtherTasksDocument(t *testing.T) {
	both := gmailMsg("in both", "1278455344230334866", `\Inbox`)
	h := mailtest.StartHoodiecrow(t, mailtest.HoodiecrowOptions{User: user, Password: "pw", Inbox: []mailtest.GmailMessage{both}, AllMail: []mailtest.GmailMessage{both}})
	host, port, _ := strings.Cut(h.Addr, ":")
	task := func(name, folders string) string {
		return fmt.Sprintf("[%s]\nImapServer=%s\nImapPort=%s\nImapSecurity=NONE\nUsername=%s\nPassword=pw\nFolders=%s\n", name, host, port, user, folders)
	}
	g := newRig(t, "[Server]\nDataDirectory=$DIR/data\n[FetchTasks]\n0=A\n1=B\n"+task("A", "INBOX")+task("B", "[Gmail]/All Mail"))
	ref := imapbox.GmailReference(user, "11bdfc5cae0c8192")
	g.mustRun("Synchronize", "TaskSections", "B")
	g.mustRun("Synchronize", "TaskSections", "A")
	require.Equal(t, "A", taskOf(t, g, ref))

	g.mustRun("Delete", "Identifiers", resttest.Field1(g.target.Get(ref), fieldIdentifier))
	require.NotNil(t, g.target.Get(ref), "B indexes it from [Gmail]/All Mail: its document stays")
	g.mustRun("Synchronize")
	require.Equal(t, "B", taskOf(t, g, ref))
}

// hookedTarget calls hook once, on the first Add of a document whose
// reference is ref, before adding.
type hookedTarget struct {
	*resttest.Target
	ref  string
	once sync.Once
	hook func()
}

func (h *hookedTarget) Add(ctx context.Context, docs []*ingest.Document) error {
	for _, d := range docs {
		if d.Reference == h.ref {
			h.once.Do(h.hook)
		}
	}
	return h.Target.Add(ctx, docs)
}

// A message moved from task A's label to task B's while both run: A lets
// it go, B delivers it for the first time. A decided to remove it when
// it gathered the removal, from the other tasks' records read once per
// run; B's record, written after that but before A's removal reached the
// target, was not seen: A's removal took B's new document out of the
// index, and B, finding the message unchanged, never delivered it again
// (gone until it changes). B runs here while A's batch is being
// delivered (at A's Add of another message of the same batch), after A
// read the other tasks' records on main's code.
func TestTwoGmailTasksMessageMovedWhileBothRun(t *testing.T) {
	g, api := twoGmailTasks(t, "INBOX", "Work")
	work := api.AddLabel("Work")
	m := api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "moving", Text: "x"}.Raw(), "INBOX")
	ref := imapbox.GmailReference(user, m)
	g.mustRun("Synchronize", "TaskSections", "A")
	g.mustRun("Synchronize", "TaskSections", "B")
	require.Equal(t, "A", taskOf(t, g, ref))

	api.Relabel(m, []string{work}, []string{"INBOX"})
	n := api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "new in A", Text: "y"}.Raw(), "INBOX")
	var bErr error
	ht := &hookedTarget{Target: g.target, ref: imapbox.GmailReference(user, n), hook: func() {
		_, _, bErr = g.run("Synchronize", "TaskSections", "B")
	}}
	var err error
	g.repo, err = New(Options{Config: g.cfg, Store: g.st, Target: ht, Now: g.now})
	require.NoError(t, err)
	g.mustRun("Synchronize", "TaskSections", "A")
	require.NoError(t, bErr)
	require.Positive(t, g.repo.wrote["B"].Load(), "B's batches say they wrote (shared.othersWrote)")
	require.NotNil(t, g.target.Get(ref), "B indexes the message now: its document stays in the index")
	require.Equal(t, "B", taskOf(t, g, ref))

	// Nothing changed since: the index keeps it through both tasks' runs.
	g.mustRun("Synchronize")
	require.NotNil(t, g.target.Get(ref))
}
