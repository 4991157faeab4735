package mailfetch

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
)

// reconfigure gives the rig's task new settings (the server restarted
// with an edited configuration): same datastore, target and token file.
func (g *rig) reconfigure(from, to string) {
	g.t.Helper()
	text := strings.Replace(g.text, from, to, 1)
	require.NotEqual(g.t, g.text, text, "%q not in the configuration", from)
	cfg, err := config.Parse("test.cfg", []byte(text), TaskKeys)
	require.NoError(g.t, err)
	require.NoError(g.t, Check(cfg))
	g.text, g.cfg = text, cfg
	g.repo, err = New(Options{Config: cfg, Store: g.st, Target: g.target, Now: g.now})
	require.NoError(g.t, err)
}

// With the Gmail API, the labels a task indexes (Folders) changed between
// two runs: the messages of a label added are indexed, those of a label
// taken out (and in no other label indexed) are removed, although
// nothing happened to them in the mailbox (the history has nothing to
// say about them).
func TestGmailAPIFoldersChangedBetweenRuns(t *testing.T) {
	g, api, _ := gmailRig(t, false, "Folders=Work\n")
	work := api.AddLabel("Work")
	homeLabel := api.AddLabel("Home")
	api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "work only", Text: "w"}.Raw(), "INBOX", work)
	home := api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "home only", Text: "h"}.Raw(), "INBOX")
	api.Relabel(home, []string{homeLabel}, []string{"INBOX"})
	g.mustRun("Synchronize")
	require.Len(t, g.target.Find("SUBJECT", "work only"), 1)
	require.Empty(t, g.target.Find("SUBJECT", "home only"))

	g.reconfigure("Folders=Work", "Folders=Work,Home")
	g.mustRun("Synchronize")
	require.Len(t, g.target.Find("SUBJECT", "home only"), 1, "the label added: its messages are indexed")
	require.Len(t, g.target.Find("SUBJECT", "work only"), 1)

	g.reconfigure("Folders=Work,Home", "Folders=Home")
	g.mustRun("Synchronize")
	require.Empty(t, g.target.Find("SUBJECT", "work only"), "the label taken out: its messages are removed")
	require.Len(t, g.target.Find("SUBJECT", "home only"), 1)

	// Unchanged settings: the history again, nothing read.
	_, job := g.mustRun("Synchronize")
	require.Equal(t, "seen=1 added=0 updated=0 deleted=0 unchanged=1 ingestadded=0 ingestupdated=0 ingestdeleted=0 ingestfailed=0 errors=0", summary(countsOf(job, "GMAIL")))
}

// With the Gmail API, a label renamed: the documents of its messages name
// it by its new name (LABELS), though the history says nothing of it.
func TestGmailAPILabelRenamed(t *testing.T) {
	g, api, _ := gmailRig(t, false, "")
	work := api.AddLabel("Work")
	api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "labelled", Text: "w"}.Raw(), "INBOX", work)
	api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "not labelled", Text: "h"}.Raw(), "INBOX")
	g.mustRun("Synchronize")
	require.Equal(t, []string{"INBOX", "Work"}, resttest.Field(g.target.Find("SUBJECT", "labelled")[0], "LABELS"))

	api.RenameLabel(work, "Projects")
	_, job := g.mustRun("Synchronize")
	require.Equal(t, []string{"INBOX", "Projects"}, resttest.Field(g.target.Find("SUBJECT", "labelled")[0], "LABELS"))
	require.Equal(t, "seen=2 added=0 updated=1 deleted=0 unchanged=1 ingestadded=0 ingestupdated=1 ingestdeleted=0 ingestfailed=0 errors=0", summary(countsOf(job, "GMAIL")))

	_, job = g.mustRun("Synchronize")
	require.Equal(t, "seen=2 added=0 updated=0 deleted=0 unchanged=2 ingestadded=0 ingestupdated=0 ingestdeleted=0 ingestfailed=0 errors=0", summary(countsOf(job, "GMAIL")))
}

// A label renamed so that FolderMustHaveRegex no longer takes it (or
// FolderCantHaveRegex now does, or the other way round): the history says
// nothing of a rename, and the filter, whose text did not change, was
// taken to index what it indexed before. The messages of a label renamed
// out of the filter were delivered again under the new name (the rename
// read them again) instead of removed, and those of a label renamed into
// it were not indexed until they changed. A rename now re-reads which
// messages the filter takes when it depends on names.
func TestGmailAPILabelRenamedAcrossTheFilter(t *testing.T) {
	for _, c := range []struct {
		name, filter, from, to string
		indexed                bool // after the rename
	}{
		{"out of FolderMustHaveRegex", "FolderMustHaveRegex=Work.*", "Work", "Job", false},
		{"into FolderMustHaveRegex", "FolderMustHaveRegex=Work.*", "Job", "Work", true},
		{"into FolderCantHaveRegex", "FolderCantHaveRegex=Private.*", "Family", "Private family", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, api, _ := gmailRig(t, false, c.filter+"\n")
			l := api.AddLabel(c.from)
			api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "labelled", Text: "l"}.Raw(), "INBOX", l)
			g.mustRun("Synchronize")
			require.Len(t, g.target.Find("SUBJECT", "labelled"), b2i(!c.indexed))

			api.RenameLabel(l, c.to)
			_, job := g.mustRun("Synchronize")
			require.Len(t, g.target.Find("SUBJECT", "labelled"), b2i(c.indexed))
			require.Equal(t, uint64(b2i(!c.indexed)), countsOf(job, "GMAIL").Deleted)
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
