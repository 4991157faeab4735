package mailfetch

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
)

// The settings that shape a message's documents changed between two
// runs (the server restarted with an edited configuration): the messages
// already indexed are delivered again as the new settings make them.
// Before, nothing already indexed changed: turning IngestAttachments on
// indexed the attachments of new mail only, and a lower MaxMessageBytes
// left the large messages indexed whole.
func TestSettingsThatShapeDocumentsReindexWhatTheyShape(t *testing.T) {
	g, api, _ := gmailRig(t, false, "IngestAttachments=false\nMaxMessageBytes=1048576\n")
	pdf, err := os.ReadFile("../../extract/testdata/hello.pdf")
	require.NoError(t, err)
	api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "with report", Text: "see attached",
		Attachments: []mailtest.Attachment{{Name: "report.pdf", ContentType: "application/pdf", Data: pdf}}}.Raw(), "INBOX")
	api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "plain", Text: "hello"}.Raw(), "INBOX")
	api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "big one", Text: "x",
		Attachments: []mailtest.Attachment{{Name: "big.bin", Data: bytes.Repeat([]byte{7}, 40000)}}}.Raw(), "INBOX")
	g.mustRun("Synchronize")
	require.Len(t, g.target.Find("SUBJECT", "with report"), 1, "no attachment documents")

	g.reconfigure("IngestAttachments=false", "IngestAttachments=true")
	_, job := g.mustRun("Synchronize")
	rep := g.target.Find("SUBJECT", "with report")
	require.Len(t, rep, 2, "the attachment of a message indexed before is indexed now")
	require.Len(t, g.target.Find("SUBJECT", "big one"), 2)
	require.Equal(t, "seen=5 added=0 updated=5 deleted=0 unchanged=0 ingestadded=0 ingestupdated=5 ingestdeleted=0 ingestfailed=0 errors=0", summary(countsOf(job, "GMAIL")))

	// Unchanged settings: nothing read again.
	gets := countGets(api)
	_, job = g.mustRun("Synchronize")
	require.Equal(t, gets, countGets(api))
	require.Equal(t, uint64(5), countsOf(job, "GMAIL").Unchanged)

	// A lower MaxMessageBytes: only the messages it cuts are read again
	// (the other two are smaller than both limits).
	g.reconfigure("MaxMessageBytes=1048576", "MaxMessageBytes=30000")
	gets = countGets(api)
	_, job = g.mustRun("Synchronize")
	big := g.target.Find("SUBJECT", "big one")
	require.Len(t, big, 1, "over MaxMessageBytes now: the header only, its attachment removed")
	require.Equal(t, "true", resttest.Field1(big[0], "MESSAGE_TRUNCATED"))
	require.Len(t, g.target.Find("SUBJECT", "with report"), 2)
	require.Equal(t, "seen=4 added=0 updated=1 deleted=1 unchanged=3 ingestadded=0 ingestupdated=1 ingestdeleted=1 ingestfailed=0 errors=0", summary(countsOf(job, "GMAIL")))
	require.Equal(t, gets+2, countGets(api), "one message read (minimal, then its header)")

	// Back up: the message cut is read whole again.
	g.reconfigure("MaxMessageBytes=30000", "MaxMessageBytes=1048576")
	g.mustRun("Synchronize")
	require.Len(t, g.target.Find("SUBJECT", "big one"), 2)
}

// Over IMAP (Dovecot, with CONDSTORE: an unchanged folder is skipped on
// its cursor alone), IngestAttachments turned on indexes the attachments
// of the messages already indexed, and a run after it reads nothing.
func TestSettingsChangeReindexesOverIMAP(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{user: "pw"}})
	_, nDocs := corpus(t, d)
	g := newRig(t, mailConfig(d, "IngestAttachments=false\n"))
	g.mustRun("Synchronize")
	require.Equal(t, nDocs-2, g.target.Len(), "no attachment documents")

	g.reconfigure("IngestAttachments=false", "IngestAttachments=true")
	g.mustRun("Synchronize")
	require.Equal(t, nDocs, g.target.Len())
	require.Len(t, g.target.Find("SUBJECT", "Réunion 0 – rapport"), 3)

	_, job := g.mustRun("Synchronize")
	c := countsOf(job, "MAIL")
	require.Equal(t, fmt.Sprintf("seen=%d added=0 updated=0 deleted=0 unchanged=%d ingestadded=0 ingestupdated=0 ingestdeleted=0 ingestfailed=0 errors=0", nDocs, nDocs), summary(c))
}
