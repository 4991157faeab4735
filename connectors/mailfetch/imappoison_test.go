package mailfetch

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
)

// A message the IMAP server cannot give (Dovecot drops the connection
// when its mail file cannot be read) stopped every Synchronize at it: the
// messages after it in the folder were never indexed, run after run. It
// is now the suspect of the failed fetch: read last by the next runs, so
// that the others are indexed, and given up (not read again while it is
// in the folder) once it has failed for transientGiveUp and
// maxMessageAttempts runs, so that the task's runs end well again.
func TestIMAPMessageTheServerCannotGiveDoesNotHoldBackTheFolder(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{user: "pw"}})
	d.MustDeliver(t, user, "INBOX", mailtest.Message{From: "bob@example.com", To: user, Subject: "one", Text: "x"}.Raw(), "")
	bad := d.MustDeliver(t, user, "INBOX", mailtest.Message{From: "bob@example.com", To: user, Subject: "two", Text: "y"}.Raw(), "")
	d.MustDeliver(t, user, "INBOX", mailtest.Message{From: "bob@example.com", To: user, Subject: "three", Text: "z"}.Raw(), "")
	require.NoError(t, os.Chmod(bad, 0))
	g := newRig(t, mailConfig(d, ""))

	_, _, err := g.run("Synchronize")
	require.Error(t, err, "the connection was lost")
	require.Len(t, g.target.Find("SUBJECT", "one"), 1)

	g.advance(transientGiveUp / (maxMessageAttempts - 1))
	_, _, err = g.run("Synchronize")
	require.Error(t, err)
	require.Len(t, g.target.Find("SUBJECT", "three"), 1, "the message after it is indexed")
	require.Equal(t, 2, g.target.Len())

	for run := 3; run <= maxMessageAttempts; run++ {
		g.advance(transientGiveUp / (maxMessageAttempts - 1))
		_, _, err = g.run("Synchronize")
		require.Error(t, err, "run %d reads it again", run)
	}
	_, job, err := g.run("Synchronize")
	require.NoError(t, err, "given up")
	require.Equal(t, "seen=2 added=0 updated=0 deleted=0 unchanged=2 ingestadded=0 ingestupdated=0 ingestdeleted=0 ingestfailed=0 errors=0", summary(countsOf(job, "MAIL")))

	// A message arriving now is indexed.
	d.MustDeliver(t, user, "INBOX", mailtest.Message{From: "bob@example.com", To: user, Subject: "four", Text: "w"}.Raw(), "")
	_, _, err = g.run("Synchronize")
	require.NoError(t, err)
	require.Len(t, g.target.Find("SUBJECT", "four"), 1)

	// Once it leaves the folder, it is forgotten.
	ds, err := g.st.Datastore("MAIL")
	require.NoError(t, err)
	failures := func() int {
		st, err := loadState(ds)
		require.NoError(t, err)
		return len(st.failed["INBOX"])
	}
	require.Equal(t, 1, failures())
	require.NoError(t, os.Remove(bad))
	_, _, err = g.run("Synchronize")
	require.NoError(t, err)
	require.Zero(t, failures())
}
