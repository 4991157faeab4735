package mailfetch

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
)

// A message the server would not give for Collect (the Gmail API answered
// an error for it alone) ended the whole action as Error: the messages
// after it in Identifiers were never collected, and the result said
// nothing of those before it. It is now listed as failed, with the
// server's answer, and counted in errors, while the others are collected,
// as the other connectors' Collect does.
func TestCollectListsAMessageThatCannotBeReadAndGoesOn(t *testing.T) {
	g, api, bm := gmailRigBroken(t)
	api.Deliver(mailtest.Message{From: "bob@example.com", Subject: "one", Text: "1"}.Raw(), "INBOX")
	bad := api.Deliver(mailtest.Message{From: "bob@example.com", Subject: "two", Text: "2"}.Raw(), "INBOX")
	api.Deliver(mailtest.Message{From: "bob@example.com", Subject: "three", Text: "3"}.Raw(), "INBOX")
	g.mustRun("Synchronize")
	ids := []string{g.identifierOf("one"), g.identifierOf("two"), g.identifierOf("three")}
	bm.setStatus(bad, http.StatusBadRequest)

	res, job, err := g.run("Collect", "Identifiers", ids[0]+","+ids[1]+","+ids[2])
	require.NoError(t, err, "one message that cannot be read does not end the action")
	// The successes, then the failure with the server's answer.
	require.Len(t, res[0].Children, 3)
	for i, want := range []string{"success " + ids[0], "success " + ids[2], "failed " + ids[1]} {
		require.Equal(t, want, res[0].Children[i].Name+" "+res[0].Children[i].Text)
	}
	require.Contains(t, res[0].Children[2].Attrs[0].Value, "400")
	c := countsOf(job, "GMAIL")
	require.Equal(t, uint64(2), c.Collected)
	require.Equal(t, uint64(1), c.Errors)
	for _, name := range []string{"one.eml", "three.eml"} {
		_, err := os.Stat(filepath.Join(g.dir, "collect", name))
		require.NoError(t, err, name)
	}
	_, err = os.Stat(filepath.Join(g.dir, "collect", "two.eml"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// An identifier given twice in one Collect was collected twice: two
// copies of the message ("x.eml" and "x (1).eml") and two successes.
// It is one message, collected once, as Delete takes it.
func TestCollectOfAnIdentifierGivenTwiceCollectsItOnce(t *testing.T) {
	g, api, _ := gmailRig(t, false, "")
	api.Deliver(mailtest.Message{From: "bob@example.com", Subject: "once", Text: "1"}.Raw(), "INBOX")
	g.mustRun("Synchronize")
	id := g.identifierOf("once")

	res, job := g.mustRun("Collect", "Identifiers", id+","+id)
	requireOutcome(t, res, []string{id}, nil)
	require.Equal(t, uint64(1), countsOf(job, "GMAIL").Collected)
	entries, err := os.ReadDir(filepath.Join(g.dir, "collect"))
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{"once.eml", "once.eml.idx"}, names)
}

// identifierOf is the AUTN_IDENTIFIER of the one document delivered with
// subject.
func (g *rig) identifierOf(subject string) string {
	g.t.Helper()
	d := g.target.Find("SUBJECT", subject)
	require.Len(g.t, d, 1, subject)
	return resttest.Field1(d[0], "AUTN_IDENTIFIER")
}
