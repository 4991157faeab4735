package mailfetch

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
	"github.com/connectorhq/connector/messages"
)

// Delete refuses an identifier of a message the task has not indexed, as
// View and Collect do: a stale or crafted identifier deleted any message
// of the mailbox (before, Delete expunged it first and looked for the
// task's record only afterwards).
func TestDeleteRefusesAMessageTheTaskHasNotIndexed(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{user: "pw"}})
	d.MustDeliver(t, user, "INBOX", mailtest.Message{From: "bob@example.com", To: user, Subject: "indexed", Text: "x"}.Raw(), "")
	d.MustDeliver(t, user, "Trash", mailtest.Message{From: "bob@example.com", To: user, Subject: "thrown away", Text: "x"}.Raw(), "")
	g := newRig(t, mailConfig(d, ""))
	g.mustRun("Synchronize")
	indexed := g.target.Find("SUBJECT", "indexed")
	require.Len(t, indexed, 1)

	// A message that arrived after the synchronize, and one in Trash
	// (which the task does not index).
	o := otherClient(t, d)
	ctx := context.Background()
	inbox, newKey, err := o.Append(ctx, "INBOX", mailtest.Message{From: "bob@example.com", To: user, Subject: "not yet indexed", Text: "y"}.Raw(), nil, g.now())
	require.NoError(t, err)
	trash, trashKey, err := o.Append(ctx, "Trash", mailtest.Message{From: "bob@example.com", To: user, Subject: "in trash", Text: "z"}.Raw(), nil, g.now())
	require.NoError(t, err)
	newID := Identifier{Task: "MAIL", Collection: inbox.Name, Key: newKey}.Encode()
	trashID := Identifier{Task: "MAIL", Collection: trash.Name, Key: trashKey}.Encode()
	indexedID := resttest.Field1(indexed[0], "AUTN_IDENTIFIER")

	res, job := g.mustRun("Delete", "Identifiers", newID+","+trashID+","+indexedID)
	requireOutcome(t, res, []string{indexedID}, []string{newID, trashID})
	require.Equal(t, uint64(1), countsOf(job, "MAIL").Deleted)
	_, err = o.Get(ctx, inbox, newKey)
	require.NoError(t, err, "the message the task never indexed is still on the server")
	_, err = o.Get(ctx, trash, trashKey)
	require.NoError(t, err, "the message in Trash is still on the server")
	require.Empty(t, g.target.Find("SUBJECT", "indexed"))
	_, err = o.Get(ctx, inbox, indexedKey(t, indexedID))
	require.ErrorIs(t, err, mailbox.ErrNotFound, "the indexed message is deleted")
}

// An identifier given twice to Delete is one message deleted, counted
// once and listed once in the reply (it was counted deleted twice, its
// documents removed twice).
func TestDeleteOfAnIdentifierGivenTwiceCountsOne(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{user: "pw"}})
	d.MustDeliver(t, user, "INBOX", mailtest.Message{From: "bob@example.com", To: user, Subject: "indexed", Text: "x"}.Raw(), "")
	g := newRig(t, mailConfig(d, ""))
	g.mustRun("Synchronize")
	indexed := g.target.Find("SUBJECT", "indexed")
	require.Len(t, indexed, 1)
	id := resttest.Field1(indexed[0], "AUTN_IDENTIFIER")
	res, job := g.mustRun("Delete", "Identifiers", id+","+id)
	requireOutcome(t, res, []string{id}, nil)
	require.Equal(t, uint64(1), countsOf(job, "MAIL").Deleted)
	require.Equal(t, uint64(1), countsOf(job, "MAIL").Ingestdeleted)
	require.Empty(t, g.target.Find("SUBJECT", "indexed"))
}

// The same on the Gmail API with DeleteMode=DELETE, where a deleted
// message cannot be recovered.
func TestGmailAPIDeleteRefusesAMessageTheTaskHasNotIndexed(t *testing.T) {
	g, api, _ := gmailRig(t, false, "DeleteMode=DELETE\n")
	m1 := api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "indexed", Text: "x"}.Raw(), "INBOX")
	spam := api.Deliver(mailtest.Message{From: "spam@example.com", Subject: "buy now", Text: "x"}.Raw(), "SPAM")
	g.mustRun("Synchronize")
	m2 := api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "not yet indexed", Text: "y"}.Raw(), "INBOX")
	indexed := g.target.Find("SUBJECT", "indexed")
	require.Len(t, indexed, 1)

	m2ID, spamID := Identifier{Task: "GMAIL", Key: m2}.Encode(), Identifier{Task: "GMAIL", Key: spam}.Encode()
	indexedID := resttest.Field1(indexed[0], "AUTN_IDENTIFIER")
	res, job := g.mustRun("Delete", "Identifiers", m2ID+","+spamID+","+indexedID)
	requireOutcome(t, res, []string{indexedID}, []string{m2ID, spamID})
	require.Equal(t, uint64(1), countsOf(job, "GMAIL").Deleted)
	require.NotNil(t, api.Message(m2), "the message the task never indexed is not deleted")
	require.NotNil(t, api.Message(spam), "the spam the task does not index is not deleted")
	require.Nil(t, api.Message(m1), "the indexed message is deleted")
}

func indexedKey(t *testing.T, identifier string) string {
	id, err := DecodeIdentifier(identifier)
	require.NoError(t, err)
	return id.Key
}

// requireOutcome checks an action's <tasks>: ok succeeded, and notIndexed
// failed with the error Collect gives.
func requireOutcome(t *testing.T, res []*messages.Element, ok, notIndexed []string) {
	t.Helper()
	var got, want []string
	for _, c := range res[0].Children {
		why := ""
		if len(c.Attrs) > 0 {
			why = c.Attrs[0].Value
		}
		got = append(got, c.Name+" "+c.Text+" "+why)
	}
	for _, id := range ok {
		want = append(want, "success "+id+" ")
	}
	for _, id := range notIndexed {
		want = append(want, "failed "+id+" the task has not indexed this message")
	}
	require.Equal(t, want, got)
}
