package mailfetch

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/internal/restsync/resttest"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
)

// A folder name may hold characters XML cannot (Dovecot creates "a\uFFFEb"
// and "a\uFFFFb"), which the identifier wrote as U+FFFD: the identifiers
// of such folders' messages named another folder ("a\uFFFDb", which may
// exist), so View, Collect and Delete of every one of them failed ("has
// not indexed"), and two such folders had the same name in their
// identifiers. The identifier now carries the name as it is.
func TestFolderNameThatXMLCannotHoldRoundTrips(t *testing.T) {
	d := mailtest.StartDovecot(t, mailtest.DovecotOptions{Users: map[string]string{user: "pw"}})
	c, err := imapclient.DialInsecure(d.Addr, nil)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Login(user, "pw").Wait())
	folders := []string{"a\uFFFEb", "a\uFFFFb", "a\uFFFDb"}
	o := otherClient(t, d)
	for i, f := range folders {
		require.NoError(t, c.Create(f, nil).Wait())
		_, _, err := o.Append(context.Background(), f, mailtest.Message{From: "bob@example.com", To: user, Subject: fmt.Sprintf("in folder %d", i), Text: "x"}.Raw(), nil, time.Now())
		require.NoError(t, err)
	}
	g := newRig(t, mailConfig(d, ""))
	g.mustRun("Synchronize")
	ids := map[string]bool{}
	for i, f := range folders {
		docs := g.target.Find("FOLDER", f)
		require.Len(t, docs, 1, "%q", f)
		idText := resttest.Field1(docs[0], "AUTN_IDENTIFIER")
		require.False(t, ids[idText], "%q: the identifier of another folder's message", f)
		ids[idText] = true
		id, err := DecodeIdentifier(idText)
		require.NoError(t, err)
		require.Equal(t, f, id.Collection)
		v, err := g.repo.View(context.Background(), idText, nil)
		require.NoError(t, err, "%q", f)
		require.Contains(t, string(v.Content), fmt.Sprintf("Subject: in folder %d", i))
	}
}
